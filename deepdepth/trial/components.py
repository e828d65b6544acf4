"""A trial's Lightning loggers and added callbacks, built from the ``logger`` and ``callbacks``
config groups (lightning-hydra-template's convention: each entry, by name, a ``_target_``).

The study's own callbacks are not here: train.py always adds them (Trainability decides the
verdict, so no config may drop it). Kept apart from train.py so that the checks run before
training (config) read the same entries and the same table of optional packages.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from omegaconf import DictConfig

# a logger class -> (the pyproject extra that installs what it needs, modules any one of which will do)
OPTIONAL_LOGGERS = {
    "TensorBoardLogger": ("tensorboard", ("tensorboard", "tensorboardX")),
    "WandbLogger": ("wandb", ("wandb",)),
    "MLFlowLogger": ("mlflow", ("mlflow",)),
}


def entries(cfg: DictConfig, group: str) -> dict:
    """name -> config of each logger or callback that ``group`` lists (an entry set to null is dropped)."""
    node = cfg.get(group)
    return {} if node is None else {str(name): c for name, c in node.items() if c is not None}


def missing_extra(target: str) -> str | None:
    """The extra to install for a logger whose package is missing here, else None."""
    extra, modules = OPTIONAL_LOGGERS.get(str(target).rsplit(".", 1)[-1], (None, ()))
    if extra is None or any(importlib.util.find_spec(module) for module in modules):
        return None
    return extra


def build_loggers(cfg: DictConfig, run_dir: str | Path) -> list:
    """The ``logger`` group's loggers; ``save_dir: null`` means the trial's run directory."""
    from hydra.utils import instantiate

    return [instantiate(c, **({"save_dir": str(run_dir)} if "save_dir" in c and c.save_dir is None else {}))
            for c in entries(cfg, "logger").values()]


def build_callbacks(cfg: DictConfig) -> list:
    """The ``callbacks`` group's callbacks, in the order listed."""
    from hydra.utils import instantiate

    return [instantiate(c) for c in entries(cfg, "callbacks").values()]
