"""Automatic abnormality flags: the paper's human "abnormal" judgement from pixels, for balls of
the fundamental scenarios (``balls``) and for the bodies of PHYRE-style scenes (``scenes``)."""
