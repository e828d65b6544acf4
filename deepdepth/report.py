"""Study table, confidence, reference comparison and plots from a sweep directory:
``python -m deepdepth.report <sweep_dir> [--out DIR]``.

Loading and aggregation are pure (json/csv only, no matplotlib, Hydra or Lightning) so they are
unit-tested; only the ``plot*`` functions load matplotlib (Agg backend). Works on a bisect
sweep (frontier.json) and on any plain multirun of deepdepth.train (the job folders'
result.json files), so a hand-made depth grid gets the same report.

Pipeline: ``load_sweep`` / ``load_frontier`` -> ``confidence_table`` (per combination: Wilson
intervals per depth, the 50% depth k50 with its interval, the majority rule's k*) ->
``compare_reference`` + ``verdict_lines`` (the original study's k* inside the interval?) ->
``rank_variants`` + ``mean_field_rows`` (ranking by measured limit, mean-field prediction beside
it) -> ``render_report`` (the markdown that ``main`` prints and writes to report.md).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from statistics import mean, median
from typing import Optional

from .confidence import half_trainable_depth, wilson
from .reference import NOTES, REFERENCE

REFERENCE_LR = 0.01  # the original study's learning rate (SPEC section 6)
REFERENCE_STEP = 3   # its depth grid

GROUP_FIELDS = ("model", "lr", "protocol", "criterion", "threshold", "epochs", "train_samples", "test_samples")


def load_sweep(sweep_dir) -> list[dict]:
    """One record per trial: combo, label, model, lr, k, seed, final train/test error, trainable, status."""
    sweep_dir = Path(sweep_dir)
    doc = _frontier_doc(sweep_dir)
    if doc is not None:
        labels = _labels(doc["frontier"])
        return [{**r, "label": labels[r["combo"]]} for r in doc["history"]]
    results = [json.loads(p.read_text()) for p in sorted(sweep_dir.rglob("result.json"))]
    keys = [tuple(r.get(f) for f in GROUP_FIELDS) for r in results]
    combos = sorted(set(keys), key=str)
    labels = _labels([{"params": dict(zip(GROUP_FIELDS, c))} for c in combos])
    trials = []
    for r, key in zip(results, keys):
        ci = combos.index(key)
        for t in r.get("trials", []):
            trials.append({"combo": ci, "label": labels[ci], "model": r.get("model"), "lr": r.get("lr"),
                           "k": r["k"], "seed": t.get("seed"), "status": "ok", "trainable": t.get("trainable"),
                           "diverged": t.get("diverged"), "train_err": _last(t.get("train_err")),
                           "test_err": _last(t.get("test_err")), "threshold": r.get("threshold"),
                           "criterion": r.get("criterion"), "protocol": r.get("protocol")})
    return trials


def load_frontier(sweep_dir, trials: Optional[list[dict]] = None) -> list[dict]:
    """One row per combination: k*, whether k*+step was confirmed untrainable, counts."""
    doc = _frontier_doc(Path(sweep_dir))
    if doc is not None:
        labels = _labels(doc["frontier"])
        return [{**r, "label": labels[r["combo"]], "protocol": _protocol(Path(sweep_dir), r, doc["history"])}
                for r in doc["frontier"]]
    trials = load_sweep(sweep_dir) if trials is None else trials
    rows = []
    for ci, stats in depth_stats(trials).items():
        ks = [s["k"] for s in stats]
        step = min((b - a for a, b in zip(ks, ks[1:])), default=3)
        fails = [s["k"] for s in stats if not s["trainable"]]
        passes = [s["k"] for s in stats if s["trainable"] and (not fails or s["k"] < min(fails))]
        k_star = max(passes) if passes else None
        above = next((s for s in stats if s["k"] == (k_star or ks[0] - step) + step), None)
        t0 = next(t for t in trials if t["combo"] == ci)
        rows.append({"combo": ci, "label": t0["label"], "model": t0["model"], "lr": t0["lr"], "k_star": k_star,
                     "protocol": t0.get("protocol") or "correct", "seeds": max(s["n"] for s in stats),
                     "upper": ks[-1], "rule": "majority",
                     "confirmed": None if above is None else not above["trainable"],
                     "hit_upper": bool(passes) and k_star == ks[-1], "step": step,
                     "trials": sum(s["n"] for s in stats), "failed_trials": 0, "rounds": None,
                     "nonmonotone": [k for k in ks if fails and k > min(fails) and k in
                                     [s["k"] for s in stats if s["trainable"]]]})
    return rows


def depth_stats(trials: list[dict]) -> dict[int, list[dict]]:
    """Per combination, per depth: trials with a verdict, passes, mean final errors (sorted by k)."""
    groups: dict[int, dict[int, list[dict]]] = {}
    for t in trials:
        if t.get("status") != "failed" and t.get("trainable") is not None:
            groups.setdefault(t["combo"], {}).setdefault(t["k"], []).append(t)
    out = {}
    for ci, by_k in sorted(groups.items()):
        out[ci] = []
        for k, ts in sorted(by_k.items()):
            passes = sum(bool(t["trainable"]) for t in ts)
            verdicts = [t.get("verdict") for t in ts if t.get("verdict") is not None]
            out[ci].append({
                "k": k, "n": len(ts), "passes": passes,
                "trainable": verdicts[0] if verdicts else 2 * passes > len(ts),
                # median: with a few seeds, one failed seed must not drag a trainable depth's error up
                "test_err": _median([t["test_err"] for t in ts]), "train_err": _median([t["train_err"] for t in ts]),
                "test_err_mean": _mean([t["test_err"] for t in ts]),
                "test_errs": [t["test_err"] for t in ts], "train_errs": [t["train_err"] for t in ts],
                "diverged": sum(bool(t.get("diverged")) for t in ts)})
    return out


def study_table(frontier: list[dict], trials: list[dict]) -> list[dict]:
    """The study's table: one row per combination with the errors on both sides of the limit."""
    stats = depth_stats(trials)
    rows = []
    for f in frontier:
        by_k = {s["k"]: s for s in stats.get(f["combo"], [])}
        k_star, step = f["k_star"], f.get("step", 3)
        below = by_k.get(k_star) if k_star is not None else None
        above_k = (k_star + step) if k_star is not None else min(by_k, default=None)
        notes = []
        if f.get("hit_upper"):
            notes.append("limit at the upper bound" + ("" if f.get("confirmed") else ": true limit unknown"))
        if f.get("nonmonotone"):
            notes.append("passed above a failure: " + ", ".join(map(str, f["nonmonotone"])))
        if f.get("failed_trials"):
            notes.append(f"{f['failed_trials']} failed trials")
        rows.append({"variant": f.get("model"), "lr": f.get("lr"), "label": f.get("label"), "k_star": k_star,
                     "last_trainable": below, "first_untrainable": by_k.get(above_k), "above_k": above_k,
                     "trials": f.get("trials"), "rounds": f.get("rounds"), "notes": "; ".join(notes)})
    return rows


