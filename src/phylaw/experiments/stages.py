"""What each stage kind does: run it here, or print the command that runs it elsewhere.

Every kind has an executor ``run(stage, inputs, out, progress) -> dict`` (``inputs``: role ->
the directory of the stage that produced it; the returned dict is kept in ``done.json``) and a
``command(stage, inputs, out) -> str`` giving the same work as a ``phylaw`` command line, with
``torchrun`` for training at paper scale. Each executor calls the library function behind the
matching CLI command; those are resumable, so an interrupted stage continues where it stopped.

Stage configs (all JSON):

* data: scenario, split, size, seed (and templates for combinatorial: '6', '30', '60' or ids);
* train: preset, sets (``--set`` strings), minutes (0: none), gpus (for the launch command);
  inputs train (and eval_id / eval_ood for the quick evaluation);
* sample: steps, limit; inputs run, data;
* baseline: name, resolution, frames and frame_stride (the clip: ``frames`` of the split's
  frames every ``frame_stride``; default all), limit; inputs data
  (and train for nearest-case);
* evaluate: limit; inputs videos (a sample or baseline stage), data;
* train-ae: preset, sets, minutes; input train; ae-recon: resolution; inputs ae, data.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from phylaw import PhylawError
from phylaw.experiments.plan import Stage

__all__ = ["EXECUTORS", "command", "run_stage"]


class Interrupted(KeyboardInterrupt):
    """A stage stopped before it finished (Ctrl-C): its directory holds a resumable state."""


# ------------------------------------------------------------------------------ executors
def _data(stage: Stage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.data.build import build_split
    from phylaw.data.spaces import resolve_split

    c = stage.config
    if c["scenario"] == "combinatorial":
        from phylaw.data.combinatorial import resolve_scene_split

        spec = resolve_scene_split(c["split"], c.get("size"), c.get("seed", 0), c.get("templates"))
    else:
        spec = resolve_split(c["scenario"], c["split"], c.get("size"), c.get("seed", 0))
    store = build_split(spec, out, progress=progress)
    return {"videos": len(store)}


# train stage input role -> the config field it sets
TRAIN_INPUTS = {
    "train": "data.train",
    "eval_id": "data.eval_id",
    "eval_ood": "data.eval_ood",
    "autoencoder": "space.autoencoder",
}


def train_config(stage: Stage, inputs: dict[str, Path]):
    """The resolved `TrainConfig` of a train stage."""
    from phylaw.train.config import override
    from phylaw.train.presets import get_preset

    c = stage.config
    sets = [f"{TRAIN_INPUTS[role]}={path}" for role, path in sorted(inputs.items())]
    if c.get("minutes"):
        sets.append(f"run.max_minutes={c['minutes']}")
    return override(get_preset(c["preset"]), list(c.get("sets", ())) + sets)


def _train(stage: Stage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.experiments.quickeval import quick_evaluator
    from phylaw.train.loop import train

    cfg = train_config(stage, inputs)
    result = train(cfg, out, evaluator=quick_evaluator(cfg), progress=progress)
    if result.stopped == "signal":
        raise Interrupted(f"training stopped at step {result.step}")
    return {"step": result.step, "stopped": result.stopped, "loss": result.loss}


def _sample(stage: Stage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.sample import sample_split

    c = stage.config
    sample_split(
        inputs["run"], inputs["data"], out, steps=c.get("steps"), limit=c.get("limit"),
        progress=progress,
    )  # fmt: skip
    return {}


def _baseline(stage: Stage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.data.store import open_store
    from phylaw.eval.baselines import BaselineContext, write_baseline

    c = stage.config
    store = open_store(inputs["data"])
    train = open_store(inputs["train"]) if "train" in inputs else None
    ctx = BaselineContext(
        store, c["resolution"], c.get("cond_frames", 3), train, frames=clip_frames(c)
    )
    n = write_baseline(c["name"], ctx, out / "videos", c.get("limit"), progress=progress)
    return {"videos": n}


def clip_frames(c: dict) -> tuple[int, ...] | None:
    """The split frames of a baseline stage: ``frames`` of them every ``frame_stride``."""
    if not c.get("frames"):
        return None
    return tuple(range(0, c["frames"] * c.get("frame_stride", 1), c.get("frame_stride", 1)))


def videos_path(stage_dir: Path) -> Path:
    """Where a sample stage (videos.npz) or a baseline stage (a folder) keeps its videos."""
    return stage_dir / ("videos.npz" if stage_dir.name.startswith("sample-") else "videos")


def _evaluate(stage: Stage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.data.combinatorial import is_scene_store
    from phylaw.data.store import open_store
    from phylaw.eval.run import EvalConfig, evaluate
    from phylaw.eval.sources import open_source

    c = stage.config
    store = open_store(inputs["data"])
    source = open_source(videos_path(inputs["videos"]), store.column("index"))
    if is_scene_store(store):
        from phylaw.eval.scenes import SceneEvalConfig, evaluate_scenes

        cfg = SceneEvalConfig(num_cond_frames=c.get("cond_frames", 1), limit=c.get("limit"))
        result = evaluate_scenes(source, store, out, cfg, progress=progress)
        return {"videos": result.summary["videos"], "failures": len(result.failures)}
    cfg = EvalConfig(num_cond_frames=c.get("cond_frames", 3), limit=c.get("limit"))
    result = evaluate(source, store, out, cfg, progress=progress)
    return {"videos": result.summary["videos"], "failures": len(result.failures)}


def _train_ae(stage: Stage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.train.ae import train_autoencoder
    from phylaw.train.ae_config import autoencoder_preset
    from phylaw.train.config_core import override

    c = stage.config
    sets = [*c.get("sets", ()), f"data.train={inputs['train']}"]
    sets += [f"run.max_minutes={c['minutes']}"] if c.get("minutes") else []
    result = train_autoencoder(
        override(autoencoder_preset(c["preset"]), sets), out, progress=progress
    )
    if result.stopped == "signal":
        raise Interrupted(f"autoencoder training stopped at step {result.step}")
    return {"checkpoint": str(result.checkpoint), "step": result.step, "loss": result.loss}


def _ae_recon(stage: Stage, inputs: dict[str, Path], out: Path, progress: bool) -> dict:
    from phylaw.data.store import write_json
    from phylaw.experiments.ae_recon import measure

    result = measure(inputs["ae"], inputs["data"], stage.config["resolution"])
    write_json(out / "summary.json", result)
    return result


EXECUTORS = {
    "data": _data,
    "train": _train,
    "sample": _sample,
    "baseline": _baseline,
    "evaluate": _evaluate,
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


def command(stage: Stage, inputs: dict[str, Path], out: Path) -> str:
    """The ``phylaw`` command line doing this stage's work (for clusters and dry runs)."""
    c, i = stage.config, {k: _q(v) for k, v in inputs.items()}
    if stage.kind == "data":
        size = f" --size {c['size']}" if c.get("size") else ""
        size += f" --templates {c['templates']}" if c.get("templates") else ""
        return (
            f"phylaw data build --scenario {c['scenario']} --split {c['split']}{size} "
            f"--seed {c.get('seed', 0)} --out {_q(out)}"
        )
    if stage.kind == "train":
        sets = "".join(f" --set {_q(s)}" for s in c.get("sets", ()))
        sets += "".join(
            f" --set {TRAIN_INPUTS[r]}={p}" for r, p in sorted(i.items()) if r != "train"
        )
        gpus = c.get("gpus", 0)
        head = (
            f"torchrun --standalone --nproc_per_node {gpus} -m phylaw.cli train"
            if gpus
            else "phylaw train"
        )
        minutes = f" --minutes {c['minutes']}" if c.get("minutes") else ""
        return f"{head} --preset {c['preset']} --data {i['train']} --out {_q(out)}{sets}{minutes}"
    if stage.kind == "sample":
        extra = "".join(f" --{k} {c[k]}" for k in ("steps", "limit") if c.get(k))
        return f"phylaw sample --run {i['run']} --data {i['data']} --out {_q(out)}{extra}"
    if stage.kind == "baseline":
        train = f" --train {i['train']}" if "train" in i else ""
        extra = f" --limit {c['limit']}" if c.get("limit") else ""
        if c.get("frames"):
            extra += f" --frames {c['frames']} --frame-stride {c.get('frame_stride', 1)}"
        return (
            f"phylaw baseline {c['name']} --data {i['data']} --out {_q(out / 'videos')} "
            f"--resolution {c['resolution']}{train}{extra}"
        )
    if stage.kind == "evaluate":
        extra = f" --limit {c['limit']}" if c.get("limit") else ""
        videos = _q(videos_path(inputs["videos"]))
        return f"phylaw eval --videos {videos} --data {i['data']} --out {_q(out)}{extra}"
    if stage.kind == "train-ae":
        sets = "".join(f" --set {_q(s)}" for s in c.get("sets", ()))
        return f"phylaw train-ae --preset {c['preset']} --data {i['train']} --out {_q(out)}{sets}"
    if stage.kind == "ae-recon":
        return (
            f"python benchmarks/bench_autoencoder.py --run {i['ae']} --minutes 0 "
            f"--resolution {c['resolution']}"
        )
    raise PhylawError(f"no command for stage kind {stage.kind!r}")
