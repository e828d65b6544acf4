"""Trials from other folders in a sweep's report (``python -m deepdepth.report SWEEP --add RUN``):
a single run's folder or a multirun's, each trial put into the sweep's combination trained
under the same settings (variant, protocol, lr, epochs, data, criterion, init, widths). A trial
the sweep already has (same combination, depth and seed) is not counted twice. json only."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .load import Combination, ReportError, Trial, read_json, trial_from_row
from .settings import RECORDED, network_default, settings_of, show, value, widths_value

NETWORK = ("init", "widths")  # model.* fields a trial records and a sweep may vary


def add_runs(frontier: list[Combination], trials: list[Trial], run_dirs: list) -> tuple[list[Trial], list[str]]:
    """``trials`` with every trial of ``run_dirs`` added, and one line per folder saying where its
    trials went; a ReportError for a folder with no trial record or a trial no combination fits."""
    have = {(t.combo, t.k, t.seed) for t in trials}
    out, lines = list(trials), []
    for run_dir in map(Path, run_dirs):
        paths = sorted(run_dir.rglob("result.json")) if run_dir.is_dir() else []
        if not paths:
            raise ReportError(f"--add {run_dir}: no result.json there; pass a run's output folder "
                              "(where python -m deepdepth.train wrote result.json)")
        into: dict[str, list[int]] = {}
        for path in paths:
            r = read_json(path, "delete it or rerun that job")
            for t in r.get("trials", []) if isinstance(r, dict) else []:
                c = _combination_of(frontier, r, t, path)
                key = (c.combo, int(r["k"]), t.get("seed"))
                counts = into.setdefault(c.label or c.model, [0, 0])
                if key in have:
                    counts[1] += 1
                    continue
                have.add(key)
                counts[0] += 1
                out.append(trial_from_row({"k": r["k"], **t, "combo": c.combo, "status": "ok",
                                           "job": str(path.parent), "device": r.get("device_name") or r.get("device"),
                                           "job_seconds": r.get("seconds"), "job_finished": r.get("finished_at")}))
        lines += [f"- {run_dir}: {n} trials into {name}" + (f" ({same} already in the sweep, counted once)" if same else "")
                  for name, (n, same) in into.items()]
    return out, lines


def _combination_of(frontier: list[Combination], r: dict, t: dict, path: Path) -> Combination:
    settings, _ = settings_of({}, [r])
    for c in frontier:
        if c.model == r.get("model") and all(show(settings[k]) == show(c.settings.get(k)) for k in RECORDED) \
                and all(_same(t.get(f, r.get(f)), _network(c, f)) for f in NETWORK):
            return c
    shown = " ".join(f"{k}={show(settings[k])}" for k in RECORDED)
    names = "; ".join(c.label or c.model for c in frontier)
    raise ReportError(f"{path}: model={r.get('model')} {shown} (init {t.get('init', r.get('init'))}, widths "
                      f"{r.get('widths')}) matches no combination of the sweep ({names}); add only runs "
                      "trained under one of its settings")


def _network(c: Combination, field: str) -> Any:
    """What the combination's network has for ``field``: its override, else the variant's own."""
    key = f"model.{field}"
    return c.settings[key] if key in c.settings else network_default(c.model, key)


def _same(recorded: Any, network: Any) -> bool:
    """A recorded field against the network's (None recorded: an older record, taken as the same)."""
    return recorded is None or show(widths_value(value(recorded))) == show(widths_value(value(network)))
