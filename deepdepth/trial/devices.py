"""GPU slots: jobs of a parallel sweep on one machine claim a GPU slot through lock files.

Each GPU has ``jobs_per_device`` slots; a job holds one for its trial, so parallel joblib
workers on a one-GPU machine queue for it instead of piling onto it. Locks live in a folder
per user (``DEEPDEPTH_LOCK_DIR``, else ``<tmp>/deepdepth-locks-<uid>``) and are named by the
GPU's UUID where known, so jobs that see the GPUs in different orders (CUDA_VISIBLE_DEVICES)
still agree. The OS releases a lock when its process dies, so a killed job never strands a slot.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def lock_dir() -> Path:
    """The folder of GPU locks: ``DEEPDEPTH_LOCK_DIR``, else one private to this user."""
    if os.environ.get("DEEPDEPTH_LOCK_DIR"):
        return Path(os.environ["DEEPDEPTH_LOCK_DIR"])
    return Path(tempfile.gettempdir()) / f"deepdepth-locks-{os.getuid()}"


def device_label(device: str | None) -> str:
    """What a trial ran on, by model ("NVIDIA H200"; "cpu"): a resumed sweep's cost model reads
    the speed of finished jobs only from its own kind of device."""
    if device and device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu" if device is None or device.startswith("cpu") else device


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC 7B13"), from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def host() -> dict:
    """The machine a job ran on: two hosts that both say "cpu" have stepped the same network 2.5x
    apart, so a CPU job's seconds mean something only beside its CPU model and torch threads."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def gpu_names(count: int) -> list[str]:
    """A stable name per visible GPU: its UUID where the driver reports one, else its index."""
    names = []
    for index in range(count):
        try:
            names.append("gpu-" + str(torch.cuda.get_device_properties(index).uuid))
        except Exception:  # an older driver or torch: the index, as the process sees it
            names.append(f"gpu{index}")
    return names


def _open_lock(path: Path) -> int | None:
    """A descriptor to flock ``path``, or None when no file there can be opened. A lock file
    left by another user (0644: not ours to write) is opened read-only, which flock accepts; one
    we cannot even read is sidestepped with a name of our own beside it."""
    for candidate, flags in ((path, os.O_RDWR | os.O_CREAT), (path, os.O_RDONLY),
                             (path.with_name(f"{path.name}.uid{os.getuid()}"), os.O_RDWR | os.O_CREAT)):
        try:
            return os.open(candidate, flags, 0o600)
        except OSError:
            continue
    return None


@contextlib.contextmanager
def claim_gpu(count: int, folder: str | os.PathLike | None = None, poll: float = 0.5,
              jobs_per_device: int = 1, names: list[str] | None = None):
    """Hold one of ``jobs_per_device`` slots of one of ``count`` GPUs for the block; yield the
    GPU's index. Waits (polling every ``poll`` s) while every slot is taken."""
    if jobs_per_device < 1:
        raise ValueError(f"gpu_jobs_per_device must be at least 1, got {jobs_per_device!r}")
    folder = Path(folder) if folder is not None else lock_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    names = names or [f"gpu{i}" for i in range(count)]
    slots = [(index, folder / f"{names[index]}-slot{slot}.lock")
             for slot in range(jobs_per_device) for index in range(count)]  # spread jobs over GPUs first
    waited = False
    while True:
        opened = 0
        for index, path in slots:
            fd = _open_lock(path)
            if fd is None:
                continue
            opened += 1
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            try:
                yield index
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if not opened:
            raise OSError(f"cannot create GPU lock files in {folder}; set DEEPDEPTH_LOCK_DIR to a folder of yours")
        if not waited:
            log.info("waiting for a free GPU slot (%d GPU(s) x %d job(s) each; locks in %s)",
                     count, jobs_per_device, folder)
            waited = True
        time.sleep(poll)


def cudnn_benchmark() -> bool:
    """Whether cuDNN times its algorithms (Lightning's trainer.benchmark sets it). Read here for
    train.py, whose functions launchers pickle by value (see backend_flags)."""
    return torch.backends.cudnn.benchmark


@contextlib.contextmanager
def backend_flags(precision: str):
    """The trial's torch backend flags, put back after it. ``fp32``: float32 convolutions and
    matmuls in full precision, as the original study ran on the CPU (cuDNN would otherwise use
    TF32 on Ampere and later GPUs); ``tf32``: TF32 allowed. ``trainer.benchmark=true`` has
    Lightning set ``torch.backends.cudnn.benchmark`` for the whole process; it is put back too,
    so the next trial in the process (a sweep's local launcher) starts from the user's setting.
    (Here, not in train.py: launchers pickle ``python -m deepdepth.train``'s functions by value,
    and torch.backends.cudnn cannot be.)"""
    tf32 = precision == "tf32"
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
             torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved[:2]
        torch.set_float32_matmul_precision(saved[2])
        torch.backends.cudnn.benchmark = saved[3]


FLUSH_DENORMAL = ("auto", True, False)


def trains_on_cpu(accelerator: str) -> bool:
    """Whether Lightning will put a trial with this ``trainer.accelerator`` on the CPU."""
    return accelerator == "cpu" or not torch.cuda.is_available()


def flush_denormals(setting, on_cpu: bool, norm: bool) -> bool:
    """Whether a trial flushes denormal floats to zero. Only the CPU pays for them (in microcode,
    up to ~30x slower steps), and only a network without normalisation meets them: in the ordered
    phase its signal and gradient decay below float32's normal range, so it is already far from
    trainable and zeros cannot change its verdict. ``auto``: flush on the CPU for a norm-free
    network; ``true``: on the CPU for any; ``false``: never."""
    if setting not in FLUSH_DENORMAL:
        raise ValueError(f"flush_denormal must be auto, true or false, got {setting!r}")
    return on_cpu and (setting is True or (setting == "auto" and not norm))


def flushing_now(all_threads: bool = True) -> bool:
    """Whether denormals are flushed now: torch has no getter, so a denormal is multiplied and
    must come out zero. ``set_flush_denormal`` sets the calling thread only, and torch's worker
    threads keep the setting they started with: ``all_threads`` spreads the product over every
    thread (each must flush); False asks the calling thread alone."""
    size = torch.get_num_threads() * 2**18 if all_threads else 1  # large enough that every thread takes a part
    # the denormal written as bits: a float constant would be flushed on its way in, by this thread
    tiny = torch.full((size,), 1 << 20, dtype=torch.int32).view(torch.float32)  # 2^-129, below float32's normals
    return bool((tiny * 1.0).count_nonzero().item() == 0)


@contextlib.contextmanager
def denormals_flushed(flush: bool):
    """Denormals flushed to zero (or not) for the block; yields whether every thread flushes (a
    worker thread started before keeps its own setting: one torch thread, or a fresh process
    that sets it before its first parallel operation, flushes throughout). The calling thread's
    setting is put back after it, so the next trial in the process starts from the user's."""
    saved = flushing_now(all_threads=False)
    torch.set_flush_denormal(flush)
    flushed = flushing_now()
    if flush and not flushed:
        log.warning("flush_denormal: denormals are flushed on the main thread only (torch's %d threads "
                    "started before this trial); run with one torch thread (OMP_NUM_THREADS=1) to flush them all",
                    torch.get_num_threads())
    try:
        yield flushed
    finally:
        torch.set_flush_denormal(saved)
