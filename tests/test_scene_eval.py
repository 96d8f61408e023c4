"""Scoring videos of combinatorial scenes (``eval.scenes``) and the ``combinatorial`` experiment.

Invariants: the ground truth scores PSNR at the cap, SSIM 1 and LPIPS 0, and exactly the floor's
abnormal rate (the same flags on the same pixels); a video whose bodies vanish is flagged and
scores lower; bad videos become failures; ``phylaw eval`` routes a combinatorial split here;
the experiment runs end to end at a tiny scale and its paper plan prints launch commands.
"""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from phylaw import PhylawError
from phylaw.cli import main
from phylaw.data.build import build_split
from phylaw.data.combinatorial import resolve_scene_split
from phylaw.data.views import render_batch
from phylaw.eval.metrics.fidelity import PSNR_CAP_DB
from phylaw.eval.metrics.nets.lpips import LPIPS
from phylaw.eval.metrics.nets.weights import to_safetensors
from phylaw.eval.run import EvalConfig, evaluate
from phylaw.eval.scenes import format_scene_table
from phylaw.eval.sources import open_source
from phylaw.experiments import combinatorial, get_plan
from phylaw.experiments.runner import plan_paths, run_plan
from phylaw.render.geometry import PixelGrid

FRAMES = tuple(range(0, 24, 2))  # cpu-scenes: 12 frames every 2nd


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """One out-of-template scene per held-out template (10) and its 64 px ground truth."""
    root = tmp_path_factory.mktemp("scenes")
    store = build_split(
        resolve_scene_split("eval-out-of-template", "1", 0, None), root / "oot", progress=False
    )
    truth = render_batch(store, store.get(np.arange(len(store))), PixelGrid.square(64))
    return store, truth[:, list(FRAMES)]


def write_npz(path, store, videos):
    np.savez(path, videos=videos, index=store.column("index"), frame_indices=np.array(FRAMES))
    return open_source(path, store.column("index"))


def test_ground_truth_scores_perfectly_and_matches_the_floor(split, tmp_path):
    store, truth = split
    torch.manual_seed(0)
    net = LPIPS()
    to_safetensors(net.state_dict(), tmp_path / "lpips.safetensors")
    source = write_npz(tmp_path / "gt.npz", store, truth)
    cfg = EvalConfig(lpips_weights=str(tmp_path / "lpips.safetensors"), resamples=50)
    result = evaluate(source, store, tmp_path / "out", cfg, progress=False)
    s = result.summary
    assert s["videos"] == len(store) == 10 and s["frame_indices"] == list(FRAMES)
    m = s["overall"]["metrics"]
    assert m["psnr"]["mean"] == PSNR_CAP_DB
    assert m["ssim"]["mean"] == pytest.approx(1.0)
    assert m["lpips"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert m["abnormal"]["mean"] == pytest.approx(s["floor"]["abnormal"])
    assert s["fvd"] is None and "no weights" in s["skipped"]["fvd"]
    assert set(s["levels"]) == {str(t) for t in range(10060, 10070)}
    records = [json.loads(x) for x in (tmp_path / "out" / "videos.jsonl").read_text().split("\n")
               if x]  # fmt: skip
    assert {r["template"] for r in records} == set(s["levels"])
    assert "ground truth (floor)" in format_scene_table(s)


def test_vanished_bodies_are_flagged_and_score_lower(split, tmp_path):
    store, truth = split
    videos = truth.copy()
    videos[3, 1:] = 255  # every body of video 3 vanishes after the given frame (white)
    source = write_npz(tmp_path / "bad.npz", store, videos)
    result = evaluate(source, store, None, EvalConfig(resamples=50), progress=False)
    bad = next(r for r in result.records if r["id"] == int(store.column("index")[3]))
    assert bad["abnormal"] and "vanishes" in bad["flags"]
    assert bad["psnr"] < 30 and bad["ssim"] < 0.99
    others = [r for r in result.records if r["id"] != bad["id"]]
    assert all(r["psnr"] == PSNR_CAP_DB for r in others)


def test_bad_videos_become_failures_and_bad_frames_are_refused(split, tmp_path):
    store, truth = split
    source = write_npz(tmp_path / "short.npz", store, truth[:, :5])  # 5 frames, 12 announced
    with pytest.raises(PhylawError, match="no video could be scored"):
        evaluate(source, store, None, EvalConfig(), progress=False)
    source = write_npz(tmp_path / "ok.npz", store, truth)
    with pytest.raises(PhylawError, match="do not fit"):
        evaluate(source, store, None, EvalConfig(frames=(0, 40)), progress=False)


def test_cli_routes_combinatorial_splits(split, tmp_path, capsys):
    store, truth = split
    write_npz(tmp_path / "gt.npz", store, truth)
    main(["eval", "--videos", str(tmp_path / "gt.npz"), "--data", str(store.root),
          "--out", str(tmp_path / "e")])  # fmt: skip
    out = capsys.readouterr().out
    assert "combinatorial eval-out-of-template: 10 videos scored" in out and "PSNR" in out
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["num_cond_frames"] == 1


def test_paper_plan_prints_the_table_2_runs(capsys):
    plan = get_plan("combinatorial", "paper")
    trains = [s for s in plan.stages if s.kind == "train"]
    assert [s.name for s in trains] == [
        f"train {m} {k}" for m in ("DiT-B", "DiT-XL") for k in ("6", "30", "60")
    ]
    assert all(s.cond_frames == 1 and s.resolution_px == 256 and s.frames == 32 for s in trains)
    assert all(s.autoencoder == "autoencoder" for s in trains)
    assert all(s.resources.nodes * s.resources.gpus_per_node == 64 for s in trains)
    main(["experiment", "run", "combinatorial", "--scale", "paper", "--dry-run"])
    out = capsys.readouterr().out
    assert "torchrun --nnodes 8 --nproc_per_node 8" in out and "--templates 60" in out


def test_tiny_combinatorial_experiment_runs_and_reports(tmp_path):
    tiny = replace(
        combinatorial.cpu(),
        models=(combinatorial.Model("tiny", "cpu-tiny", ("run.sample_every=0", "run.threads=1")),),
        resolution_px=32,
        frames=6,
        steps=2,
        max_minutes=None,
        train_per_template="1",
        eval_in=(1, 1, 1),
        eval_out=1,
        train_estimate_min=0.1,
    )
    plan = combinatorial.build(tiny, "cpu")
    run_plan(plan, tmp_path, progress=False)
    paths = plan_paths(plan, tmp_path)
    summary = json.loads((paths["eval tiny 60 in"] / "summary.json").read_text())
    assert summary["videos"] == 60 and summary["frame_indices"] == list(range(6))
    html = (tmp_path / "report.html").read_text()
    assert "Table 2 at this scale" in html and "Which flags fire" in html
    assert html.count("<img") >= 3  # the figure and at least two animations
