"""PyTorch Dataset over a split: states from the memory-mapped store, pixels rendered on the fly.

Two ways to feed a training loop:

* ``RenderLoader`` (the fast path): threads render batches into a small ring of reused buffers in
  the consuming process. numpy releases the GIL in the renderer's array work, so two threads use
  both cores, and reused memory costs no page faults: measured ~1,700 videos/s of 32x128x128 on
  2 cores, against ~430 for ``DataLoader`` with 2 worker processes, whose every batch lands in
  fresh shared memory (1.5 MB of first-touch page faults per video); see
  ``benchmarks/bench_testbed.py``.
* ``make_loader``: a standard ``torch.utils.data.DataLoader`` (batched ``__getitems__``, worker
  processes rendering straight into shared memory), for code that expects one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from phylaw.data.store import Store, open_store
from phylaw.data.views import render_batch
from phylaw.render.geometry import PixelGrid


class VideoDataset(Dataset):
    """Videos of a split as uint8 tensors ``[T, H, W, 3]`` (H = W = ``resolution``).

    An item (and a batch from ``__getitems__``) is a dict: ``video`` uint8 [(B,) T, H, W, 3],
    ``index`` int64 video ids, ``params`` float64 [(B,) P], ``level`` int64. ``rows`` restricts the
    dataset to those positions of the split.
    """

    def __init__(
        self, root: str | Path | Store, resolution: int = 128, rows: np.ndarray | None = None
    ):
        self.store = root if isinstance(root, Store) else open_store(root)
        self.grid = PixelGrid(resolution, resolution)
        self.rows = np.arange(len(self.store)) if rows is None else np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def video_shape(self, batch_size: int) -> tuple[int, ...]:
        """Shape of a rendered batch: [B, T, H, W, 3]."""
        t = self.store.manifest["num_frames"]
        return (batch_size, t, self.grid.height_px, self.grid.width_px, 3)

    def render_rows(
        self, rows: np.ndarray, out: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Render the split rows ``rows`` into one batch dict (into ``out`` when given)."""
        rows = np.asarray(rows)
        batch = self.store.get(rows)
        video = out
        if video is None:
            video = torch.empty(self.video_shape(len(rows)), dtype=torch.uint8)
            if get_worker_info() is not None:  # straight into shared memory: no copy later
                video.share_memory_()
        render_batch(self.store, batch, self.grid, out=video.numpy())
        return {
            "video": video,
            "index": torch.from_numpy(batch.index),
            "params": torch.from_numpy(batch.params),
            "level": torch.from_numpy(batch.level.astype(np.int64)),
        }

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return self.render_rows(self.rows[np.asarray(indices)])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.render_rows(self.rows[[i]]).items()}


def _keep(batch):
    return batch


def make_loader(
    dataset: VideoDataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` yielding rendered batch dicts; shuffling is seeded."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=_keep,
        generator=generator,
        drop_last=drop_last,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None,
    )


def epoch_batches(
    num_rows: int,
    batch_size: int,
    *,
    seed: int = 0,
    epochs: int | None = 1,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[np.ndarray]:
    """Dataset positions per batch, epoch after epoch (``epochs=None``: forever), seeded."""
    epoch = 0
    while epochs is None or epoch < epochs:
        order = np.arange(num_rows)
        if shuffle:
            order = np.random.default_rng([seed, epoch]).permutation(num_rows)
        stop = num_rows - num_rows % batch_size if drop_last else num_rows
        for i in range(0, stop, batch_size):
            yield order[i : i + batch_size]
        epoch += 1


class RenderLoader:
    """Render batches in ``threads`` background threads into a ring of reused buffers.

    ``batches`` yields dataset positions per batch (e.g. ``epoch_batches``). Batches come out in
    order as dicts like ``VideoDataset.render_rows``. A yielded ``video`` tensor is a view of a
    ring buffer: it stays valid until the next batch is requested; copy it to keep it longer.
    """

    def __init__(
        self,
        dataset: VideoDataset,
        batches: Iterable[Sequence[int]],
        threads: int = 2,
        prefetch: int = 2,
    ):
        self.dataset, self.batches = dataset, batches
        self.threads, self.ring = max(1, threads), max(1, threads) + max(1, prefetch)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        buffers: dict[tuple[int, int], torch.Tensor] = {}
        positions = iter(self.batches)

        def buffer(slot: int, size: int) -> torch.Tensor:
            if (slot, size) not in buffers:
                buffers[(slot, size)] = torch.empty(
                    self.dataset.video_shape(size), dtype=torch.uint8
                )
            return buffers[(slot, size)]

        with ThreadPoolExecutor(self.threads) as pool:
            pending: deque = deque()
            slot = 0

            def submit() -> bool:
                nonlocal slot
                pos = next(positions, None)
                if pos is None:
                    return False
                rows = self.dataset.rows[np.asarray(pos)]
                pending.append(pool.submit(self.dataset.render_rows, rows, buffer(slot, len(rows))))
                slot = (slot + 1) % self.ring
                return True

            # ring - 1 batches in flight, one with the caller: a slot is reused only after the
            # caller has asked for the batch that follows the one it held.
            while len(pending) < self.ring - 1 and submit():
                pass
            while pending:
                batch = pending.popleft().result()
                yield batch
                submit()
