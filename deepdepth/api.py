"""Notebook helpers: compose the package's Hydra config without a command line and run a trial."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from .models import conf_dir

CONF_DIR = conf_dir()  # the checkout's conf/ or the wheel's deepdepth.conf


def compose_config(*overrides: str) -> DictConfig:
    """The config ``python -m deepdepth.train <overrides>`` would run, e.g. ``compose_config("model=resnet", "k=12")``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def run_trial(*overrides: str, output_dir: str | Path | None = None) -> dict:
    """Train one trial in this process and return its result record (the dict of result.json)."""
    from .train import train  # Lightning is imported only when a trial runs
    output_dir = Path(output_dir or tempfile.mkdtemp(prefix="deepdepth-"))
    return train(compose_config(*overrides), output_dir, interactive=False)
