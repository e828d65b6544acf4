"""Shared pieces of the benchmarks: the original study's training loop (the reference) and a
timed run of the package as a user runs it (``deepdepth.train.train`` on a Hydra config).

The reference is the study notebook's loop, unchanged in kind: a torchvision ``MNIST``
dataset with per-sample ``ToTensor`` + ``Normalize`` transforms, ``DataLoader(batch_size=256,
shuffle=True)`` in the main process, a plain ``nn.Sequential`` network, eager PyTorch, SGD with
momentum 0.9, the running train error read with ``.item()`` every step, and the test set
evaluated after the epoch in eval mode.
"""
from __future__ import annotations

import datetime
import gzip
import math
import os
import platform
import shutil
import signal
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DEEPDEPTH_DATA", ROOT.parent / "shared" / "data"))
WARM_STEPS = 5  # steps 1-5 hold warm-up, CUDA-graph capture and compilation: not in the steady step time
RAW_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# --------------------------------------------------------------------------- reference loop
def torchvision_root(root: Path = DATA) -> Path:
    """A folder torchvision's ``MNIST(download=False)`` accepts.

    torchvision reads the *decompressed* files ``<root>/MNIST/raw/<name>``; the shared data
    folder is read-only and holds only the ``.gz`` files, so they are decompressed once into a
    temporary folder (reused across runs of the same machine).
    """
    raw = root / "MNIST" / "raw"
    if all((raw / n).exists() for n in RAW_NAMES):
        return root
    tmp = Path(tempfile.gettempdir()) / "deepdepth-bench-mnist"
    out = tmp / "MNIST" / "raw"
    out.mkdir(parents=True, exist_ok=True)
    for name in RAW_NAMES:
        if not (out / name).exists():
            with gzip.open(raw / f"{name}.gz", "rb") as src, open(out / f"{name}.part", "wb") as dst:
                shutil.copyfileobj(src, dst)
            (out / f"{name}.part").rename(out / name)
    return tmp


def reference_loaders(root: Path, batch_size: int = 256):
    """The study's data pipeline: per-sample PIL -> ToTensor -> Normalize, no workers."""
    from torchvision import datasets, transforms
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(str(root), train=True, download=False, transform=tf)
    test = datasets.MNIST(str(root), train=False, download=False, transform=tf)
    return (torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True),
            torch.utils.data.DataLoader(test, batch_size=batch_size, shuffle=False))


class Residual(nn.Module):
    """``act(norm(conv(x))) + x``, as the study's residual block."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x) + x


def reference_net(variant: str, k: int) -> nn.Module:
    """The study's network written plainly (as the original study's code), one replica, no packing."""
    from deepdepth.models import VARIANTS
    v = VARIANTS[variant]
    act = {"tanh": nn.Tanh, "elu": nn.ELU}[v.activation]
    layers, c_in = [], 1
    for width in (4, 8, 16):
        for i in range(k // 3):
            conv = nn.Conv2d(c_in, width, 3, padding=1)
            sigma = 0.05 if v.init == "naive" else math.sqrt(1 / (9 * c_in))
            nn.init.normal_(conv.weight, 0, sigma)
            nn.init.zeros_(conv.bias)
            block = nn.Sequential(conv, *([nn.BatchNorm2d(width)] if v.norm else []), act())
            layers.append(Residual(block) if v.residual and i > 0 else block)
            c_in = width
        layers.append(nn.AvgPool2d(2, stride=2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(144, 10))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_epoch(variant: str, k: int, device: str = "cpu", train_steps: int | None = None,
                    root: Path | None = None, seed: int = 0) -> dict:
    """Time one epoch of the original loop (``train_steps`` batches if given) and one test pass.

    Returns seconds for the training part (``train_s``, over ``steps`` batches), the test pass
    (``test_s``), the per-step time after the first 5 steps (``step_s``), and peak GPU memory.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    train_loader, test_loader = reference_loaders(torchvision_root(root or DATA))
    model = reference_net(variant, k).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    model.train()
    wrong = seen = steps = 0
    t5 = None
    for x, y in train_loader:
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        opt.step()
        wrong += (out.argmax(1) != y).sum().item()
        seen += len(y)
        steps += 1
        if steps == 5:
            t5 = time.perf_counter()
        if train_steps is not None and steps >= train_steps:
            break
    _sync(device)
    train_s = time.perf_counter() - start
    t0 = time.perf_counter()
    model.eval()
    test_wrong = 0
    with torch.no_grad():
        for x, y in test_loader:
            x, y = x.to(device), y.to(device)
            test_wrong += (model(x).argmax(1) != y).sum().item()
    _sync(device)
    test_s = time.perf_counter() - t0
    step_s = (start + train_s - t5) / (steps - 5) if t5 and steps > 5 else train_s / steps
    return {"train_s": train_s, "test_s": test_s, "steps": steps, "step_s": step_s,
            "epoch_steps": len(train_loader), "train_err": wrong / seen,
            "test_err": test_wrong / len(test_loader.dataset),
            "peak_mem_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None}


def loader_only_epoch(root: Path | None = None) -> float:
    """Seconds for the reference data loader alone to serve one training epoch."""
    train_loader, _ = reference_loaders(torchvision_root(root or DATA))
    start = time.perf_counter()
    for _ in train_loader:
        pass
    return time.perf_counter() - start


# --------------------------------------------------------------------------- the package
def package_config(model: str, k: int, epochs: int = 1, replicas: int = 1, seed: int = 0,
                   overrides: list[str] = ()):
    """The composed Hydra config a user gets from ``python -m deepdepth.train model=... k=...``."""
    from hydra import compose, initialize_config_dir
    args = [f"model={model}", f"k={k}", f"trainer.max_epochs={epochs}", f"replicas={replicas}",
            f"seed={seed}", f"data.root={DATA}", "trainer.enable_progress_bar=false", *overrides]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=args)


