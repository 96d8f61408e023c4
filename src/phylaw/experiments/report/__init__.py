"""An experiment's report: one self-contained HTML file (``html``: tables, figures, animations,
details) built from a finished plan's stages (``plan``)."""
