"""MNIST as tensors: find, verify (or download) the IDX files, normalise once, slice batches.

The whole data set lives as one float tensor on the training device, so an epoch is a
permutation and a series of index gathers: no per-sample transforms, no worker processes.
"""
from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import lightning as L
import numpy as np
import torch

MEAN, STD = 0.1307, 0.3081
FILES = {
    "train_images": ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"),
}
_CACHE: dict[tuple, tuple[torch.Tensor, ...]] = {}


class DataError(RuntimeError):
    """MNIST is missing or its files are not what they should be."""


def default_root() -> Path:
    return Path(os.environ.get("DEEPDEPTH_DATA", "data"))


def raw_dir(root: str | os.PathLike) -> Path:
    return Path(root).expanduser() / "MNIST" / "raw"


def _find(root: Path) -> dict[str, Path] | None:
    found = {}
    for key, (name, _) in FILES.items():
        gz = raw_dir(root) / f"{name}.gz"
        plain = raw_dir(root) / name
        path = gz if gz.exists() else plain if plain.exists() else None
        if path is None:
            return None
        found[key] = path
    return found


def _download(root: Path) -> None:
    from torchvision.datasets import MNIST  # only needed when the files are missing
    try:
        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)
    except Exception as exc:  # offline, read-only root, mirror down...
        raise DataError(_missing_message(root, f"download failed: {exc}")) from None


def _missing_message(root: Path, why: str) -> str:
    names = ", ".join(f"{n}.gz" for n, _ in FILES.values())
    return (f"MNIST not found under {raw_dir(root)} ({why}). Put the four original files there "
            f"({names}), or point DEEPDEPTH_DATA / data.root at the folder that holds MNIST/raw/.")


def locate(root: str | os.PathLike, download: bool = True) -> dict[str, Path]:
    """The four IDX files under ``<root>/MNIST/raw``, downloading them through torchvision if allowed."""
    root = Path(root).expanduser()
    found = _find(root)
    if found is None and download:
        _download(root)
        found = _find(root)
    if found is None:
        raise DataError(_missing_message(root, "download disabled" if not download else "files missing"))
    return found


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file (gzip or plain); raise DataError on anything malformed."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} is corrupt: {exc}") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path} is not an IDX file with magic {magic}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) != header + int(np.prod(dims)):
        raise DataError(f"{path} is truncated or padded: header says {dims}, file has {len(raw) - header} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(root: str | os.PathLike, check_md5: bool = True, download: bool = True):
    """(train_x, train_y, test_x, test_y): normalised float32 images (N, 1, 28, 28), int64 labels."""
    paths = locate(root, download)
    key = tuple((str(p), p.stat().st_mtime_ns) for p in paths.values()) + (check_md5,)
    if key in _CACHE:
        return _CACHE[key]
    if check_md5:
        for k, p in paths.items():
            name, want = FILES[k]
            if p.suffix == ".gz" and _md5(p) != want:
                raise DataError(f"{p} is corrupt: md5 {_md5(p)} != {want} (delete it to re-download, "
                                f"or set data.check_md5=false for a custom data set)")
    out = []
    for split in ("train", "test"):
        images = read_idx(paths[f"{split}_images"], 2051)
        labels = read_idx(paths[f"{split}_labels"], 2049)
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
            raise DataError(f"MNIST {split} files disagree: images {images.shape}, labels {labels.shape}")
        x = torch.from_numpy(images.astype(np.float32) / 255.0).sub_(MEAN).div_(STD).unsqueeze(1)
        out += [x, torch.from_numpy(labels.astype(np.int64))]
    _CACHE[key] = tuple(out)
    return _CACHE[key]


class ShuffledBatches:
    """Batches sliced from device tensors; each replica draws its own permutation every epoch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seeds: list[int], shuffle: bool):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.gens = [torch.Generator().manual_seed(int(s) + 1) for s in seeds]

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        n = len(self.y)
        if self.shuffle:
            order = torch.stack([torch.randperm(n, generator=g) for g in self.gens]).to(self.x.device)
        else:
            order = torch.arange(n, device=self.x.device).unsqueeze(0)
        for start in range(0, n, self.batch_size):
            idx = order[:, start:start + self.batch_size]          # (S, B)
            x = self.x[idx.T.reshape(-1)].view(idx.shape[1], idx.shape[0], 28, 28)  # (B, S, 28, 28)
            yield x, self.y[idx.T]                                   # (B, S)


class MNISTDataModule(L.LightningDataModule):
    """Normalised MNIST held as tensors on the training device."""

    def __init__(self, root: str | None = None, batch_size: int = 256, train_samples: int | None = None,
                 test_samples: int | None = None, check_md5: bool = True, download: bool = True,
                 seeds: list[int] | int = 0):
        super().__init__()
        self.root = Path(root) if root else default_root()
        self.batch_size, self.check_md5, self.download = batch_size, check_md5, download
        self.train_samples, self.test_samples = train_samples, test_samples
        self.seeds = [seeds] if isinstance(seeds, int) else list(seeds)

    def prepare_data(self) -> None:
        locate(self.root, self.download)

    def setup(self, stage: str | None = None) -> None:
        train_x, train_y, test_x, test_y = load_mnist(self.root, self.check_md5, self.download)
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        self.train_x, self.train_y = train_x[:self.train_samples].to(device), train_y[:self.train_samples].to(device)
        self.test_x, self.test_y = test_x[:self.test_samples].to(device), test_y[:self.test_samples].to(device)

    def train_dataloader(self) -> ShuffledBatches:
        return ShuffledBatches(self.train_x, self.train_y, self.batch_size, self.seeds, shuffle=True)

    def val_dataloader(self) -> ShuffledBatches:
        return ShuffledBatches(self.test_x, self.test_y, self.batch_size, [0], shuffle=False)
