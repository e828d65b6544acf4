"""Checks on a composed config, run before anything is built or trained: one set shared by a
single trial (``python -m deepdepth.train``, ``train()``, ``run_trial``) and a sweep (every grid
combination, before its first job). Each failure is one line naming the value and what to do."""
from __future__ import annotations

import math

from omegaconf import DictConfig, OmegaConf

from .components import entries, missing_extra
from .devices import FLUSH_DENORMAL
from ..models import check_depth, check_init
from ..models.blocks import ACTIVATIONS, check_widths
from ..seeds import MAX_SEED, seed_error
from .verdict import CRITERIA

PROTOCOLS = ("correct", "original")  # original: BatchNorm frozen after the first test, as the original notebook
FAST = ("auto", True, False, "compile")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
PRECISIONS = ("fp32", "tf32")
LIGHTNING_FP32 = (None, 32, "32", "32-true")


class ConfigError(ValueError):
    """A config value that would make the trial meaningless."""


def validate(cfg: DictConfig, memory: bool = True) -> None:
    """Raise ConfigError for the first bad value. ``memory``: also refuse a trial whose estimated
    memory exceeds what this machine's device has (a sweeper that launches elsewhere skips it)."""
    bad = non_finite(cfg)
    if bad:
        raise ConfigError(f"{bad[0][0]}={bad[0][1]} is not a finite number (JSON records have no "
                          f"Infinity or NaN); give a finite value")
    for check, value, key in ((check_depth, cfg.k, ""), (check_init, cfg.model.init, "model.init: ")):
        try:
            check(value)
        except ValueError as exc:
            raise ConfigError(key + str(exc)) from None
    for ok, message in (*_checks(cfg), *_trial_option_checks(cfg)):
        if not ok:
            raise ConfigError(message)
    counts = _sample_counts(cfg)
    for split in ("train", "test"):
        asked = cfg.data[f"{split}_samples"]
        if counts and asked is not None and asked > counts[split]:
            raise ConfigError(f"data.{split}_samples={asked}, but the data under {cfg.data.root} holds only "
                              f"{counts[split]} {split} images; use at most {counts[split]}, or null for all")
    if memory:
        check_memory(cfg, counts=counts)


def check_memory(cfg: DictConfig, k: int | None = None, replicas: int | None = None, counts: dict | None = None) -> None:
    """Refuse ``cfg`` at depth ``k`` with ``replicas`` packed seeds if it cannot fit on this machine."""
    from .capacity import memory_problem
    problem = memory_problem(cfg, k, replicas, counts)
    if problem:
        raise ConfigError(problem)


def _checks(cfg: DictConfig):
    yield cfg.model.activation in ACTIVATIONS, \
        f"model.activation={cfg.model.activation!r} is unknown; choose one of {sorted(ACTIVATIONS)}"
    widths = cfg.model.get("widths")
    yield widths is None or _widths_error(widths) is None, _widths_error(widths)
    lr, momentum = cfg.optim.get("lr"), cfg.optim.get("momentum", 0)
    yield lr_error(lr) is None, lr_error(lr)
    yield momentum is None or (_number(momentum) and 0 <= momentum < 1), \
        f"optim.momentum must be in [0, 1), got optim.momentum={momentum!r}"
    yield _whole(cfg.trainer.max_epochs, 1), \
        f"trainer.max_epochs must be at least 1, got trainer.max_epochs={cfg.trainer.max_epochs!r}"
    yield cfg.trainability.criterion in CRITERIA, \
        f"trainability.criterion={cfg.trainability.criterion!r} is unknown; choose one of {list(CRITERIA)}"
    yield _number(cfg.trainability.threshold) and 0 < cfg.trainability.threshold <= 1, \
        f"trainability.threshold must be in (0, 1], got {cfg.trainability.threshold!r}"
    yield _whole(cfg.replicas, 1), f"replicas must be a positive integer, got replicas={cfg.replicas!r}"
    yield seed_error(cfg.seed) is None, seed_error(cfg.seed)
    if cfg.get("seeds") is None and seed_error(cfg.seed) is None and _whole(cfg.replicas, 1):
        last = cfg.seed + cfg.replicas - 1
        yield last <= MAX_SEED, (f"seed={cfg.seed} replicas={cfg.replicas} trains seeds up to {last}, past 2**32-1 "
                                 "(torch seeds with 32 bits: they would repeat seeds from 0)")
    yield protocol_error(cfg.protocol) is None, protocol_error(cfg.protocol)
    yield fast_error(cfg.fast) is None, fast_error(cfg.fast)
    yield _whole(cfg.data.batch_size, 1), \
        f"data.batch_size must be a positive integer, got data.batch_size={cfg.data.batch_size!r}"
    for key in ("train_samples", "test_samples"):
        n = cfg.data[key]
        yield n is None or _whole(n, 1), f"data.{key} must be a positive integer or null, got data.{key}={n!r}"


def non_finite(cfg: DictConfig) -> list[tuple[str, float]]:
    """(dotted key, value) of every infinite or NaN float in the config (Hydra's own node aside)."""
    found = []

    def walk(node, path):
        if isinstance(node, float) and not math.isfinite(node):
            found.append((".".join(map(str, path)), node))
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            if path or key != "hydra":
                walk(value, path + [key])

    walk(OmegaConf.to_container(cfg, resolve=False), [])
    return found


def _sample_counts(cfg: DictConfig) -> dict | None:
    from .data import sample_counts
    root = cfg.data.get("root")
    return sample_counts(root) if root else None


def _widths_error(widths) -> str | None:
    try:
        check_widths(list(widths) if OmegaConf.is_list(widths) else widths)
    except ValueError as e:
        return str(e)
    return None


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _whole(x, least: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= least


# one line per value, shared by the config checks and ``DepthClassifier`` built from Python
def lr_error(lr) -> str | None:
    return None if _number(lr) and lr > 0 else f"optim.lr must be positive, got optim.lr={lr!r}"


def protocol_error(protocol) -> str | None:
    return None if protocol in PROTOCOLS else f"protocol={protocol!r} is unknown; choose one of {list(PROTOCOLS)}"


def fast_error(fast) -> str | None:
    ok = fast is True or fast is False or fast in ("auto", "compile")
    return None if ok else f"fast must be auto, true, false or compile, got fast={fast!r}"


def memory_format_error(layout) -> str | None:
    return None if layout in MEMORY_FORMATS else (
        f"memory_format={layout!r} is unknown; choose auto (fast's choice: channels-last on the CPU, the standard "
        "layout on a GPU), channels_last or contiguous")


def _trial_option_checks(cfg: DictConfig):
    """The trial's own keys and the Lightning Trainer options a trial can honour: an option the
    training step would silently ignore is refused by name."""
    precision = cfg.get("precision", "fp32")
    yield (precision in PRECISIONS, f"precision={precision!r} is unknown; choose fp32 (the original study's "
                                    "arithmetic, the default) or tf32 (TensorFloat-32 convolutions and matmuls on a GPU)")
    layout = cfg.get("memory_format", "auto")
    yield (memory_format_error(layout) is None, memory_format_error(layout))
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
