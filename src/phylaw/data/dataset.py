"""PyTorch Dataset over a split: states from the memory-mapped store, pixels rendered on the fly.

Batches are rendered in one vectorised call (``__getitems__``, which ``DataLoader`` uses for
batched fetching), directly into shared memory when running in a worker, so a batch crosses the
process boundary without a copy. Works with any number of ``DataLoader`` workers: the store
re-opens its memory maps after fork.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from phylaw.data.store import Store, open_store
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render


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

    def render_rows(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Render the split rows ``rows`` into one batch dict."""
        batch = self.store.get(rows)
        b, t = len(rows), batch.pos.shape[1]
        shape = (b, t, self.grid.height_px, self.grid.width_px, 3)
        video = torch.empty(shape, dtype=torch.uint8)
        if get_worker_info() is not None:  # render straight into shared memory: no copy later
            video.share_memory_()
        render(batch.pos, self.store.bodies(batch), self.grid, out=video.numpy())
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
