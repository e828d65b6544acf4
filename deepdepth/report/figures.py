"""The report's figures, one registry: each function takes the confidence rows and returns a
matplotlib ``Figure`` (built without pyplot, so no backend is chosen here: the writer saves them).
Depth axes are logarithmic with integer tick labels; legends stay inside the figure's own area;
rows trained under protocol=original are drawn dashed and say so in their label."""
from __future__ import annotations

import math
import re
from typing import Callable, Iterator

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from .compare import NO_SETTINGS, compare_reference
from .stats import Confidence

FIGURES: dict[str, Callable[[list[Confidence]], Figure]] = {}
TRAIN_ERR = "final train error (running mean over the last epoch)"


def registered(stem: str):
    def add(draw):
        FIGURES[stem] = draw
        return draw
    return add


def all_figures(conf: list[Confidence]) -> Iterator[tuple[str, Figure]]:
    """(file stem, Figure): the registered overviews, then one error-vs-depth figure per combination."""
    shown = [r for r in conf if r.depths]
    for stem, draw in FIGURES.items():
        yield stem, draw(shown)
    for r in shown:
        yield "error_vs_depth_" + slug(r.combination.file_label), combination_errors(r)


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=:-]+", "_", s).replace(":", "-").strip("_")


def legend_label(r: Confidence) -> str:
    c = r.combination
    marked = c.protocol != "correct" and "protocol=" not in c.label
    return c.label + (f" (protocol={c.protocol})" if marked else "") + ("" if c.done else " (unfinished)")


def style(conf: list[Confidence]) -> Callable[[Confidence], dict]:
    """Colour per combination, dashes for protocol=original, marker per lr."""
    cmap = colormaps["tab10" if len(conf) <= 10 else "tab20"]
    colors = {r.combination.combo: cmap(i % cmap.N) for i, r in enumerate(conf)}
    lrs = list(dict.fromkeys(str(r.combination.lr) for r in conf))
    return lambda r: dict(color=colors[r.combination.combo], ls="-" if r.combination.protocol == "correct" else "--",
                          marker="osD^v<>ph*"[lrs.index(str(r.combination.lr)) % 10])


def depth_axis(ax, depths: list[float], axis: str = "x") -> None:
    """Log depth axis with integer labels: 1-2-3-5 per decade, or the probed depths themselves
    (thinned) when the range spans less than about a decade."""
    lo, hi = min(depths), max(depths)
    ticks = [m * 10 ** e for e in range(0, 4) for m in (1, 2, 3, 5) if lo / 1.25 <= m * 10 ** e <= hi * 1.25]
    if len(ticks) < 4:
        ticks = []
        for k in sorted(set(depths)):
            if not ticks or k / ticks[-1] >= 1.12:
                ticks.append(k)
    which = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    which.set_major_locator(FixedLocator(ticks))
    which.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0f}"))
    which.set_minor_locator(NullLocator())
    which.set_minor_formatter(NullFormatter())


@registered("fraction_trainable")
def fraction_trainable(conf: list[Confidence]) -> Figure:
    """Fraction of seeds that train against depth: Wilson 95% bars, the seeds behind each point
    (in the legend when every depth has the same number), the fitted logistic curve behind each
    k50 and its interval as a band near the 50% line (arrows: only a bound)."""
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    ax = fig.subplots()
    st = style(conf)
    depths = [d.k for r in conf for d in r.depths] or [1]
    lo, hi = min(depths) / 1.3, max(depths) * 1.4
    for i, r in enumerate(conf):
        s, offset = st(r), (i - (len(conf) - 1) / 2)
        nudge = math.exp(0.015 * offset)  # side by side, so the bars do not hide each other
        ks = [d.k * nudge for d in r.depths]
        err = np.array([[max(0.0, d.fraction - d.interval[0]), max(0.0, d.interval[1] - d.fraction)] for d in r.depths])
        seeds = {d.n for d in r.depths}
        ax.errorbar(ks, [d.fraction for d in r.depths], yerr=err.T, capsize=2.5, lw=1.2, ms=5, alpha=0.9,
                    color=s["color"], marker=s["marker"], ls="none",
                    label=legend_label(r) + (f" ({seeds.pop()} seeds per depth)" if len(seeds) == 1 else ""))
        if len({d.n for d in r.depths}) > 1:
            for k, d in zip(ks, r.depths):
                ax.annotate(f"n={d.n}", (k, d.fraction), textcoords="offset points", fontsize=7, ha="center",
                            xytext=(0, -12 if d.fraction > 0.5 else 6), color=s["color"])
        grid = np.geomspace(r.depths[0].k / 1.3, r.depths[-1].k * 1.3, 200)
        lim, level = r.limit, 0.5 + 0.025 * offset
        if lim.kind == "k50":
            curve = 0.5 + 0.5 * np.tanh(0.5 * lim.slope * (math.log(lim.value) - np.log(grid)))  # the sigmoid
            ax.plot(grid, curve, color=s["color"], ls=s["ls"], lw=1.3, alpha=0.6, zorder=1)
            ax.plot([lim.low or grid[0], lim.high or grid[-1]], [level, level], color=s["color"], lw=4, alpha=0.35,
                    solid_capstyle="butt")
        elif lim.kind in ("above", "below"):
            end = hi if lim.kind == "above" else lo
            ax.annotate("", (end, level), (lim.value, level),
                        arrowprops=dict(arrowstyle="->", color=s["color"], lw=1.5))
    ax.axhline(0.5, color="gray", ls=":", lw=1)
    ax.set_xlim(lo, hi)
    depth_axis(ax, depths)
    ax.set(xlabel="depth k (conv layers, log scale)", ylabel="fraction of seeds trainable", ylim=(-0.06, 1.06),
           title="Seeds that train (bars: 95% Wilson intervals; curves: fitted logistic; bands near 50%:\n"
                 "k50's 95% interval; arrows: only a bound, where no probe crosses 50%)")
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    return fig


