"""Checks on a composed config, run before anything is built or trained: one set shared by a
single trial (``python -m deepdepth.train``, ``train()``, ``run_trial``) and a sweep (every grid
combination, before its first job). Each failure is one line naming the value and what to do."""
from __future__ import annotations

import math

from omegaconf import DictConfig, OmegaConf

from .models import check_depth, check_init
from .models.blocks import ACTIVATIONS, check_widths
from .seeds import MAX_SEED, seed_error
from .module import PROTOCOLS
from .verdict import CRITERIA


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
    for ok, message in _checks(cfg):
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
    yield _number(lr) and lr > 0, f"optim.lr must be positive, got optim.lr={lr!r}"
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
    yield cfg.protocol in PROTOCOLS, f"protocol={cfg.protocol!r} is unknown; choose one of {list(PROTOCOLS)}"
    yield cfg.fast in ("auto", True, False, "compile"), f"fast must be auto, true, false or compile, got fast={cfg.fast!r}"
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
