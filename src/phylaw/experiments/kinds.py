"""The eight stage kinds: one frozen dataclass each, every setting typed with its default.

A setting is what changes the stage's output (it goes into the stage key, `plan.stage_keys`);
an input names the stage whose directory it reads. ``None`` for a training override means
"the preset's value", said once here and resolved by the preset, never re-derived later.

    DataStage       a split of states                  (phylaw data build)
    TrainStage      a training run                     (phylaw train, torchrun on GPUs)
    SampleStage     generated continuations of a split (phylaw sample)
    BaselineStage   a baseline's videos for a split    (phylaw baseline)
    EvaluateStage   scores of videos against a split   (phylaw eval)
    CaseMatchStage  law or nearest training case?      (phylaw case-match)
    TrainAEStage    an autoencoder run                 (phylaw train-ae)
    AEReconStage    reconstruction errors against the parse floor (Table 3)
"""

from __future__ import annotations

from dataclasses import dataclass

from phylaw import PhylawError
from phylaw.experiments.plan import Stage, added_field, input_field, plan_field

__all__ = [
    "STAGE_KINDS",
    "AEReconStage",
    "BaselineStage",
    "CaseMatchStage",
    "DataStage",
    "EvaluateStage",
    "SampleStage",
    "TrainAEStage",
    "TrainStage",
]


@dataclass(frozen=True, kw_only=True)
class DataStage(Stage):
    """A split of the fundamental scenarios or of the combinatorial scenes."""

    kind = "data"
    scenario: str  # uniform, collision, parabola or combinatorial (a study's: its scenario)
    split: str  # train, eval-id, eval-ood (combinatorial: eval-in-template, ...; a study or
    # per-video bodies: train or eval)
    size: str | None = None  # a paper level or a count (combinatorial: per template); None: default
    seed: int = 0  # the split seed (every video's seed derives from it)
    templates: str | None = None  # combinatorial only: '6', '30', '60' or ids; None: the default
    shard_size: int | None = None  # candidates per shard; None: the build's (scenes: 1000)
    # added for the Sec. 5 studies (keyed only when set: earlier stages keep their keys)
    study: str | None = added_field(None)  # a Sec. 5 study (`data.studies`); None: the scenario
    grid: str | None = added_field(None)  # a study's evaluation grid, 'v=31,r=4'; None: its own
    colours: str | None = added_field(None)  # colours varying per video, 'red,blue'
    shapes: str | None = added_field(None)  # shapes varying per video, 'disc,square,ring'
    jobs: int = plan_field(1)  # on a cluster: array tasks sharing the split's shards

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.jobs < 1:
            raise PhylawError(f"stage {self.name!r}: jobs must be 1 or more")
        if self.templates is not None and self.scenario != "combinatorial":
            raise PhylawError(f"stage {self.name!r}: templates apply to combinatorial only")
        regional = self.study is not None or self.colours is not None or self.shapes is not None
        if regional and self.split not in ("train", "eval"):
            raise PhylawError(f"stage {self.name!r}: a study or varying bodies need train or eval")
        if self.grid is not None and (self.study is None or self.split != "eval"):
            raise PhylawError(f"stage {self.name!r}: grid applies to a study's eval split")
        if self.study is not None and (self.colours or self.shapes):
            raise PhylawError(f"stage {self.name!r}: a study fixes its colours and shapes")


# TrainStage field -> the `--set` key it overrides in the preset
TRAIN_SETS = {
    "seed": "run.seed",
    "steps": "run.steps",
    "max_minutes": "run.max_minutes",
    "resolution_px": "data.resolution_px",
    "frames": "data.frames",
    "frame_stride": "data.frame_stride",
    "cond_frames": "diffusion.cond_frames",
}


@dataclass(frozen=True, kw_only=True)
class TrainStage(Stage):
    """A DiT training run: a preset (`train.presets`), typed overrides, then ``sets``.

    Nodes and GPUs are ``resources``: the global batch, hence the run, does not depend on them.
    """

    kind = "train"
    preset: str  # a `phylaw train` preset
    seed: int = 0  # run.seed: initialisation, noise and data order
    steps: int | None = None  # run.steps; None: the preset's
    max_minutes: float | None = None  # run.max_minutes, a time budget; None: the preset's
    resolution_px: int | None = None  # data.resolution_px; None: the preset's
    frames: int | None = None  # data.frames (of the split's 32); None: the preset's
    frame_stride: int | None = None  # data.frame_stride; None: the preset's
    cond_frames: int | None = None  # diffusion.cond_frames, the given frames; None: the preset's
    sets: tuple[str, ...] = ()  # any other `--set KEY=VALUE` (model.size=DiT-XS, run.threads=1)
    train: str = input_field()  # the training split
    eval_id: str | None = input_field(None, required=False)  # quick evaluation during training
    eval_ood: str | None = input_field(None, required=False)
    autoencoder: str | None = input_field(None, required=False)  # a train-ae stage (latents)

    def __post_init__(self) -> None:
        super().__post_init__()
        field_of = {key: name for name, key in TRAIN_SETS.items()}
        for item in self.sets:
            key = item.partition("=")[0].strip()
            if key in field_of:
                raise PhylawError(
                    f"stage {self.name!r}: give {key} as the field {field_of[key]}, not in sets"
                )

    def overrides(self) -> list[str]:
        """The `--set` strings this stage applies to its preset, typed fields first."""
        typed = [
            f"{key}={getattr(self, name)}"
            for name, key in TRAIN_SETS.items()
            if getattr(self, name) is not None
        ]
        return typed + list(self.sets)


