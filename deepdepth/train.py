"""Hydra entry point: ``python -m deepdepth.train model=resnet k=447``.

``train(cfg, output_dir, callbacks=..., interactive=...)`` builds the data, network, module,
callbacks and trainer from a composed config (loggers and added callbacks from the ``logger``
and ``callbacks`` groups, deepdepth.trial.components), fits, and returns the trial's result; ``main``
validates, writes ``result.json`` in the run directory (atomically), logs the result in one line
and returns the same dict, the value a sweeper reads.
"""
from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import platform
import sys
import time
import warnings
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from . import __version__
from .trial.callbacks import Trainability
from .trial.components import build_callbacks, build_loggers
from .trial.config import ConfigError, validate
from .trial.data import DataError, MNISTDataModule
from .trial.devices import (backend_flags, claim_gpu, cudnn_benchmark, denormals_flushed, device_label, flush_denormals,
                      gpu_names, host, trains_on_cpu)
from .trial.diagnostics import SignalDiagnostics
from .models import DepthNet, conf_dir, count_parameters
from .study import WIDTHS
from .trial.module import DepthClassifier
from .command_line import check_command_line
from .files import WriteError, atomic_write, no_room
from .sweep.claims import claim, stop_orphan, sweep_gone, watch

log = logging.getLogger("deepdepth")
# Lightning notices that say nothing about a trial (epoch-level logging is deliberate here).
for _pattern in (".*log_every_n_steps.*", ".*Experiment logs directory.*", ".*LeafSpec.*"):
    warnings.filterwarnings("ignore", message=_pattern)


def trial_seeds(cfg: DictConfig) -> list[int]:
    """Each replica's seed: ``seeds`` when a sweep lists them, else seed .. seed+replicas-1."""
    if cfg.get("seeds") is not None:
        return [int(s) for s in cfg.seeds]
    return [cfg.seed + i for i in range(cfg.replicas)]


def trial_depths(cfg: DictConfig) -> list[int]:
    """Each replica's depth: ``depths`` for a mixed-depth pack, else k for all."""
    return [int(d) for d in cfg.depths] if cfg.get("depths") is not None else [cfg.k] * cfg.replicas


def trial_inits(cfg: DictConfig) -> str | list[str]:
    """Each replica's init: ``inits`` for an init-packed job (a sweep over init gains), else model.init."""
    return [str(i) for i in cfg.inits] if cfg.get("inits") is not None else cfg.model.init


def model_widths(cfg: DictConfig) -> list[int]:
    """Channels per stage: ``model.widths``, the study's 4, 8, 16 where a config has none."""
    widths = cfg.model.get("widths")
    return list(widths) if widths is not None else list(WIDTHS)


def build(cfg: DictConfig) -> tuple[MNISTDataModule, DepthClassifier]:
    """The data module and the Lightning module (network, optimizer, protocol) a config describes."""
    seeds = trial_seeds(cfg)
    m = cfg.model
    net = DepthNet(cfg.k, activation=m.activation, norm=m.norm, residual=m.residual, init=trial_inits(cfg),
                   seeds=seeds, branch_gain=m.get("branch_gain", False),
                   depths=trial_depths(cfg) if cfg.get("depths") is not None else None, widths=model_widths(cfg))
    net.variant = m.name
    data_kw = dict(root=cfg.data.root, batch_size=cfg.data.batch_size, train_samples=cfg.data.train_samples,
                   test_samples=cfg.data.test_samples, check_md5=cfg.data.check_md5, download=cfg.data.download)
    data = MNISTDataModule(**data_kw, seeds=seeds)
    data.save_hyperparameters({**data_kw, "seeds": seeds})  # hparams.yaml, beside the module's
    module = DepthClassifier(net, optim=OmegaConf.to_container(cfg.optim, resolve=True),
                             protocol=cfg.protocol, fast=cfg.fast, memory_format=cfg.get("memory_format", "auto"))
    return data, module


