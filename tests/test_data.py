"""The MNIST loader on IDX files the tests write, and once on the real data."""
import gzip
import hashlib
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import idx_bytes, write_mnist
from deepdepth.trial import data
from deepdepth.trial.data import (MEAN, STD, DataError, MNISTDataModule, ShuffledBatches, load_mnist, locate, read_idx,
                            replica_labels, sample_counts)


def test_loads_and_normalises_fixture(mnist_root):
    train_x, train_y, test_x, test_y = load_mnist(mnist_root, check_md5=False, download=False)
    assert train_x.shape == (512, 1, 28, 28) and test_x.shape == (256, 1, 28, 28)
    assert train_x.dtype == torch.float32 and train_y.dtype == torch.int64
    raw = read_idx(mnist_root / "MNIST/raw/train-images-idx3-ubyte.gz", 2051)
    expected = (torch.from_numpy(raw[0].astype(np.float32)) / 255 - MEAN) / STD
    assert torch.allclose(train_x[0, 0], expected, atol=1e-6)


def test_sample_limits(mnist_root):
    dm = MNISTDataModule(mnist_root, train_samples=100, test_samples=50, check_md5=False, download=False)
    dm.setup()
    assert len(dm.train_y) == 100 and len(dm.test_y) == 50
    assert len(dm.train_dataloader()) == 1 and len(dm.val_dataloader()) == 1


def test_batches_cover_each_epoch_once_and_reshuffle():
    x = torch.arange(600, dtype=torch.float32).view(600, 1, 1, 1).expand(600, 1, 28, 28).contiguous()
    y = torch.arange(600)
    batches = ShuffledBatches(x, y, 256, seeds=[0], shuffle=True)
    epoch1 = [b[1] for b in batches]
    epoch2 = [b[1] for b in batches]
    assert [len(b) for b in epoch1] == [256, 256, 88]
    assert sorted(torch.cat(epoch1).view(-1).tolist()) == list(range(600))
    assert not torch.equal(torch.cat(epoch1), torch.cat(epoch2))
    first = next(iter(batches))
    assert torch.equal(first[0][:, 0, 0, 0], first[1].float())  # images travel with their labels


def test_each_replica_has_its_own_order_and_seeds_fix_it():
    x, y = torch.zeros(300, 1, 28, 28), torch.arange(300)
    a = next(iter(ShuffledBatches(x, y, 100, seeds=[0, 1], shuffle=True)))[1]
    b = next(iter(ShuffledBatches(x, y, 100, seeds=[0], shuffle=True)))[1]
    assert a.shape == (100, 2)
    assert torch.equal(a[:, 0], b) and not torch.equal(a[:, 0], a[:, 1])  # one replica: labels (B,)


def test_test_set_is_not_shuffled(mnist_root):
    dm = MNISTDataModule(mnist_root, check_md5=False, download=False)
    dm.setup()
    labels = torch.cat([b[1] for b in dm.val_dataloader()])
    assert torch.equal(labels, dm.test_y)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(dm.val_dataloader(), dm.test_dataloader()))


def test_one_replica_batches_are_torchvision_shaped(mnist_root):
    """x (B, 1, 28, 28) and y (B,): cross-entropy and accuracy work as with any MNIST loader."""
    dm = MNISTDataModule(mnist_root, batch_size=64, check_md5=False, download=False, seeds=3)
    dm.setup()
    for loader in (dm.train_dataloader(), dm.test_dataloader()):
        x, y = next(iter(loader))
        assert x.shape == (64, 1, 28, 28) and y.shape == (64,)
    logits = torch.zeros(64, 10)
    logits[torch.arange(64), y] = 1.0
    assert torch.nn.functional.cross_entropy(logits, y).shape == ()
    assert (logits.argmax(1) == y).float().mean().item() == 1.0  # no (B, B) broadcast


