"""The bisect sweeper's Hydra side: grid parsing, composing, launching, the plan and the files.

Imported lazily by ``bisect_sweeper.BisectSweeper.sweep`` (Hydra's plugin scan skips modules
named ``_*``), so discovery stays light and classes here keep their identity. The sweep loop
itself is ``deepdepth.sweep.Sweep`` (no Hydra), the search ``deepdepth.search``.
"""
from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import replace
import signal
import sys
from pathlib import Path
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

from deepdepth.files import no_room
from deepdepth.sweep import Combo, Composed, CostModel, Options, Sweep, SweepError, plan, scan
from deepdepth.seeds import seed_error
from deepdepth.sweep.records import recorded_seed_schemes
from deepdepth.sweep.plan import PLAN_DRAWS, PLAN_SLOPE
from deepdepth.sweep.setup import (assumed_limits, build_searches, focused, forecast, hint_for, mean_field_limit,
                                   print_plan, with_mixing)
from deepdepth.study import MNIST_SIZES, WIDTHS
from deepdepth.sweep.cost import device_name, steps_per_trial, width_cost
from deepdepth.sweep.trials import Job, Outcome

log = logging.getLogger("deepdepth.sweep")


class BisectError(CompactHydraException):
    """A user-facing sweep error: Hydra prints its message without a traceback."""


class HydraBackend:
    """Composes and launches jobs through whatever Hydra launcher is configured."""

    def __init__(self, hydra_context, config: DictConfig, launcher):
        self.hydra_context, self.config, self.launcher = hydra_context, config, launcher
        self.parallelism = max(1, int(OmegaConf.select(config, "hydra.launcher.n_jobs", default=1) or 1))
        self.at_start: dict[tuple, dict] = {}  # combination overrides -> its config as first composed

    def load(self, overrides: list[str]) -> DictConfig:
        try:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise ValueError(f"does not compose: {type(e).__name__}: {first}") from None
        self._as_at_start(overrides, cfg)
        return cfg

    def _as_at_start(self, overrides: list[str], cfg: DictConfig) -> None:
        """A combination composes as it did when the sweep started (its first composition): a
        config file edited under a running sweep would otherwise change what its later jobs train
        while their trials keep the old identity."""
        key = tuple(o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in JOB_KEYS)
        tree = OmegaConf.to_container(cfg, resolve=False)
        for name in ("hydra", *JOB_KEYS):
            tree.pop(name, None)
        first = self.at_start.setdefault(key, tree)
        if tree != first:
            changed = differences(first, tree)
            raise ValueError(f"composes differently from when the sweep started ({', '.join(changed[:5])} "
                             f"changed{'' if len(changed) <= 5 else f', and {len(changed) - 5} more'})")

    def compose(self, overrides: list[str]) -> Composed:
        return composed(self.load(overrides))

    def launch(self, jobs: list[Job], start: int) -> list[Outcome]:
        try:
            rets = list(self.launcher.launch([j.overrides for j in jobs], initial_job_idx=start))
            if INTERRUPTED:
                raise KeyboardInterrupt  # a Ctrl-C that Python dropped during the jobs
        except OSError as e:
            if no_room(e):  # Hydra could not write a job's files: no retry helps, the sweep stops
                where = e.filename or f"{self.config.hydra.sweep.dir} (job #{start}'s .hydra files)"
                raise OSError(e.errno, e.strerror, where) from e
            log.error("bisect: launcher raised %s: %s", type(e).__name__, e)
            return [Outcome(error=f"launcher: {type(e).__name__}: {e}") for _ in jobs]
        except Exception as e:  # e.g. submitit when SLURM kills a job: the sweep reads back what finished
            log.error("bisect: launcher raised %s: %s", type(e).__name__, e)
            return [Outcome(error=f"launcher: {type(e).__name__}: {e}") for _ in jobs]
        return [outcome(start + i, job, ret) for i, (job, ret) in enumerate(zip(jobs, rets))]


JOB_KEYS = ("k", "seed", "replicas", "seeds", "depths", "inits")  # a job's own keys, not its combination's


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Dotted paths where two config trees differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for key in sorted(set(a) | set(b), key=str)
                for d in differences(a.get(key, MISSING_VALUE), b.get(key, MISSING_VALUE), f"{where}{key}.")]
    return [] if a == b else [where.rstrip(".") or "(root)"]


