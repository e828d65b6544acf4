"""Reading a sweep directory: a bisect sweep's frontier.json (the committed format and the
sweeper's newer one), or any plain multirun of deepdepth.train (its job folders' result.json).
json only: no matplotlib, Hydra or Lightning."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from .points import majority_search
from .settings import RECORDED, label, network_default, settings_of, show, value, varying


FRONTIER_FIX = ("rerun the sweep's command to rewrite it from the job folders, or delete it to report "
                "from the job folders' result.json files")


class ReportError(ValueError):
    """A sweep directory the report cannot read: the message names the file and what to do."""


def read_json(path: Path, fix: str) -> Any:
    """``path`` parsed, or a ReportError naming it: unreadable, truncated or not JSON."""
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ReportError(f"cannot read {path}: {e.strerror or e} (check its permissions)") from None
    except ValueError as e:
        raise ReportError(f"{path} is truncated or not JSON ({e}); {fix}") from None


@dataclass(frozen=True)
class Trial:
    """One seed trained at one depth; ``trainable`` None (or status 'failed'): no verdict."""
    combo: int
    k: int
    seed: Optional[int] = None
    trainable: Optional[bool] = None
    status: str = "ok"
    test_err: Optional[float] = None
    train_err: Optional[float] = None  # running mean over the last epoch, as the original study logged it
    diverged: bool = False
    shared_from: Optional[int] = None  # the combination whose identical trial this reuses
    error: Optional[str] = None
    device: Optional[str] = None  # what its job trained on ("NVIDIA H200", "cpu"), where recorded
    job: Optional[str] = None  # its job folder's name: the replicas of one job share it
    job_seconds: Optional[float] = None  # that job's training time
    job_finished: Optional[str] = None  # when that job ended (ISO 8601, UTC), where recorded

    @property
    def counted(self) -> bool:
        return self.status != "failed" and self.trainable is not None


@dataclass
class Combination:
    """One grid point of a sweep (variant x settings) and what its depth search concluded."""
    combo: int
    model: str
    settings: dict[str, Any]
    assumed: frozenset = frozenset()  # settings not recorded anywhere: the package's defaults
    k_star: Optional[int] = None
    upper: Optional[int] = None
    step: int = 3
    seeds: int = 0
    rule: str = "majority"
    confirmed: Optional[bool] = None
    censored: bool = False  # every probe up to the bound trained: k* >= upper is a lower bound
    done: bool = True       # False: a time budget stopped the sweep before this search finished
    trials: int = 0
    failed_trials: int = 0
    nonmonotone: tuple = ()
    skipped: tuple = ()     # probes left untrained: a shallower probe of their round failed
    label: str = ""         # the variant and the settings that vary between combinations
    file_label: str = ""    # stable file-name stem: 'model lr=... <varying>'
    extra: dict = field(default_factory=dict)
    seed_scheme: str = "shared"  # the search's (a frontier written before schemes were recorded: shared)
    refine_scheme: Optional[str] = None  # the refinement's, where it has one
    search_trials: frozenset = frozenset()  # (k, seed) of the search's recorded probes (k None: any depth)

    @property
    def protocol(self) -> str:
        return str(self.settings.get("protocol", "correct"))

    @property
    def lr(self):
        return self.settings.get("lr")


def load_sweep(sweep_dir) -> list[Trial]:
    """Every trial of the sweep (one per seed), repeated records of a seed kept once (the last
    one with a verdict, e.g. a retry)."""
    sweep_dir = Path(sweep_dir)
    doc = _frontier_doc(sweep_dir)
    rows = doc["history"] if doc is not None else _job_trials(sweep_dir)[0]
    jobs = _JobFacts(sweep_dir)
    latest: dict[tuple, Trial] = {}
    for i, r in enumerate(rows):
        try:
            t = jobs.fill(trial_from_row(r))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            source = sweep_dir / "frontier.json" if doc is not None else "a result.json of " + str(sweep_dir)
            raise ReportError(f"{source}: trial record {i} is malformed ({type(e).__name__}: {e}); "
                              f"{FRONTIER_FIX if doc is not None else 'delete or rerun that job'}") from None
        key = (t.combo, t.k, t.seed) if t.seed is not None else (t.combo, t.k, "row", i)
        if key not in latest or t.counted or not latest[key].counted:
            latest[key] = t
    return list(latest.values())


def load_frontier(sweep_dir, trials: Optional[list[Trial]] = None) -> list[Combination]:
    """One Combination per grid point, with its labels set from the settings that vary."""
    sweep_dir = Path(sweep_dir)
    doc = _frontier_doc(sweep_dir)
    if doc is not None:
        combos = [_combination(sweep_dir, f, doc["history"]) for f in doc["frontier"]]
    else:
        trials = load_sweep(sweep_dir) if trials is None else trials
        combos = [majority_search(c, trials) for c in _job_trials(sweep_dir)[1]]
    keys = varying([c.settings for c in combos])
    for c in combos:
        for key in keys:  # a network setting some combinations override: the others' own value
            if key.startswith("model.") and key not in c.settings:
                c.settings[key] = network_default(c.model, key)
        c.label = label(c.model, c.settings, keys)
        c.file_label = label(c.model, c.settings, ["lr"] + [k for k in keys if k != "lr"])
    return combos


def sweeper_settings(sweep_dir) -> dict:
    """The sweeper's own settings (frontier.json), {} for a plain multirun."""
    return (_frontier_doc(Path(sweep_dir)) or {}).get("sweeper") or {}


