"""The sweep directory: finished trials read back for a resume, and the study's files (a
combination's frontier row, frontier.json, frontier.csv, history.csv) written atomically, so a
killed sweep loses only its trials in flight. Plain json/yaml/csv: no Hydra."""
from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from ..files import atomic_write
from .trials import OWNED, override_key, trial_key, with_init

log = logging.getLogger("deepdepth.sweep")


@dataclass
class Finished:
    trial: dict
    result: dict
    job_dir: Path
    job_num: int


def scan(sweep_dir: Path, output_subdir: Optional[str], warn: bool = True) -> tuple[dict, int]:
    """Every finished trial in the sweep dir, by (trial key, k, seed), and the next job number.
    An unreadable or half-written job folder is named in a warning (``warn``: a sweep reads the
    folder more than once and warns once) and its trials retrained."""
    found: dict[tuple, Finished] = {}
    next_num = 0
    log_warning = log.warning if warn else (lambda *args: None)
    if output_subdir is None:
        log_warning("bisect: hydra.output_subdir is null, so a sweep cannot be resumed")
        return found, next_num
    for path in sorted(Path(sweep_dir).rglob("overrides.yaml")):
        if not str(path.parent).endswith(str(output_subdir)):
            continue
        job_dir = Path(str(path.parent)[: -len(str(output_subdir))])
        reading = path
        try:
            overrides = yaml.safe_load(path.read_text()) or []
            if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
                raise ValueError("not a list of overrides")
            reading = path.parent / "hydra.yaml"
            num = int(yaml.safe_load(reading.read_text())["hydra"]["job"]["num"])
            next_num = max(next_num, num + 1)
            reading = job_dir / "result.json"
            if not reading.exists():
                continue
            result = json.loads(reading.read_text())
            # a mixed-depth pack records each trial's own k
            trials = [(t.get("k", result["k"]), t["seed"], t) for t in _checked_trials(result)]
            reading = path.parent / "config.yaml"
            config = yaml.safe_load(reading.read_text()) or {}
            if not isinstance(config, dict) or not isinstance(config.get("model") or {}, dict):
                raise ValueError("not a config mapping")
        except Exception as e:  # a killed job's folder, or a file of the wrong shape
            log_warning("bisect: cannot read %s (%s: %s); its trials will be trained again",
                        reading, type(e).__name__, e)
            continue
        if result.get("debug"):
            continue  # a fast_dev_run-like trial is never a verdict
        norm = bool((config.get("model") or {}).get("norm", True))
        inits = config.get("inits")  # an init-packed job: each replica is its own init's combination
        for i, (k, seed, t) in enumerate(trials):
            mine = with_init(overrides, inits[i]) if isinstance(inits, list) and i < len(inits) else overrides
            for key in {trial_key(mine), trial_key(mine, protocol_free=not norm)}:
                found[key, k, seed] = Finished(t, result, job_dir, num)
    return found, next_num


def _checked_trials(result) -> list[dict]:
    """The trials of a result.json, or ValueError saying how the record is not one."""
    def whole(x):
        return isinstance(x, int) and not isinstance(x, bool)

    if not isinstance(result, dict) or not isinstance(result.get("trials"), list) or not whole(result.get("k")):
        raise ValueError("not a trial record (an object with an integer 'k' and a 'trials' list)")
    for t in result["trials"]:
        if not isinstance(t, dict) or not whole(t.get("seed")) or not whole(t.get("k", 0)) \
                or t.get("trainable") not in (True, False, None):
            raise ValueError(f"trial {t!r:.80} has no integer 'seed' (and 'k'), or a 'trainable' not true/false/null")
    return result["trials"]


def written_history_rows(sweep_dir: Optional[Path]) -> int:
    """How many trial rows the sweep dir's frontier.json holds (0: none, or unreadable)."""
    try:
        return len(json.loads((Path(sweep_dir) / "frontier.json").read_text())["history"])
    except (TypeError, OSError, ValueError, KeyError):
        return 0