def markdown(rows: list[dict]) -> str:
    """Render study_table rows as a markdown table (final test errors in %, the median over seeds
    with the number of trainable seeds when there are several)."""
    extra = any(r["label"] != f"{r['variant']} lr={r['lr']}" for r in rows)
    head = ["variant", "lr"] + (["setting"] if extra else []) + \
        ["k*", "last trainable: test err", "first untrainable: test err", "trials", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["variant"]), _num(r["lr"])] + ([r["label"]] if extra else []) + [
            "none" if r["k_star"] is None else str(r["k_star"]),
            _cell(r["k_star"], r["last_trainable"]), _cell(r["above_k"], r["first_untrainable"]),
            str(r["trials"]), r["notes"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Final-epoch test errors; with several seeds, the median and how many seeds were trainable."]
    return "\n".join(lines)


# ---- confidence, reference comparison, ranking (pure) ----------------------------------------
def confidence_table(frontier: list[dict], trials: list[dict]) -> list[dict]:
    """One row per combination (variant x protocol x lr x whatever else varies).

    ``depths``: per probed depth, the seeds with a verdict (``n``), how many trained (``passes``),
    the fraction and its Wilson 95% interval (``low``, ``high``). ``k50``/``k50_low``/``k50_high``:
    the depth where half the seeds train, pooled over every trial of the combination (one
    (k, trained) pair per seed; crashed trials excluded), with its 95% profile-likelihood interval
    (None: that side is unbounded; k50 None: every seed trained, or none did). ``k_star``: the
    majority rule's limit (the frontier's)."""
    stats = depth_stats(trials)
    rows = []
    for f in frontier:
        ci = f["combo"]
        counted = [t for t in trials if t["combo"] == ci and t.get("status") != "failed"
                   and t.get("trainable") is not None]
        depths = []
        for s in stats.get(ci, []):
            low, high = wilson(s["passes"], s["n"])
            depths.append({"k": s["k"], "n": s["n"], "passes": s["passes"], "fraction": s["passes"] / s["n"],
                           "low": low, "high": high, "diverged": s["diverged"]})
        cross = half_trainable_depth([t["k"] for t in counted], [bool(t["trainable"]) for t in counted]) \
            if counted else None
        rows.append({
            "combo": ci, "label": f.get("label"), "variant": f.get("model"), "protocol": f.get("protocol") or "correct",
            "lr": f.get("lr"), "seeds": f.get("seeds") or max((d["n"] for d in depths), default=0),
            "rule": f.get("rule") or "majority", "step": f.get("step") or 3,
            "upper": f.get("upper") or max((d["k"] for d in depths), default=None),
            "k_star": f.get("k_star"), "hit_upper": bool(f.get("hit_upper")), "confirmed": f.get("confirmed"),
            "depths": depths, "trials": len(counted),
            "crashed": sum(t["combo"] == ci and t.get("status") == "failed" for t in trials),
            "k50": cross.k50 if cross else None, "k50_low": cross.low if cross else None,
            "k50_high": cross.high if cross else None})
    return rows


def reference_verdict(ref_k: int, low: Optional[float], high: Optional[float], step: int = 3,
                      ref_hit_bound: bool = False) -> str:
    """Is the reference k* inside the measured 50%-depth interval [low, high]?

    The reference k* is the last trainable depth while k50 lies between k* and k* + step, so the
    interval is widened to [low - step, high]; None is an open side. When the reference search hit
    its upper bound its k* is only a lower bound on the true limit, so it is consistent with any
    interval reaching k* or beyond. Returns "inside", "below" (this run trains deeper than the
    reference) or "above" (the reference trained deeper than this run)."""
    lo = -math.inf if low is None else low - step
    hi = math.inf if high is None else high
    if ref_hit_bound:
        return "inside" if hi >= ref_k else "above"
    return "below" if ref_k < lo else "above" if ref_k > hi else "inside"


def compare_reference(conf: list[dict], reference: Optional[dict] = None,
                      notes: Optional[dict] = None) -> list[dict]:
    """``confidence_table`` rows plus the reference figures and the verdict: ``ref_k``,
    ``ref_upper``, ``ref_hit_bound``, ``verdict`` (inside / below / above / no reference / no data),
    ``reason`` (one sentence) and ``note`` (the reference's caveat, ``reference.NOTES``)."""
    reference = REFERENCE if reference is None else reference
    notes = NOTES if notes is None else notes
    out = []
    for r in conf:
        ref = reference.get(r["variant"])
        row = {**r, "ref_k": None, "ref_upper": None, "ref_hit_bound": False, "note": notes.get(r["variant"], "")}
        interval = interval_str(r)
        if ref is None:
            row.update(verdict="no reference", reason="not in the original study")
        elif not r["depths"]:
            row.update(ref_upper=ref[0], ref_k=ref[1], verdict="no data", reason="no trial with a verdict")
        else:
            upper, ref_k = ref
            hit = ref_k + REFERENCE_STEP >= upper
            verdict = reference_verdict(ref_k, r["k50_low"], r["k50_high"], r["step"], hit)
            shown = f"reference k* = {ref_k}{' (its bound: a lower limit)' if hit else ''}"
            if verdict == "inside":
                open_side = r["k50_high"] is None and (r["k50_low"] is None or ref_k > r["k50_low"]) or \
                    r["k50_low"] is None and r["k50_high"] is not None and ref_k < r["k50_high"]
                reason = f"{shown} is inside {interval}"
                if open_side:
                    reason += " (open-ended: this run cannot rule it out"
                    reason += f"; its search stopped at k={r['upper']})" if r["upper"] and r["upper"] < ref_k \
                        else ")"
            elif verdict == "below":
                reason = f"{shown} is below {interval}: this run trains deeper"
            else:
                reason = f"{shown} is above {interval}: the reference trained deeper"
                if r["upper"] is not None and r["upper"] < ref_k:
                    reason += f" (this run searched only up to k={r['upper']})"
            row.update(ref_upper=upper, ref_k=ref_k, ref_hit_bound=hit, verdict=verdict, reason=reason)
        out.append(row)
    return out


def verdict_lines(comparison: list[dict]) -> list[str]:
    """One line per variant: the verdict under each of its settings (protocol, lr), then the note."""
    by_variant: dict[str, list[dict]] = {}
    for r in comparison:
        by_variant.setdefault(r["variant"], []).append(r)
    several = len({(r["protocol"], r["lr"]) for r in comparison}) > 1
    several_lr = len({r["lr"] for r in comparison}) > 1
    lines = []
    for variant, rows in by_variant.items():
        parts = []
        for r in rows:
            setting = f"protocol={r['protocol']}" + (f" lr={_num(r['lr'])}" if several_lr else "")
            word = {"inside": "INSIDE", "below": "OUTSIDE", "above": "OUTSIDE"}.get(r["verdict"], r["verdict"].upper())
            parts.append((f"{setting}: " if several else "") + f"{word}, {r['reason']}")
        line = f"- {variant}: " + "; ".join(parts)
        note = rows[0]["note"]
        lines.append(line + (f". Note: {note}." if note else "."))
    return lines


def rank_variants(conf: list[dict]) -> list[dict]:
    """Rank the variants by measured depth limit within each (protocol, lr) setting, deepest first.

    The limit is k50 where its interval is bounded on at least one side, else the majority rule's
    k* ('>= k*' when every seed trained up to the search's top, which ranks above an equal k50),
    else '< k' when no seed trained. A k50 whose interval is open on both sides (the data do not
    locate the crossing) is 'undetermined' and ranked after the rest. Ties share a rank."""
    groups: dict[tuple, list[dict]] = {}
    for r in conf:
        groups.setdefault((r["protocol"], str(r["lr"])), []).append(r)
    order = sorted(groups, key=lambda g: (g[0] != "correct", g))
    out = []
    for g in order:
        rows = []
        for r in groups[g]:
            all_trained = r["k50"] is None and r["k50_low"] is not None
            bounded = r["k50_low"] is not None or r["k50_high"] is not None
            tier = 1
            if r["k50"] is not None and bounded:
                value, shown, basis = r["k50"], f"{_k(r['k50'])} {_span(r['k50_low'], r['k50_high'])}", "k50"
            elif r["k_star"] is not None:
                value, shown, basis = r["k_star"], (">= " if all_trained else "") + str(r["k_star"]), "k*"
            elif r["k50"] is None and r["k50_high"] is not None:
                value, shown, basis = 0.0, f"< {_k(r['k50_high'])}", "no seed trained"
            elif r["k50"] is not None:
                tier, value, shown, basis = 0, r["k50"], f"{_k(r['k50'])} (0, ∞)", "undetermined"
            else:
                tier, value, shown, basis = -1, 0.0, "—", "no data"
            rows.append({"protocol": r["protocol"], "lr": r["lr"], "variant": r["variant"], "label": r["label"],
                         "limit": value, "limit_str": shown, "basis": basis, "k_star": r["k_star"],
                         "open_above": all_trained, "_key": (tier, value, all_trained)})
        rows.sort(key=lambda x: x["_key"], reverse=True)
        for i, x in enumerate(rows):
            x["rank"] = rows[i - 1]["rank"] if i and rows[i - 1]["_key"] == x["_key"] else i + 1
        for x in rows:
            x.pop("_key")
        out += rows
    return out


def mean_field_rows(conf: list[dict], variants: Optional[dict] = None) -> list[dict]:
    """``meanfield.mean_field_table`` for the sweep's variants, with the measured k* beside the
    prediction (the correct protocol's where both were run). ``variants``: name -> Variant
    (default ``models.VARIANTS``; names it does not know are left out)."""
    from .meanfield import mean_field_table
    if variants is None:
        from .models import VARIANTS as variants
    measured: dict[str, Optional[int]] = {}
    for r in sorted(conf, key=lambda r: r["protocol"] != "correct"):
        measured.setdefault(r["variant"], r["k_star"])
    names = [v for v in dict.fromkeys(r["variant"] for r in conf) if v in variants]
    return mean_field_table({v: variants[v] for v in names}, measured=measured)


# ---- markdown ----------------------------------------------------------------------------------
def interval_str(r: dict) -> str:
    """k50 and its 95% interval: '10.4 [7.2, 13.1]', '10.4 [7.2, ∞)', '> 12 [12, ∞)' (every seed
    trained), '< 3 (0, 3]' (none did), '—' (no data)."""
    k50, low, high = r.get("k50"), r.get("k50_low"), r.get("k50_high")
    if k50 is not None:
        return f"{_k(k50)} {_span(low, high)}"
    if low is not None:
        return f"> {_k(low)} {_span(low, None)}"
    if high is not None:
        return f"< {_k(high)} {_span(None, high)}"
    return "—"


def depth_cell(d: dict) -> str:
    """'9: 1/2 = 50% [9–91%]': passes / seeds, fraction, Wilson 95% interval."""
    return (f"{d['k']}: {d['passes']}/{d['n']} = {100 * d['fraction']:.0f}% "
            f"[{100 * d['low']:.0f}–{100 * d['high']:.0f}%]")


def confidence_markdown(conf: list[dict]) -> str:
    head = ["variant", "protocol", "lr", "per depth: trained/seeds = fraction [Wilson 95%]", "k50 [95%]",
            "k* (majority)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in conf:
        kstar = "none" if r["k_star"] is None else str(r["k_star"])
        if r["hit_upper"]:
            kstar += " (search's top)"
        if r["rule"] != "majority":
            kstar += f" (rule: {r['rule']})"
        lines.append("| " + " | ".join([str(r["variant"]), str(r["protocol"]), _num(r["lr"]),
                                         "; ".join(depth_cell(d) for d in r["depths"]) or "—",
                                         interval_str(r), kstar]) + " |")
    return "\n".join(lines)


def comparison_markdown(comparison: list[dict]) -> str:
    head = ["variant", "protocol", "lr", "seeds/probe", "reference k*", "this run's k* (majority)",
            "k50 [95%]", "reference inside?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in comparison:
        ref = "—" if r["ref_k"] is None else f"{r['ref_k']}" + (" (bound hit)" if r["ref_hit_bound"] else "")
        kstar = "none" if r["k_star"] is None else str(r["k_star"]) + (" (top)" if r["hit_upper"] else "")
        verdict = {"below": "no: run deeper", "above": "no: reference deeper"}.get(r["verdict"], r["verdict"])
        lines.append("| " + " | ".join([str(r["variant"]), str(r["protocol"]), _num(r["lr"]), str(r["seeds"]), ref,
                                         kstar, interval_str(r), verdict]) + " |")
    return "\n".join(lines)


def ranking_markdown(ranking: list[dict], mf_rows: Optional[list[dict]] = None) -> str:
    """The ranking with the mean-field prediction (6 xi) beside the measured limit."""
    mf = {m["variant"]: m for m in (mf_rows or [])}
    head = ["protocol", "lr", "rank", "variant", "measured limit", "k* (majority)", "mean-field k* (6 xi)",
            "theory"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for x in ranking:
        m = mf.get(x["variant"])
        if m is None:
            pred, note = "—", "no mean-field model for this variant"
        elif not m["applicable"]:
            pred, note = "n/a", m["note"]
        else:
            pred, note = _k(m["k_pred"]), "applies: " + m["note"]
        lines.append("| " + " | ".join([str(x["protocol"]), _num(x["lr"]), str(x["rank"]), str(x["variant"]),
                                         x["limit_str"] + ("" if x["basis"] == "k50" else f" ({x['basis']})"),
                                         "none" if x["k_star"] is None else str(x["k_star"]), pred, note]) + " |")
    return "\n".join(lines)


def render_report(frontier: list[dict], trials: list[dict], title: str = "Depth study",
                  sweeper: Optional[dict] = None, figures: Optional[list] = None,
                  mean_field: bool = True, variants: Optional[dict] = None) -> str:
    """The whole report as markdown: what ``main`` prints and writes to report.md."""
    conf = confidence_table(frontier, trials)
    comparison = compare_reference(conf)
    ranking = rank_variants(conf)
    mf = mean_field_rows(conf, variants) if mean_field else []
    parts = [f"# {title}", ""]
    if sweeper:
        parts += ["Sweeper: " + ", ".join(f"{k}={_num(v)}" for k, v in sweeper.items() if not isinstance(v, dict)), ""]
    parts += ["## Study table", "", markdown(study_table(frontier, trials)), "",
              "## Confidence per combination", "",
              "Per probed depth: seeds that trained / seeds with a verdict (crashed trials excluded), the fraction "
              "and its 95% Wilson interval. k50: the depth where half the seeds train, a logistic fit in log depth "
              "pooled over all the combination's trials, with its 95% profile-likelihood interval (open where the "
              "data do not bound it). k*: the last trainable depth under the sweep's rule.", "",
              confidence_markdown(conf), "",
              "## Comparison with the original study", "",
              f"Reference: SPEC section 6 (one seed per probe, lr {REFERENCE_LR:g}). The reference k* is a last "
              "trainable depth and k50 lies between k* and k* + step, so the reference counts as inside when it "
              "lies in [low - step, high].", "",
              comparison_markdown(comparison), "", *verdict_lines(comparison), "",
              "## Ranking by measured depth limit", "",
              "Within each setting, deepest first: k50 where the data cross 50%, else the majority k*. "
              "Mean-field theory (Schoenholz et al. 2017) predicts k* ~ 6 xi for plain networks only.", "",
              ranking_markdown(ranking, mf)]
    if mf:
        from .meanfield import mean_field_markdown
        parts += ["", "## Mean-field prediction", "", mean_field_markdown(mf).rstrip()]
    if figures:
        parts += ["", "## Figures", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in figures]
    return "\n".join(parts) + "\n"


def plot(frontier: list[dict], trials: list[dict], out_dir, threshold: float = 0.20) -> list[Path]:
    """Final test and train error against depth: one overview figure and one per combination."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats, paths = depth_stats(trials), []
    k_stars = {f["combo"]: f["k_star"] for f in frontier}
    labels = {f["combo"]: f["label"] for f in frontier}

    def draw(ax, ci, key, color=None, label=None, scatter=True, mark=True):
        s = stats.get(ci, [])
        line, = ax.plot([x["k"] for x in s], [100 * x[key] for x in s], "o-", color=color,
                        label=label or labels[ci])
        pts = [(x["k"], 100 * e) for x in s for e in x[key + "s"] if e is not None]
        if scatter and pts:  # every seed's final error, to show the spread near the limit
            ax.scatter(*zip(*pts), s=12, alpha=0.4, color=line.get_color())
        if mark and k_stars.get(ci) is not None:
            ax.axvline(k_stars[ci], color=line.get_color(), ls=":", lw=1.5)

    def finish(ax, title):
        ax.axhline(100 * threshold, color="gray", ls="--", lw=1, label=f"threshold {100 * threshold:g}%")
        ax.set(xlabel="depth k (conv layers)", ylabel="final error (%)", title=title, ylim=(0, 100))
        ax.legend(fontsize="small")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for key, ax in zip(("test_err", "train_err"), axes):
        for ci in stats:
            draw(ax, ci, key, scatter=False)
        finish(ax, f"final {key.split('_')[0]} error vs depth (median over seeds; dotted: k*)")
    paths.append(_save(fig, out_dir / "error_vs_depth.png"))
    for ci in stats:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        draw(ax, ci, "test_err", "C0", "test (median; dots: seeds)", mark=False)
        draw(ax, ci, "train_err", "C1", "train", mark=False)
        if k_stars.get(ci) is not None:
            ax.axvline(k_stars[ci], color="k", ls=":", lw=1.5, label=f"k* = {k_stars[ci]}")
        finish(ax, f"{labels[ci]}: k* = {k_stars.get(ci)}")
        paths.append(_save(fig, out_dir / f"error_vs_depth_{_slug(labels[ci])}.png"))
    plt.close("all")
    return paths


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _styles(conf: list[dict]):
    """Colour per variant, line style per protocol, marker per lr."""
    variants = list(dict.fromkeys(r["variant"] for r in conf))
    lrs = list(dict.fromkeys(str(r["lr"]) for r in conf))
    cmap = "tab10" if len(variants) <= 10 else "tab20"
    plt = _pyplot()
    colors = {v: plt.get_cmap(cmap)(i % (10 if cmap == "tab10" else 20)) for i, v in enumerate(variants)}
    dashes = {"correct": "-", "original": "--"}
    markers = "osD^v<>ph*"
    return lambda r: dict(color=colors[r["variant"]], ls=dashes.get(r["protocol"], ":"),
                          marker=markers[lrs.index(str(r["lr"])) % len(markers)])


def plot_fraction_trainable(conf: list[dict], out_dir, name: str = "fraction_trainable.png") -> Path:
    """Fraction of seeds trainable against depth (log x), one curve per combination, Wilson 95%
    intervals as error bars (curves nudged sideways a little so the bars do not hide each other)."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    style = _styles(conf)
    fig, ax = plt.subplots(figsize=(10, 5.5))
    shown = [r for r in conf if r["depths"]]
    for i, r in enumerate(shown):
        nudge = math.exp(0.012 * (i - (len(shown) - 1) / 2))
        ks = [d["k"] * nudge for d in r["depths"]]
        fr = [d["fraction"] for d in r["depths"]]
        err = [[max(0.0, d["fraction"] - d["low"]) for d in r["depths"]],  # max: rounding at 0/n and n/n
               [max(0.0, d["high"] - d["fraction"]) for d in r["depths"]]]
        ax.errorbar(ks, fr, yerr=err, capsize=2.5, lw=1.4, ms=4, alpha=0.85,
                    label=f"{r['variant']} ({r['protocol']}, lr={_num(r['lr'])})", **style(r))
    ax.axhline(0.5, color="gray", ls=":", lw=1.2, label="50% of seeds")
    ax.set_xscale("log")
    ks = sorted({d["k"] for r in shown for d in r["depths"]})
    if ks and len(ks) <= 15:
        ax.set_xticks(ks)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="depth k (conv layers, log scale)", ylabel="fraction of seeds trainable", ylim=(-0.04, 1.04),
           title="Fraction of seeds that train (error bars: 95% Wilson intervals)")
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    path = _save(fig, out_dir / name)
    plt.close(fig)
    return path


def plot_limits(comparison: list[dict], out_dir, name: str = "depth_limits.png") -> Path:
    """Per combination: k50 and its 95% interval (arrows: open sides) against the reference k*
    (x; a triangle where the reference search hit its bound), log-scaled depth."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    style = _styles(comparison)
    height = 0.42 * len(comparison) + 2.0
    fig, ax = plt.subplots(figsize=(9, height))
    depths = [d["k"] for r in comparison for d in r["depths"]] + [r["ref_k"] for r in comparison if r["ref_k"]]
    lo_all, hi_all = (min(depths) / 1.6, max(depths) * 1.6) if depths else (1, 10)
    for y, r in enumerate(comparison):
        st = style(r)
        low, high = r["k50_low"], r["k50_high"]
        if r["depths"]:
            a, b = low or lo_all, high or hi_all
            ax.plot([a, b], [y, y], color=st["color"], ls=st["ls"], lw=2.5)
            if low is None:
                ax.plot([a], [y], marker="<", color=st["color"])
            if high is None:
                ax.plot([b], [y], marker=">", color=st["color"])
            if r["k50"] is not None:
                ax.plot([r["k50"]], [y], marker="o", color=st["color"])
        if r["ref_k"] is not None:
            ax.plot([r["ref_k"]], [y], marker=">" if r["ref_hit_bound"] else "x", color="k", ms=8, mew=2, ls="none")
    ax.set_yticks(range(len(comparison)))
    ax.set_yticklabels([f"{r['variant']} ({r['protocol']}, lr={_num(r['lr'])})" for r in comparison], fontsize="small")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(lo_all, hi_all)
    from matplotlib.ticker import FuncFormatter
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(  # plain numbers at 2, 3 and 5 of each decade only
        lambda x, _: f"{x:g}" if round(x / 10 ** math.floor(math.log10(x))) in (2, 3, 5) else ""))
    ax.set(xlabel="depth k (conv layers, log scale)", title="Depth where half the seeds train vs the reference")
    ax.grid(axis="x", which="both", alpha=0.3)
    from matplotlib.lines import Line2D
    fig.legend(handles=[Line2D([], [], color="gray", marker="o", lw=2.5, label="k50 and 95% interval (arrow: open)"),
                       Line2D([], [], color="k", marker="x", mew=2, ls="none", label="reference k*"),
                       Line2D([], [], color="k", marker=">", ls="none", label="reference k* at its search's bound")],
               fontsize="x-small", loc="lower center", ncol=3)
    fig.tight_layout(rect=(0, 0.45 / height, 1, 1))
    path = out_dir / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m deepdepth.report", description=__doc__.splitlines()[0])
    p.add_argument("sweep_dir", type=Path)
    p.add_argument("--out", type=Path, help="where to write report.md and the PNGs (default: the sweep dir)")
    p.add_argument("--threshold", type=float, help="trainability threshold line (default: from the results, else 0.20)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-mean-field", action="store_true", help="leave out the mean-field prediction")
    args = p.parse_args(argv)
    trials = load_sweep(args.sweep_dir)
    if not trials:
        p.error(f"no trials found in {args.sweep_dir} (no frontier.json and no result.json files)")
    frontier = load_frontier(args.sweep_dir, trials)
    out = args.out or args.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    if not args.no_plots:
        threshold = args.threshold or next((t["threshold"] for t in trials if t.get("threshold")), 0.20)
        conf = confidence_table(frontier, trials)
        figures = [plot_fraction_trainable(conf, out), plot_limits(compare_reference(conf), out)]
        figures += plot(frontier, trials, out, threshold)
    doc = _frontier_doc(args.sweep_dir)
    text = render_report(frontier, trials, title=f"Depth study: {args.sweep_dir.resolve().name}",
                         sweeper=(doc or {}).get("sweeper"), figures=figures, mean_field=not args.no_mean_field)
    print(text, end="")
    (out / "report.md").write_text(text)
    for path in [out / "report.md", *figures]:
        print(f"wrote {path}", file=sys.stderr)


# ---- helpers ---------------------------------------------------------------------------------
def _protocol(sweep_dir: Path, f: dict, history: list[dict]) -> str:
    """The combination's training protocol: its sweep parameter, else its result.json's, else the default."""
    if (f.get("params") or {}).get("protocol"):
        return str(f["params"]["protocol"])
    for h in history:
        if h.get("combo") == f.get("combo") and h.get("job_dir"):
            for d in (sweep_dir / Path(h["job_dir"]).name, Path(h["job_dir"])):
                try:
                    return json.loads((d / "result.json").read_text()).get("protocol") or "correct"
                except (OSError, ValueError):
                    continue
    return "correct"


def _k(x) -> str:
    """A depth: '447', '10.4', '∞'."""
    if x is None:
        return "—"
    if x == math.inf:
        return "∞"
    return f"{x:.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:.1f}"


def _span(low, high) -> str:
    return ("(0" if low is None else f"[{_k(low)}") + ", " + ("∞)" if high is None else f"{_k(high)}]")


def _frontier_doc(sweep_dir: Path) -> Optional[dict]:
    path = sweep_dir / "frontier.json"
    return json.loads(path.read_text()) if path.exists() else None


def _labels(frontier: list[dict]) -> dict[int, str]:
    """'model lr=...' plus whatever other parameters vary between combinations."""
    params = [f.get("params", {}) for f in frontier]
    varying = [k for k in dict.fromkeys(k for p in params for k in p)
               if k not in ("model", "optim.lr", "lr") and len({str(p.get(k)) for p in params}) > 1]
    out = {}
    for i, f in enumerate(frontier):
        p = params[i]
        model = f.get("model") or p.get("model")
        lr = f.get("lr") or p.get("optim.lr", p.get("lr"))
        out[f.get("combo", i)] = " ".join([f"{model} lr={lr}"] + [f"{k}={p.get(k)}" for k in varying])
    return out


def _cell(k, s) -> str:
    if k is None or s is None:
        return "—"
    seeds = f" ({s['passes']}/{s['n']} trainable)" if s["n"] > 1 else ""
    return f"{k}: {100 * s['test_err']:.2f}%{seeds}" if s["test_err"] is not None else f"{k}: n/a"


def _num(x) -> str:
    return "—" if x is None else f"{x:g}" if isinstance(x, float) else str(x)


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return mean(xs) if xs else None


def _median(xs):
    xs = [x for x in xs if x is not None]
    return median(xs) if xs else None


def _last(xs):
    return xs[-1] if isinstance(xs, list) and xs else None


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", s).strip("_")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    main()
