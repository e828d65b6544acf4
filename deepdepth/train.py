"""Hydra entry point: ``python -m deepdepth.train model=resnet k=447``.

``train(cfg)`` builds the data, network, module, callbacks and trainer from a composed config,
fits, and returns the trial's result; ``main`` validates, writes ``result.json`` in the run
directory and returns the same dict, the value a sweeper reads.
"""
from __future__ import annotations

import contextlib
import json
import logging
import platform
import sys
import time
import warnings
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from . import __version__
from .callbacks import Trainability
from .config import ConfigError, validate
from .data import MNISTDataModule
from .devices import claim_gpu
from .diagnostics import SignalDiagnostics
from .models import DepthNet, count_parameters
from .module import DepthClassifier

log = logging.getLogger("deepdepth")
# Lightning notices that say nothing about a trial (epoch-level logging is deliberate here).
for _pattern in (".*log_every_n_steps.*", ".*Experiment logs directory.*", ".*LeafSpec.*"):
    warnings.filterwarnings("ignore", message=_pattern)


def trial_seeds(cfg: DictConfig) -> list[int]:
    return [cfg.seed + i for i in range(cfg.replicas)]


def build(cfg: DictConfig) -> tuple[MNISTDataModule, DepthClassifier]:
    seeds = trial_seeds(cfg)
    m = cfg.model
    net = DepthNet(cfg.k, activation=m.activation, norm=m.norm, residual=m.residual, init=m.init,
                   seeds=seeds, branch_gain=m.get("branch_gain", False))
    data = MNISTDataModule(root=cfg.data.root, batch_size=cfg.data.batch_size,
                           train_samples=cfg.data.train_samples, test_samples=cfg.data.test_samples,
                           check_md5=cfg.data.check_md5, download=cfg.data.download, seeds=seeds)
    module = DepthClassifier(net, lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                             protocol=cfg.protocol, fast=cfg.fast)
    return data, module


def train(cfg: DictConfig, output_dir: str | Path = ".", sweeping: bool = False) -> dict:
    """Run one trial (S packed seeds) and return its result record."""
    validate(cfg)
    output_dir = Path(output_dir)
    started = time.perf_counter()
    data, module = build(cfg)
    data.prepare_data()  # a missing or corrupt data set fails here, before any training
    verdict = Trainability(cfg.trainability.threshold, cfg.trainability.criterion)
    trainer_kw = OmegaConf.to_container(cfg.trainer, resolve=True)
    if trainer_kw["enable_progress_bar"] is None:
        trainer_kw["enable_progress_bar"] = not sweeping
    with _device(trainer_kw, sweeping):
        L.seed_everything(cfg.seed, verbose=False)
        callbacks = [verdict] + ([SignalDiagnostics()] if cfg.get("diagnostics", False) else [])
        trainer = L.Trainer(**trainer_kw, callbacks=callbacks, num_sanity_val_steps=0,
                            logger=CSVLogger(output_dir, name="", version=""), benchmark=None)
        trainer.fit(module, datamodule=data)
        device = str(module.device)
    trials = verdict.verdicts
    result = {
        "model": cfg.model.name, "k": cfg.k, "lr": cfg.optim.lr, "epochs": cfg.trainer.max_epochs,
        "criterion": cfg.trainability.criterion, "threshold": cfg.trainability.threshold,
        "protocol": cfg.protocol, "seeds": trial_seeds(cfg),
        "train_samples": cfg.data.train_samples, "test_samples": cfg.data.test_samples,
        "trials": trials, "seconds": round(time.perf_counter() - started, 3),
        "params": count_parameters(module.net) // module.net.replicas, "device": device,
        "versions": {"deepdepth": __version__, "torch": torch.__version__, "lightning": L.__version__,
                     "python": platform.python_version()},
    }
    if len(trials) == 1:  # a single seed: its record at the top level too
        result.update({key: trials[0][key] for key in ("seed", "train_err", "test_err", "trainable", "diverged")})
    return result


@contextlib.contextmanager
def _device(trainer_kw: dict, sweeping: bool):
    """Pick the device: one GPU per trial, a free one when parallel sweep jobs share a machine."""
    if trainer_kw["devices"] is not None:
        yield
        return
    gpus = torch.cuda.device_count() if trainer_kw["accelerator"] in ("auto", "gpu", "cuda") else 0
    if sweeping and gpus > 1:
        with claim_gpu(gpus) as index:
            trainer_kw["devices"] = [index]
            yield
    else:
        trainer_kw["devices"] = 1
        yield


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> dict:
    hydra_cfg = HydraConfig.get()
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        validate(cfg)
    except ConfigError as exc:
        if sweeping:
            raise
        print(f"deepdepth: error: {exc}", file=sys.stderr)
        sys.exit(2)
    result = train(cfg, hydra_cfg.runtime.output_dir, sweeping)
    path = Path(hydra_cfg.runtime.output_dir) / "result.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    verdicts = ", ".join(f"seed {t['seed']}: {'trainable' if t['trainable'] else 'not trainable'}"
                         + (" (diverged)" if t["diverged"] else "") for t in result["trials"])
    log.info("%s k=%d: %s -> %s", cfg.model.name, cfg.k, verdicts, path)
    return result


if __name__ == "__main__":
    main()
