"""Checks on the trial's own keys and on the Lightning Trainer options a trial can honour, run
before anything is built: an option the training step would silently ignore is refused by name."""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from .components import entries, missing_extra
from .config import ConfigError
from .devices import FLUSH_DENORMAL
from .models.init import check_init
from .module import MEMORY_FORMATS
from .seeds import seed_error

PRECISIONS = ("fp32", "tf32")
LIGHTNING_FP32 = (None, 32, "32", "32-true")


def check_trial_options(cfg: DictConfig) -> None:
    """Raise ConfigError for the first option that cannot be honoured."""
    for ok, message in _checks(cfg):
        if not ok:
            raise ConfigError(message)


def _checks(cfg: DictConfig):
    precision = cfg.get("precision", "fp32")
    yield (precision in PRECISIONS, f"precision={precision!r} is unknown; choose fp32 (the original study's "
                                    "arithmetic, the default) or tf32 (TensorFloat-32 convolutions and matmuls on a GPU)")
    layout = cfg.get("memory_format", "auto")
    yield (layout in MEMORY_FORMATS, f"memory_format={layout!r} is unknown; choose auto (fast's choice: channels-last "
                                     "on the CPU, the standard layout on a GPU), channels_last or contiguous")
    flush = cfg.get("flush_denormal", "auto")
    yield (flush in FLUSH_DENORMAL, f"flush_denormal={flush!r} is unknown; choose auto (flush denormal floats to zero "
                                    "on the CPU for a network without normalisation), true (on the CPU for any) or false")
    jobs = cfg.get("gpu_jobs_per_device", 1)
    yield (jobs is None or (isinstance(jobs, int) and not isinstance(jobs, bool) and jobs >= 1),
           f"gpu_jobs_per_device must be a positive integer or null (no limit), got {jobs!r}")
    yield from _pack_checks(cfg)
    t = cfg.trainer
    yield ("logger" not in t, "trainer.logger is set by deepdepth from the logger group: choose logger=csv (the "
                              "default), tensorboard, wandb, mlflow or none, or several: logger=[csv,tensorboard]")
    yield ("callbacks" not in t, "trainer.callbacks is set by deepdepth from the callbacks group: add a Lightning "
                                 "callback with +callbacks.NAME._target_=CLASS (and +callbacks.NAME.ARG=VALUE)")
    yield from _component_checks(cfg)
    devices = t.get("devices")
    single = devices is None or devices == 1 or ((OmegaConf.is_list(devices) or isinstance(devices, (list, tuple)))
                                                 and len(devices) == 1)
    yield (single, f"trainer.devices={devices!r}: a trial trains on one device (its step drives the optimizer, "
                   "so data-parallel training would not synchronise gradients); pack seeds with replicas=S "
                   "or run parallel jobs (hydra/launcher=joblib), one GPU slot each")
    yield (t.get("precision") in LIGHTNING_FP32,
           f"trainer.precision={t.get('precision')!r} is not honoured: the training step runs outside Lightning's "
           "precision plugin, in float32 as the study did (precision=tf32 allows TensorFloat-32 on a GPU)")
    yield (t.get("accumulate_grad_batches", 1) == 1,
           "trainer.accumulate_grad_batches must be 1: every batch is one SGD step, as in the study")
    yield (t.get("gradient_clip_val") is None, "trainer.gradient_clip_val is not honoured: the study's SGD does not clip")
    every = t.get("check_val_every_n_epoch", 1)
    yield (isinstance(every, int) and every >= 1 and t.max_epochs % every == 0,
           f"trainer.check_val_every_n_epoch={every!r}: the verdict needs the test error after the last epoch; "
           f"use a divisor of trainer.max_epochs={t.max_epochs}")
    yield (t.get("limit_val_batches") != 0, "trainer.limit_val_batches=0: the verdict needs a test pass")


def _pack_checks(cfg: DictConfig):
    """``seeds`` and ``depths`` (a sweep's mixed pack): one per replica, depths within k."""
    for key in ("seeds", "depths"):
        values = cfg.get(key)
        if values is None:
            continue
        ok = OmegaConf.is_list(values) and len(values) == cfg.replicas and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)
        yield (ok, f"{key}={values!r} must list one non-negative integer per replica (replicas={cfg.replicas})")
        if ok and key == "seeds":
            bad = next((v for v in values if seed_error(v)), None)
            yield (bad is None, f"seeds: {seed_error(bad, 'seed')}")
    depths = cfg.get("depths")
    if depths is not None and OmegaConf.is_list(depths) and len(depths):
        yield (max(depths) == cfg.k and all(d > 0 and d % 3 == 0 for d in depths),
               f"depths={list(depths)} must be positive multiples of 3 whose deepest is k={cfg.k}")
    inits = cfg.get("inits")
    if inits is not None:
        yield (OmegaConf.is_list(inits) and len(inits) == cfg.replicas and all(isinstance(i, str) for i in inits),
               f"inits={inits!r} must list one init spec per replica (replicas={cfg.replicas}), "
               "e.g. inits=['fan_in:0.5','fan_in:0.7']")
        for spec in inits:
            yield (_init_error(spec) is None, f"inits: {_init_error(spec)}")


def _init_error(spec) -> str | None:
    try:
        check_init(spec)
    except ValueError as e:
        return str(e)
    return None


def _component_checks(cfg: DictConfig):
    """Each logger and callback entry names a class; a logger's optional package is installed."""
    for group in ("logger", "callbacks"):
        for name, entry in entries(cfg, group).items():
            target = entry.get("_target_") if OmegaConf.is_dict(entry) else None
            yield (target is not None, f"{group}.{name} needs a _target_ (a Lightning "
                                       f"{'logger' if group == 'logger' else 'callback'} class), got {entry!r}")
            extra = missing_extra(target) if group == "logger" and target else None
            yield (extra is None, f"logger.{name} ({target}) needs the {extra} package, which is not installed: "
                                  f"pip install 'deepdepth[{extra}]'")