MISSING_VALUE = object()
INTERRUPTED: list[int] = []


@contextlib.contextmanager
def watch_interrupts():
    """Ctrl-C remembered while the sweep runs: Python drops a KeyboardInterrupt raised inside a
    destructor (e.g. a profiler's ``__del__`` mid-trial), so the next launch raises it again."""
    def on_sigint(signum, frame):
        INTERRUPTED.append(signum)
        raise KeyboardInterrupt

    def dropped(unraisable):  # the dropped one is remembered: no 'Exception ignored' traceback
        if not issubclass(unraisable.exc_type, KeyboardInterrupt):
            hook(unraisable)

    INTERRUPTED.clear()
    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: nothing to watch
        yield
        return
    hook, sys.unraisablehook = sys.unraisablehook, dropped
    try:
        yield
    except SystemExit:  # Lightning's answer to a Ctrl-C mid-trial: say what it was
        if INTERRUPTED:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook


def outcome(num: int, job: Job, ret) -> Outcome:
    job_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg else None
    if ret.status == JobStatus.COMPLETED and isinstance(ret.return_value, dict):
        return Outcome(result=ret.return_value, job_dir=job_dir)
    if ret.status == JobStatus.FAILED and no_room(getattr(ret, "_return_value", None)):
        raise ret._return_value  # result.json on a full disk: the sweep stops, naming the file
    try:
        value = ret.return_value  # re-raises the job's exception
        error = f"job returned {type(value).__name__}, not a result dict"
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
    log.error("bisect: job #%d (%s) failed: %s", num, " ".join(job.overrides), error)
    return Outcome(error=error, job_dir=job_dir)


def composed(cfg: DictConfig) -> Composed:
    train = cfg.data.get("train_samples") or MNIST_SIZES["train"]
    test = cfg.data.get("test_samples") or MNIST_SIZES["test"]
    batch, epochs = int(cfg.data.batch_size), int(cfg.trainer.max_epochs)
    widths = cfg.model.get("widths")
    widths = tuple(widths) if widths is not None and tuple(widths) != WIDTHS else None
    return Composed(model=OmegaConf.select(cfg, "model.name"), lr=OmegaConf.select(cfg, "optim.lr"),
                    protocol=str(cfg.get("protocol", "correct")), norm=bool(cfg.model.get("norm", True)),
                    steps=steps_per_trial(epochs, train, test, batch) * width_cost(widths),
                    train_steps=epochs * math.ceil(train / batch),
                    init=str(cfg.model.init) if OmegaConf.select(cfg, "model.init") is not None else None,
                    widths=widths)


def parse_grid(config_loader, arguments: list[str], extra: Optional[list] = None) -> tuple[list[list[str]], int]:
    """Cartesian grid of the non-k arguments, parsed exactly as the basic sweeper does, then the
    ``extra`` combinations (each a list of overrides applied to the grid's first combination)."""
    parser = OverridesParser.create(config_loader=config_loader)
    kept, base_seed = [], 0
    for o in parser.parse_overrides(arguments):
        if o.get_key_element().lstrip("+~") == "seed":
            if o.is_sweep_override():
                raise BisectError("bisect sweeper: seed cannot be swept; use hydra.sweeper.seeds=N "
                                  "(N trials per probe, their seeds drawn from seed by hydra.sweeper.seed_scheme)")
            base_seed = o.value()
            if seed_error(base_seed):
                raise BisectError(f"bisect sweeper: {seed_error(base_seed)}")
            continue
        kept.append(_swept(o))
    grid = BasicSweeper.split_arguments(kept, None)[0]
    for i, combination in enumerate(extra or []):
        where = f"hydra.sweeper.extra_combinations[{i}]"
        if isinstance(combination, str) or not combination:
            raise BisectError(f"bisect sweeper: {where} must be a non-empty list of overrides, got {combination!r}")
        fixed = {}
        for o in parser.parse_overrides([str(x) for x in combination]):
            if _swept(o).is_sweep_override() or o.get_key_element().lstrip("+~") == "seed":
                raise BisectError(f"bisect sweeper: {where} sets one value per key and no seed, got "
                                  f"{o.input_line}")
            fixed[o.get_key_element()] = f"{o.get_key_element()}={o.get_value_element_as_str()}"
        row = [fixed.pop(arg.split("=", 1)[0], arg) for arg in (grid[0] if grid else [])] + list(fixed.values())
        if row in grid:
            raise BisectError(f"bisect sweeper: {where} ({' '.join(row)}) is already a combination of the sweep")
        grid.append(row)
    return grid, base_seed


