"""SignalDiagnostics: per-layer, per-replica profiles at init and after each epoch, and their plot."""
import json

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from deepdepth.trial.data import MNISTDataModule
from deepdepth.trial.diagnostics import QUANTITIES, SignalDiagnostics, plot_profiles, probe
from deepdepth.models import build_model
from deepdepth.trial.module import DepthClassifier


def fit(root, out, name, k, seeds, callbacks):
    L.seed_everything(0, verbose=False)
    module = DepthClassifier(build_model(name, k, seeds=seeds), fast=False)
    data = MNISTDataModule(root=root, check_md5=False, download=False, seeds=seeds, batch_size=32,
                          train_samples=96, test_samples=64)
    trainer = L.Trainer(max_epochs=1, callbacks=callbacks, logger=CSVLogger(out, name="", version=""),
                        accelerator="cpu", devices=1, num_sanity_val_steps=0, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False)
    trainer.fit(module, datamodule=data)
    return module


def test_file_contents_and_training_unchanged(mnist_root, tmp_path):
    name, seeds = "cnn_elu_bn", [0, 1]  # BatchNorm: the probe must leave its running stats alone
    with_diag = fit(mnist_root, tmp_path / "a", name, 6, seeds, [SignalDiagnostics()])
    without = fit(mnist_root, tmp_path / "b", name, 6, seeds, [])
    for (n, a), (_, b) in zip(with_diag.net.state_dict().items(), without.net.state_dict().items()):
        assert torch.equal(a, b), n  # no optimizer step, no BatchNorm update, no .grad left behind
    data = json.loads((tmp_path / "a" / "diagnostics.json").read_text())
    assert data["k"] == 6 and data["replicas"] == 2 and data["seeds"] == seeds
    assert [row["stage"] for row in data["layers"]] == [1, 1, 2, 2, 3, 3]
    assert [r["label"] for r in data["records"]] == ["init", "epoch 1"]
    assert data["records"][0]["batches_seen"] == 0 and data["records"][1]["batches_seen"] == 3
    for rec in data["records"]:
        for key in QUANTITIES:
            assert len(rec[key]) == 2 and all(len(profile) == 6 for profile in rec[key])
            assert all(v is not None and v >= 0 for profile in rec[key] for v in profile)
        assert all(v > 0 for profile in rec["act_rms"] for v in profile)
    assert (tmp_path / "a" / "diagnostics.png").stat().st_size > 10_000


def test_packed_replicas_are_probed_separately():
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16, 1))
    packed = DepthClassifier(build_model("cnn_tanh_newinit", 9, seeds=[3, 4]))
    got = probe(packed.net, lambda a, b: packed.replica_losses(a, b)[1], x, y)
    for s, seed in enumerate([3, 4]):
        single = DepthClassifier(build_model("cnn_tanh_newinit", 9, seeds=seed))
        want = probe(single.net, lambda a, b: single.replica_losses(a, b)[1], x, y)
        for key in list(QUANTITIES) + ["loss"]:
            assert got[key][s] == pytest.approx(want[key][0], rel=1e-4)


def test_skipinit_branches_get_no_weight_gradient_at_init():
    module = DepthClassifier(build_model("resnet_nobn_skipinit", 9, seeds=[0, 1]))
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8, 1))
    got = probe(module.net, lambda a, b: module.replica_losses(a, b)[1], x, y)
    for profile in got["weight_grad_norm"]:  # zero gains cut the branches; first conv of each stage learns
        assert [v > 0 for v in profile] == [True, False, False] * 3


def test_plot_from_records(tmp_path):
    records = [{"label": lab, **{key: [[10.0 ** -(i * j) for i in range(1, 13)]] for j, key in enumerate(QUANTITIES)}}
               for lab in ("init", "epoch 1")]
    records[0]["weight_grad_norm"][0][3] = 0.0  # zeros (SkipInit, Fixup) are skipped on the log scale
    fig = plot_profiles(records, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 10_000
    assert [ax.get_yscale() for ax in fig.axes] == ["log"] * 3
    assert all(ax.get_xlabel() == "conv layer index" for ax in fig.axes)
