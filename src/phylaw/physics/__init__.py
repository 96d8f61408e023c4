"""Exact trajectories from initial conditions. numpy only: no pixels, no torch."""
