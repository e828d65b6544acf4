"""MNIST as tensors: find, verify (or download) the IDX files, normalise once, slice batches.

The whole data set lives as one float tensor on the training device, so an epoch is a
permutation and a series of index gathers: no per-sample transforms, no worker processes.

Batch layout, as torchvision's MNIST for one replica: images x (B, 1, 28, 28), labels y (B,),
so ``F.cross_entropy(net(x), y)`` and ``(net(x).argmax(1) == y)`` work as usual. S > 1 packed
replicas (one per seed) each draw their own order: x is (B, S, 28, 28) (replica s's images in
channel s) and y is (B, S) (replica s's labels in column s); ``replica_labels`` gives the (B, S)
view of either.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
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
    """Where MNIST is looked for when no root is given: $DEEPDEPTH_DATA, else ./data."""
    return Path(os.environ.get("DEEPDEPTH_DATA", "data"))


def raw_dir(root: str | os.PathLike) -> Path:
    """The folder holding the four IDX files: ``<root>/MNIST/raw``, torchvision's layout."""
    return Path(root).expanduser() / "MNIST" / "raw"


def _find(root: Path) -> dict[str, Path] | None:
    found = {}
    for key, (name, _) in FILES.items():
        path = _present(raw_dir(root), name)
        if path is None:
            return None
        found[key] = path
    return found


def _present(folder: Path, name: str) -> Path | None:
    """``name.gz`` or ``name`` in ``folder``; a folder that cannot be searched is a DataError."""
    for path in (folder / f"{name}.gz", folder / name):
        try:
            if path.exists():
                return path
        except OSError as exc:
            raise DataError(f"cannot read {path.parent}: {exc.strerror or exc} (check its permissions, "
                            f"or point DEEPDEPTH_DATA / data.root elsewhere)") from None
    return None


def _fetch(folder: Path, names: list[str]) -> None:
    """Download ``names`` (the original .gz files) into ``folder`` from torchvision's MNIST mirrors."""
    from torchvision.datasets import MNIST  # only needed when files are missing
    from torchvision.datasets.utils import download_url
    for name in names:
        errors = []
        for mirror in MNIST.mirrors:
            try:
                download_url(f"{mirror}{name}", str(folder), filename=name)
                break
            except Exception as exc:  # offline, mirror down, ...
                errors.append(f"{mirror}: {exc}")
        else:
            raise OSError("; ".join(errors))


def _download(root: Path) -> None:
    """Fetch the missing files into a temporary folder, verify every one (md5 and IDX header),
    and only then move them into ``<root>/MNIST/raw``: a failed or partial download leaves the
    user's folder as it was (a missing root is not even created)."""
    missing = [(key, f"{name}.gz") for key, (name, _) in FILES.items() if _present(raw_dir(root), name) is None]
    with tempfile.TemporaryDirectory(prefix="deepdepth-mnist-") as tmp:
        try:
            _fetch(Path(tmp), [name for _, name in missing])
        except Exception as exc:
            raise DataError(_missing_message(root, f"download failed: {exc}")) from None
        for key, name in missing:
            path, want = Path(tmp) / name, FILES[key][1]
            if not path.exists() or _md5(path) != want:
                raise DataError(_missing_message(root, f"download failed: {name} is incomplete or corrupt"))
            read_idx(path, 2051 if key.endswith("images") else 2049)
        target = raw_dir(root)
        try:
            target.mkdir(parents=True, exist_ok=True)
            for _, name in missing:  # copy beside the target, then rename: never half a file
                shutil.copyfile(Path(tmp) / name, target / f".{name}.part")
                os.replace(target / f".{name}.part", target / name)
        except OSError as exc:
            for _, name in missing:
                (target / f".{name}.part").unlink(missing_ok=True)
            raise DataError(f"downloaded MNIST but cannot write it to {target}: {exc.strerror or exc} "
                            f"(point DEEPDEPTH_DATA / data.root at a writable folder)") from None


def _missing_message(root: Path, why: str) -> str:
    names = ", ".join(f"{n}.gz" for n, _ in FILES.values())
    return (f"MNIST not found under {raw_dir(root)} ({why}). Put the four original files there "
            f"({names}), or point DEEPDEPTH_DATA / data.root at the folder that holds MNIST/raw/.")


def locate(root: str | os.PathLike, download: bool = True) -> dict[str, Path]:
    """The four IDX files under ``<root>/MNIST/raw``, downloading the missing ones if allowed."""
    root = Path(root).expanduser()
    found = _find(root)
    if found is None and download:
        _download(root)
        found = _find(root)
    if found is None:
        raise DataError(_missing_message(root, "download disabled" if not download else "files missing"))
    return found


