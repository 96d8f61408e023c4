"""Evaluation: scores videos against ground truth, never a model.

``fidelity`` (SSIM, PSNR, LPIPS, FVD), with the networks in ``lpips`` and ``i3d`` and their
weights read by ``weights``. Import the submodules you need; this package imports nothing heavy.
"""
