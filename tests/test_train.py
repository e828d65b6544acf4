"""One trial end to end: the command line, result.json, config errors, determinism, divergence."""
import json
import re

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from conftest import ROOT, run_train, tiny
from deepdepth.config import ConfigError
from deepdepth.train import train

RESULT_KEYS = {"model", "k", "seed", "lr", "epochs", "criterion", "threshold", "train_err", "test_err",
               "trainable", "diverged", "seconds", "params", "device", "versions", "trials", "seeds"}


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_command_line_writes_complete_result(mnist_root, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train("model=cnn_tanh_newinit", "k=3", "trainer.max_epochs=2", *tiny(mnist_root)[:-1],
                     f"hydra.run.dir={run_dir}", cwd=tmp_path)
    result = json.loads((run_dir / "result.json").read_text())
    assert RESULT_KEYS <= result.keys()
    assert result["model"] == "cnn_tanh_newinit" and result["k"] == 3 and result["epochs"] == 2
    assert len(result["train_err"]) == len(result["test_err"]) == 2
    assert all(0 <= e <= 1 for e in result["train_err"] + result["test_err"])
    assert result["params"] == 2954 and result["device"] == "cpu"
    assert result["versions"]["torch"] == torch.__version__
    assert result["trainable"] == (result["test_err"][-1] < 0.2)
    assert (run_dir / "metrics.csv").read_text().startswith("epoch,step,test_err,train_err")
    assert "Epoch 001/002, Train Error " in proc.stdout + proc.stderr + (run_dir / "train.log").read_text()


@pytest.mark.parametrize("override, message", [
    ("k=4", "k must be a positive multiple of 3"),
    ("k=0", "got k=0"),
    ("optim.lr=0", "optim.lr must be positive, got optim.lr=0"),
    ("optim.lr=-0.1", "got optim.lr=-0.1"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0"),
    ("trainability.criterion=median", "trainability.criterion='median' is unknown"),
    ("protocol=sloppy", "protocol='sloppy' is unknown"),
    ("replicas=0", "replicas=0"),
])
def test_bad_config_is_refused_by_name(override, message, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(compose_cfg(override, "data.root=/nonexistent"), tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("override, message", [("k=4", "error: k must be a positive multiple of 3"),
                                               ("model=vgg", "Could not find 'model/vgg'")])
def test_bad_command_line_fails_before_training(override, message, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(override, "data.root=/nonexistent", f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (run_dir / "result.json").exists() and not (run_dir / "metrics.csv").exists()


def test_missing_data_fails_with_one_clear_message(tmp_path):
    proc = run_train("data.root=" + str(tmp_path / "nowhere"), "data.download=false",
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "MNIST not found under" in proc.stderr


def test_print_config_without_training(tmp_path):
    proc = run_train("model=resnet", "k=447", "--cfg", "job", cwd=tmp_path)
    assert "k: 447" in proc.stdout and "residual: true" in proc.stdout
    assert not (tmp_path / "outputs").exists()


def test_same_seed_same_errors(mnist_root, tmp_path):
    cfg = compose_cfg("model=cnn_elu_bn", "k=6", "seed=5", *tiny(mnist_root))
    a = train(cfg, tmp_path / "a", sweeping=True)
    b = train(cfg, tmp_path / "b", sweeping=True)
    with open_dict(cfg):
        cfg.seed = 6
    c = train(cfg, tmp_path / "c", sweeping=True)
    assert a["train_err"] == b["train_err"] and a["test_err"] == b["test_err"]
    assert a["train_err"] != c["train_err"]


def test_fixture_data_is_learnable(mnist_root, tmp_path):
    cfg = compose_cfg("model=cnn_tanh_newinit", "k=3", *tiny(mnist_root), "trainer.max_epochs=3", "optim.lr=0.05",
                      "data.batch_size=32")
    result = train(cfg, tmp_path, sweeping=True)
    assert result["test_err"][-1] < 0.2 and result["trainable"] and not result["diverged"]


def test_divergence_is_a_result_not_a_crash(mnist_root, tmp_path):
    cfg = compose_cfg("model=resnet_nobn", "k=9", *tiny(mnist_root), "trainer.max_epochs=3", "optim.lr=1000",
                      "data.batch_size=32")
    result = train(cfg, tmp_path, sweeping=True)
    assert result["diverged"] and not result["trainable"]
    assert result["trials"][0]["diverged_epoch"] == 0
    assert len(result["train_err"]) == 1  # stopped in its first epoch, not trained to the end
    last_step = int((tmp_path / "metrics.csv").read_text().splitlines()[-1].split(",")[1])
    assert last_step < 16  # ... and within that epoch (16 batches), at once


@pytest.mark.parametrize("protocol, later_epochs_train_mode", [("correct", True), ("original", False)])
def test_protocol_switch_controls_batchnorm_mode(mnist_root, tmp_path, protocol, later_epochs_train_mode):
    import lightning as L

    from deepdepth.train import build

    class ModeSpy(L.Callback):
        modes: dict = {}

        def on_train_batch_end(self, trainer, pl_module, *args):
            self.modes.setdefault(trainer.current_epoch, set()).add(pl_module.net.training)

    cfg = compose_cfg("model=cnn_elu_bn", "k=3", f"protocol={protocol}", *tiny(mnist_root), "trainer.max_epochs=2")
    data, module = build(cfg)
    spy = ModeSpy()
    L.Trainer(max_epochs=2, callbacks=[spy], logger=False, enable_progress_bar=False,
              enable_checkpointing=False, enable_model_summary=False).fit(module, datamodule=data)
    assert spy.modes[0] == {True}
    assert spy.modes[1] == {later_epochs_train_mode}


def test_real_mnist_smoke(real_mnist, tmp_path):
    cfg = compose_cfg("model=cnn_tanh_newinit", "k=3", f"data.root={real_mnist}", "trainer.max_epochs=1",
                      "data.train_samples=16384", "data.test_samples=2048", "optim.lr=0.05")
    result = train(cfg, tmp_path, sweeping=True)
    assert result["test_err"][0] < 0.3 and result["params"] == 2954
