"""BisectSweeper: one DepthSearch per grid combination, driven through any Hydra launcher.

Each round gathers the open probes of every unfinished search, reuses trials already in the
sweep dir (resume), launches the rest as one batch, retries failures, feeds the verdicts back
and rewrites frontier.json, frontier.csv and history.csv, so an interrupted study keeps all
but the trials in flight. The search logic lives in deepdepth.search, not here.
"""
# no `from __future__ import annotations`: Hydra's plugin scan execs this module outside
# sys.modules, where dataclasses cannot resolve string annotations.
import csv
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
OWNED = ("k", "seed", "replicas")  # set by the sweeper, never part of a grid combination


class BisectError(CompactHydraException):
    """A user-facing sweep error: Hydra prints its message without a traceback."""


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _canonical(override: str) -> str:
    """An override with a numeric value normalised, so ``optim.lr=0.010`` resumes ``optim.lr=1e-2``."""
    key, _, value = override.partition("=")
    try:
        return f"{key}={float(value)!r}"
    except ValueError:
        return override


def _last(xs) -> Optional[float]:
    return xs[-1] if isinstance(xs, list) and xs else None


def _runs(seeds: List[int], pack: bool) -> List[List[int]]:
    """Seeds grouped into jobs: contiguous runs (seed=s replicas=n) when packing, else singles."""
    runs: List[List[int]] = []
    for s in sorted(seeds):
        if pack and runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return runs


@dataclass
class Combo:
    overrides: List[str]
    search: Any
    model: Any = None
    lr: Any = None
    seconds: Optional[float] = None

    @property
    def key(self) -> frozenset:
        return frozenset(map(_canonical, self.overrides))

    @property
    def params(self) -> Dict[str, str]:
        return {_key(o): o.split("=", 1)[1] for o in self.overrides}


@dataclass
class Job:
    combo: int
    k: int
    seeds: List[int]
    overrides: List[str] = field(default_factory=list)


