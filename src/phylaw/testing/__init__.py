"""Helpers shared by tests and benchmarks (never imported by the package itself): injecting
hand-made defects into videos of balls (``defects``) and of scenes (``scene_defects``)."""