def trial_from_row(r: dict) -> Trial:
    job = r.get("job") or (Path(str(r["job_dir"])).name if r.get("job_dir") else None)
    return Trial(combo=int(r["combo"]), k=int(r["k"]), seed=r.get("seed"), trainable=r.get("trainable"),
                 status=r.get("status") or "ok", test_err=_last(r.get("test_err")),
                 train_err=_last(r.get("train_err")), diverged=bool(r.get("diverged")),
                 shared_from=r.get("shared_from"), error=r.get("error"), device=r.get("device"),
                 job=job, job_seconds=r.get("job_seconds"), job_finished=r.get("job_finished"))


class _JobFacts:
    """A trial's device and job time from its job folder's result.json, where its history row
    (written before rows recorded them) leaves them out; each folder read once."""

    def __init__(self, sweep_dir: Path):
        self.sweep_dir, self.read = sweep_dir, {}

    def fill(self, t: Trial) -> Trial:
        if t.job is None or (t.device is not None and t.job_seconds is not None and t.job_finished is not None):
            return t
        if t.job not in self.read:
            try:
                r = json.loads((self.sweep_dir / t.job / "result.json").read_text())
            except (OSError, ValueError):
                r = None
            self.read[t.job] = r if isinstance(r, dict) else {}
        r = self.read[t.job]
        return replace(t, device=t.device or r.get("device_name") or r.get("device"),
                       job_seconds=t.job_seconds if t.job_seconds is not None else r.get("seconds"),
                       job_finished=t.job_finished or r.get("finished_at"))


def _combination(sweep_dir: Path, f: dict, history: list[dict]) -> Combination:
    ci = f.get("combo")
    records = [h for h in history if h.get("combo") == ci]
    params = {"optim.lr": f.get("lr"), **(f.get("params") or {})}
    if f.get("search"):
        params["search"] = f["search"]
    settings, assumed = settings_of(params, records + _job_results(sweep_dir, records))
    return Combination(
        combo=ci, model=f.get("model") or params.get("model"), settings=settings, assumed=assumed,
        k_star=f.get("k_star"), upper=f.get("upper"), step=f.get("step") or 3, seeds=f.get("seeds") or 0,
        rule=f.get("rule") or "majority", confirmed=f.get("confirmed"),
        censored=bool(f.get("censored", f.get("hit_upper"))), done=f.get("done", True) is not False,
        trials=f.get("trials") or 0, failed_trials=f.get("failed_trials") or 0,
        nonmonotone=tuple(f.get("nonmonotone") or ()), skipped=tuple(f.get("skipped") or ()),
        extra={"refine": f["refine"]} if f.get("refine") else {},
        seed_scheme=f.get("seed_scheme") or "shared", refine_scheme=(f.get("refine") or {}).get("seed_scheme"),
        search_trials=search_trials(f))


