"""Checks on a composed config, run before anything is built or trained."""
from __future__ import annotations

from omegaconf import DictConfig

from .models import check_depth, check_init
from .models.blocks import ACTIVATIONS
from .module import PROTOCOLS
from .verdict import CRITERIA


class ConfigError(ValueError):
    """A config value that would make the trial meaningless."""


def validate(cfg: DictConfig) -> None:
    for check, value, key in ((check_depth, cfg.k, ""), (check_init, cfg.model.init, "model.init: ")):
        try:
            check(value)
        except ValueError as exc:
            raise ConfigError(key + str(exc)) from None
    checks = [
        (cfg.model.activation in ACTIVATIONS, f"model.activation={cfg.model.activation!r} is unknown; choose one of {sorted(ACTIVATIONS)}"),
        (_number(cfg.optim.lr) and cfg.optim.lr > 0, f"optim.lr must be positive, got optim.lr={cfg.optim.lr!r}"),
        (isinstance(cfg.trainer.max_epochs, int) and cfg.trainer.max_epochs >= 1,
         f"trainer.max_epochs must be at least 1, got trainer.max_epochs={cfg.trainer.max_epochs!r}"),
        (cfg.trainability.criterion in CRITERIA,
         f"trainability.criterion={cfg.trainability.criterion!r} is unknown; choose one of {list(CRITERIA)}"),
        (_number(cfg.trainability.threshold) and 0 < cfg.trainability.threshold <= 1,
         f"trainability.threshold must be in (0, 1], got {cfg.trainability.threshold!r}"),
        (isinstance(cfg.replicas, int) and cfg.replicas >= 1, f"replicas must be a positive integer, got replicas={cfg.replicas!r}"),
        (isinstance(cfg.seed, int), f"seed must be an integer, got seed={cfg.seed!r}"),
        (cfg.protocol in PROTOCOLS, f"protocol={cfg.protocol!r} is unknown; choose one of {list(PROTOCOLS)}"),
        (cfg.fast in ("auto", True, False, "compile"), f"fast must be auto, true, false or compile, got fast={cfg.fast!r}"),
    ]
    for sample_key in ("train_samples", "test_samples"):
        n = cfg.data[sample_key]
        checks.append((n is None or (isinstance(n, int) and n > 0), f"data.{sample_key} must be a positive integer or null, got {n!r}"))
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
