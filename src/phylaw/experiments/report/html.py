"""A report a person opens: one self-contained HTML file (plots and animations embedded).

A `Report` holds a verdict (the finding in one paragraph), tables, figures (matplotlib, as
PNG), animations (GIF) and details (config, environment) as preformatted text; `write_report`
renders it to a single file with every asset inlined as base64, so it can be mailed or
archived alone. The builders here take evaluation summaries (``summary.json`` of
``phylaw eval``) and parsed states, never a model:

* `headline_table`: methods (parse floor, a model, baselines) x groups (ID, each OOD level, all
  OOD), mean with its 95% bootstrap interval and the count, for one metric;
* `error_figure`: the same numbers as a plot in the style of the paper's Figure 3 (log scale,
  intervals, the parse floor dashed);
* `velocity_figure`: parsed velocity over time against the truth for a few videos.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

import numpy as np

from phylaw.data.store import atomic_write_bytes

__all__ = [
    "Report",
    "Table",
    "error_figure",
    "figure_png",
    "groups_of",
    "headline_table",
    "pyplot",
    "velocity_figure",
    "write_report",
]


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Report:
    title: str
    verdict: str
    note: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, bytes]] = field(default_factory=list)  # (caption, PNG)
    animations: list[tuple[str, bytes]] = field(default_factory=list)  # (caption, GIF)
    details: list[tuple[str, str]] = field(default_factory=list)  # (heading, text)
    ok: bool | None = None  # the verdict's colour: reproduced, not reproduced, neutral


# ------------------------------------------------------------------------------ numbers
def _group(summary: dict, group: str) -> dict:
    g = summary.get("overall") if group == "all" else summary.get("levels", {}).get(group)
    return g or {}


def _stats(summary: dict, group: str, metric: str) -> dict | None:
    stats = _group(summary, group).get("metrics", {}).get(metric)
    if not stats or stats.get("mean") is None or not np.isfinite(stats["mean"]):
        return None
    return stats


def groups_of(split_summaries: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(column label, split key, group) for an {'id': summary, 'ood': summary} pair: ID, then
    each OOD level, then all OOD videos."""
    out = []
    if "id" in split_summaries:
        out.append(("ID", "id", "all"))
    if "ood" in split_summaries:
        levels = list(split_summaries["ood"].get("levels", {}))
        out += [(f"OOD {lv}", "ood", lv) for lv in levels]
        if len(levels) > 1:
            out.append(("OOD all", "ood", "all"))
    return out


def stands_on(stats: dict | None, group: dict | None = None) -> str:
    """'n=245 of 256, tracked 97.1%': the videos a mean stands on (of the group's videos) and,
    below 99.5 %, the tracked fraction of its ball-samples (the rest carry the penalty)."""
    if stats is None:
        return ""
    n = stats.get("count", "?")
    group = group or {}
    text = f"n={n}" if group.get("videos") in (None, n) else f"n={n} of {group['videos']}"
    tracked = group.get("tracked_fraction")
    if tracked is not None and tracked < 0.995:
        text += f", tracked {100 * tracked:.1f}%"
    return text


def cell(stats: dict | None, digits: int = 3, group: dict | None = None) -> str:
    """'mean [low, high] (n=..., tracked ...)' or '-'."""
    if stats is None:
        return "-"
    lo, hi = stats.get("ci_low"), stats.get("ci_high")
    ci = f" [{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None and hi is not None else ""
    return f"{stats['mean']:.{digits}f}{ci} ({stands_on(stats, group)})"


def _cell_of(summary: dict, group: str, metric: str) -> str:
    return cell(_stats(summary, group, metric), group=_group(summary, group))


def headline_table(
    methods: dict[str, dict[str, dict]], metric: str, title: str, floor_from: str | None = None
) -> Table:
    """Rows: the parse floor (from method ``floor_from``'s summaries, default the first), then
    each method; columns: `groups_of` the first method; cells: `cell` of ``metric``."""
    first = next(iter(methods.values()))
    groups = groups_of(first)
    rows = []
    floor_src = methods[floor_from or next(iter(methods))]
    if any("floor" in s for s in floor_src.values()):
        rows.append(
            ["parse floor (ground truth)"]
            + [_cell_of(floor_src[k].get("floor", {}), g, metric) for _, k, g in groups]
        )
    for name, splits in methods.items():
        rows.append(
            [name] + [_cell_of(splits[k], g, metric) if k in splits else "-" for _, k, g in groups]
        )
    return Table(title, ["method"] + [label for label, _, _ in groups], rows)


