"""What each stage kind does: run it here, or print the command that runs it elsewhere.

Every kind has an executor ``run(stage, inputs, out, progress) -> dict`` (``inputs``: role ->
the directory of the stage that produced it; the returned dict is kept in ``done.json``) and a
``phylaw`` command line doing the same work, with ``torchrun`` for training on GPUs. Each
executor calls the library function behind the matching CLI command; those are resumable, so
an interrupted stage continues where it stopped. The stages' settings: `experiments.kinds`.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from phylaw import PhylawError
from phylaw.experiments.kinds import (
    AEReconStage,
    BaselineStage,
    CaseMatchStage,
    DataStage,
    EvaluateStage,
    SampleStage,
    TrainAEStage,
    TrainStage,
)
from phylaw.experiments.plan import Stage

__all__ = ["EXECUTORS", "Interrupted", "command", "data_spec", "run_stage", "train_config"]


class Interrupted(KeyboardInterrupt):
    """A stage stopped before it finished (Ctrl-C): its directory holds a resumable state."""


# ------------------------------------------------------------------------------ executors
def data_spec(stage: DataStage):
    """The resolved split spec (`SplitSpec`, `SceneSplitSpec` or `RegionSplitSpec`) of a data
    stage."""
    if stage.study is not None:
        from phylaw.data.region_args import parse_grid
        from phylaw.data.studies import get_study, study_split

        if get_study(stage.study).scenario != stage.scenario:
            raise PhylawError(
                f"stage {stage.name!r}: study {stage.study} is a "
                f"{get_study(stage.study).scenario} study, not {stage.scenario}"
            )
        grid = parse_grid(stage.grid) if stage.grid else ()
        return study_split(stage.study, stage.split, stage.size, stage.seed, grid)
    if stage.colours is not None or stage.shapes is not None:
        from phylaw.data.region_args import resolve_region_args

        return resolve_region_args(
            stage.scenario, stage.split, stage.size, stage.seed, colours=stage.colours or "",
            shapes=stage.shapes or "",
        )  # fmt: skip
    if stage.scenario == "combinatorial":
        from phylaw.data.combinatorial import resolve_scene_split

        return resolve_scene_split(stage.split, stage.size, stage.seed, stage.templates)
    from phylaw.data.spaces import resolve_split

    return resolve_split(stage.scenario, stage.split, stage.size, stage.seed)


def _data(stage: DataStage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.data.build import build_split

    store = build_split(data_spec(stage), out, shard_size=stage.shard_size, progress=progress)
    return {"videos": len(store)}


# train stage input role -> the config field it sets
TRAIN_INPUTS = {
    "train": "data.train",
    "eval_id": "data.eval_id",
    "eval_ood": "data.eval_ood",
    "autoencoder": "space.autoencoder",
}


def train_config(stage: TrainStage, inputs: dict[str, Path]):
    """The resolved `TrainConfig` of a train stage."""
    from phylaw.train.config import override
    from phylaw.train.presets import get_preset

    sets = [f"{TRAIN_INPUTS[role]}={path}" for role, path in sorted(inputs.items())]
    return override(get_preset(stage.preset), stage.overrides() + sets)


def _train(stage: TrainStage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.experiments.quickeval import quick_evaluator
    from phylaw.train.dit_task import train

    cfg = train_config(stage, inputs)
    result = train(cfg, out, evaluator=quick_evaluator(cfg), progress=progress)
    if result.stopped == "signal":
        raise Interrupted(f"training stopped at step {result.step}")
    return {"step": result.step, "stopped": result.stopped, "loss": result.loss}


def _sample(stage: SampleStage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.sample import sample_split

    sample_split(
        inputs["run"],
        inputs["data"],
        out,
        steps=stage.steps,
        limit=stage.limit,
        seed=stage.seed,
        progress=progress,
    )
    return {}


def _baseline(stage: BaselineStage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.baselines import BaselineContext, write_baseline
    from phylaw.data.store import open_store

    store = open_store(inputs["data"])
    train = open_store(inputs["train"]) if "train" in inputs else None
    ctx = BaselineContext(
        store, stage.resolution_px, stage.cond_frames, train, frames=stage.clip_frames(),
        mirror=stage.mirror,
    )  # fmt: skip
    n = write_baseline(stage.method, ctx, out / "videos", stage.limit, progress=progress)
    return {"videos": n}


def videos_path(stage_dir: Path) -> Path:
    """Where a sample stage (videos.npz) or a baseline stage (a folder) keeps its videos."""
    return stage_dir / ("videos.npz" if stage_dir.name.startswith("sample-") else "videos")


def _evaluate(stage: EvaluateStage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.data.store import open_store
    from phylaw.eval.run import EvalConfig, evaluate
    from phylaw.eval.sources import open_source

    store = open_store(inputs["data"])
    source = open_source(videos_path(inputs["videos"]), store.column("index"))
    cfg = EvalConfig(num_cond_frames=stage.cond_frames, limit=stage.limit)
    result = evaluate(source, store, out, cfg, progress=progress)
    return {"videos": result.summary["videos"], "failures": len(result.failures)}


def _case_match(stage: CaseMatchStage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.experiments.casematch import case_match

    cases = videos_path(inputs["cases"]) / "cases.npz" if "cases" in inputs else None
    result = case_match(
        inputs["scores"], inputs["data"], inputs["train"], out, mirror=stage.mirror,
        feature_px=stage.feature_px, cases=cases,
    )  # fmt: skip
    return {"videos": result["overall"]["videos"]}


def _train_ae(stage: TrainAEStage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.train.ae import train_autoencoder
    from phylaw.train.ae_config import autoencoder_preset
    from phylaw.train.config_core import override

    sets = [*stage.overrides(), f"data.train={inputs['train']}"]
    result = train_autoencoder(
        override(autoencoder_preset(stage.preset), sets), out, progress=progress
    )
    if result.stopped == "signal":
        raise Interrupted(f"autoencoder training stopped at step {result.step}")
    return {"checkpoint": str(result.checkpoint), "step": result.step, "loss": result.loss}


def _ae_recon(stage: AEReconStage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.data.store import write_json
    from phylaw.experiments.ae_recon import measure

    result = measure(inputs["ae"], inputs["data"], stage.resolution_px)
    write_json(out / "summary.json", result)
    return result


EXECUTORS = {
    "data": _data,
    "train": _train,
    "sample": _sample,
    "baseline": _baseline,
    "evaluate": _evaluate,
    "case-match": _case_match,
    "train-ae": _train_ae,
    "ae-recon": _ae_recon,
}


def run_stage(stage: Stage, inputs: dict[str, Path], out: Path, progress: bool = True) -> dict:
    """Run one stage into ``out``; KeyboardInterrupt becomes `Interrupted`."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        return EXECUTORS[stage.kind](stage, inputs, out, progress)
    except KeyboardInterrupt:
        raise Interrupted(f"stage {stage.name} interrupted") from None


