"""The report opens in headless Chromium without errors (slow: runs a tiny plan and a browser).

Needs Debian's chromium (`apt install chromium`); `benchmarks/check_report.py` does the same
for any report.
"""

import importlib.util
from pathlib import Path

import pytest

from phylaw.experiments.runner import run_plan

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location(
        "check_report", ROOT / "benchmarks" / "check_report.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_report_of_a_tiny_plan_renders_in_headless_chromium(tmp_path):
    from test_experiments import tiny_plan

    run_plan(tiny_plan(), tmp_path, progress=False)
    result = _checker().check(tmp_path / "report.html", tmp_path / "report.png")
    assert result["screenshot"] and not result["errors"], result["errors"]
    assert result["tables"] >= 3 and result["images"] >= 3
