"""Open a phylaw report in headless Chromium: screenshot it and list any console errors.

    python benchmarks/check_report.py phylaw-quickstart/report.html --out report.png

Needs Debian's ``chromium`` (``apt install chromium``). Exits non-zero when the page logs an
error or a resource fails to load, or when the screenshot is missing; prints the number of
images the page shows once laid out (from the DOM Chromium dumps).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
ERROR = re.compile(r"(CONSOLE\(\d+\).*(error|Uncaught))|Failed to load resource", re.I)


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no headless browser found: install Debian's chromium (apt install chromium)")


def check(html: Path, png: Path, width: int = 1200, height: int = 4000) -> dict:
    """Screenshot ``html`` into ``png``; returns {'errors': [...], 'images': n, 'tables': n}."""
    exe = browser()
    common = [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--enable-logging=stderr", "--v=0", f"--window-size={width},{height}",
    ]  # fmt: skip
    url = html.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        shot = subprocess.run(
            [*common, f"--user-data-dir={profile}", f"--screenshot={png}", url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        dom = subprocess.run(
            [*common, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    errors = [ln for ln in (shot.stderr + dom.stderr).splitlines() if ERROR.search(ln)]
    return {
        "errors": errors,
        "images": dom.stdout.count("<img"),
        "tables": dom.stdout.count("<table"),
        "screenshot": png.exists() and png.stat().st_size > 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--out", type=Path, default=Path("report.png"))
    args = ap.parse_args()
    result = check(args.html, args.out)
    print(
        f"{args.html}: {result['tables']} tables, {result['images']} images, "
        f"{len(result['errors'])} console errors; screenshot {args.out}"
    )
    for line in result["errors"]:
        print("  " + line)
    sys.exit(0 if result["screenshot"] and not result["errors"] else 1)


if __name__ == "__main__":
    main()