# ------------------------------------------------------------------------ launch commands
def _q(x: Any) -> str:
    return shlex.quote(str(x))


def _opts(**values: Any) -> str:
    """`` --key value`` for every value that is not None (underscores as dashes)."""
    return "".join(f" --{k.replace('_', '-')} {_q(v)}" for k, v in values.items() if v is not None)


def _sets(items: list[str]) -> str:
    return "".join(f" --set {_q(s)}" for s in items)


def _train_head(stage: TrainStage) -> str:
    r = stage.resources
    ranks = r.tasks_per_node or r.gpus_per_node
    if r.nodes > 1:
        return (
            f"torchrun --nnodes {r.nodes} --nproc_per_node {ranks} --node_rank $NODE_RANK "
            "--rdzv_backend c10d --rdzv_endpoint $MASTER_HOST:29500 -m phylaw.cli train"
        )
    if ranks > 1:
        return f"torchrun --standalone --nproc_per_node {ranks} -m phylaw.cli train"
    return "phylaw train"


def command(stage: Stage, inputs: dict[str, Path], out: Path) -> str:
    """The ``phylaw`` command line doing this stage's work (for clusters and dry runs)."""
    i = {k: _q(v) for k, v in inputs.items()}
    o = _q(out)
    if isinstance(stage, DataStage):
        opts = _opts(
            size=stage.size, templates=stage.templates, seed=stage.seed,
            shard_size=stage.shard_size, grid=stage.grid, colour=stage.colours, shape=stage.shapes,
        )  # fmt: skip
        what = f"--study {stage.study}" if stage.study else f"--scenario {stage.scenario}"
        return f"phylaw data build {what} --split {stage.split}{opts} --out {o}"
    if isinstance(stage, TrainStage):
        inputs_sets = [f"{TRAIN_INPUTS[r]}={p}" for r, p in sorted(inputs.items()) if r != "train"]
        sets = _sets(stage.overrides() + inputs_sets)
        return f"{_train_head(stage)} --preset {stage.preset} --data {i['train']} --out {o}{sets}"
    if isinstance(stage, SampleStage):
        opts = _opts(steps=stage.steps, limit=stage.limit, seed=stage.seed)
        return f"phylaw sample --run {i['run']} --data {i['data']} --out {o}{opts}"
    if isinstance(stage, BaselineStage):
        opts = _opts(
            resolution=stage.resolution_px,
            cond_frames=stage.cond_frames,
            train=inputs.get("train"),
            limit=stage.limit,
            frames=stage.frames,
            frame_stride=stage.frames and stage.frame_stride,
        ) + (" --mirror" if stage.mirror else "")
        return f"phylaw baseline {stage.method} --data {i['data']} --out {_q(out / 'videos')}{opts}"
    if isinstance(stage, CaseMatchStage):
        cases = videos_path(inputs["cases"]) / "cases.npz" if "cases" in inputs else None
        opts = _opts(feature_px=stage.feature_px, cases=cases)
        opts += " --mirror" if stage.mirror else ""
        return (
            f"phylaw case-match --scores {i['scores']} --data {i['data']} --train {i['train']} "
            f"--out {o}{opts}"
        )
    if isinstance(stage, EvaluateStage):
        opts = _opts(cond_frames=stage.cond_frames, limit=stage.limit)
        videos = _q(videos_path(inputs["videos"]))
        return f"phylaw eval --videos {videos} --data {i['data']} --out {o}{opts}"
    if isinstance(stage, TrainAEStage):
        sets = _sets(stage.overrides())
        return f"phylaw train-ae --preset {stage.preset} --data {i['train']} --out {o}{sets}"
    if isinstance(stage, AEReconStage):
        return (
            f"python benchmarks/bench_autoencoder.py --run {i['ae']} --minutes 0 "
            f"--resolution {stage.resolution_px}"
        )
    raise PhylawError(f"no command for stage kind {stage.kind!r}")