def train(cfg: DictConfig, output_dir: str | Path = ".", *, callbacks: Iterable[L.Callback] = (),
          interactive: bool = True) -> dict:
    """Run one trial (S packed seeds) and return its result record.

    ``callbacks`` are added to the study's own (benchmarks and notebooks time or inspect a trial
    this way). ``interactive=False`` (sweeps, ``run_trial``) turns off the progress bar and
    Lightning's per-trial banners; the study's own lines stay.
    """
    validate(cfg)
    output_dir = Path(output_dir)
    started = time.perf_counter()
    # set before the network and the data make torch start its worker threads, which keep the
    # setting they started with
    flush = flush_denormals(cfg.get("flush_denormal", "auto"), trains_on_cpu(cfg.trainer.accelerator), cfg.model.norm)
    precision = cfg.get("precision", "fp32")
    with denormals_flushed(flush) as flushed:
        data, module, verdict, trainer, searched = _fit(cfg, output_dir, callbacks, interactive, precision)
    trials = [{"k": k, **t} for k, t in zip(trial_depths(cfg), verdict.verdicts)]
    inits = trial_inits(cfg)  # each trial's own init (an init-packed job gives each its own)
    trials = [{**t, "init": i} for t, i in zip(trials, inits if isinstance(inits, list) else [inits] * len(trials))]
    result = {
        "model": cfg.model.name, "k": cfg.k, "lr": cfg.optim.get("lr"), "epochs": cfg.trainer.max_epochs,
        "criterion": cfg.trainability.criterion, "threshold": cfg.trainability.threshold,
        "protocol": cfg.protocol, "seeds": trial_seeds(cfg), "widths": model_widths(cfg),
        "train_samples": cfg.data.train_samples, "test_samples": cfg.data.test_samples,
        "trials": trials, "complete": verdict.complete, "debug": verdict.debug,
        "optimizer_steps": trainer.global_step, "seconds": round(time.perf_counter() - started, 3),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),  # with seconds: when it ran
        "params": count_parameters(module.net) // module.net.replicas, "device": module.trained_on,
        "device_name": device_label(module.trained_on), "host": host(),
        "precision": precision, "cudnn_benchmark": searched, "norm": bool(cfg.model.norm), "flush_denormal": flushed,
        "memory_format": "channels_last" if module.channels_last else "contiguous", "cuda_graph": module.cuda_graph,
        "compile": module.compiled,  # the CPU's whole-step torch.compile: used, reason, compile_seconds, failed
        "versions": {"deepdepth": __version__, "torch": torch.__version__, "lightning": L.__version__,
                     "python": platform.python_version()},
    }
    if len(trials) == 1:  # a single seed: its record at the top level too
        result.update({key: trials[0][key] for key in ("seed", "train_err", "test_err", "trainable", "diverged")})
    return result


def _fit(cfg: DictConfig, output_dir: Path, callbacks: Iterable[L.Callback], interactive: bool, precision: str):
    """Build the data, network, verdict and trainer, and fit: the trial's training."""
    data, module = build(cfg)
    data.prepare_data()  # a missing or corrupt data set fails here, before any training
    verdict = Trainability(cfg.trainability.threshold, cfg.trainability.criterion)
    trainer_kw = OmegaConf.to_container(cfg.trainer, resolve=True)
    if trainer_kw["enable_progress_bar"] is None:
        trainer_kw["enable_progress_bar"] = interactive
    trainer_kw.setdefault("num_sanity_val_steps", 0)
    trainer_kw.setdefault("benchmark", None)
    trainer_kw.setdefault("default_root_dir", str(output_dir))  # checkpoints there with logger=none too
    own = [verdict] + ([SignalDiagnostics()] if cfg.get("diagnostics", False) else [])
    with _quiet(not interactive), backend_flags(precision), \
            _device(trainer_kw, cfg.get("gpu_jobs_per_device", 1)):
        L.seed_everything(cfg.seed, verbose=False)
        trainer = L.Trainer(**trainer_kw, callbacks=own + build_callbacks(cfg) + list(callbacks),
                            logger=build_loggers(cfg, output_dir) or False)
        searched = cudnn_benchmark()  # as the Trainer left it (trainer.benchmark)
        try:
            trainer.fit(module, datamodule=data)
        finally:
            _release(module)
    return data, module, verdict, trainer, searched


