"""Will a trial fit in memory? The pack's estimate (deepdepth.models.pack_memory_bytes) plus the
data set held on the device, against what the device has: checked before anything is allocated,
so a pack that cannot fit is one message, not minutes of swapping or an 80 GB allocation error."""
from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from ..models import pack_memory_bytes
from ..study import WIDTHS
from ..study import MNIST_SIZES

SAMPLE_BYTES = 28 * 28 * 4 + 8  # a float32 image and its int64 label


def trial_bytes(cfg: DictConfig, k: int, replicas: int, counts: dict | None = None) -> int:
    """Estimated bytes of training ``cfg`` at depth ``k`` with ``replicas`` packed seeds."""
    counts = counts or MNIST_SIZES
    n = {split: cfg.data[f"{split}_samples"] or counts[split] for split in ("train", "test")}
    m = cfg.model
    depths = cfg.get("depths")  # a sweep's mixed-depth pack: each replica's own depth
    mixed = list(depths) if depths is not None and (k, replicas) == (cfg.k, cfg.replicas) else None
    pack = pack_memory_bytes(k, replicas, min(int(cfg.data.batch_size), n["train"]), bool(m.norm),
                             activation=m.activation, residual=bool(m.residual),
                             branch_gain=bool(m.get("branch_gain", False)), depths=mixed,
                             widths=list(m.get("widths") or WIDTHS))
    return pack + (n["train"] + n["test"]) * SAMPLE_BYTES


def device_bytes(trainer: DictConfig) -> tuple[str, int | None]:
    """(name, bytes) of the memory the trial will train in: a GPU's total memory (the trial waits
    for its GPU slot after this check, so what is free now says little), or the RAM available now.
    None: unknown, not checked."""
    if trainer.get("accelerator", "auto") in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        devices = trainer.get("devices")
        listed = OmegaConf.is_list(devices) or isinstance(devices, (list, tuple))
        indices = [int(devices[0])] if listed else range(torch.cuda.device_count())
        i = max(indices, key=lambda j: torch.cuda.get_device_properties(j).total_memory)
        props = torch.cuda.get_device_properties(i)
        return f"GPU {i} ({props.name})", props.total_memory
    return "this machine's available RAM", available_ram()


def available_ram() -> int | None:
    """Bytes of memory free now (psutil, else /proc/meminfo); None where neither tells."""
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def gib(n: int) -> str:
    """A byte count for a message: '3.2 GiB', or '200 MiB' below a quarter GiB."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def memory_problem(cfg: DictConfig, k: int | None = None, replicas: int | None = None,
                   counts: dict | None = None) -> str | None:
    """Why ``cfg`` (at depth ``k``, ``replicas`` seeds: default the config's) cannot fit, or None."""
    k = cfg.k if k is None else k
    replicas = cfg.replicas if replicas is None else replicas
    need = trial_bytes(cfg, k, replicas, counts)
    where, have = device_bytes(cfg.trainer)
    if have is None or need <= have:
        return None
    return (f"k={k} with replicas={replicas} and data.batch_size={cfg.data.batch_size} needs about {gib(need)} "
            f"(parameters, gradients, momentum, activations kept for the backward pass, the data set), more than "
            f"{where} ({gib(have)}); lower k (in a sweep: hydra.sweeper.upper), replicas (hydra.sweeper.seeds, "
            f"or hydra.sweeper.pack=false) or data.batch_size")
