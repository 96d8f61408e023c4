"""Case matching (beyond the paper): is a generated continuation closer to the law or to the
nearest training case?

The paper argues (Secs. 5.2, 5.3) that a video model continues an unseen case like the closest
training case rather than by the law. This measures it per video. For each evaluation video
with a generated velocity (``videos.jsonl`` of ``phylaw eval``: ``gen_vx``, ``gen_vy``, over the
generated frames), two nearest training cases:

* **by pixels**: the training video whose condition frames are closest (L2 at ``feature_px``;
  the nearest-case baseline's search, ``baselines.nearest_cases``; with ``mirror`` its mirror
  images too, the cases a model trained with ``data.hflip`` saw);
* **by parameters**: the training video nearest in the split's parameters, each numeric one
  scaled by its training range and each attribute one-hot (a different colour or shape is as
  far as the whole range of a parameter); mirror images are left out (a mirrored case moves
  the other way, never nearer in parameters to a ball moving right).

The case's velocity is its own ground truth over the same generated frames (negated in x for a
mirror image), the law's is the video's ground truth, g is the generated one, and

    case score = d_law / (d_law + d_case),   d_law = |g - v_law|,  d_case = |g - v_case|

(2-D Euclidean, world units/s): 0 = the law exactly, 1 = the case exactly, 1/2 = as far from
both. It is left undefined (NaN, counted as ``uninformative``) where the case's velocity is
within ``SAME_CASE`` of the law's (they cannot be told apart: most cases inside the training
support) or the generated velocity was not measured. Per level (the study's regions) and
overall: the mean score and the **rate** of videos closer to the case (score > 1/2), with
bootstrap intervals, and the videos they stand on. Reference points: the ground truth scores 0
and the nearest-case baseline's own videos score 1 (by pixels).

Outputs in ``out``: ``casematch.jsonl`` (per video: id, level, both cases' ids, mirror flags,
velocities and scores) and ``casematch.json`` (per level).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from phylaw import PhylawError
from phylaw.baselines import BaselineContext, nearest_cases
from phylaw.baselines.producers import read_cases
from phylaw.data.store import Store, atomic_write_bytes, open_store, write_json
from phylaw.eval.aggregate import summarize
from phylaw.eval.metrics.attributes import given_attributes
from phylaw.experiments.studyplans import column

SAME_CASE = 0.05  # world units/s: a case this close to the law cannot tell them apart
KINDS = ("px", "param")


def read_scores(scores: Path) -> tuple[list[dict], dict]:
    """The per-video records and the summary of a ``phylaw eval`` output folder."""
    path = Path(scores) / "videos.jsonl"
    if not path.is_file():
        raise PhylawError(f"no videos.jsonl in {scores}: give the --out folder of 'phylaw eval'")
    records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    summary_path = Path(scores) / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if records and not any("gen_vx" in r for r in records):
        raise PhylawError(
            f"the scores in {scores} hold no generated attributes (gen_vx, ...): they come from "
            "a split that is not a study split, or an older phylaw; evaluate again"
        )
    return records, summary


def _velocity(store: Store, rows: np.ndarray, frames, c: int) -> np.ndarray:
    """The ground-truth velocity [n, 2] of body 0 over the generated frames of the clip, as
    the evaluator gives the conditioned one (``attributes.given_attributes``)."""
    truth = store.trajectory(rows)
    if frames is not None:
        truth = truth.at_frames(list(frames))
    given = given_attributes(truth, c)
    return np.stack([given.vx[:, 0], given.vy[:, 0]], axis=1)


def _scaled(store: Store, params: np.ndarray) -> np.ndarray:
    """Parameters [n, P] as search coordinates: numeric ones over the training range, each
    attribute one-hot."""
    regions = store.manifest.get("regions") or {}
    bounds = (regions.get("train_space") or {}).get("bounds", {})
    names = store.manifest["param_names"]
    cols = []
    for k, name in enumerate(names):
        if name in bounds:
            lo, hi = bounds[name]
            cols.append(((params[:, k] - lo) / max(hi - lo, 1e-9))[:, None])
        else:  # an attribute column
            codes = np.rint(params[:, k]).astype(np.int64)
            cols.append(np.eye(8)[np.clip(codes, 0, 7)])
    return np.concatenate(cols, axis=1)


def nearest_params(store: Store, rows: np.ndarray, train: Store) -> np.ndarray:
    """For each evaluation row, the training row nearest in parameters (module docstring)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(_scaled(train, train.column("params")))
    return tree.query(_scaled(store, store.column("params")[rows]))[1].astype(np.int64)


