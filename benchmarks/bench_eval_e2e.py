"""``phylaw eval`` end to end against an authors'-style per-video loop, on the same file.

Builds a uniform-motion OOD split (every level), exports it at 128 px (32 frames) as an npz, and
times in one run:

  1. ``phylaw eval --videos FILE.npz --data SPLIT`` as a user runs it (a subprocess: start-up,
     tables, reading, parsing, metrics, every plausibility flag, the bootstrap, writing), with
     the floor cache cold (removed first) and warm (the second evaluation of a split), videos/s;
  2. the authors' style of evaluation, one process, one video at a time on the same file: per
     frame a hard 127 threshold mask of the red ball, the centroid of the mask (``np.where``),
     then the velocity by ``np.diff`` and its error (reference section 2.2 and 2.4; no flags);
  3. the same for an mp4 folder (``--mp4`` videos): ``phylaw eval`` on the folder against a
     loop decoding each file (PyAV, one thread, as ours) and scoring it the authors' way, and
     the decoding alone (the bound of any mp4 evaluation).

Rates are wall-clock on the machine as it is: run it alone. The CPU model is printed.

    python benchmarks/bench_eval_e2e.py --videos 2400 --mp4 256
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from phylaw.data.build import build_split
from phylaw.data.export import export_store
from phylaw.data.io.npz import load_npz_array
from phylaw.data.io.video import decode_video
from phylaw.data.spaces import resolve_split
from phylaw.data.store import open_store
from phylaw.physics.state import WORLD_SIZE

RES = 128


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def authors_video(video: np.ndarray, x_true: np.ndarray) -> float:
    """One video the authors' way: per frame a hard-threshold mask and its centroid (missing:
    x = 10), the x velocity by np.diff over the generated frames, |mean v - v|."""
    xs = []
    for frame in video[3:]:
        mask = (frame[:, :, 0] > 127) & (frame[:, :, 1] < 127) & (frame[:, :, 2] < 127)
        if mask.sum() > 0.15:
            _, cols = np.where(mask)
            xs.append(cols.mean() / frame.shape[1] * WORLD_SIZE)
        else:
            xs.append(10.0)
    v = np.diff(np.array(xs)) / 0.1
    v_true = np.diff(x_true[3:]) / 0.1
    return float(abs(v.mean() - v_true.mean()))


def phylaw_eval(videos: Path, data: Path, out: Path) -> float:
    """Wall seconds of ``phylaw eval`` as a subprocess."""
    cli = [sys.executable, "-m", "phylaw.cli", "eval", "--videos", str(videos)]
    t0 = time.perf_counter()
    subprocess.run([*cli, "--data", str(data), "--out", str(out)], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=2400, help="npz videos (default: 2400)")
    ap.add_argument("--mp4", type=int, default=256, help="mp4 videos (0: skip)")
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: temp)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="phylaw-bench-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu_model()}; python {platform.python_version()}; work {work}")
    split = work / "u-ood"
    if not split.exists():
        build_split(resolve_split("uniform", "eval-ood", str(args.videos), 0), split)
    store = open_store(split)
    npz = work / "u-ood.npz"
    if not npz.exists():
        export_store(store, "npz", npz, resolution=RES)
    n = len(store)
    x_true = store.trajectory(np.arange(n)).pos[:, :, 0, 0]

    shutil.rmtree(split / "floors", ignore_errors=True)
    cold = phylaw_eval(npz, split, work / "scores-cold")
    warm = phylaw_eval(npz, split, work / "scores-warm")
    videos = load_npz_array(npz, "videos")
    t0 = time.perf_counter()
    for k in range(n):
        authors_video(np.asarray(videos[k]), x_true[k])
    theirs = time.perf_counter() - t0
    print(f"npz, {n} videos of 32x{RES}x{RES}:")
    print(f"  phylaw eval, floor cold: {cold:.1f} s = {n / cold:.0f} videos/s")
    print(f"  phylaw eval, floor warm: {warm:.1f} s = {n / warm:.0f} videos/s")
    print(f"  authors'-style loop, 1 process: {theirs:.1f} s = {n / theirs:.0f} videos/s")
    print(f"  ratio (warm / authors' loop): {theirs / warm:.1f}x; cold: {theirs / cold:.1f}x")

    if args.mp4:
        m = min(args.mp4, n)
        folder = work / "u-ood-mp4"
        if not folder.exists():
            sub = work / "u-ood-sub"
            if not sub.exists():
                build_split(resolve_split("uniform", "eval-ood", str(m), 0), sub)
            export_store(open_store(sub), "mp4", folder, resolution=RES)
        sub = open_store(work / "u-ood-sub")
        xs = sub.trajectory(np.arange(len(sub))).pos[:, :, 0, 0]
        files = sorted(folder.glob("*.mp4"))
        shutil.rmtree(sub.root / "floors", ignore_errors=True)
        cold = phylaw_eval(folder, sub.root, work / "mp4-cold")
        warm = phylaw_eval(folder, sub.root, work / "mp4-warm")
        t0 = time.perf_counter()
        decoded = [decode_video(f) for f in files]
        decode = time.perf_counter() - t0
        t0 = time.perf_counter()
        for k, f in enumerate(files):
            authors_video(decode_video(f), xs[k])
        theirs = time.perf_counter() - t0
        del decoded
        print(f"mp4 folder, {len(files)} videos of 32x{RES}x{RES} (crf 25):")
        print(f"  phylaw eval, floor cold (encodes the ground truth): {cold:.1f} s")
        print(f"  phylaw eval, floor warm: {warm:.1f} s = {len(files) / warm:.0f} videos/s")
        print(f"  decoding alone, 1 thread: {decode:.1f} s = {len(files) / decode:.0f} videos/s")
        print(f"  authors'-style loop with decoding, 1 process: {theirs:.1f} s")


if __name__ == "__main__":
    main()