@registered("depth_limits")
def depth_limits(conf: list[Confidence]) -> Figure:
    """Per combination the measured limit (k50 and its 95% interval, or an arrow for a bound)
    beside the original study's k* (x) and its failed probe (|), where its settings apply."""
    comparison = compare_reference(conf)
    fig = Figure(figsize=(9.5, 0.45 * len(conf) + 2.6), layout="constrained")
    ax = fig.subplots()
    st = style(conf)
    depths = [d.k for r in conf for d in r.depths] + [x.reference.failed or x.reference.k_star
                                                       for x in comparison if x.reference]
    lo, hi = (min(depths) / 1.6, max(depths) * 1.6) if depths else (1, 10)
    for y, x in enumerate(comparison):
        s, lim = st(x.row), x.row.limit
        low, high = lim.bounds
        if lim.kind != "none":
            ax.plot([low or lo, high or hi], [y, y], color=s["color"], ls=s["ls"], lw=2.5)
            for end, side, marker in ((low, lo, "<"), (high, hi, ">")):
                if end is None:
                    ax.plot([side], [y], marker=marker, color=s["color"])
            if lim.kind == "k50":
                ax.plot([lim.value], [y], marker="o", color=s["color"])
            ax.annotate(str(lim), (low or lo, y), xytext=(2, 5), textcoords="offset points", fontsize=7.5,
                        color=s["color"])
        if x.reference is not None and x.verdict != NO_SETTINGS:
            ref = x.reference
            ax.plot([ref.k_star], [y], marker=">" if ref.censored else "x", color="k", ms=8, mew=2, ls="none")
            if ref.failed:
                ax.plot([ref.failed], [y], marker="|", color="k", ms=12, mew=2, ls="none")
    ax.set_yticks(range(len(comparison)))
    ax.set_yticklabels([legend_label(x.row) + (" [no reference for its settings]" if x.verdict == NO_SETTINGS
                                               else " [reference: other protocol]" if x.caveat else "")
                        for x in comparison], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlim(lo, hi)
    depth_axis(ax, [lo * 1.25, hi / 1.25])
    ax.grid(axis="x", alpha=0.3)
    ax.set(xlabel="depth k (conv layers, log scale)", title="Measured depth limit vs the original study")
    fig.legend(handles=[Line2D([], [], color="gray", marker="o", lw=2.5, label="k50 and 95% interval"),
                        Line2D([], [], color="gray", lw=2.5, marker=">", label="bound only (arrow: open side)"),
                        Line2D([], [], color="k", marker="x", mew=2, ls="none", label="reference k* (one seed)"),
                        Line2D([], [], color="k", marker="|", ms=12, mew=2, ls="none", label="its next probe: failed")],
               loc="outside lower center", ncols=2, fontsize="small")
    return fig


def _errors(ax, r: Confidence, key: str, s: dict, label: str, seeds: bool) -> None:
    points = [(d.k, getattr(d, key)) for d in r.depths if getattr(d, key) is not None]
    if points:
        ax.plot(*zip(*[(k, 100 * e) for k, e in points]), label=label, **s)
    spread = [(d.k, 100 * e) for d in r.depths for e in getattr(d, key + "s") if e is not None]
    if seeds and spread:  # every seed's final error, the spread near the limit
        ax.scatter(*zip(*spread), s=14, alpha=0.4, color=s["color"])


def _finish(ax, conf: list[Confidence], title: str, ylabel: str) -> None:
    for t in sorted({r.combination.settings.get("threshold") for r in conf} - {None}):
        ax.axhline(100 * t, color="gray", ls="--", lw=1)
    depth_axis(ax, [d.k for r in conf for d in r.depths])
    ax.set(xlabel="depth k (conv layers, log scale)", ylabel=ylabel, title=title, ylim=(0, 100))


@registered("error_vs_depth")
def error_vs_depth(conf: list[Confidence]) -> Figure:
    """Final test and train error against depth, median over seeds, one line per combination."""
    fig = Figure(figsize=(12, 5.5), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    st = style(conf)
    for key, ax, what in (("test_err", axes[0], "final test error"), ("train_err", axes[1], TRAIN_ERR)):
        for r in conf:
            _errors(ax, r, key, st(r), legend_label(r), seeds=False)
            if r.k_star_shown is not None:
                ax.axvline(r.k_star_shown, color=st(r)["color"], ls=":", lw=1.2)
        _finish(ax, conf, f"{what}\n(median over seeds; dotted: k*; dashed: threshold)", "error (%)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize="small")
    return fig


def combination_errors(r: Confidence) -> Figure:
    """One combination: final test and train error per seed and their medians against depth."""
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    _errors(ax, r, "test_err", dict(color="C0", marker="o"), "final test error (median; dots: seeds)", True)
    _errors(ax, r, "train_err", dict(color="C1", marker="s"), TRAIN_ERR, True)
    if r.k_star_shown is not None:
        ax.axvline(r.k_star_shown, color="k", ls=":", lw=1.5, label=f"k*: {r.k_star_str}")
    _finish(ax, [r], f"{legend_label(r)}: measured limit {r.limit}", "final error (%)")
    ax.legend(fontsize="small", loc="best")
    return fig