def test_packed_batches_have_one_label_column_per_replica(mnist_root):
    dm = MNISTDataModule(mnist_root, batch_size=64, check_md5=False, download=False, seeds=[3, 4, 5])
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 3, 28, 28) and y.shape == (64, 3)
    assert torch.equal(replica_labels(y, 3), y) and replica_labels(y[:, 0], 3).shape == (64, 3)
    assert next(iter(dm.test_dataloader()))[1].shape == (64,)  # the test set is shared


def test_data_module_documents_its_own_constructor():
    assert "train_samples" in (MNISTDataModule.__init__.__doc__ or "")


def test_read_only_root_with_gz_only(tmp_path):
    root = write_mnist(tmp_path / "ro", n_train=64, n_test=32)
    for path in sorted(root.rglob("*"), reverse=True):
        path.chmod(stat.S_IREAD | stat.S_IEXEC if path.is_dir() else stat.S_IREAD)
    before = sorted(root.rglob("*"))
    try:
        assert load_mnist(root, check_md5=False, download=True)[0].shape[0] == 64
        assert sorted(root.rglob("*")) == before  # nothing written beside the .gz files
    finally:
        for path in root.rglob("*"):
            path.chmod(stat.S_IRWXU)


def test_missing_data_offline_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match=r"MNIST not found under .*empty/MNIST/raw.*DEEPDEPTH_DATA"):
        locate(tmp_path / "empty", download=False)


def test_truncated_file_is_reported(tmp_path):
    root = write_mnist(tmp_path / "bad", n_train=64, n_test=32)
    path = root / "MNIST/raw/train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(DataError, match="truncated"):
        load_mnist(root, check_md5=False, download=False)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match="corrupt"):
        load_mnist(root, check_md5=False, download=False)


def test_wrong_magic_and_mismatched_counts(tmp_path):
    root = write_mnist(tmp_path / "bad", n_train=64, n_test=32)
    raw = root / "MNIST/raw"
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(10, np.uint8))))
    with pytest.raises(DataError, match="magic 2051"):
        load_mnist(root, check_md5=False, download=False)
    write_mnist(root, n_train=64, n_test=32)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(31, np.uint8))))
    with pytest.raises(DataError, match="disagree"):
        load_mnist(root, check_md5=False, download=False)


def test_md5_is_checked(mnist_root):
    with pytest.raises(DataError, match="md5"):
        load_mnist(mnist_root, check_md5=True, download=False)


