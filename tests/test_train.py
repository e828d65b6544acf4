"""One trial end to end: the command line, result.json, config errors, determinism, divergence."""
import json
import logging
import os
import re
import weakref

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from conftest import ROOT, run_train, tiny
from deepdepth.trial.config import ConfigError
from deepdepth.trial.devices import cpu_model, flush_denormals, flushing_now, trains_on_cpu
from deepdepth.train import train

RESULT_KEYS = {"model", "k", "seed", "lr", "epochs", "criterion", "threshold", "train_err", "test_err",
               "trainable", "diverged", "seconds", "params", "device", "device_name", "versions", "trials", "seeds",
               "precision", "cudnn_benchmark", "norm", "flush_denormal", "memory_format", "cuda_graph", "optimizer_steps", "complete", "debug",
               "finished_at", "host"}


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.e2e
def test_command_line_writes_complete_result(mnist_root, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train("model=cnn_tanh_newinit", "k=3", "trainer.max_epochs=2", *tiny(mnist_root)[:-1],
                     f"hydra.run.dir={run_dir}", cwd=tmp_path)
    result = json.loads((run_dir / "result.json").read_text())
    assert RESULT_KEYS <= result.keys()
    assert result["model"] == "cnn_tanh_newinit" and result["k"] == 3 and result["epochs"] == 2
    assert len(result["train_err"]) == len(result["test_err"]) == 2
    assert all(0 <= e <= 1 for e in result["train_err"] + result["test_err"])
    assert result["params"] == 2954 and result["device"] == result["device_name"] == "cpu"
    assert result["versions"]["torch"] == torch.__version__
    assert result["host"]["cpu"] == cpu_model() and result["host"]["cores"] >= 1 and result["host"]["torch_threads"] >= 1
    assert result["trainable"] == (result["test_err"][-1] < 0.2)
    assert (run_dir / "metrics.csv").read_text().startswith("epoch,step,test_err,train_err")
    assert result["precision"] == "fp32" and not result["debug"] and result["complete"]
    assert result["cudnn_benchmark"] is False and result["memory_format"] == "channels_last"  # the CPU's fast path
    assert result["optimizer_steps"] == 4  # 512 images in batches of 256, two epochs
    assert result["cuda_graph"] == {"used": False, "captured": 0, "replays": 0, "eager_steps": 4, "failed": None}
    log_text = proc.stdout + proc.stderr + (run_dir / "train.log").read_text()
    assert "Epoch 001/002, Train Error " in log_text
    assert f"cnn_tanh_newinit k=3: seed 0: {'trainable' if result['trainable'] else 'not trainable'}" in log_text
    assert "GPU available" in log_text  # a single run keeps Lightning's own lines
    assert not list(run_dir.glob("result.json.*"))  # no temporary file left behind


@pytest.mark.parametrize("override, message", [
    ("k=4", "k must be a positive multiple of 3"),
    ("k=0", "got k=0"),
    ("optim.lr=0", "got optim.lr=0"),
    ("optim.lr=-0.1", "got optim.lr=-0.1"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0"),
    ("trainability.criterion=median", "trainability.criterion='median' is unknown"),
    ("protocol=sloppy", "protocol='sloppy' is unknown"),
    ("replicas=0", "replicas=0"),
    ("model.widths=[4,8]", "model.widths must list three positive channel counts"),
    ("seed=4294967296", "seed must be an integer in [0, 2**32-1] (torch seeds with 32 bits), got seed=4294967296"),
    ("seed=-1", "got seed=-1"),
    ("seed=4294967295 replicas=2", "trains seeds up to 4294967296, past 2**32-1"),
    ("replicas=4 seeds=[0,1,4294967296,4294967297]", "seeds: seed must be an integer in [0, 2**32-1]"),
    ("replicas=2 seeds=[0,18446744073709551616]", "got seed=18446744073709551616"),
    ("precision=fp16", "precision='fp16' is unknown"),
    ("memory_format=nhwc", "memory_format='nhwc' is unknown"),
    ("flush_denormal=sometimes", "flush_denormal='sometimes' is unknown"),
    ("gpu_jobs_per_device=0", "gpu_jobs_per_device must be a positive integer or null"),
    ("trainer.devices=2", "a trial trains on one device"),
    ("+trainer.precision=16-mixed", "trainer.precision='16-mixed' is not honoured"),
    ("+trainer.accumulate_grad_batches=2", "trainer.accumulate_grad_batches must be 1"),
    ("+trainer.gradient_clip_val=1.0", "trainer.gradient_clip_val is not honoured"),
    ("+trainer.check_val_every_n_epoch=2", "the verdict needs the test error after the last epoch"),
    ("+trainer.limit_val_batches=0", "the verdict needs a test pass"),
    ("+trainer.logger=false", "trainer.logger is set by deepdepth"),
])
def test_bad_config_is_refused_by_name(override, message, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(compose_cfg(*override.split(), "data.root=/nonexistent"), tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("override, message", [("k=4", "error: k must be a positive multiple of 3"),
                                               ("model=vgg", "Could not find 'model/vgg'")])
@pytest.mark.e2e
def test_bad_command_line_fails_before_training(override, message, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(override, "data.root=/nonexistent", f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (run_dir / "result.json").exists() and not (run_dir / "metrics.csv").exists()


@pytest.mark.e2e
def test_missing_data_fails_with_one_clear_message(tmp_path):
    proc = run_train("data.root=" + str(tmp_path / "nowhere"), "data.download=false",
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "MNIST not found under" in proc.stderr


@pytest.mark.e2e
def test_print_config_without_training(tmp_path):
    proc = run_train("model=resnet", "k=447", "--cfg", "job", cwd=tmp_path)
    assert "k: 447" in proc.stdout and "residual: true" in proc.stdout
    assert not (tmp_path / "outputs").exists()


def test_widths_from_the_command_line_are_trained_and_recorded(mnist_root, tmp_path):
    result = train(compose_cfg("model=cnn_tanh_newinit", "k=3", "model.widths=[2,4,8]", *tiny(mnist_root)),
                   tmp_path, interactive=False)
    study = train(compose_cfg("model=cnn_tanh_newinit", "k=3", *tiny(mnist_root)), tmp_path / "study",
                  interactive=False)
    assert result["widths"] == [2, 4, 8] and study["widths"] == [4, 8, 16]
    assert result["params"] == 9 * (2 + 2 * 4 + 4 * 8) + 2 + 4 + 8 + 8 * 9 * 10 + 10


def test_same_seed_same_errors(mnist_root, tmp_path):
    cfg = compose_cfg("model=cnn_elu_bn", "k=6", "seed=5", *tiny(mnist_root))
    a = train(cfg, tmp_path / "a", interactive=False)
    b = train(cfg, tmp_path / "b", interactive=False)
    with open_dict(cfg):
        cfg.seed = 6
    c = train(cfg, tmp_path / "c", interactive=False)
    assert a["train_err"] == b["train_err"] and a["test_err"] == b["test_err"]
    assert a["train_err"] != c["train_err"]


def test_fixture_data_is_learnable(mnist_root, tmp_path):
    cfg = compose_cfg("model=cnn_tanh_newinit", "k=3", *tiny(mnist_root), "trainer.max_epochs=3", "optim.lr=0.05",
                      "data.batch_size=32")
    result = train(cfg, tmp_path, interactive=False)
    assert result["test_err"][-1] < 0.2 and result["trainable"] and not result["diverged"]


def test_divergence_is_a_result_not_a_crash(mnist_root, tmp_path):
    cfg = compose_cfg("model=resnet_nobn", "k=9", *tiny(mnist_root), "trainer.max_epochs=3", "optim.lr=1000",
                      "data.batch_size=32")
    result = train(cfg, tmp_path, interactive=False)
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
    result = train(cfg, tmp_path, interactive=False)
    assert result["test_err"][0] < 0.3 and result["params"] == 2954


# ----------------------------------------------------------------------------- Lightning's counters and options
def test_max_steps_stops_after_two_optimizer_steps(mnist_root, tmp_path):
    cfg = compose_cfg("k=3", *tiny(mnist_root), "data.batch_size=64", "trainer.max_steps=2",
                      "trainer.log_every_n_steps=1")
    result = train(cfg, tmp_path, interactive=False)
    assert result["optimizer_steps"] == 2 and result["cuda_graph"]["eager_steps"] == 2
    rows = [line.split(",") for line in (tmp_path / "metrics.csv").read_text().splitlines()]
    assert rows[0][:2] == ["epoch", "step"] and [r[1] for r in rows[1:]] == ["0", "1"]  # train_loss per step
    assert not result["complete"] and result["trainable"] is None  # cut short: no verdict


def test_checkpointing_and_hparams(mnist_root, tmp_path):
    cfg = compose_cfg("k=3", *tiny(mnist_root), "data.batch_size=64", "trainer.max_epochs=2",
                      "trainer.enable_checkpointing=true")
    result = train(cfg, tmp_path, interactive=False)
    assert result["optimizer_steps"] == 16  # 8 batches a epoch
    assert [p.name for p in (tmp_path / "checkpoints").glob("*.ckpt")] == ["epoch=1-step=16.ckpt"]
    hparams = (tmp_path / "hparams.yaml").read_text()
    for line in ("k: 3", "_target_: torch.optim.SGD", "lr: 0.01", "protocol: correct", "batch_size: 64"):
        assert line in hparams  # the module's and the data module's


@pytest.mark.parametrize("override", ["+trainer.fast_dev_run=true", "trainer=debug"])
def test_fast_dev_run_is_a_debug_run_never_a_verdict(mnist_root, tmp_path, override):
    result = train(compose_cfg("k=3", *tiny(mnist_root), "optim.lr=0.05", override), tmp_path, interactive=False)
    assert result["debug"] and result["optimizer_steps"] == 1
    assert result["trainable"] is None and all(t["trainable"] is None for t in result["trials"])


def test_validation_twice_an_epoch_ends_with_the_plain_trial(mnist_root, tmp_path):
    common = ["model=cnn_elu_bn", "k=3", *tiny(mnist_root), "data.batch_size=64", "trainer.max_epochs=2"]
    plain = train(compose_cfg(*common), tmp_path / "plain", interactive=False)
    twice = train(compose_cfg(*common, "+trainer.val_check_interval=0.5"), tmp_path / "twice", interactive=False)
    assert len(twice["test_err"]) == 4 and twice["optimizer_steps"] == plain["optimizer_steps"] == 16
    # the errors after each epoch's last step: the train error is the running mean over the whole epoch
    assert twice["train_err"][1::2] == plain["train_err"] and twice["test_err"][1::2] == plain["test_err"]
    assert twice["trainable"] == plain["trainable"] and twice["complete"]


# ----------------------------------------------------------------------------- GPU first-contact fixes seen on a CPU
def test_device_is_the_one_training_ran_on(mnist_root, tmp_path):
    """Lightning moves the module back to the CPU after fit; the record keeps the training device
    (a stand-in device name here: a callback relabels the module before training starts)."""
    class Relabel(L.Callback):
        def on_fit_start(self, trainer, pl_module):
            pl_module._device = torch.device("meta")

    result = train(compose_cfg("k=3", *tiny(mnist_root)), tmp_path, callbacks=[Relabel()], interactive=False)
    assert result["device"] == "meta"
    assert result["host"] == {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def test_finished_trial_releases_its_step_runner(mnist_root, tmp_path):
    class Keep(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.module, self.runner = pl_module, weakref.ref(pl_module.step_runner)

    keep = Keep()
    train(compose_cfg("k=3", *tiny(mnist_root)), tmp_path, callbacks=[keep], interactive=False)
    assert keep.module.step_runner is None and keep.runner() is None  # collected, graphs and pool with it


@pytest.mark.parametrize("precision, allow_tf32, matmul", [("fp32", False, "highest"), ("tf32", True, "high")])
def test_precision_applied_during_the_trial_and_recorded(mnist_root, tmp_path, precision, allow_tf32, matmul):
    class Seen(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
                          torch.get_float32_matmul_precision())

    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    seen = Seen()
    result = train(compose_cfg("k=3", *tiny(mnist_root), f"precision={precision}"), tmp_path, callbacks=[seen],
                   interactive=False)
    assert seen.flags == (allow_tf32, allow_tf32, matmul) and result["precision"] == precision
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
            torch.get_float32_matmul_precision()) == before  # restored after the trial


def test_cudnn_benchmark_on_for_the_trial_only_and_recorded(mnist_root, tmp_path):
    """trainer.benchmark=true: Lightning sets cuDNN's algorithm search for the process; the
    trial records it and the next trial in the process starts from the setting before."""
    class Seen(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.benchmark = torch.backends.cudnn.benchmark

    before = torch.backends.cudnn.benchmark
    seen = Seen()
    result = train(compose_cfg("k=3", *tiny(mnist_root), "+trainer.benchmark=true"), tmp_path, callbacks=[seen],
                   interactive=False)
    assert seen.benchmark is True and result["cudnn_benchmark"] is True
    assert torch.backends.cudnn.benchmark == before is False


def test_original_protocol_sets_eval_mode_once_per_epoch(mnist_root):
    from deepdepth.train import build

    data, module = build(compose_cfg("model=cnn_elu_bn", "k=3", "protocol=original", *tiny(mnist_root),
                                     "data.batch_size=64"))
    calls = []
    plain_eval = module.net.eval
    module.net.eval = lambda: calls.append(1) or plain_eval()
    L.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, enable_checkpointing=False,
              enable_model_summary=False, num_sanity_val_steps=0).fit(module, datamodule=data)
    assert len(calls) == 2  # epochs 1 and 2, not each of their 8 batches


# ----------------------------------------------------------------------------- quiet sweeps, exact errors, atomic records
@pytest.mark.parametrize("interactive", [True, False])
def test_lightning_banners_only_in_interactive_runs(mnist_root, tmp_path, interactive):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(handler)
    try:
        train(compose_cfg("k=3", *tiny(mnist_root)), tmp_path, interactive=interactive)
    finally:
        logger.removeHandler(handler)
    banners = [r.getMessage() for r in records if "available" in r.getMessage() or "Tip" in r.getMessage()]
    assert bool(banners) == interactive


def test_error_counts_are_exact_at_the_threshold():
    """8,000 of 10,000 correct: the notebook's 1 - correct/total in float64 is 0.19999999999999996,
    trainable at 0.2 (a float32 fraction, 0.2000000030, would not be)."""
    from deepdepth.trial.metrics import ReplicaError
    from deepdepth.trial.verdict import is_trainable

    metric = ReplicaError(replicas=2)
    target = torch.arange(10_000) % 10
    guess = torch.stack([target, target], dim=1).clone()
    guess[8_000:, 0] = (target[8_000:] + 1) % 10  # replica 0: 8,000 right; replica 1: 7,999
    guess[7_999:, 1] = (target[7_999:] + 1) % 10
    logits = torch.nn.functional.one_hot(guess, 10).float()
    for start in range(0, 10_000, 256):  # accumulated batch by batch, as in an epoch
        metric.update(logits[start:start + 256], target[start:start + 256, None])
    errors = metric.compute().tolist()
    assert errors == [1 - 8_000 / 10_000, 1 - 7_999 / 10_000]
    assert [is_trainable(None, e, 0.2) for e in errors] == [True, False]


@pytest.mark.e2e
def test_failed_result_write_is_one_error_after_the_logged_result(mnist_root, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "result.json").mkdir(parents=True)  # a folder in the way: the rename fails
    proc = run_train("k=3", *tiny(mnist_root), f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert f"deepdepth: error: cannot write {run_dir / 'result.json'}" in proc.stderr
    assert "cnn_tanh_newinit k=3: seed 0: " in (run_dir / "train.log").read_text()  # logged before the write


@pytest.mark.parametrize("model", ["cnn_tanh", "resnet"])
def test_a_mixed_depth_pack_trains_each_replica_as_its_own_trial(mnist_root, tmp_path, model):
    """What a sweep launches on a GPU: a round's depths and seeds in one job (``depths``,
    ``seeds``); each replica's record is that of its own single-depth trial. fast=false: the
    plain layout, so packed and separate runs use the same kernels."""
    common = [f"model={model}", "fast=false", *tiny(mnist_root)]
    mixed = train(compose_cfg(*common, "k=6", "replicas=3", "seeds=[0,1,0]", "depths=[3,3,6]"),
                  tmp_path / "mixed", interactive=False)
    assert [(t["k"], t["seed"]) for t in mixed["trials"]] == [(3, 0), (3, 1), (6, 0)]
    for (k, seed), t in zip([(3, 0), (3, 1), (6, 0)], mixed["trials"]):
        alone = train(compose_cfg(*common, f"k={k}", f"seed={seed}"), tmp_path / f"{k}_{seed}", interactive=False)
        assert t["train_err"] == pytest.approx(alone["train_err"], abs=0.01)
        assert t["test_err"] == pytest.approx(alone["test_err"], abs=0.01)


def test_an_init_packed_trial_trains_each_replica_as_its_own_trial(mnist_root, tmp_path):
    """What a sweep over init gains launches: replicas of one network, each with its
    own gain (``inits``) and seed; each replica's record is that of its own trial with that gain."""
    common = ["model=cnn_tanh_newinit", "fast=false", "k=6", *tiny(mnist_root)]
    gains = ["fan_in:0.5", "fan_in:0.9", "fan_in:0.5"]
    packed = train(compose_cfg(*common, "replicas=3", "seeds=[0,0,1]", "inits=[" + ",".join(f"'{g}'" for g in gains) + "]"),
                   tmp_path / "packed", interactive=False)
    assert [(t["seed"], t["init"]) for t in packed["trials"]] == [(0, gains[0]), (0, gains[1]), (1, gains[2])]
    for (seed, gain), t in zip([(0, gains[0]), (0, gains[1]), (1, gains[2])], packed["trials"]):
        alone = train(compose_cfg(*common, f"seed={seed}", f"model.init={gain}"), tmp_path / f"{seed}_{gain}",
                      interactive=False)
        assert t["train_err"] == pytest.approx(alone["train_err"], abs=0.01)
        assert t["test_err"] == pytest.approx(alone["test_err"], abs=0.01)
    assert packed["trials"][0]["train_err"] != packed["trials"][1]["train_err"]  # the gains differ


@pytest.mark.parametrize("override,message", [("depths=[3,9]", "one non-negative integer per replica"),
                                              ("inits=['fan_in:0.5']", "one init spec per replica (replicas=3)"),
                                              ("inits=['fan_in:0.5','fan_in','bogus']", "inits: unknown init"),
                                              ("depths=[3,4,6]", "multiples of 3 whose deepest is k=6"),
                                              ("seeds=[0]", "one non-negative integer per replica")])
def test_bad_pack_lists_are_refused(mnist_root, tmp_path, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(compose_cfg("k=6", "replicas=3", override, *tiny(mnist_root)), tmp_path, interactive=False)


@pytest.mark.parametrize("model, setting, flushed", [("cnn_tanh", "auto", True), ("cnn_elu_bn", "auto", False),
                                                     ("cnn_elu_bn", "true", True), ("cnn_tanh", "false", False)])
def test_denormals_flushed_on_the_cpu_for_a_norm_free_network_and_recorded(mnist_root, tmp_path, model, setting,
                                                                          flushed):
    """auto: a network without normalisation flushes denormal floats to zero on the CPU (they decay
    into them far from the threshold, and some CPUs take 28x as long on them); recorded, and the
    process's setting put back after the trial. One torch thread, as a sweep's CPU jobs run: the
    worker threads earlier tests of this process started keep their own setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train_and_check_flushing(mnist_root, tmp_path, model, setting, flushed)
    finally:
        torch.set_num_threads(threads)


def _train_and_check_flushing(mnist_root, tmp_path, model, setting, flushed):
    class Seen(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.flushing = flushing_now()

    seen = Seen()
    result = train(compose_cfg(f"model={model}", "k=3", "trainer=cpu", f"flush_denormal={setting}", *tiny(mnist_root)),
                   tmp_path, callbacks=[seen], interactive=False)
    assert seen.flushing is flushed and result["flush_denormal"] is flushed and result["device"] == "cpu"
    assert result["norm"] is (model == "cnn_elu_bn") and flushing_now() is False


def test_flushing_is_decided_per_device_and_setting():
    assert flush_denormals("auto", on_cpu=True, norm=False) and not flush_denormals("auto", on_cpu=True, norm=True)
    assert flush_denormals(True, on_cpu=True, norm=True) and not flush_denormals(False, on_cpu=True, norm=False)
    assert not flush_denormals("auto", on_cpu=False, norm=False) and not flush_denormals(True, on_cpu=False, norm=False)
    assert trains_on_cpu("cpu") and trains_on_cpu("auto") is not torch.cuda.is_available()
    with pytest.raises(ValueError, match="flush_denormal must be auto, true or false, got 'yes'"):
        flush_denormals("yes", on_cpu=True, norm=False)