def search_trials(f: dict) -> frozenset:
    """(k, seed) of a frontier row's search probes (not its refinement's); a shared scheme's seeds are
    the same at every depth, so its trials are (None, seed)."""
    probes = [p for p in f.get("probe_history") or () if p.get("phase") != "refine"]
    if (f.get("seed_scheme") or "shared") == "shared":
        return frozenset((None, s) for p in probes for s in p.get("seeds") or ())
    return frozenset((p["k"], s) for p in probes for s in p.get("seeds") or ())


def _job_results(sweep_dir: Path, records: list[dict]) -> list[dict]:
    """The result.json of the combination's first job folder that still exists (it records the
    settings that older history rows leave out)."""
    for h in records:
        if h.get("job_dir"):
            for d in (sweep_dir / Path(h["job_dir"]).name, Path(h["job_dir"])):
                try:
                    r = json.loads((d / "result.json").read_text())
                except (OSError, ValueError):
                    continue
                if isinstance(r, dict):
                    return [r]
    return []


def _job_trials(sweep_dir: Path) -> tuple[list[dict], list[Combination]]:
    """History-like rows and bare combinations from the job folders of a plain multirun."""
    results, where = [], []
    for path in sorted(sweep_dir.rglob("result.json")):
        r = read_json(path, "delete it (its trials are left out) or rerun that job")
        if not isinstance(r, dict) or not isinstance(r.get("trials", []), list):
            raise ReportError(f"{path} is not a trial record (an object with a 'trials' list); "
                              "delete it (its trials are left out) or rerun that job")
        results.append(r)
        where.append({"job": str(path.parent.relative_to(sweep_dir)), "device": r.get("device_name") or r.get("device"),
                      "job_seconds": r.get("seconds"), "job_finished": r.get("finished_at")})
    keyed = []
    for r in results:
        settings, assumed = settings_of({}, [r])
        keyed.append((r.get("model"), tuple((k, show(settings[k])) for k in RECORDED), settings, assumed))
    order = sorted({key[:2] for key in keyed}, key=str)
    rows, combos = [], {}
    for r, job, (model, key, settings, assumed) in zip(results, where, keyed):
        ci = order.index((model, key))
        combos.setdefault(ci, Combination(ci, model, settings, assumed))
        rows += [{"k": r["k"], **t, "combo": ci, "status": "ok", **job} for t in r.get("trials", [])]
    return rows, [combos[i] for i in sorted(combos)]


def _frontier_doc(sweep_dir: Path) -> Optional[dict]:
    path = sweep_dir / "frontier.json"
    try:
        if not path.exists():
            return None
    except OSError as e:
        raise ReportError(f"cannot read {sweep_dir}: {e.strerror or e} (check its permissions)") from None
    doc = read_json(path, FRONTIER_FIX)
    if not isinstance(doc, dict) or not isinstance(doc.get("frontier"), list) or not isinstance(doc.get("history"), list):
        raise ReportError(f"{path} is not a sweep's frontier.json (an object with 'frontier' and 'history' lists); "
                          f"{FRONTIER_FIX}")
    return doc


def _last(xs):
    """The final epoch's value of a per-epoch list (or the value itself)."""
    if isinstance(xs, list):
        return xs[-1] if xs else None
    return value(xs) if isinstance(xs, str) else xs