def recorded_seed_schemes(sweep_dir: Path) -> dict[str, tuple[str, Optional[str]]]:
    """Each recorded combination's seed schemes, (search, refinement), by ``params_id`` of its
    parameters: a resumed combination keeps drawing seeds as its trials were drawn. A row
    written before schemes were recorded is the original study's ``shared``; a refinement
    not yet begun has none (None)."""
    try:
        rows = json.loads((Path(sweep_dir) / "frontier.json").read_text())["frontier"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    out = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("params"), dict):
            refine = row.get("refine") if isinstance(row.get("refine"), dict) else None
            later = refine.get("seed_scheme", "shared") if refine and refine.get("seeds_at") else None
            out[params_id(row["params"])] = (row.get("seed_scheme") or "shared", later)
    return out


def params_id(params: dict) -> str:
    """A combination's identity across runs: its grid parameters, order aside."""
    return json.dumps({str(k): str(v) for k, v in params.items()}, sort_keys=True)


def write_outputs(sweep_dir: Path, doc: dict) -> None:
    """frontier.json (everything), frontier.csv (one row per combination), history.csv (per trial)."""
    atomic_write(sweep_dir / "frontier.json", json.dumps(doc, indent=1, default=str) + "\n")
    write_csv(sweep_dir / "frontier.csv", [{k: v for k, v in r.items() if k != "probe_history"}
                                           for r in doc["frontier"]])
    write_csv(sweep_dir / "history.csv", doc["history"])


def flat(row: dict) -> dict:
    """CSV row: the combination's parameters as columns, then the fields (lists joined by ';')."""
    out = dict(row.get("params", {}))
    out.update({k: (";".join(map(str, v)) if isinstance(v, list) else v) for k, v in row.items() if k != "params"})
    return out


def write_csv(path: Path, rows: list[dict]) -> None:
    rows = [flat(r) for r in rows]
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, text.getvalue())


__all__ = ["Finished", "OWNED", "atomic_write", "flat", "override_key", "scan", "write_csv", "write_outputs"]


def frontier_row(c, mine: list) -> dict:
    """frontier.json's record of one combination (a driver ``Combo``): its search's state and
    its trials (``mine``: the combination's ``Trial`` records)."""
    s = c.search
    return {
        "combo": c.index, "params": c.params, "model": c.info.model, "lr": c.info.lr,
        "protocol": c.info.protocol, "k_star": s.k_star, "confirmed": s.confirmed,
        "censored": s.censored, "hit_upper": s.censored, "done": s.done, "search": search_name(s),
        "hint": getattr(s, "hint", None), "trials": sum(t.status != "failed" for t in mine),
        "failed_trials": sum(t.status == "failed" for t in mine),
        "shared_trials": sum(t.status == "shared" for t in mine), "rounds": s.rounds,
        "probes": len(s.history), "seconds": c.seconds, "nonmonotone": s.nonmonotone,
        "crashed": sorted(getattr(s, "crashed", ())), "skipped": sorted(getattr(s, "skipped", ())),
        "lower": s.lower, "upper": s.upper,
        "step": s.step, "rule": s.rule, "seeds": len(s.seeds),
        "seed_scheme": getattr(getattr(s, "base", s), "seed_scheme", None), "probe_history": s.history,
        **refinement(s)}


def search_name(search) -> str:
    base = getattr(search, "base", None)
    return f"{type(search).__name__}({type(base).__name__})" if base is not None else type(search).__name__


def refinement(search) -> dict:
    """A refinement phase's result for the frontier: k50's interval and the seeds it took."""
    if not hasattr(search, "interval"):
        return {}
    iv = search.interval
    return {"refine": {"width": search.width, "fraction": search.fraction, "level": search.level,
                       "reached": search.reached,
                       "seed_scheme": search.seed_scheme,
                       "stopped": search.stopped, "k50": iv.k50 if iv else None,
                       "bracket": list(iv.bracket) if iv and iv.bracket else None,
                       "low": iv.low if iv else None, "high": iv.high if iv else None,
                       "seeds_at": {str(k): n for k, n in sorted(search.seeds_at.items())}}}