class BisectSweeper(Sweeper):
    def __init__(self, upper: int, lower: int = 3, step: int = 3, parallel: int = 1, seeds: int = 1,
                 rule: str = "majority", confirm: bool = True, pack: bool = True, retries: int = 1,
                 params: Optional[Dict[str, str]] = None,
                 upper_for: Optional[Dict[str, int]] = None) -> None:
        self.upper_for = {o.replace(" ", ""): int(u) for o, u in (upper_for or {}).items()}
        self.search_kw = dict(lower=lower, upper=upper, step=step, parallel=parallel, seeds=seeds,
                              rule=rule, confirm=confirm)
        self.pack, self.retries, self.params = pack, retries, dict(params or {})
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher = None
        self.combos: List[Combo] = []
        self.cache: Dict[tuple, dict] = {}  # (combo key, k, seed) -> finished trial on disk
        self.history: List[dict] = []
        self.next_num = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    # ---- the sweep -------------------------------------------------------------------------
    def sweep(self, arguments: List[str]) -> List[dict]:
        from deepdepth.search import DepthSearch  # lazy: plugin discovery must stay light

        self.sweep_dir = Path(self.config.hydra.sweep.dir)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        grid, base_seed = self._grid([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        try:
            self.combos = [Combo(c, DepthSearch(**{**self.search_kw, "upper": self._upper(c)}, seed=base_seed))
                           for c in grid]
        except ValueError as e:
            raise BisectError(f"bisect sweeper: {e}") from None
        self._check_combos()
        self._scan()
        if self.cache:
            log.info("bisect: resuming, %d finished trials found in %s", len(self.cache), self.sweep_dir)
        self.started = time.perf_counter()
        while True:
            wanted = [(i, k) for i, c in enumerate(self.combos) for k in c.search.next_probes()]
            for c in self.combos:
                if c.search.done and c.seconds is None:
                    c.seconds = round(time.perf_counter() - self.started, 3)
            self._write()
            if not wanted:
                break
            self._round(wanted)
        for c in self.combos:
            s = c.search
            log.info("bisect %s: k*=%s, k*+%d untrainable: %s%s, %d rounds, %d trials",
                     " ".join(c.overrides) or "(defaults)", s.k_star, s.step, s.confirmed,
                     " (hit upper bound)" if s.hit_upper else "", s.rounds, s.trials)
        if self.history and not any(r["status"] != "failed" for r in self.history):
            first = next(r["error"] for r in self.history if r["error"])
            raise BisectError(f"bisect sweeper: all {len(self.history)} trials failed; first error: "
                             f"{first} (see {self.sweep_dir / 'history.csv'})")
        return self._frontier()

    def _check_combos(self) -> None:
        """Compose and validate every combination before any training, so a typo in the grid or a
        non-positive lr is one clear error now, not a column of 'untrainable' after hours."""
        from deepdepth.config import validate
        from deepdepth.models import check_depth

        bad = []
        for c in self.combos:
            s = c.search
            try:
                for k in s.grid[:2]:
                    check_depth(k)  # lower and lower+step: every grid depth is then a multiple of 3
                cfg = self._compose(c.overrides + [f"k={s.lower}", f"seed={s.seeds[0]}", f"replicas={len(s.seeds)}"])
                validate(cfg)
            except Exception as e:
                bad.append(f"{' '.join(c.overrides) or '(defaults)'}: {e}")
        if bad:
            raise BisectError("bisect sweeper: no trial started; fix these combinations first:\n  " + "\n  ".join(bad))

    def _compose(self, overrides: List[str]) -> DictConfig:
        try:
            return self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise ValueError(f"does not compose: {type(e).__name__}: {first}") from None

    def _upper(self, overrides: List[str]) -> int:
        """A combination's bound: the first ``upper_for`` entry it matches, keyed by a grid value
        (``resnet: 900``) or, where values are ambiguous, a whole override (``"model=resnet": 900``)."""
        for o in overrides:
            for key in (o, o.split("=", 1)[-1]):
                if key in self.upper_for:
                    return self.upper_for[key]
        return self.search_kw["upper"]

    def _grid(self, arguments: List[str]):
        """Cartesian grid of the non-k arguments, parsed exactly as the basic sweeper does."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        kept, base_seed = [], 0
        for o in parser.parse_overrides(arguments):
            key = o.get_key_element().lstrip("+~")
            if key == "k":
                raise BisectError("bisect sweeper: k is the searched depth and cannot be set or swept; "
                                     "use hydra.sweeper.lower / upper / step")
            if key == "replicas":
                raise BisectError("bisect sweeper: replicas is set by the sweeper; use hydra.sweeper.seeds")
            if key == "seed":
                if o.is_sweep_override():
                    raise BisectError("bisect sweeper: seed cannot be swept; use hydra.sweeper.seeds=N "
                                         "(trials seed .. seed+N-1 per probe)")
                base_seed = int(o.value())
                continue
            kept.append(o)
        return BasicSweeper.split_arguments(kept, None)[0], base_seed

    def _round(self, wanted: List[tuple]) -> None:
        got: Dict[tuple, dict] = {}  # (combo, k, seed) -> successful trial row
        missing = []
        for ci, k in wanted:
            c = self.combos[ci]
            for s in c.search.seeds:
                hit = self.cache.get((c.key, k, s))
                if hit:
                    got[ci, k, s] = self._row(ci, k, s, "resumed", 0, **hit)
                else:
                    missing.append((ci, k, s))
        for attempt in range(self.retries + 1):
            if not missing:
                break
            by_probe: Dict[tuple, List[int]] = {}
            for ci, k, s in missing:
                by_probe.setdefault((ci, k), []).append(s)
            jobs = [Job(ci, k, run) for (ci, k), seeds in by_probe.items() for run in _runs(seeds, self.pack)]
            self._run_jobs(jobs, attempt, got)
            missing = [m for m in missing if m not in got]
        for ci, k in wanted:
            c = self.combos[ci]
            rows = [got.get((ci, k, s)) for s in c.search.seeds]
            verdict = c.search.record(k, [r["trainable"] if r else None for r in rows])
            for r in rows:
                if r:
                    self.history.append(r)
            for r in self.history:
                if r["combo"] == ci and r["k"] == k:
                    r["verdict"] = verdict

    def _run_jobs(self, jobs: List[Job], attempt: int, got: dict) -> None:
        runnable = []
        for job in jobs:
            c = self.combos[job.combo]
            job.overrides = c.overrides + [f"k={job.k}", f"seed={job.seeds[0]}", f"replicas={len(job.seeds)}"]
            try:  # compose here, as the basic sweeper does: a broken config never reaches a launcher
                cfg = self._compose(job.overrides)
            except ValueError as e:  # it composed at the start: a config file changed under the sweep
                raise BisectError(f"bisect sweeper: {' '.join(job.overrides)} {e}. It composed when the sweep "
                                  f"started: was a config file edited since? Finished trials are kept in "
                                  f"{self.sweep_dir}; rerun the same command to resume.") from None
            c.model = OmegaConf.select(cfg, "model.name", default=c.model)
            c.lr = OmegaConf.select(cfg, "optim.lr", default=c.lr)
            runnable.append(job)
        if not runnable:
            return
        num, self.next_num = self.next_num, self.next_num + len(runnable)
        log.info("bisect: launching %d jobs (#%d-#%d), attempt %d", len(runnable), num,
                 num + len(runnable) - 1, attempt + 1)
        try:
            rets = list(self.launcher.launch([j.overrides for j in runnable], initial_job_idx=num))
            crash = None
        except Exception as e:  # e.g. submitit when SLURM kills a job: read back what finished
            log.error("bisect: launcher raised %s: %s", type(e).__name__, e)
            rets, crash = [None] * len(runnable), f"launcher: {type(e).__name__}: {e}"
            self._scan()
        for i, (job, ret) in enumerate(zip(runnable, rets)):
            c = self.combos[job.combo]
            if ret is None:
                for s in job.seeds:
                    hit = self.cache.get((c.key, job.k, s))
                    if hit:
                        got[job.combo, job.k, s] = self._row(job.combo, job.k, s, "ok", attempt, **hit)
                    else:
                        self._fail(Job(job.combo, job.k, [s]), attempt, crash, num + i)
                continue
            job_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg else None
            value = ret._return_value  # not .return_value: that re-raises the job's exception
            if ret.status != JobStatus.COMPLETED or not isinstance(value, dict):
                err = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else \
                    f"job returned {type(value).__name__}, not a result dict"
                log.error("bisect: job #%d (%s) failed: %s", num + i, " ".join(job.overrides), err)
                self._fail(job, attempt, err, num + i, job_dir)
                continue
            trials = {t.get("seed"): t for t in value.get("trials", [])}
            for s in job.seeds:
                if s in trials:
                    got[job.combo, job.k, s] = self._row(job.combo, job.k, s, "ok", attempt, trials[s],
                                                         value, job_dir, num + i)
                else:
                    self._fail(Job(job.combo, job.k, [s]), attempt, f"no trial for seed {s} in the result",
                               num + i, job_dir)

    def _row(self, ci, k, seed, status, attempt, trial, result, job_dir, job_num, error=None) -> dict:
        c = self.combos[ci]
        c.model = result.get("model", c.model)  # also known when every trial was resumed
        c.lr = result.get("lr", c.lr)
        return {"combo": ci, "params": c.params, "model": result.get("model", c.model),
                "lr": result.get("lr", c.lr), "k": k, "seed": seed, "round": c.search.rounds,
                "attempt": attempt, "status": status, "train_err": _last(trial.get("train_err")),
                "test_err": _last(trial.get("test_err")), "trainable": trial.get("trainable"),
                "diverged": trial.get("diverged"), "verdict": None, "error": error,
                "criterion": result.get("criterion"), "threshold": result.get("threshold"),
                "job_num": job_num, "job_dir": str(job_dir) if job_dir else None}

    def _fail(self, job: Job, attempt: int, error: str, job_num, job_dir=None) -> None:
        for s in job.seeds:
            self.history.append(self._row(job.combo, job.k, s, "failed", attempt, {}, {}, job_dir,
                                          job_num, error=str(error)[:1000]))

    # ---- resume --------------------------------------------------------------------------------
    def _scan(self) -> None:
        """Read every job folder in the sweep dir: finished trials and the largest job number."""
        sub = self.config.hydra.output_subdir
        if sub is None:
            log.warning("bisect: hydra.output_subdir is null, so a sweep cannot be resumed")
            return
        for path in self.sweep_dir.rglob("overrides.yaml"):
            if not str(path.parent).endswith(str(sub)):
                continue
            job_dir = Path(str(path.parent)[: -len(str(sub))])
            try:
                overrides = yaml.safe_load(path.read_text()) or []
                hydra_yaml = yaml.safe_load((path.parent / "hydra.yaml").read_text())
                num = int(hydra_yaml["hydra"]["job"]["num"])
                self.next_num = max(self.next_num, num + 1)
                result_path = job_dir / "result.json"
                if not result_path.exists():
                    continue
                result = json.loads(result_path.read_text())
            except Exception as e:  # a half-written folder of a killed job: ignore it
                log.warning("bisect: cannot read %s: %s", job_dir, e)
                continue
            key = frozenset(_canonical(o) for o in overrides if _key(o) not in OWNED)
            for t in result.get("trials", []):
                self.cache[key, result["k"], t["seed"]] = dict(trial=t, result=result, job_dir=job_dir,
                                                              job_num=num)

    # ---- outputs -------------------------------------------------------------------------------
    def _frontier(self) -> List[dict]:
        rows = []
        for i, c in enumerate(self.combos):
            s, mine = c.search, [r for r in self.history if r["combo"] == i]
            rows.append({"combo": i, "params": c.params, "model": c.model, "lr": c.lr,
                         "k_star": s.k_star, "confirmed": s.confirmed, "hit_upper": s.hit_upper,
                         "done": s.done, "trials": sum(r["status"] != "failed" for r in mine),
                         "failed_trials": sum(r["status"] == "failed" for r in mine),
                         "rounds": s.rounds, "probes": len(s.history), "seconds": c.seconds,
                         "nonmonotone": s.nonmonotone, "crashed": sorted(s.crashed), **{k: s.__dict__[k] for k in ("lower", "upper", "step", "rule")},
                         "seeds": len(s.seeds), "probe_history": s.history})
        return rows

    def _write(self) -> None:
        frontier = self._frontier()
        doc = {"sweeper": {**self.search_kw, "pack": self.pack, "retries": self.retries},
               "sweep_dir": str(self.sweep_dir), "frontier": frontier, "history": self.history}
        _atomic(self.sweep_dir / "frontier.json", json.dumps(doc, indent=1, default=str) + "\n")
        _write_csv(self.sweep_dir / "frontier.csv", [{k: v for k, v in r.items() if k != "probe_history"}
                                                     for r in frontier])
        _write_csv(self.sweep_dir / "history.csv", self.history)


def _flat(row: dict) -> dict:
    """CSV row: the combination's parameters as columns, then the fields (lists joined by ';')."""
    out = dict(row.get("params", {}))
    out.update({k: (";".join(map(str, v)) if isinstance(v, list) else v) for k, v in row.items() if k != "params"})
    return out


def _write_csv(path: Path, rows: List[dict]) -> None:
    flat = [_flat(r) for r in rows]
    cols: List[str] = []
    for r in flat:
        cols += [k for k in r if k not in cols]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(flat)
    os.replace(tmp, path)


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