def _swept(o):
    """An override the sweeper may take into its grid (k, seeds, replicas, depths and inits are its own)."""
    key = o.get_key_element().lstrip("+~")
    if key == "k":
        raise BisectError("bisect sweeper: k is the searched depth and cannot be set or swept; "
                          "use hydra.sweeper.lower / upper / step")
    if key in ("replicas", "seeds", "depths"):
        raise BisectError(f"bisect sweeper: {key} is set by the sweeper per job; use hydra.sweeper.seeds")
    if key == "inits":
        raise BisectError("bisect sweeper: inits is set by the sweeper per job; sweep model.init instead "
                          "(combinations that differ only in it train packed, one init per replica)")
    return o


def check_combos(backend: HydraBackend, grid: list[list[str]], searches: list, hints,
                 memory_replicas: Optional[bool] = None) -> list[Combo]:
    """Compose and validate every combination before any training, so a typo in the grid or a
    non-positive lr is one clear error now, not a column of 'untrainable' after hours.
    ``memory_replicas``: also check that the deepest probe fits on this machine with that many
    packed seeds (None: not checked, e.g. a dry run, or jobs that run on other machines)."""
    from deepdepth.trial.config import check_memory, validate
    from deepdepth.models import check_depth

    combos, bad = [], []
    for i, (overrides, search) in enumerate(zip(grid, searches)):
        try:
            for k in search.grid[:2]:
                check_depth(k)  # lower and lower+step: every grid depth is then a multiple of 3
            cfg = backend.load(overrides + [f"k={search.lower}", f"seed={search.seeds[0]}",
                                            f"replicas={len(search.seeds)}"])
            validate(cfg, memory=False)
            if memory_replicas:
                check_memory(cfg, k=search.grid[-1], replicas=memory_replicas)
            combos.append(Combo(i, overrides, search, composed(cfg)))
        except Exception as e:
            bad.append(f"{' '.join(overrides) or '(defaults)'}: {e}")
    if bad:
        raise BisectError("bisect sweeper: no trial started; fix these combinations first:\n  " + "\n  ".join(bad))
    for c in combos:  # the hint needs the composed model name
        inner = getattr(c.search, "base", c.search)
        if hasattr(inner, "hint") and inner.hint is None:
            inner.hint = hint_for(c.info.model, hints, mean_field_limit(c))
    return combos


def local_device() -> str:
    import torch

    return torch.cuda.get_device_name(torch.cuda.current_device()) if torch.cuda.is_available() else "cpu"


