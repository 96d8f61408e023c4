"""The pretrained networks of the fidelity metrics (I3D for FVD, AlexNet for LPIPS), loaded from
weight files the user gives; nothing is downloaded and loading never runs code."""
