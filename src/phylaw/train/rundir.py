"""A run directory, as the training loop keeps it: the config beside the run, the logs, and a
clean stop on a signal.

    RUN/config.json        the resolved config (`check_run_dir` writes it, and refuses a
                           directory holding another run)
    RUN/checkpoints/       `train.checkpoint`
    RUN/metrics.jsonl      one line per logged step (`RunLog.scalars`)
    RUN/tb/                TensorBoard events: the same scalars, and the sample GIFs
    RUN/samples/           step_NNNNNNN-<tag>.gif (ground truth | model output)
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np

from phylaw import PhylawError
from phylaw.data.io.video import encode_gif
from phylaw.data.store import atomic_write_bytes, read_json, write_json
from phylaw.train.config_core import config_diff, config_to_dict, dict_to_config, fixed_changes

__all__ = ["RunLog", "StopFlag", "check_run_dir"]


def check_run_dir(cfg: Any, run_dir: Path) -> None:
    """Refuse a run directory holding another run (one of another kind, or differing in the
    config's `FIXED` keys); print the settings a resume changes; write RUN/config.json."""
    path = run_dir / "config.json"
    if path.exists():
        try:
            old = dict_to_config(type(cfg), read_json(path, "run config"), str(path))
        except PhylawError as e:
            raise PhylawError(
                f"{run_dir} holds another kind of run or a broken config ({e}); choose another "
                "--out"
            ) from None
        fixed = fixed_changes(old, cfg)
        if fixed:
            raise PhylawError(
                f"{run_dir} holds a run with another config ({'; '.join(fixed[:3])}); choose "
                "another --out, or resume it with the same settings"
            )
        changed = config_diff(old, cfg)
        if changed:
            print(f"resuming {run_dir} with changed settings: {'; '.join(changed)}")
    elif run_dir.is_dir() and any(run_dir.iterdir()):
        raise PhylawError(f"{run_dir} exists and is not a phylaw run; choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, config_to_dict(cfg))


class RunLog:
    """TensorBoard scalars and GIFs, RUN/metrics.jsonl and sample files (rank 0 only)."""

    def __init__(self, run_dir: Path, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step)
        self.jsonl = run_dir / "metrics.jsonl"
        if self.jsonl.exists():  # drop what a killed run logged after its last checkpoint
            keep = []
            for ln in self.jsonl.read_text().splitlines():
                try:
                    if json.loads(ln).get("step", 0) <= start_step:
                        keep.append(ln)
                except (json.JSONDecodeError, AttributeError):  # a line cut by the kill
                    pass
            atomic_write_bytes(self.jsonl, "".join(ln + "\n" for ln in keep).encode())

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Log `values` at `step` to TensorBoard and as one line of metrics.jsonl."""
        for k, v in values.items():
            self.tb.add_scalar(k, v, step)
        with open(self.jsonl, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")

    def gif(self, step: int, tag: str, frames: np.ndarray) -> Path:
        """Write uint8 frames [T, H, W, 3] as samples/step_NNNNNNN-<tag>.gif and to TensorBoard."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        data = encode_gif(frames)
        path = self.run_dir / "samples" / f"step_{step:07d}-{tag}.gif"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        t, h, w, _ = frames.shape
        image = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=data)
        summary = Summary(value=[Summary.Value(tag=f"samples/{tag}", image=image)])
        self.tb._get_file_writer().add_summary(summary, step)
        return path

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        self.tb.close()


class StopFlag:
    """SIGINT/SIGTERM -> stop after the current step (a second SIGINT interrupts at once)."""

    def __init__(self) -> None:
        self.set, self.previous = False, {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.set = True
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, self.previous[signal.SIGINT])
            print("\nstopping after this step with a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
