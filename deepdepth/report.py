"""Study table and plots from a sweep directory: ``python -m deepdepth.report <sweep_dir>``.

Loading and aggregation are pure (json/csv only, no matplotlib, Hydra or Lightning) so they are
unit-tested and easy to extend (intervals, reference comparisons); ``plot`` imports matplotlib
lazily. Works on a bisect sweep (frontier.json) and on any plain multirun of deepdepth.train
(the job folders' result.json files), so a hand-made depth grid gets the same report.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from statistics import mean, median
from typing import Optional

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
                           "criterion": r.get("criterion")})
    return trials


def load_frontier(sweep_dir, trials: Optional[list[dict]] = None) -> list[dict]:
    """One row per combination: k*, whether k*+step was confirmed untrainable, counts."""
    doc = _frontier_doc(Path(sweep_dir))
    if doc is not None:
        labels = _labels(doc["frontier"])
        return [{**r, "label": labels[r["combo"]]} for r in doc["frontier"]]
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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m deepdepth.report", description=__doc__.splitlines()[0])
    p.add_argument("sweep_dir", type=Path)
    p.add_argument("--out", type=Path, help="where to write report.md and the PNGs (default: the sweep dir)")
    p.add_argument("--threshold", type=float, help="trainability threshold line (default: from the results, else 0.20)")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    trials = load_sweep(args.sweep_dir)
    if not trials:
        p.error(f"no trials found in {args.sweep_dir} (no frontier.json and no result.json files)")
    frontier = load_frontier(args.sweep_dir, trials)
    table = markdown(study_table(frontier, trials))
    print(table)
    out = args.out or args.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(table + "\n")
    if not args.no_plots:
        threshold = args.threshold or next((t["threshold"] for t in trials if t.get("threshold")), 0.20)
        for path in plot(frontier, trials, out, threshold):
            print(f"wrote {path}")


# ---- helpers ---------------------------------------------------------------------------------
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