def run_sweep(sweeper, arguments: list[str]) -> list[dict]:
    opts, config = sweeper.options, sweeper.config
    backend = HydraBackend(sweeper.hydra_context, config, sweeper.launcher)
    sweep_dir = Path(config.hydra.sweep.dir)
    params = [f"{k}={v}" for k, v in (opts.params or {}).items()]
    try:
        opts.check()
    except SweepError as e:
        raise BisectError(str(e)) from None
    logging.raiseExceptions = False  # a log file on a full disk: no stack dump per line (the sweep's error says it)
    grid, base_seed = parse_grid(sweeper.hydra_context.config_loader, params + list(arguments),
                                 opts.extra_combinations)
    try:
        searches = build_searches(grid, opts, base_seed, recorded_seed_schemes(sweep_dir))
    except ValueError as e:
        raise BisectError(f"bisect sweeper: {e}") from None
    local = "slurm" not in str(OmegaConf.select(config, "hydra.launcher._target_", default="")).lower()
    replicas = (opts.seeds if opts.pack else 1) if local and not opts.dry_run else None
    combos = check_combos(backend, grid, searches, opts.hints, replicas)
    dry = opts.dry_run  # only a dry run warns of damaged records here: a sweep warns once, below
    found, next_num = scan(sweep_dir, config.hydra.output_subdir, warn=dry) if sweep_dir.exists() else ({}, 0)
    device = opts.device or "auto"
    here = local_device() if device == "auto" else device
    try:
        only = focused(combos, opts.only)
    except ValueError as e:
        raise BisectError(f"bisect sweeper: {e}") from None
    options = Options(retries=opts.retries, pack=opts.pack, time_budget=opts.time_budget,
                      max_replicas=opts.max_replicas, pack_inits=opts.pack_inits, only=only)
    limits, notes = assumed_limits(combos, opts.plan_limits, found)
    if opts.dry_run:
        return print_plan(combos, limits, notes, here, options, found, backend.parallelism, device == "auto",
                          opts.mix_depths)
    options = with_mixing(options, opts.mix_depths, device_name(here))
    options = replace(options, fits=memory_check(backend, combos, device_name(here)))
    planned = plan(combos, limits, device_name(here), options, found, backend.parallelism, options.time_budget,
                   slope=PLAN_SLOPE, draws=PLAN_DRAWS)
    try:  # a read-only or full sweep dir: one line, finished trials kept
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / "multirun.yaml")
        from deepdepth.sweep.claims import announce, wait_for_claims
        from deepdepth.sweep.lock import LOCK_NAME, sweep_lock

        with sweep_lock(sweep_dir, wait=opts.wait_for_lock):
            announce(sweep_dir / LOCK_NAME)  # the last run's orphans see the lock change hands and stop
            wait_for_claims(sweep_dir, say=log.info)
            found, next_num = scan(sweep_dir, config.hydra.output_subdir)  # again, now that the dir is ours
            if found:
                log.info("bisect: resuming, %d finished trials found in %s", len(found), sweep_dir)
            log.info("bisect: this run's %s", planned.summary())
            sweep = Sweep(sweep_dir, combos, backend, CostModel.here(device_name(here)), options, found, next_num,
                          header=opts.header(), rescan=lambda: scan(sweep_dir, config.hydra.output_subdir, warn=False),
                          forecast=lambda s: forecast(s, opts.plan_limits, backend.parallelism))
            with watch_interrupts():
                rows = sweep.run()
    except SweepError as e:  # the lock held by another sweep, a config edited under the sweep
        raise BisectError(str(e)) from None
    except KeyboardInterrupt:  # Ctrl-C between trials (within one, Lightning exits with status 1)
        raise BisectError(f"bisect sweeper: interrupted; finished trials are kept in {sweep_dir}: "
                          "rerun the same command to resume") from None
    except OSError as e:
        where = f"{e.filename}: {e.strerror}" if e.filename else f"in {sweep_dir}: {e.strerror or e}"
        raise BisectError(f"bisect sweeper: cannot write {where}; free space (or fix permissions) and rerun the same "
                          "command to resume (finished trials are kept), or choose another hydra.sweep.dir") from e
    for c in combos:
        s = c.search
        log.info("bisect %s: k*=%s%s, %s, %d rounds, %d trials", " ".join(c.overrides) or "(defaults)", s.k_star,
                 " (censored: the limit is at least the bound)" if s.censored else "",
                 "done" if s.done else "unfinished", s.rounds, sum(len(h["verdicts"]) for h in s.history))
    if only is not None:
        log.info("bisect: only=%s: %d of %d combinations trained this run; the others wait for a run "
                 "without it", list(opts.only), len(only), len(combos))
    history = sweep.history
    if history and all(t.status == "failed" for t in history):
        first = next(t.error for t in history if t.error)
        raise BisectError(f"bisect sweeper: all {len(history)} trials failed; first error: "
                          f"{first} (see {sweep_dir / 'history.csv'})")
    return rows


DEVICE_BYTES = {"h200": 141e9, "h100": 80e9}  # the cost model's devices, for plans made elsewhere
MEMORY_MARGIN = 0.8  # of the device's memory a pack may take (the estimate leaves out temporaries)


def memory_check(backend: HydraBackend, combos: list[Combo], device: str):
    """``fits(combination, depths)``: does a mixed pack fit the device (deepdepth.trial.capacity's estimate)?"""
    from deepdepth.trial.capacity import available_ram, trial_bytes

    limit = DEVICE_BYTES.get(device) or available_ram()
    if limit is None:
        return None
    cfgs = {c.index: backend.load(c.overrides + [f"k={c.search.lower}"]) for c in combos}

    def fits(ci: int, depths: list[int]) -> bool:
        return trial_bytes(cfgs[ci], max(depths), len(depths)) <= MEMORY_MARGIN * limit

    return fits
