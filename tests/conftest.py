"""Fixtures: tiny MNIST-format IDX files written by the tests, so the real loader parses them."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DEEPDEPTH_DATA", ROOT.parent / "shared" / "data"))
NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x0800 + array.ndim  # unsigned bytes
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, n_train: int = 512, n_test: int = 256, seed: int = 0) -> Path:
    """Learnable fake digits: class c lights up a class-specific 7x7 patch, plus noise."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):
            r, col = divmod(int(c), 4)
            images[i, 7 * r:7 * r + 7, 7 * col:7 * col + 7] += 190
        image_name, label_name = NAMES[split]
        (raw / f"{image_name}.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (raw / f"{label_name}.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return root


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("data"))


def compose_cfg(*overrides: str):
    """The config ``deepdepth-train <overrides>`` would run, composed in this process from the
    package's config folder (deepdepth.models.conf_dir(): the checkout's conf/)."""
    from deepdepth.api import compose_config

    return compose_config(*overrides)


@pytest.fixture
def compose():
    """``compose("model=resnet", "k=6")``: a composed config, as ``compose_cfg``."""
    return compose_cfg


@pytest.fixture(scope="session")
def real_mnist() -> Path:
    if not (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found under {SHARED_DATA} (set DEEPDEPTH_DATA)")
    return SHARED_DATA


def run_train(*overrides: str, cwd: Path, multirun: bool = False, check: bool = True,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m deepdepth.train`` in a subprocess, as a user runs it."""
    cmd = [sys.executable, "-m", "deepdepth.train"] + (["-m"] if multirun else []) + list(overrides)
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def tiny(root: Path) -> list[str]:
    """Overrides for a seconds-long trial on the fixture data."""
    return [f"data.root={root}", "data.check_md5=false", "data.download=false", "trainer.max_epochs=1"]
