"""The report's figures, one registry: each function takes the confidence rows and returns a
matplotlib ``Figure`` (built without pyplot, so no backend is chosen here: the writer saves them);
one registered with ``applies`` is drawn only where it applies (the phase diagram: a gain sweep).
Depth axes are logarithmic with integer tick labels; legends stay inside the figure's own area;
rows trained under protocol=original are drawn dashed and say so in their label."""
from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .axes import cell_edges, depth_axis, theory_grid
from .compare import NO_SETTINGS, compare_reference
from .phase import gain_sweep, theory_curves, width_sweep, widths_of
from .render import NotDrawn
from .stats import INTERVAL, Confidence, distinct, same_trials
from .styles import legend_label, slug, style
from .swept import KeySweep, key_sweeps, order

Draw = Callable[[list[Confidence]], Figure]
FIGURES: dict[str, Draw] = {}  # drawn for every sweep
CONDITIONAL: dict[str, tuple[Callable[[list[Confidence]], bool], Draw]] = {}  # drawn where applies(rows)
TRAIN_ERR = "final train error (running mean over the last epoch)"
NO_VERDICT = "no trial has a verdict"


def registered(stem: str, applies: Callable[[list[Confidence]], bool] | None = None):
    def add(draw):
        if applies is None:
            FIGURES[stem] = draw
        else:
            CONDITIONAL[stem] = (applies, draw)
        return draw
    return add


def all_figures(conf: list[Confidence]) -> Iterator[tuple[str, Figure]]:
    """(file stem, Figure): the registered overviews (a conditional one where it applies), then
    one error-vs-depth figure per combination; only those with something to show (``not_drawn``:
    the others)."""
    shown = [r for r in conf if r.depths]
    if shown:
        for stem, draw in FIGURES.items():
            yield stem, draw(shown)
    for stem, (applies, draw) in CONDITIONAL.items():
        if applies(shown):
            yield stem, draw(shown)
    by_key: dict[str, list[KeySweep]] = {}
    for sweep in key_sweeps(shown):
        by_key.setdefault(sweep.key, []).append(sweep)
    for key, sweeps in by_key.items():
        yield "limit_vs_" + slug(key), limit_against(sweeps)
    for r in shown:
        yield combination_stem(r), combination_errors(r)


def not_drawn(conf: list[Confidence]) -> list[NotDrawn]:
    """The figures that apply to the sweep but have nothing to show, each with why."""
    shown = [r for r in conf if r.depths]
    out = [] if shown else [NotDrawn(stem, NO_VERDICT) for stem in FIGURES]
    out += [NotDrawn(stem, "fewer than two init gains have a trial with a verdict")
            for stem, (applies, _) in CONDITIONAL.items() if applies(conf) and not applies(shown)]
    return out + [NotDrawn(combination_stem(r), NO_VERDICT) for r in conf if not r.depths]


def combination_stem(r: Confidence) -> str:
    return "error_vs_depth_" + slug(r.combination.file_label)


def _fraction_panel(ax, rows: list[tuple[Confidence, bool]], st, lo: float, hi: float) -> None:
    for i, (r, both) in enumerate(rows):
        s, offset = st(r), (i - (len(rows) - 1) / 2)
        nudge = math.exp(0.015 * offset)  # side by side, so the bars do not hide each other
        ks = [d.k * nudge for d in r.depths]
        err = np.array([[max(0.0, d.fraction - d.interval[0]), max(0.0, d.interval[1] - d.fraction)] for d in r.depths])
        seeds = {d.n for d in r.depths}
        name = "protocols: both (the same trials)" if both else f"protocol={r.combination.protocol}"
        ax.errorbar(ks, [d.fraction for d in r.depths], yerr=err.T, capsize=2.5, lw=1.2, ms=5, alpha=0.9,
                    color=s["color"], marker=s["marker"], ls="none",
                    label=name + (f", {seeds.pop()} seeds per depth" if len(seeds) == 1 else ""))
        if len({d.n for d in r.depths}) > 1:
            for k, d in zip(ks, r.depths):
                ax.annotate(f"n={d.n}", (k, d.fraction), textcoords="offset points", fontsize=7, ha="center",
                            xytext=(0, -12 if d.fraction > 0.5 else 6), color=s["color"])
        grid = np.geomspace(r.depths[0].k / 1.3, r.depths[-1].k * 1.3, 200)
        lim, level = r.limit, 0.5 + 0.04 * offset
        if lim.kind == "k50":
            if lim.slope is not None and lim.value is not None:
                curve = 0.5 + 0.5 * np.tanh(0.5 * lim.slope * (math.log(lim.value) - np.log(grid)))  # the sigmoid
                ax.plot(grid, curve, color=s["color"], ls=s["ls"], lw=1.3, alpha=0.6, zorder=1)
            ax.plot([lim.low or lo, lim.high or hi], [level, level], color=s["color"], lw=4, alpha=0.35,
                    solid_capstyle="butt")
        elif lim.kind in ("above", "below"):
            end = hi if lim.kind == "above" else lo
            ax.annotate("", (end, level), (lim.value, level), arrowprops=dict(arrowstyle="->", color=s["color"], lw=1.5))
    ax.axhline(0.5, color="gray", ls=":", lw=1)