def scores(v_gen: np.ndarray, v_law: np.ndarray, v_case: np.ndarray) -> np.ndarray:
    """Case scores [n] of generated, law and case velocities [n, 2] (module docstring)."""
    d_law = np.linalg.norm(v_gen - v_law, axis=1)
    d_case = np.linalg.norm(v_gen - v_case, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = d_law / (d_law + d_case)
    s = np.where(d_law + d_case == 0, 0.0, s)  # the law and the case coincide with g
    informative = np.linalg.norm(v_case - v_law, axis=1) >= SAME_CASE
    return np.where(informative & np.isfinite(v_gen).all(1), s, np.nan)


def _records_arrays(records: list[dict], store: Store):
    """Rows, levels and the generated and law velocities of the records that have them."""
    index = {int(v): k for k, v in enumerate(store.column("index").tolist())}
    keep = [r for r in records if r["id"] in index]
    rows = np.array([index[r["id"]] for r in keep], dtype=np.int64)
    gen = np.stack([column(keep, "gen_vx"), column(keep, "gen_vy")], axis=1).reshape(-1, 2)
    law = np.stack([column(keep, "given_vx"), column(keep, "given_vy")], axis=1).reshape(-1, 2)
    return keep, rows, gen, law


def case_match(
    scores_dir: str | Path,
    data: str | Path | Store,
    train: str | Path | Store,
    out: str | Path | None = None,
    *,
    mirror: bool = False,
    feature_px: int = 32,
    resamples: int = 1000,
    seed: int = 0,
    cases: str | Path | None = None,
) -> dict:
    """Case scores of the videos scored in ``scores_dir`` (a ``phylaw eval`` output) on the
    split ``data``, against the training split ``train``; writes ``out`` when given and
    returns the summary ``{levels: {level: stats}, overall: stats, mirror, feature_px}``.
    ``cases``: a nearest-case baseline's ``cases.npz``, whose matches are reused when they
    were searched with the same splits, condition frames, resolution and mirroring."""
    records, summary = read_scores(Path(scores_dir))
    store = data if isinstance(data, Store) else open_store(data)
    train = train if isinstance(train, Store) else open_store(train)
    if len(store.manifest["bodies"].get("size_columns") or ()) != 1:
        raise PhylawError("case matching compares one body's velocity: give a one-ball split")
    keep, rows, gen, law = _records_arrays(records, store)
    if not len(rows):
        raise PhylawError(f"no video of {scores_dir} belongs to the split {store.root}")
    frames = summary.get("frame_indices")
    c = int(summary.get("num_cond_frames") or 3)
    ctx = BaselineContext(
        store, 32, c, train, feature_px, frames=None if frames is None else tuple(frames),
        mirror=mirror,
    )  # fmt: skip
    px = read_cases(Path(cases), ctx, rows) if cases is not None else None
    px = nearest_cases(ctx, rows) if px is None else px
    per_video, s_px, s_param = _per_video(keep, gen, law, px, nearest_params(store, rows, train),
                                          train, frames, c)  # fmt: skip
    result = _summary(per_video, s_px, s_param, store.levels, resamples, seed)
    result.update(mirror=mirror, feature_px=feature_px, scores=str(scores_dir))
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in per_video)
        atomic_write_bytes(out / "casematch.jsonl", lines.encode())
        write_json(out / "casematch.json", result)
    return result