def sample_counts(root: str | os.PathLike) -> dict[str, int] | None:
    """How many train and test images the IDX headers under ``root`` announce (no data read);
    None when the files are not there yet or unreadable (loading them reports why)."""
    try:
        paths = _find(Path(root).expanduser())
        if paths is None:
            return None
        counts = {}
        for split in ("train", "test"):
            path = paths[f"{split}_images"]
            with (gzip.open(path) if path.suffix == ".gz" else open(path, "rb")) as f:
                header = f.read(8)
            if len(header) < 8:
                return None
            counts[split] = int.from_bytes(header[4:8], "big")
        return counts
    except (OSError, EOFError, DataError):
        return None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc} (check its permissions)") from None


def _md5(path: Path) -> str:
    return hashlib.md5(_read(path)).hexdigest()


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file (gzip or plain); raise DataError on anything malformed."""
    raw = _read(path)
    try:
        raw = gzip.decompress(raw) if path.suffix == ".gz" else raw
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


def replica_labels(y: torch.Tensor, replicas: int = 1) -> torch.Tensor:
    """A batch's labels as (B, S), one column per replica: (B,) labels (one replica, or the
    test set every replica shares) are repeated into each column, (B, S) ones returned as they are.

    >>> replica_labels(torch.tensor([3, 1]), 2).tolist()
    [[3, 3], [1, 1]]
    """
    y = y.view(y.shape[0], -1)
    return y if y.shape[1] == replicas else y.expand(-1, replicas)


class ShuffledBatches:
    """Batches ``(x, y)`` sliced from device tensors; each replica (one per seed) draws its own
    permutation every epoch. One replica (or ``shuffle=False``, the test set): x (B, 1, 28, 28),
    y (B,). S > 1 replicas: x (B, S, 28, 28), y (B, S), column s replica s's (module docstring).

    >>> x, y = next(iter(ShuffledBatches(images, labels, 256, seeds=[0], shuffle=True)))
    """

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
            yield x, (self.y[idx[0]] if idx.shape[0] == 1 else self.y[idx.T])   # (B,) or (B, S)


class MNISTDataModule(L.LightningDataModule):
    """Normalised MNIST held as tensors on the training device.

    Batches follow the module docstring's layout: with one seed, x (B, 1, 28, 28) and y (B,);
    with S seeds (packed replicas), training batches are x (B, S, 28, 28) and y (B, S). The test
    set (``val_dataloader``, the same as ``test_dataloader``) is served in order, x (B, 1, 28, 28)
    and y (B,), shared by every replica.

    >>> dm = MNISTDataModule(train_samples=1024); dm.setup()
    >>> x, y = next(iter(dm.train_dataloader()))   # (256, 1, 28, 28), (256,)
    """

    def __init__(self, root: str | None = None, batch_size: int = 256, train_samples: int | None = None,
                 test_samples: int | None = None, check_md5: bool = True, download: bool = True,
                 seeds: list[int] | int = 0):
        """``root``: the folder holding ``MNIST/raw`` (default $DEEPDEPTH_DATA, else ./data);
        ``train_samples`` / ``test_samples``: the first N images of each split (None: all);
        ``check_md5``: verify the original files' checksums (off for a custom data set);
        ``download``: fetch missing files; ``seeds``: one per replica, each replica's shuffle
        order (an int: one replica)."""
        super().__init__()
        self.root = Path(root) if root else default_root()
        self.batch_size, self.check_md5, self.download = batch_size, check_md5, download
        self.train_samples, self.test_samples = train_samples, test_samples
        self.seeds = [seeds] if isinstance(seeds, int) else list(seeds)

    def prepare_data(self) -> None:
        """Find the IDX files (downloading missing ones if allowed): fails before any training."""
        locate(self.root, self.download)

    def setup(self, stage: str | None = None) -> None:
        """Load, normalise and slice both splits onto the trainer's device (the CPU without one)."""
        train_x, train_y, test_x, test_y = load_mnist(self.root, self.check_md5, self.download)
        for split, asked, have in (("train", self.train_samples, len(train_y)), ("test", self.test_samples, len(test_y))):
            if asked is not None and asked > have:  # a slice would quietly train on fewer
                raise DataError(f"data.{split}_samples={asked}, but {raw_dir(self.root)} holds only {have} "
                                f"{split} images; use at most {have}, or null for all")
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        self.train_x, self.train_y = train_x[:self.train_samples].to(device), train_y[:self.train_samples].to(device)
        self.test_x, self.test_y = test_x[:self.test_samples].to(device), test_y[:self.test_samples].to(device)

    def train_dataloader(self) -> ShuffledBatches:
        """The training set, reshuffled every epoch, each replica in its own order."""
        return ShuffledBatches(self.train_x, self.train_y, self.batch_size, self.seeds, shuffle=True)

    def val_dataloader(self) -> ShuffledBatches:
        """The test set, in order: the study measures its test error after every epoch."""
        return ShuffledBatches(self.test_x, self.test_y, self.batch_size, [0], shuffle=False)

    def test_dataloader(self) -> ShuffledBatches:
        """The test set, in order (the same batches as ``val_dataloader``): ``trainer.test``."""
        return self.val_dataloader()