@dataclass(frozen=True, kw_only=True)
class SampleStage(Stage):
    """Continuations of every video of a split by a trained run."""

    kind = "sample"
    steps: int | None = None  # sampler steps; None: the run's
    limit: int | None = None  # the first N videos only; None: all
    seed: int = 0  # noise seed
    run: str = input_field()  # a train stage
    data: str = input_field()  # the split to continue


@dataclass(frozen=True, kw_only=True)
class BaselineStage(Stage):
    """A baseline's videos for a split (`eval.baselines`), the clip the model sees."""

    kind = "baseline"
    method: str  # oracle, copy-last, constant-velocity or nearest-case
    resolution_px: int = 128  # frame size
    cond_frames: int = 3  # given frames (the paper's 3; scenes: 1)
    frames: int | None = None  # clip length in split frames; None: all 32
    frame_stride: int = 1  # every n-th split frame
    limit: int | None = None  # the first N videos only; None: all
    mirror: bool = added_field(False)  # nearest-case: also match mirrored training videos
    data: str = input_field()  # the split to continue
    train: str | None = input_field(None, required=False)  # nearest-case: the training split

    def clip_frames(self) -> tuple[int, ...] | None:
        """The split frames of the clip: ``frames`` of them every ``frame_stride``."""
        if self.frames is None:
            return None
        return tuple(range(0, self.frames * self.frame_stride, self.frame_stride))


@dataclass(frozen=True, kw_only=True)
class EvaluateStage(Stage):
    """Scores of a sample or baseline stage's videos against their split (`eval.run`)."""

    kind = "evaluate"
    cond_frames: int | None = None  # given frames, not scored; None: the videos' own record
    limit: int | None = None  # the first N videos only; None: all
    videos: str = input_field()  # a sample or baseline stage
    data: str = input_field()  # the split they continue


@dataclass(frozen=True, kw_only=True)
class CaseMatchStage(Stage):
    """Per scored video, its nearest training cases and whether it is closer to the law or
    to them (`experiments.casematch`)."""

    kind = "case-match"
    mirror: bool = False  # also match mirrored training videos (a model trained with hflip)
    feature_px: int = 32  # resolution of the condition-frame features
    scores: str = input_field()  # an evaluate stage of a study split
    data: str = input_field()  # the split it scored
    train: str = input_field()  # the training split
    cases: str | None = input_field(None, required=False)  # a nearest-case baseline stage of
    # the same clip: its matches are reused (the same search otherwise)


@dataclass(frozen=True, kw_only=True)
class TrainAEStage(Stage):
    """An autoencoder run (`train.ae`): a preset and ``--set`` overrides."""

    kind = "train-ae"
    preset: str = "ae-small"  # ae-small or ae-paper
    resolution_px: int | None = None  # frame size of the training videos; None: the preset's
    max_minutes: float | None = None  # time budget; None: the preset's step count decides
    sets: tuple[str, ...] = ()  # any other `--set KEY=VALUE`
    train: str = input_field()  # the training split

    def overrides(self) -> list[str]:
        """The `--set` strings of this stage, typed fields first."""
        px, minutes = self.resolution_px, self.max_minutes
        typed = [f"data.resolution_px={px}"] if px is not None else []
        typed += [f"run.max_minutes={minutes}"] if minutes is not None else []
        return typed + list(self.sets)


@dataclass(frozen=True, kw_only=True)
class AEReconStage(Stage):
    """Velocity errors of an autoencoder's reconstructions against the parse floor."""

    kind = "ae-recon"
    resolution_px: int  # frame size of the reconstructed videos
    ae: str = input_field()  # a train-ae stage
    data: str = input_field()  # the split reconstructed


# kind -> (its class, what its directory holds)
STAGE_KINDS: dict[str, tuple[type[Stage], str]] = {
    "data": (DataStage, "a split of states (phylaw data build)"),
    "train": (TrainStage, "a training run: checkpoints, metrics.jsonl, samples (phylaw train)"),
    "sample": (SampleStage, "generated continuations of a split (phylaw sample)"),
    "baseline": (BaselineStage, "a baseline's videos for a split (phylaw baseline)"),
    "evaluate": (EvaluateStage, "videos.jsonl, summary.json, failures.json (phylaw eval)"),
    "case-match": (CaseMatchStage, "casematch.jsonl, casematch.json (phylaw case-match)"),
    "train-ae": (TrainAEStage, "an autoencoder run (phylaw train-ae)"),
    "ae-recon": (AEReconStage, "velocity errors of reconstructed ground truth against the floor"),
}