# ------------------------------------------------------------------------------- figures
def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def error_figure(methods: dict[str, dict[str, dict]], metric: str, ylabel: str):
    """Each method's ``metric`` per group (ID, OOD levels) with 95% intervals, log scale; the
    parse floor of the first method's summaries dashed."""
    plt = pyplot()
    first = next(iter(methods.values()))
    groups = groups_of(first)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(groups), 3.6))
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(methods))
    for m, (name, splits) in enumerate(methods.items()):
        stats = [_stats(splits.get(k, {}), g, metric) for _, k, g in groups]
        ys = np.array([s["mean"] if s else np.nan for s in stats])
        lo = np.array([s.get("ci_low", s["mean"]) if s else np.nan for s in stats])
        hi = np.array([s.get("ci_high", s["mean"]) if s else np.nan for s in stats])
        xs = x - 0.4 + width * (m + 0.5)
        ax.errorbar(xs, ys, yerr=[ys - lo, hi - ys], fmt="o", capsize=3, label=name, markersize=5)
        for xi, yi, (_, k, g) in zip(xs, ys, groups, strict=True):
            tracked = _group(splits.get(k, {}), g).get("tracked_fraction")
            if np.isfinite(yi) and tracked is not None and tracked < 0.995:
                ax.annotate(
                    f"{100 * tracked:.0f}%", (xi, yi), fontsize=6, xytext=(3, 3),
                    textcoords="offset points",
                )  # fmt: skip
    floor = [_stats(first.get(k, {}).get("floor", {}), g, metric) for _, k, g in groups]
    for xi, f in zip(x, floor, strict=True):
        if f:
            ax.hlines(f["mean"], xi - 0.45, xi + 0.45, colors="k", linestyles="dashed")
    ax.plot([], [], "k--", label="parse floor")
    counts = [_group(first.get(k, {}), g).get("videos", "?") for _, k, g in groups]
    ax.set_xticks(x, [f"{label}\n(n={n})" for (label, _, _), n in zip(groups, counts, strict=True)])
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title("% beside a point: tracked ball-samples, where below 99.5 %", fontsize=7)
    ax.grid(True, axis="y", alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    return fig


def velocity_figure(cases: list[tuple], cond: int):
    """``cases``: (title, times [T], true vx [T-1], parsed vx [T-1], scored [T-1], tracked
    [T-1]) per video: the velocity between consecutive frames over time, the condition frames
    shaded. Samples the metric scores are drawn solid; samples it does not score (condition
    frames, the true ball partly out of view) hollow and grey; scored samples whose ball was
    not found once in both frames are marked x at the bottom (e charges them |v| + 10)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(cases), figsize=(3.2 * len(cases), 2.9), squeeze=False)
    for ax, (title, t, v_true, v_gen, scored, tracked) in zip(axes[0], cases, strict=True):
        mid = (t[1:] + t[:-1]) / 2
        ax.axvspan(t[0], t[cond - 1], color="0.9", label="given")
        ax.plot(mid, v_true, "k-", label="truth")
        shown = np.where(scored & tracked, v_gen, np.nan)
        ax.plot(mid, shown, "o-", color="tab:red", markersize=3, label="parsed, scored")
        off = ~scored & np.isfinite(v_gen)
        ax.plot(mid[off], v_gen[off], "o", mfc="none", color="0.6", markersize=3,
                label="not scored")  # fmt: skip
        lost = scored & ~tracked
        if lost.any():
            ax.plot(mid[lost], np.full(lost.sum(), 0.0), "x", color="tab:red", transform=
                    ax.get_xaxis_transform(), label="not found: |v| + 10")  # fmt: skip
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("vx (world units/s)")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.verdict{padding:.8em 1em;border-radius:6px;background:#f3f3f3;border-left:6px solid #999}
.verdict.ok{border-color:#2a8a3a;background:#eef8ef}
.verdict.no{border-color:#b33;background:#fbeeee}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} td,th{border:1px solid #ccc;
padding:.3em .5em;text-align:right} td:first-child,th:first-child{text-align:left}
th{background:#f5f5f5} figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figcaption{font-size:.8em;color:#555;max-width:520px} img.anim{image-rendering:pixelated}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em}
.note{color:#555;font-size:.9em}
"""


def _img(data: bytes, mime: str, alt: str, cls: str = "") -> str:
    b64 = base64.b64encode(data).decode()
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="data:{mime};base64,{b64}">'


def render_html(report: Report) -> str:
    """The report as one HTML document."""
    e = html.escape
    cls = "" if report.ok is None else (" ok" if report.ok else " no")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{e(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(report.title)}</h1>",
        f"<p class='verdict{cls}'>{e(report.verdict)}</p>",
    ]
    if report.note:
        parts.append(f"<p class='note'>{e(report.note)}</p>")
    for t in report.tables:
        parts.append(f"<h2>{e(t.title)}</h2><table><tr>")
        parts += [f"<th>{e(h)}</th>" for h in t.header]
        parts.append("</tr>")
        for row in t.rows:
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
        parts.append("</table>")
        if t.note:
            parts.append(f"<p class='note'>{e(t.note)}</p>")
    if report.figures:
        parts.append("<h2>Plots</h2>")
        for caption, png in report.figures:
            parts.append(
                f"<figure>{_img(png, 'image/png', caption)}"
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
    if report.animations:
        parts.append("<h2>Videos: ground truth (left) and generated (right)</h2>")
        for caption, gif in report.animations:
            parts.append(
                f"<figure>{_img(gif, 'image/gif', caption, 'anim')}"
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
    for heading, text in report.details:
        parts.append(f"<h2>{e(heading)}</h2><pre>{e(text)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: Report, path) -> None:
    """Write the report's HTML to ``path`` atomically."""
    atomic_write_bytes(path, render_html(report).encode())
