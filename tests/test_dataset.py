"""Render-on-the-fly datasets: the same pixels through every loader, in order, with workers."""

import numpy as np
import pytest
import torch

from phylaw.data.build import build_split
from phylaw.data.dataset import RenderLoader, VideoDataset, epoch_batches, make_loader
from phylaw.data.spaces import resolve_split
from phylaw.physics.state import Colour
from phylaw.render.geometry import PixelGrid
from phylaw.render.raster import render


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    build_split(resolve_split("collision", "eval-ood", "70", 0), root, progress=False)
    return VideoDataset(root, resolution=32)


def expected(ds: VideoDataset, rows) -> np.ndarray:
    batch = ds.store.get(np.asarray(rows))
    return render(batch.pos, ds.store.bodies(batch), PixelGrid(32, 32))


def test_item_and_batch_match_the_renderer(dataset):
    item = dataset[5]
    assert item["video"].shape == (32, 32, 32, 3) and item["video"].dtype == torch.uint8
    assert np.array_equal(item["video"].numpy(), expected(dataset, [5])[0])
    # both balls are drawn in their colours
    assert dataset.store.manifest["bodies"]["colour"] == [Colour.RED, Colour.BLUE]


def test_render_loader_yields_every_batch_in_order_despite_buffer_reuse(dataset):
    batches = list(epoch_batches(len(dataset), 8, seed=3, epochs=2))
    seen = [b["video"].clone() for b in RenderLoader(dataset, batches, threads=2, prefetch=1)]
    assert len(seen) == len(batches)
    for rows, video in zip(batches, seen, strict=True):
        assert np.array_equal(video.numpy(), expected(dataset, dataset.rows[rows]))


def test_epoch_batches_cover_each_row_once_per_epoch_and_are_seeded():
    a = np.concatenate(list(epoch_batches(50, 8, seed=1)))
    assert sorted(a.tolist()) == list(range(50))
    assert np.array_equal(a, np.concatenate(list(epoch_batches(50, 8, seed=1))))
    assert not np.array_equal(a, np.concatenate(list(epoch_batches(50, 8, seed=2))))
    assert all(len(b) == 8 for b in epoch_batches(50, 8, drop_last=True))


def test_dataloader_with_two_workers(dataset):
    loader = make_loader(dataset, 16, shuffle=False, workers=2)
    videos = torch.cat([b["video"] for b in loader])
    index = torch.cat([b["index"] for b in loader])
    assert len(videos) == len(dataset)
    assert np.array_equal(videos.numpy(), expected(dataset, np.arange(len(dataset))))
    assert np.array_equal(index.numpy(), dataset.store.column("index"))