def _release(module: DepthClassifier) -> None:
    """Hand a finished trial's CUDA graphs and their memory pool back before the next trial."""
    module.release_step()
    gc.collect()  # the runner and the module reference each other
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def _quiet(enabled: bool):
    """Lightning's per-trial banners (GPU/TPU available, logger tips, 'max_epochs reached')
    silenced, for sweeps; warnings and errors still show."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*available but not used.*")
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


@contextlib.contextmanager
def _device(trainer_kw: dict, jobs_per_device: int | None):
    """Pick the device: on a GPU machine, a slot of a GPU (``gpu_jobs_per_device`` trials share
    one, so parallel sweep jobs queue instead of piling onto it; null: no limit, the first GPU)."""
    if trainer_kw["devices"] is not None:
        yield
        return
    gpus = torch.cuda.device_count() if trainer_kw["accelerator"] in ("auto", "gpu", "cuda") else 0
    if gpus and jobs_per_device:
        with claim_gpu(gpus, jobs_per_device=jobs_per_device, names=gpu_names(gpus)) as index:
            trainer_kw["devices"] = [index]
            yield
    else:
        trainer_kw["devices"] = 1
        yield


def summary_line(cfg: DictConfig, result: dict) -> str:
    """The trial's result in one line: each seed's verdict, or why there is none."""
    def verdict(t: dict) -> str:
        if t["trainable"] is None:
            return "no verdict" + (" (debug run)" if result["debug"] else " (stopped before its last epoch)")
        return ("trainable" if t["trainable"] else "not trainable") + (" (diverged)" if t["diverged"] else "")
    return f"{cfg.model.name} k={cfg.k}: " + ", ".join(f"seed {t['seed']}: {verdict(t)}" for t in result["trials"])


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")  # the checkout's or the wheel's
def run(cfg: DictConfig) -> dict:
    """Hydra's task: one trial, its result logged in one line and written as result.json. A job
    of a sweep claims its folder and stops, without a result, once its sweep is gone."""
    logging.raiseExceptions = False  # a log file on a full disk: no stack dump per line (the result's write says it)
    hydra_cfg = HydraConfig.get()
    interactive = hydra_cfg.mode != RunMode.MULTIRUN
    if interactive:
        return _trial(cfg, hydra_cfg, interactive)
    with claim(hydra_cfg.runtime.output_dir):
        watch()
        return _trial(cfg, hydra_cfg, interactive)


def _trial(cfg: DictConfig, hydra_cfg, interactive: bool) -> dict:
    out = Path(hydra_cfg.runtime.output_dir)
    try:
        result = train(cfg, out, interactive=interactive)
    except (ConfigError, DataError) as exc:  # a bad value (checked once, by train), missing or corrupt data
        if not interactive or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"deepdepth: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if not no_room(exc) or exc.filename:
            raise
        # a logger's or a checkpoint's file (their errors name none): the trial's folder
        _cannot_write(WriteError(exc.errno, exc.strerror, f"{out} (a log or checkpoint in it)"), interactive)
    gone = None if interactive else sweep_gone()
    if gone:  # its sweep ended while it trained: a rerun trains it again, so no record of it
        stop_orphan(gone)
    path = out / "result.json"
    try:
        atomic_write(path, json.dumps(result, indent=2) + "\n")
    except OSError as exc:
        log.info("%s (not saved)", summary_line(cfg, result))
        _cannot_write(exc, interactive)
    log.info("%s -> %s", summary_line(cfg, result), path)  # only once the file is there
    return result


def _cannot_write(exc: OSError, interactive: bool) -> None:
    """A sweep's job raises (its sweep stops, naming the file); a single run says so in one line."""
    if not interactive or os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise exc
    print(f"deepdepth: error: {exc}; free space (or fix the folder's permissions) and run the trial again",
          file=sys.stderr)
    sys.exit(2)


def main() -> None:
    """``python -m deepdepth.train`` (``deepdepth-train``): an override Hydra cannot parse is one
    line with the way to quote it; then Hydra runs the trial, or the sweep."""
    logging.raiseExceptions = False
    check_command_line(sys.argv[1:])
    run()


if __name__ == "__main__":
    main()
