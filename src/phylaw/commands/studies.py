"""``phylaw outcomes`` and ``phylaw case-match``: the Sec. 5 analyses of scored videos."""

from __future__ import annotations

import json
from pathlib import Path

from phylaw import PhylawError
from phylaw.commands import add_command


def _split_of(scores: Path, data: Path | None) -> Path:
    """The split a ``phylaw eval`` output scored: ``data``, else its summary's record."""
    if data is not None:
        return data
    path = scores / "summary.json"
    if not path.is_file():
        raise PhylawError(f"no summary.json in {scores}: give the --out folder of 'phylaw eval'")
    recorded = json.loads(path.read_text()).get("data")
    if not recorded:
        raise PhylawError(f"{path} does not name its split: pass --data DIR")
    return Path(recorded)


def _outcomes(args) -> None:
    from phylaw.data.store import open_store, write_json
    from phylaw.eval.metrics.outcomes import format_outcomes, pair_outcomes, priority_order
    from phylaw.experiments.casematch import read_scores

    if args.data is not None and len(args.scores) > 1:
        raise PhylawError("--data names the split of one scores folder; give one, or none")
    results = []
    for scores in args.scores:
        records, _ = read_scores(scores)
        split = _split_of(scores, args.data)
        manifest = open_store(split).manifest
        results.append(pair_outcomes(manifest, records, where=str(split)))
        print(format_outcomes(results[-1]) + "\n")
    if len(results) > 1:
        print("priority order: " + priority_order(results))
    if args.out:
        write_json(args.out, {"pairs": results, "order": priority_order(results)})
        print(f"wrote {args.out}")


def _case_match(args) -> None:
    from phylaw.experiments.casematch import case_match, format_case_match

    data = _split_of(args.scores, args.data)
    result = case_match(
        args.scores, data, args.train, args.out, mirror=args.mirror, feature_px=args.feature_px,
        cases=args.cases,
    )  # fmt: skip
    print(format_case_match(result))
    if args.out:
        print(f"\nwrote {args.out / 'casematch.jsonl'} and {args.out / 'casematch.json'}")


def register(sub) -> None:
    """Add ``outcomes`` and ``case-match``."""
    o = add_command(
        sub,
        "outcomes",
        "attribute pairs (paper Sec. 5.3): which attribute each video kept or switched",
        "  phylaw eval --videos samples/cs --data data/cs-eval --out scores/cs\n"
        "  phylaw outcomes scores/cs\n"
        "  phylaw outcomes scores/cs scores/cv scores/ss scores/vs scores/csh scores/vsz "
        "--out order.json\n\n"
        "SCORES: 'phylaw eval' output folders of pair studies (colour-size, colour-velocity,\n"
        "size-shape, velocity-shape, colour-shape, colour-ring, velocity-size). Per test\n"
        "quadrant: the rate of each outcome (one attribute kept and the other switched to its\n"
        "training partner's, both kept, other) with 95 % intervals and the mean shift of the\n"
        "continuous ones; with several pairs, the priority order they imply.",
        _outcomes,
    )
    o.add_argument("scores", nargs="+", type=Path, help="'phylaw eval' output folders")
    o.add_argument("--data", type=Path, default=None, help="the split (default: the record's)")
    o.add_argument("--out", type=Path, default=None, help="write the tables as JSON")

    c = add_command(
        sub,
        "case-match",
        "is each generated video closer to the law or to its nearest training case?",
        "  phylaw case-match --scores scores/gap --train data/gap-train --out cm/gap\n"
        "  phylaw case-match --scores scores/flip2 --train data/flip-train --mirror --out cm/f2\n\n"
        "For each scored video of a study split: its nearest training case by condition\n"
        "frames (pixels; --mirror adds the mirror images a model trained with data.hflip saw)\n"
        "and by parameters, and the case score |g - v_law| / (|g - v_law| + |g - v_case|) of\n"
        "its generated velocity g: 0 the law, 1 the case. Per region: mean score and the rate\n"
        "of videos closer to the case.",
        _case_match,
    )
    c.add_argument("--scores", required=True, type=Path, help="a 'phylaw eval' output folder")
    c.add_argument("--train", required=True, type=Path, help="the training split")
    c.add_argument("--data", type=Path, default=None, help="the split (default: the record's)")
    c.add_argument("--out", type=Path, default=None, help="where to write the results")
    c.add_argument("--mirror", action="store_true", help="also mirrored training videos")
    c.add_argument("--feature-px", type=int, default=32, help="feature resolution (default 32)")
    c.add_argument(
        "--cases", type=Path, default=None, help="a nearest-case baseline's cases.npz to reuse"
    )