def step_timer():
    """A Lightning callback that timestamps the first training epoch, the device synchronised
    at four points only, so the timing does not slow the steps (Lightning imported only here,
    when a trial runs)."""
    import lightning as L

    class Timer(L.Callback):
        WARM = WARM_STEPS

        def __init__(self):
            self.times: dict[str, float] = {}

        def _now(self, pl_module) -> float:
            _sync(pl_module.device)
            return time.perf_counter()

        def on_train_start(self, trainer, pl_module):
            self.times["train_start"] = self._now(pl_module)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.current_epoch == 0:
                self.times["steps"] = batch_idx + 1
                if batch_idx + 1 == self.WARM:
                    self.times["warm"] = self._now(pl_module)

        def on_validation_start(self, trainer, pl_module):
            if trainer.current_epoch == 0 and "val_start" not in self.times:
                self.times["val_start"] = self._now(pl_module)

        def on_validation_end(self, trainer, pl_module):
            if trainer.current_epoch == 0 and "val_end" not in self.times:
                self.times["val_end"] = self._now(pl_module)

        def summary(self) -> dict:
            t = self.times
            out = {"steps": t.get("steps")}
            if "val_start" in t:
                out["train_s"] = t["val_start"] - t["train_start"]
                if "val_end" in t:
                    out["test_s"] = t["val_end"] - t["val_start"]
                if "warm" in t and t["steps"] > self.WARM:
                    out["step_s"] = (t["val_start"] - t["warm"]) / (t["steps"] - self.WARM)
                    out["first_steps_s"] = t["warm"] - t["train_start"]
            return out

    return Timer()


def package_trial(model: str, k: int, epochs: int = 1, replicas: int = 1, seed: int = 0,
                  overrides: list[str] = (), cold: bool = True, callbacks: list = ()) -> dict:
    """Run ``deepdepth.train.train`` (one trial: build, load data, fit, test) and time it.

    ``cold`` drops the in-process MNIST cache first, so the figure includes reading and
    decompressing the data set, as a fresh ``python -m deepdepth.train`` does. The result gets
    ``wall_s`` (the whole call) and ``timing`` (first epoch: ``train_s``, ``test_s``, the steady
    ``step_s`` after the first 5 steps, ``first_steps_s``), plus ``peak_mem_mb`` on a GPU.
    ``callbacks`` go to the trial beside the timer.
    """
    import logging

    from deepdepth.trial import data
    from deepdepth.train import train
    cfg = package_config(model, k, epochs, replicas, seed, overrides)
    if cold:
        data._CACHE.clear()
    for name in ("lightning", "lightning.pytorch", "deepdepth"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("deepdepth.trial.step").setLevel(logging.WARNING)  # a failed CUDA-graph capture shows
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timer = step_timer()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = train(cfg, output_dir=out, callbacks=[timer, *callbacks], interactive=False)
        seconds = time.perf_counter() - start
    result["wall_s"] = seconds
    result["timing"] = timer.summary()
    result["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return result


# --------------------------------------------------------------------------- time-boxing
class Timeout(BaseException):
    """Not an Exception, so that no fallback handler inside the package swallows it."""


def with_timeout(seconds: float, fn, *args, **kw):
    """Run ``fn`` in this process, interrupted (SIGALRM) after ``seconds``."""
    def on_alarm(*_):
        raise Timeout(f"stopped after {seconds:.0f} s to stay in the budget")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(seconds)))
    try:
        return fn(*args, **kw)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- reporting
def describe_device() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads (torch {torch.__version__})")


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def table(rows: list[list], header: list[str]) -> str:
    """A GitHub-markdown table."""
    cells = [[str(c) for c in r] for r in [header] + rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in cells[1:]])