def _per_video(keep, gen, law, px, param_rows, train: Store, frames, c: int):
    """Per-video records and both case scores [n] from the matches ``px`` (by pixels) and
    ``param_rows`` (by parameters) of the records ``keep`` (velocities ``gen``, ``law``)."""
    v_px = _velocity(train, px.row, frames, c)
    v_px[px.mirrored, 0] *= -1.0  # a mirror image moves the other way
    v_param = _velocity(train, param_rows, frames, c)
    s_px, s_param = scores(gen, law, v_px), scores(gen, law, v_param)
    ids = train.column("index")
    per_video = [
        {
            "id": r["id"],
            "level": r.get("level"),
            "case_px": int(ids[px.row[k]]),
            "case_px_mirrored": bool(px.mirrored[k]),
            "case_px_distance": float(px.distance[k]),
            "case_param": int(ids[param_rows[k]]),
            "v_gen": _pair(gen[k]),
            "v_law": _pair(law[k]),
            "v_case_px": _pair(v_px[k]),
            "v_case_param": _pair(v_param[k]),
            "score_px": _num(s_px[k]),
            "score_param": _num(s_param[k]),
        }  # fmt: skip
        for k, r in enumerate(keep)
    ]
    return per_video, s_px, s_param


def _num(x) -> float | None:
    return float(x) if np.isfinite(x) else None


def _pair(v: np.ndarray) -> list:
    return [_num(v[0]), _num(v[1])]


def _summary(per_video, s_px, s_param, levels, resamples: int, seed: int) -> dict:
    """Per level and overall: mean score, rate closer to the case, videos, uninformative."""
    level = np.array([r["level"] for r in per_video], dtype=object)

    def group(sel: np.ndarray, key: str) -> dict:
        values = {}
        for kind, s in (("px", s_px[sel]), ("param", s_param[sel])):
            values[f"score_{kind}"] = s
            values[f"case_{kind}"] = np.where(np.isfinite(s), (s > 0.5).astype(float), np.nan)
        stats = summarize(values, resamples, seed, key=key)
        return {
            "videos": int(sel.sum()),
            "uninformative_px": int((~np.isfinite(s_px[sel])).sum()),
            "uninformative_param": int((~np.isfinite(s_param[sel])).sum()),
            **stats,
        }

    return {
        "overall": group(np.ones(len(level), dtype=bool), "overall"),
        "levels": {lv: group(level == lv, lv) for lv in levels if (level == lv).any()},
    }


def format_case_match(result: dict) -> str:
    """A plain-text table: per level, videos, mean case score and rate closer to the case."""
    lines = [
        f"{'group':<14} {'videos':>6}  {'score (px)':>10} {'closer to case (px)':>20}  "
        f"{'score (params)':>14} {'closer to case (params)':>24}"
    ]
    groups = [("overall", result["overall"]), *result["levels"].items()]
    for name, g in groups:
        cells = []
        for kind in KINDS:
            s, r = g.get(f"score_{kind}", {}), g.get(f"case_{kind}", {})
            cells.append("-" if s.get("mean") is None else f"{s['mean']:.2f}")
            cells.append(
                "-" if r.get("mean") is None else f"{100 * r['mean']:.0f}% (n={r['count']})"
            )
        lines.append(
            f"{name:<14} {g['videos']:>6}  {cells[0]:>10} {cells[1]:>20}  {cells[2]:>14} "
            f"{cells[3]:>24}"
        )
    lines.append(
        "case score = |g - v_law| / (|g - v_law| + |g - v_case|): 0 the law, 1 the nearest "
        f"training case; undefined where the case's velocity is within {SAME_CASE} of the law's."
    )
    return "\n".join(lines)
