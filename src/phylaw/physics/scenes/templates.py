"""The 70 templates of the combinatorial study and their named subsets (paper Sec. 4.1).

Enumeration (reference 3.2, the authors' ``task100NN.py``): every 4-combination of the eight
object kinds, in ``itertools.combinations`` order over the authors' ``object_list``, keeps the
combinations containing a dynamic kind (all 70 do), and shuffles the list with
``random.Random(4).shuffle``; template ``10000 + k`` is entry k. So template ids here name the
same objects as the authors' templates (``tests/test_scenes.py`` checks all 70 against the
reference's table).

Subsets: training templates 10000-10059 (``"60"``), held out for out-of-template evaluation
10060-10069; ``"30"`` the even ids 10000, 10002, ..., 10058 (the authors' regex
``100[0-5][02468]``); ``"6"`` the six templates 10003, 10005, 10016, 10023, 10024, 10053,
which cover every pair of the groups {ball 1, ball 2}, {static ball, dynamic bar},
{standing bars, static bar}, {jar, sticks}.
Only 10016 and 10024 of the six are also in the 30-set (reference section 9, item 23).
"""

from __future__ import annotations

import itertools
import random

from phylaw import PhylawError
from phylaw.physics.scenes.kinds import KIND_NAMES, OBJECT_KINDS, Kind

FIRST_ID = 10000
NUM_TEMPLATES = 70
TRAIN_IDS = tuple(range(FIRST_ID, FIRST_ID + 60))
HELD_OUT_IDS = tuple(range(FIRST_ID + 60, FIRST_ID + NUM_TEMPLATES))
TASKS_PER_TEMPLATE = 100  # PHYRE's max_tasks
TRIALS_PER_TASK = 1000  # red-ball placements per task (data_generator_v2 --num_trials)


def _enumerate() -> tuple[tuple[Kind, ...], ...]:
    """The authors' template list: combinations of 4 kinds, shuffled by ``Random(4)``."""
    combos = [
        c
        for c in itertools.combinations(OBJECT_KINDS, 4)
        if any(KIND_NAMES[k].startswith("dynamic") for k in c)
    ]
    random.Random(4).shuffle(combos)
    return tuple(combos)


TEMPLATES: dict[int, tuple[Kind, ...]] = {
    FIRST_ID + k: kinds for k, kinds in enumerate(_enumerate())
}

SUBSETS: dict[str, tuple[int, ...]] = {
    "6": (10003, 10005, 10016, 10023, 10024, 10053),
    "30": tuple(t for t in TRAIN_IDS if t % 2 == 0),
    "60": TRAIN_IDS,
}


def template_kinds(template: int) -> tuple[Kind, ...]:
    """The four object kinds of ``template`` in build order; a clear error for unknown ids."""
    try:
        return TEMPLATES[int(template)]
    except (KeyError, TypeError, ValueError):
        last = FIRST_ID + NUM_TEMPLATES - 1
        raise PhylawError(
            f"unknown template {template!r}; templates are {FIRST_ID}-{last}"
        ) from None


def parse_templates(text: str | None, held_out: bool) -> tuple[int, ...]:
    """Resolve ``--templates``: ``"6"``, ``"30"``, ``"60"`` or ``"ID,ID,..."`` -> sorted ids.

    ``held_out`` selects the out-of-template evaluation pool (10060-10069, default all ten);
    otherwise the training pool (10000-10059, default ``"60"``). A template from the other pool
    is an error, so a training split can never contain a held-out template.
    """
    pool = HELD_OUT_IDS if held_out else TRAIN_IDS
    what = "held-out (out-of-template)" if held_out else "training"
    if text is None or not str(text).strip():
        return pool
    text = str(text).strip()
    if text in SUBSETS:
        if held_out:
            raise PhylawError(
                f"--templates {text} names a training subset; out-of-template evaluation uses the "
                f"held-out templates {HELD_OUT_IDS[0]}-{HELD_OUT_IDS[-1]} (or a list of them)"
            )
        return SUBSETS[text]
    ids = []
    for item in text.split(","):
        try:
            ids.append(int(item.strip()))
        except ValueError:
            raise PhylawError(
                f"invalid --templates {text!r}: give 6, 30, 60 or comma-separated template ids "
                f"such as 10003,10016"
            ) from None
    for t in ids:
        template_kinds(t)
        if t not in pool:
            raise PhylawError(
                f"template {t} is not a {what} template; choose from {pool[0]}-{pool[-1]}"
            )
    if len(set(ids)) != len(ids):
        raise PhylawError(f"invalid --templates {text!r}: a template is listed twice")
    return tuple(sorted(ids))