@registered("fraction_trainable")
def fraction_trainable(conf: list[Confidence]) -> Figure:
    """Fraction of seeds that train against depth, one panel per variant (and setting), its
    protocols overlaid (one set of trials drawn once): Wilson 95% bars, the fitted logistic
    curve behind each k50 and k50's interval (confidence.LEVEL) as a band near the 50% line
    (arrows: only a bound)."""
    rows = [(r, both) for r, both in distinct(conf) if r.depths]
    panels: dict[str, list] = {}
    for r, both in rows:
        panels.setdefault(same_trials(r)[0], []).append((r, both))
    ncols = min(3, max(1, len(panels)))
    nrows = math.ceil(max(1, len(panels)) / ncols)
    fig = Figure(figsize=(4.2 * ncols + 0.8, 3.3 * nrows + 1.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    st = style(conf)
    for ax, (name, members) in zip(axes, panels.items()):
        depths = [d.k for r, _ in members for d in r.depths]
        lo, hi = min(depths) / 1.3, max(depths) * 1.4
        _fraction_panel(ax, members, st, lo, hi)
        ax.set_xlim(lo, hi)
        depth_axis(ax, depths)
        ax.set(title=name, ylim=(-0.06, 1.06), xlabel="depth k (log scale)")
        ax.legend(fontsize="x-small", loc="lower left")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].set_ylabel("fraction of seeds trainable")
    fig.suptitle("Seeds that train (bars: 95% Wilson intervals; curves: fitted logistic; bands near 50%: "
                 f"k50's {INTERVAL} interval;\narrows: only a bound, where no probe crosses 50%)", fontsize="medium")
    return fig


@registered("depth_limits")
def depth_limits(conf: list[Confidence]) -> Figure:
    """Per distinct set of trials (a BatchNorm-free variant's two protocols are one row, "both")
    the measured limit (k50 and its interval, or an arrow for a bound) beside the original
    study's k* (x) and its failed probe (|), where its settings apply."""
    shared = {id(r): both for r, both in distinct(conf)}
    comparison = [x for x in compare_reference(conf) if id(x.row) in shared]  # each set of trials once
    known = any(x.reference is not None and x.verdict != NO_SETTINGS for x in comparison)
    fig = Figure(figsize=(9.5, 0.45 * len(comparison) + 2.6), layout="constrained")
    ax = fig.subplots()
    st = style(conf)
    depths = [d.k for r in conf for d in r.depths] + [x.reference.failed or x.reference.k_star
                                                       for x in comparison if x.reference and x.verdict != NO_SETTINGS]
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
    ax.set_yticklabels([(same_trials(x.row)[0] + " (protocols: both)" if shared[id(x.row)] else legend_label(x.row))
                        + ("" if not known else " [no reference for its settings]" if x.verdict == NO_SETTINGS
                           else " [reference: other protocol]" if x.caveat else "")
                        for x in comparison], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlim(lo, hi)
    depth_axis(ax, depths or [lo * 1.25, hi / 1.25])  # ticks at depths that exist, labels exact
    ax.grid(axis="x", alpha=0.3)
    ax.set(xlabel="depth k (conv layers, log scale)",
           title="Measured depth limit" + (" and the original study's k*" if known else ""))
    handles = [Line2D([], [], color="gray", marker="o", lw=2.5, label=f"k50 and {INTERVAL} interval"),
               Line2D([], [], color="gray", lw=2.5, marker=">", label="bound only (arrow: open side)")]
    if known:
        handles += [Line2D([], [], color="k", marker="x", mew=2, ls="none", label="reference k* (one seed)"),
                    Line2D([], [], color="k", marker="|", ms=12, mew=2, ls="none", label="its next probe: failed")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize="small")
    return fig


def limit_against(sweeps: list[KeySweep]) -> Figure:
    """The measured limit against one swept key, a line per group of combinations: k50 with its
    interval (arrows: only a bound). A numeric key spanning more than 3x is drawn on a log axis
    at its values (lr), any other key at evenly spaced positions in its order."""
    key = sweeps[0].key
    values = sorted({s.value(r): r.combination.settings.get(key) for s in sweeps for r in s.rows}.items(),
                    key=lambda kv: order(kv[1]))
    numbers = [v for _, v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
    logx = len(numbers) == len(values) and max(numbers) > 3 * min(numbers)
    where = {shown: (v if logx else i) for i, (shown, v) in enumerate(values)}
    fig = Figure(figsize=(7.5, 5), layout="constrained")
    ax = fig.subplots()
    depths = [x for s in sweeps for r in s.rows for x in (r.limit.low, r.limit.value, r.limit.high) if x]
    lo, hi = min(depths) / 1.5, max(depths) * 1.5
    for i, s in enumerate(sweeps):
        color, nudge = f"C{i % 10}", (i - (len(sweeps) - 1) / 2) * (0.04 if logx else 0.06)
        xs = [where[s.value(r)] * (10 ** nudge if logx else 1) + (0 if logx else nudge) for r in s.rows]
        centres = [r.limit.value if r.limit.kind != "none" else None for r in s.rows]
        ax.plot([x for x, c in zip(xs, centres) if c], [c for c in centres if c], color=color, lw=1, alpha=0.5)
        for x, r in zip(xs, s.rows):
            lim = r.limit
            if lim.kind == "k50":
                low, high = lim.low or lo, lim.high or hi
                ax.errorbar([x], [lim.value], yerr=[[lim.value - low], [high - lim.value]], fmt="o", color=color,
                            capsize=4, lw=1.5, label=s.group if r is s.rows[0] else None)
            elif lim.kind in ("above", "below"):
                end = lim.value * (1.4 if lim.kind == "above" else 1 / 1.4)
                ax.annotate("", (x, end), (x, lim.value), arrowprops=dict(arrowstyle="-|>", color=color, lw=1.5))
                ax.plot([x], [lim.value], marker="o", ms=5, color=color, label=s.group if r is s.rows[0] else None)
    if logx:
        ax.set_xscale("log")
        ax.set_xticks(numbers, [shown for shown, _ in values])
        ax.set_xlim(min(numbers) / 1.6, max(numbers) * 1.6)
    else:
        ax.set_xticks(range(len(values)), [shown for shown, _ in values])
        ax.set_xlim(-0.6, len(values) - 0.4)
    ax.set_ylim(lo, hi)
    depth_axis(ax, depths, axis="y")
    ax.grid(axis="y", alpha=0.3)
    ax.set(xlabel=key + (" (log scale)" if logx else ""), ylabel="depth k (conv layers, log scale)",
           title=f"Measured limit against {key}: k50 and its {INTERVAL} interval (arrows: only a bound)")
    ax.legend(fontsize="small", loc="best")
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


@registered("phase_diagram", applies=lambda conf: bool(gain_sweep(conf)))
def phase_diagram(conf: list[Confidence]) -> Figure:
    """Per family of a gain sweep: the fraction of seeds that train over (sigma_w^2, depth), each probed
    depth's cell reaching halfway to the next probe; mean field's 6 xi over it (and 6/ln chi_1 where
    gradients explode); the measured k50 with its interval (arrows: only a bound)."""
    families = gain_sweep(conf)
    fig = Figure(figsize=(6.5 * len(families) + 1.5, 6.8), layout="constrained")
    axes = fig.subplots(1, len(families), sharey=True, squeeze=False)[0]
    cmap, norm = colormaps["RdYlBu"], Normalize(0, 1)
    depths = [d.k for ps in families.values() for p in ps for d in p.row.depths] or [3, 48]
    k_lo, k_hi = min(depths) / 1.35, max(depths) * 1.6
    for ax, (name, points) in zip(axes, families.items()):
        spread = points[-1].sigma_w2 / points[0].sigma_w2 > 4  # both phases: a log axis gives each room
        columns = cell_edges([p.sigma_w2 for p in points], log=spread)
        for p, (a, b) in zip(points, columns):
            if p.row.depths:
                rows = cell_edges([d.k for d in p.row.depths], log=True)
                ax.pcolormesh([a, b], [rows[0][0]] + [high for _, high in rows],
                              [[d.fraction] for d in p.row.depths], cmap=cmap, norm=norm, edgecolors="face")
                for d in p.row.depths:  # trained / seeds at the probed depth itself
                    ax.text(a + 0.06 * (b - a), d.k, f"{d.passes}/{d.n}", fontsize=7, ha="left", va="center",
                            color="w" if abs(d.fraction - 0.5) > 0.35 else "k")
        x = theory_grid(columns[0][0], columns[-1][1])
        six_xi, gradient = theory_curves(points[0].activation, x)
        ax.plot(x, np.minimum(six_xi, k_hi * 10), color="k", lw=2, label="6 ξ (mean field, σ_b = 0)")
        if np.isfinite(gradient).any():
            ax.plot(x, np.minimum(gradient, k_hi * 10), color="k", lw=1.6, ls="--",
                    label="6 / ln χ₁ (gradients grow: chaotic phase)")
        for p in points:
            lim = p.row.limit
            if lim.kind == "k50":
                low, high = lim.low or k_lo, lim.high or k_hi
                ax.errorbar([p.sigma_w2], [lim.value], yerr=[[lim.value - low], [high - lim.value]], fmt="o",
                            ms=7, mfc="white", mec="k", ecolor="k", capsize=4, lw=1.5, zorder=5)
            elif lim.kind in ("above", "below"):
                ax.annotate("", (p.sigma_w2, lim.value * (1.5 if lim.kind == "above" else 1 / 1.5)),
                            (p.sigma_w2, lim.value), arrowprops=dict(arrowstyle="-|>", color="k", lw=1.5))
                ax.plot([p.sigma_w2], [lim.value], marker="o", ms=5, color="k")
        if columns[0][0] < 1 < columns[-1][1]:
            ax.axvline(1.0, color="gray", ls=":", lw=1.2)
        if spread:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xlim(columns[0][0], columns[-1][1])
        ax.set_ylim(k_lo, k_hi)
        depth_axis(ax, depths, axis="y")
        ax.set_xticks([p.sigma_w2 for p in points], [f"{p.sigma_w2:.3g}" for p in points])
        ax.set(xlabel="σ_w² (init gain²; 1 = critical" + ("; log scale)" if spread else ")"), title=name)
    axes[0].set_ylabel("depth k (conv layers, log scale)")
    fig.colorbar(ScalarMappable(norm, cmap), ax=list(axes),
                 label="fraction of seeds trainable (text: trained/seeds at the probe; cell: to halfway)")
    curves = {h.get_label(): h for ax in axes for h in ax.get_legend_handles_labels()[0]}  # any panel's
    handles = list(curves.values()) + [
        Line2D([], [], marker="o", mfc="white", mec="k", color="k", label=f"measured k50, {INTERVAL} interval"),
        Line2D([], [], marker="$\\uparrow$", ms=10, color="k", ls="none",
               label="bound only: no probe crosses 50% (arrow: open side)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize="small")
    fig.suptitle("Trainability phase diagram: where seeds train against mean-field depth scales")
    return fig


@registered("depth_scale_vs_width", applies=lambda conf: bool(width_sweep(conf)))
def depth_scale_vs_width(conf: list[Confidence]) -> Figure:
    """Per sigma_w^2 swept over widths: the measured k50 over mean field's 6 xi (the same at
    every width) against the channels per stage, with k50's interval (arrows: only a bound)."""
    sweep = width_sweep(conf)
    fig = Figure(figsize=(7, 4.8), layout="constrained")
    ax = fig.subplots()
    ticks = {}
    for i, (s2, points) in enumerate(sweep.items()):
        color, nudge = f"C{i % 10}", 1 + 0.03 * (i - (len(sweep) - 1) / 2)
        xs, ys = [], []
        for p in points:
            x, ref, lim = widths_of(p)[0] * nudge, p.six_xi, p.row.limit
            ticks[widths_of(p)[0]] = ",".join(map(str, widths_of(p)))
            if lim.kind == "k50":
                low, high = (lim.low or lim.value / 2) / ref, (lim.high or lim.value * 2) / ref
                ax.errorbar([x], [lim.value / ref], yerr=[[lim.value / ref - low], [high - lim.value / ref]], fmt="o",
                            color=color, capsize=4, lw=1.5)
                xs.append(x)
                ys.append(lim.value / ref)
            elif lim.kind in ("above", "below"):
                end = lim.value / ref * (1.4 if lim.kind == "above" else 1 / 1.4)
                ax.annotate("", (x, end), (x, lim.value / ref), arrowprops=dict(arrowstyle="-|>", color=color, lw=1.5))
                ax.plot([x], [lim.value / ref], marker="o", ms=5, color=color)
        ax.plot(xs, ys, color=color, lw=1, alpha=0.6, label=f"σ_w² = {s2:.3g} (6 ξ = {points[0].six_xi:.3g})")
    ax.axhline(1.0, color="gray", ls=":", lw=1.2)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(ticks), [ticks[t] for t in sorted(ticks)])
    ax.minorticks_off()
    ax.set(xlabel="channels per stage (log scale)", ylabel="measured k50 / 6 ξ",
           title=f"The limit against width, over mean field's 6 ξ\n(bars: k50's {INTERVAL} interval; dotted: k50 = 6 ξ)")
    ax.legend(fontsize="small", loc="best")
    return fig