def test_real_mnist(real_mnist):
    train_x, train_y, test_x, test_y = load_mnist(real_mnist, check_md5=True, download=False)
    assert train_x.shape == (60000, 1, 28, 28) and test_x.shape == (10000, 1, 28, 28)
    assert train_y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.bincount(test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(train_x.mean().item()) < 0.01 and abs(train_x.std().item() - 1) < 0.01


# ---- downloads: a temporary folder, moved into place only when complete and verified ----------
def fixture_gz(tmp_path):
    """The fixture's four .gz files and their md5s, as a mirror would serve them."""
    src = write_mnist(tmp_path / "mirror", n_train=64, n_test=32) / "MNIST" / "raw"
    return src, {key: (name, hashlib.md5((src / f"{name}.gz").read_bytes()).hexdigest())
                 for key, (name, _) in data.FILES.items()}


def fake_fetch(src, fail_after=None, corrupt=None):
    def fetch(folder, names):
        for i, name in enumerate(names):
            if fail_after is not None and i == fail_after:
                raise OSError("connection reset")
            payload = (src / name).read_bytes()
            (folder / name).write_bytes(payload[:-10] if name == corrupt else payload)
    return fetch


def test_download_moves_verified_files_into_a_new_root(tmp_path, monkeypatch):
    src, md5s = fixture_gz(tmp_path)
    monkeypatch.setattr(data, "FILES", md5s)
    monkeypatch.setattr(data, "_fetch", fake_fetch(src))
    root = tmp_path / "new" / "root"
    paths = locate(root, download=True)
    assert sorted(p.name for p in paths.values()) == sorted(p.name for p in src.iterdir())
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted(p.name for p in src.iterdir())
    assert load_mnist(root, check_md5=True, download=False)[0].shape[0] == 64


@pytest.mark.parametrize("fault", [dict(fail_after=1), dict(corrupt="t10k-labels-idx1-ubyte.gz")])
def test_a_failed_download_leaves_no_trace(tmp_path, monkeypatch, fault):
    src, md5s = fixture_gz(tmp_path)
    monkeypatch.setattr(data, "FILES", md5s)
    monkeypatch.setattr(data, "_fetch", fake_fetch(src, **fault))
    missing = tmp_path / "typo"
    with pytest.raises(DataError, match="download failed"):
        locate(missing, download=True)
    assert not missing.exists()  # a mistyped data.root is not created
    partial = write_mnist(tmp_path / "partial", n_train=8, n_test=8) / "MNIST" / "raw"
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    (partial / "train-labels-idx1-ubyte.gz").unlink()
    before = sorted(partial.iterdir())
    with pytest.raises(DataError, match="download failed"):
        locate(tmp_path / "partial", download=True)
    assert sorted(partial.iterdir()) == before  # nothing unpacked or added beside the user's files


def test_download_fetches_only_the_missing_files(tmp_path, monkeypatch):
    src, md5s = fixture_gz(tmp_path)
    monkeypatch.setattr(data, "FILES", md5s)
    asked = []
    monkeypatch.setattr(data, "_fetch", lambda folder, names: (asked.extend(names), fake_fetch(src)(folder, names)))
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(src / "train-images-idx3-ubyte.gz", raw)
    mine = (raw / "train-images-idx3-ubyte.gz").stat().st_mtime_ns
    locate(tmp_path / "root", download=True)
    assert "train-images-idx3-ubyte.gz" not in asked and len(asked) == 3
    assert (raw / "train-images-idx3-ubyte.gz").stat().st_mtime_ns == mine


def denied(*args):
    raise PermissionError(13, "Permission denied")  # as a read-only folder answers (root ignores chmod)


def test_an_unwritable_root_after_a_download_is_a_data_error(tmp_path, monkeypatch):
    src, md5s = fixture_gz(tmp_path)
    monkeypatch.setattr(data, "FILES", md5s)
    monkeypatch.setattr(data, "_fetch", fake_fetch(src))
    monkeypatch.setattr(data.shutil, "copyfile", denied)
    with pytest.raises(DataError, match=r"cannot write it to .*MNIST/raw: Permission denied"):
        locate(tmp_path / "ro", download=True)
    assert not list((tmp_path / "ro").rglob("*.gz")) and not list((tmp_path / "ro").rglob("*.part"))


def test_an_unreadable_file_is_named(tmp_path, monkeypatch):
    root = write_mnist(tmp_path / "locked", n_train=8, n_test=8)
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: denied() if "t10k-images" in self.name else real(self))
    with pytest.raises(DataError, match=r"cannot read .*t10k-images-idx3-ubyte.gz: Permission denied"):
        load_mnist(root, check_md5=False, download=False)


def test_sample_counts_read_the_headers_only(mnist_root, tmp_path):
    assert sample_counts(mnist_root) == {"train": 512, "test": 256}
    assert sample_counts(tmp_path / "nothing") is None


def test_more_samples_than_exist_is_refused(mnist_root):
    dm = MNISTDataModule(mnist_root, train_samples=513, check_md5=False, download=False)
    with pytest.raises(DataError, match="data.train_samples=513, but .* holds only 512 train images"):
        dm.setup()


def test_trainer_test_reports_the_test_error(mnist_root):
    """``trainer.test(module, datamodule=dm)`` works as for any Lightning data module."""
    import lightning as L

    from deepdepth.models import build_model
    from deepdepth.trial.module import DepthClassifier

    net = build_model("cnn_tanh_newinit", 3, seeds=0)
    dm = MNISTDataModule(mnist_root, check_md5=False, download=False)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    (metrics,) = trainer.test(DepthClassifier(net), datamodule=dm, verbose=False)
    with torch.no_grad():
        expected = (net.eval()(dm.test_x).argmax(1) != dm.test_y).double().mean().item()
    assert metrics["test_err"] == pytest.approx(expected) and 0 < expected < 1
