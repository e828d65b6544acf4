"""Packed replicas are S independent networks, and the fast training step is the plain one.

(a) a packed DepthNet(seeds=[3, 4, 5]) initialises and computes, per replica, exactly what
    DepthNet(seeds=[s]) does; (b) training S packed replicas gives each the losses and errors
    of a separate run with the same seed (its own init and its own data order); (c) a replica
    that diverges is reported diverged while the others' results are untouched; (d) the
    TrainStep runner (with or without the CUDA graph requested, which falls back on a CPU), the
    CPU's channels-last layout and block-wise torch.compile (aot_eager backend) train the same
    function as a plain hand-written SGD step; and the divergence check's GPU queue (with
    stand-in CUDA events) reads every step's check, in order, without waiting on the GPU.
"""
from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from conftest import ROOT, tiny
from deepdepth.trial.callbacks import Trainability
from deepdepth.trial.data import ShuffledBatches, load_mnist, replica_labels
from deepdepth.models import DepthNet, build_model
from deepdepth.trial.module import DepthClassifier, sgd
from deepdepth.trial.step import TrainStep
from deepdepth.train import build, train

SEEDS = [3, 4, 5]
ATOL = 1e-5


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def unpack(packed: DepthNet, s: int) -> dict[str, torch.Tensor]:
    """Replica ``s``'s slice of every parameter and buffer, shaped as in DepthNet(seeds=[s]).

    Every packed tensor stacks the replicas along its first dimension (grouped conv output
    channels, BatchNorm channels, the per-replica gain and classifier), so replica s owns the
    s-th of S equal chunks; scalar buffers (num_batches_tracked) are shared.
    """
    out = {}
    for name, t in packed.state_dict().items():
        out[name] = t if t.dim() == 0 else t.chunk(packed.replicas, dim=0)[s]
    return out


NETS = {  # variants (and the one non-variant option) covering BN / no BN, residual / plain
    "cnn_tanh_newinit": dict(activation="tanh", norm=False, residual=False, init="fan_in"),
    "cnn_elu_bn": dict(activation="elu", norm=True, residual=False, init="fan_in"),
    "resnet": dict(activation="elu", norm=True, residual=True, init="fan_in"),
    "resnet_nobn": dict(activation="elu", norm=False, residual=True, init="fan_in"),
    "cnn_tanh_bn_oldinit": dict(activation="tanh", norm=True, residual=False, init="naive"),
    "resnet_gain": dict(activation="elu", norm=True, residual=True, init="fan_in", branch_gain=True),
}


# ----------------------------------------------------------------------------- (a) init and forward
@pytest.mark.parametrize("name", sorted(NETS))
def test_packed_init_equals_separate_networks(name):
    packed = DepthNet(6, seeds=SEEDS, **NETS[name])
    for s, seed in enumerate(SEEDS):
        single = DepthNet(6, seeds=[seed], **NETS[name]).state_dict()
        sliced = unpack(packed, s)
        assert sliced.keys() == single.keys()
        for key in single:
            assert sliced[key].shape == single[key].shape, key
            assert torch.equal(sliced[key], single[key]), f"replica {s}: {key} differs"


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_packed_forward_equals_separate_networks(name, mode):
    torch.manual_seed(0)
    packed = DepthNet(6, seeds=SEEDS, **NETS[name])
    singles = [DepthNet(6, seeds=[seed], **NETS[name]) for seed in SEEDS]
    if NETS[name].get("branch_gain"):  # a zero gain would hide the residual branch: open it
        with torch.no_grad():
            for net in [packed] + singles:
                for p in net.parameters():
                    if p.dim() == 1 and p.numel() == net.replicas:
                        p.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(7))
            for s, net in enumerate(singles):
                net.load_state_dict(unpack(packed, s))
    x = torch.randn(16, len(SEEDS), 28, 28)
    if mode == "eval":  # non-trivial running statistics: one training-mode pass first
        with torch.no_grad():
            packed(x)
            for s, net in enumerate(singles):
                net(x[:, s:s + 1])
        for net in [packed] + singles:
            net.eval()
    out = packed(x)
    shared = packed(x[:, :1])  # one batch fed to every replica
    assert out.shape == (16, len(SEEDS), 10)
    for s, net in enumerate(singles):
        alone = net(x[:, s:s + 1])
        torch.testing.assert_close(out[:, s], alone, atol=ATOL, rtol=1e-4)
        if s == 0:
            torch.testing.assert_close(shared[:, 0], alone, atol=ATOL, rtol=1e-4)
        if mode == "eval" and NETS[name]["norm"]:
            sliced = unpack(packed, s)
            for key, value in net.state_dict().items():
                if "running" in key:
                    torch.testing.assert_close(sliced[key], value, atol=ATOL, rtol=1e-4)


# ----------------------------------------------------------------------------- (b) training
def train_directly(name: str, seeds: list[int], root, steps: int, lr: float = 0.05):
    """Train through DepthClassifier.replica_losses and TrainStep, with the data module's
    per-replica batches; return per-step losses (steps, S) and wrong counts (steps, S)."""
    train_x, train_y, _, _ = load_mnist(root, check_md5=False, download=False)
    module = DepthClassifier(build_model(name, 6, seeds=seeds), optim=sgd(lr=lr))
    runner = TrainStep(module.replica_losses, module.configure_optimizers(), use_graph=False)
    batches = ShuffledBatches(train_x, train_y, 128, seeds, shuffle=True)
    losses, wrong = [], []
    while len(losses) < steps:
        for x, y in batches:
            logits, loss = runner(x, y, training=True)
            losses.append(loss)
            wrong.append((logits.argmax(-1) != replica_labels(y, len(seeds))).sum(0))  # y: (B,) for one seed
            if len(losses) == steps:
                break
    return torch.stack(losses), torch.stack(wrong), module.net


@pytest.mark.parametrize("name", ["cnn_elu_bn", "resnet", "cnn_tanh_newinit"])
def test_packed_training_equals_separate_runs(name, mnist_root):
    steps = 6  # three epochs of the 512-image fixture: each replica reshuffles every epoch
    losses, wrong, packed = train_directly(name, SEEDS, mnist_root, steps)
    assert losses.shape == (steps, len(SEEDS))
    for s, seed in enumerate(SEEDS):
        alone_losses, alone_wrong, alone = train_directly(name, [seed], mnist_root, steps)
        torch.testing.assert_close(losses[:, s], alone_losses[:, 0], atol=ATOL, rtol=1e-4)
        assert (wrong[:, s] - alone_wrong[:, 0]).abs().max() <= 1  # an argmax on a float tie at most
        for key, value in alone.state_dict().items():
            torch.testing.assert_close(unpack(packed, s)[key], value, atol=1e-4, rtol=1e-3)
    assert not torch.allclose(losses[:, 0], losses[:, 1])  # the replicas really are different networks


def test_packed_lightning_trial_equals_separate_trials(mnist_root, tmp_path):
    """Through the user's entry point: replicas=3 from seed=3 vs three runs with seed=3, 4, 5."""
    common = ["model=cnn_elu_bn", "k=6", *tiny(mnist_root), "trainer.max_epochs=2"]
    packed = train(compose_cfg(*common, "replicas=3", "seed=3"), tmp_path / "packed", interactive=False)
    assert [t["seed"] for t in packed["trials"]] == SEEDS
    for trial in packed["trials"]:
        alone = train(compose_cfg(*common, f"seed={trial['seed']}"), tmp_path / str(trial["seed"]), interactive=False)
        for key in ("train_err", "test_err"):  # fractions of 512 / 256 images: one image at most
            assert len(trial[key]) == len(alone[key]) == 2
            assert max(abs(a - b) for a, b in zip(trial[key], alone[key])) <= 1 / 256 + 1e-9, key
        assert trial["trainable"] == alone["trainable"] and not trial["diverged"]


# ----------------------------------------------------------------------------- (c) one replica diverges
def fit(module, data, epochs: int = 2) -> Trainability:
    verdict = Trainability(0.20, "test", print_epochs=False)
    L.Trainer(max_epochs=epochs, callbacks=[verdict], logger=False, enable_progress_bar=False,
              enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
              accelerator="cpu", devices=1).fit(module, datamodule=data)
    return verdict


def test_one_diverging_replica_spoils_no_other(mnist_root):
    cfg = compose_cfg("model=resnet", "k=6", *tiny(mnist_root), "replicas=3", "seed=3", "optim.lr=0.05")
    clean = fit(*build(cfg)[::-1]).verdicts
    data, module = build(cfg)
    with torch.no_grad():  # poison replica 1's slice only: a huge classifier weight overflows its logits
        module.net.classifier.weight[1].fill_(1e38)
    poisoned = fit(module, data).verdicts
    assert [v["diverged"] for v in poisoned] == [False, True, False]
    assert poisoned[1]["diverged_epoch"] == 0 and not poisoned[1]["trainable"]
    for s in (0, 2):
        assert poisoned[s]["train_err"] == clean[s]["train_err"]
        assert poisoned[s]["test_err"] == clean[s]["test_err"]
        assert all(math.isfinite(e) for e in poisoned[s]["train_err"] + poisoned[s]["test_err"])
        assert poisoned[s]["trainable"] == clean[s]["trainable"]
    for name_, p in module.net.named_parameters():  # the other replicas' weights stayed finite
        for s in (0, 2):
            assert torch.isfinite(p.chunk(3, dim=0)[s]).all(), name_


def test_all_replicas_diverging_stops_the_trial(mnist_root):
    cfg = compose_cfg("model=resnet_nobn", "k=6", *tiny(mnist_root), "replicas=2", "optim.lr=1000",
                      "trainer.max_epochs=3")
    verdicts = fit(*build(cfg)[::-1], epochs=3).verdicts
    assert all(v["diverged"] and not v["trainable"] for v in verdicts)
    last = max(v["diverged_epoch"] for v in verdicts)
    assert last < 2 and all(len(v["train_err"]) <= last + 1 for v in verdicts)  # stopped once all diverged


# ----------------------------------------------------------------------------- (d) fast step vs plain step
def plain_sgd_losses(net: DepthNet, batches, lr: float) -> torch.Tensor:
    """The study's step written out by hand: zero_grad, forward, summed per-replica CE, backward, step."""
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    out = []
    for x, y in batches:
        opt.zero_grad()
        logits = net(x).view(x.shape[0], net.replicas, -1)
        losses = torch.stack([F.cross_entropy(logits[:, s], y[:, s]) for s in range(net.replicas)])
        losses.sum().backward()
        opt.step()
        out.append(losses.detach())
    return torch.stack(out)


@pytest.mark.parametrize("use_graph", [False, True])  # True: requests the CUDA graph, which falls back on CPU
def test_train_step_equals_plain_sgd(use_graph, mnist_root):
    train_x, train_y, _, _ = load_mnist(mnist_root, check_md5=False, download=False)
    batches = list(ShuffledBatches(train_x, train_y, 96, [3, 4], shuffle=True))  # 5 full + 1 partial batch
    assert batches[-1][0].shape[0] != batches[0][0].shape[0]
    module = DepthClassifier(build_model("resnet", 6, seeds=[3, 4]), optim=sgd(lr=0.05))
    runner = TrainStep(module.replica_losses, module.configure_optimizers(), use_graph=use_graph)
    fast = torch.stack([runner(x, y, training=True)[1] for x, y in batches])
    plain = plain_sgd_losses(build_model("resnet", 6, seeds=[3, 4]), batches, lr=0.05)
    torch.testing.assert_close(fast, plain, atol=ATOL, rtol=1e-4)
    assert runner.stats() == {"used": False, "captured": 0, "replays": 0, "eager_steps": len(batches), "failed": None}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_step_uses_one_side_stream_on_the_batches_gpu(mnist_root):
    """Warm-up and capture on one side stream made on the batches' own GPU (the last one, so
    not the current device on a machine with several), replays that train the plain function,
    and a release that drops graphs and stream."""
    device = torch.device("cuda", torch.cuda.device_count() - 1)
    train_x, train_y, _, _ = load_mnist(mnist_root, check_md5=False, download=False)
    batches = [(x.to(device), y.to(device)) for x, y in ShuffledBatches(train_x, train_y, 64, [3, 4], shuffle=True)]
    module = DepthClassifier(build_model("resnet", 6, seeds=[3, 4]), optim=sgd(lr=0.05)).to(device)
    runner = TrainStep(module.replica_losses, module.configure_optimizers(), use_graph=True)
    streams, losses = set(), []
    for x, y in batches:
        losses.append(runner(x, y, training=True)[1])
        streams.add(runner.stream)
    stats = runner.stats()
    assert stats["failed"] is None and stats["used"] and stats["captured"] == 1
    assert stats["replays"] + stats["eager_steps"] == len(batches) and stats["replays"] > 0
    (stream,) = streams
    assert stream.device == device
    plain = plain_sgd_losses(build_model("resnet", 6, seeds=[3, 4]).to(device), batches, lr=0.05)
    torch.testing.assert_close(torch.stack(losses), plain, atol=1e-4, rtol=1e-3)
    runner.release()
    assert runner.stream is None and not runner.graphs and runner.pool is None
    assert all(p.grad is None for p in module.net.parameters())  # nothing left in the graphs' pool


def test_fast_switch_gives_the_same_trial_on_cpu(mnist_root, tmp_path):
    """fast=auto/true/false on the CPU: eager steps (channels-last for auto/true), the same trial."""
    common = ["model=resnet", "k=6", *tiny(mnist_root), "replicas=2"]
    runs = [train(compose_cfg(*common, f"fast={fast}"), tmp_path / fast, interactive=False)
            for fast in ("auto", "true", "false")]
    for key in ("train_err", "test_err"):  # fractions of 512 / 256 images: one image at most
        values = torch.tensor([[t[key] for t in run["trials"]] for run in runs])
        assert (values - values[2]).abs().max() <= 1 / 256 + 1e-9, key


@pytest.mark.parametrize("name, replicas, channels_last", [
    ("cnn_tanh_newinit", 1, True), ("resnet", 1, False), ("resnet", 2, True), ("cnn_elu_bn", 3, True)])
def test_cpu_memory_layout_trains_the_same_function(name, replicas, channels_last, mnist_root):
    """The CPU fast path picks channels-last where it is faster and computes what the plain path does."""
    train_x, train_y, _, _ = load_mnist(mnist_root, check_md5=False, download=False)
    seeds = list(range(3, 3 + replicas))
    batches = list(ShuffledBatches(train_x, train_y, 128, seeds, shuffle=True))
    losses = {}
    for fast in ("auto", False):
        module = DepthClassifier(build_model(name, 6, seeds=seeds), optim=sgd(lr=0.05), fast=fast)
        module.on_fit_start()
        assert module.channels_last == (channels_last and fast == "auto")
        runner = TrainStep(module.replica_losses, module.configure_optimizers(), use_graph=False)
        losses[fast] = torch.stack([runner(x, y, training=True)[1] for x, y in batches])
        with torch.no_grad():
            module.net.eval()
            logits = module.net(module._layout(batches[0][0]))
        losses[fast, "eval"] = logits
    torch.testing.assert_close(losses["auto"], losses[False], atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(losses["auto", "eval"], losses[False, "eval"], atol=1e-4, rtol=1e-4)


def test_compiled_blocks_train_the_same_function(mnist_root, monkeypatch):
    """fast="compile" compiles each block (regional compilation); on the CPU with the aot_eager
    backend (no code generation, seconds) the compiled step matches the plain one."""
    import torch._dynamo

    from deepdepth.trial.module import compile_blocks

    monkeypatch.setattr(torch._dynamo.config, "suppress_errors", torch._dynamo.config.suppress_errors)
    monkeypatch.setattr(torch._dynamo.config, "cache_size_limit", torch._dynamo.config.cache_size_limit)
    train_x, train_y, _, _ = load_mnist(mnist_root, check_md5=False, download=False)
    batches = list(ShuffledBatches(train_x, train_y, 128, [3, 4], shuffle=True))
    net = build_model("resnet", 6, seeds=[3, 4])
    torch._dynamo.reset()
    try:
        assert compile_blocks(net, backend="aot_eager") == 6
        module = DepthClassifier(net, optim=sgd(lr=0.05))
        runner = TrainStep(module.replica_losses, module.configure_optimizers(), use_graph=True)
        compiled = torch.stack([runner(x, y, training=True)[1] for x, y in batches])
    finally:
        torch._dynamo.reset()
    plain = plain_sgd_losses(build_model("resnet", 6, seeds=[3, 4]), batches, lr=0.05)
    torch.testing.assert_close(compiled, plain, atol=ATOL, rtol=1e-4)


def test_divergence_checks_wait_for_the_gpu_in_order():
    """The GPU branch of the Trainability callback, with stand-in CUDA events: a check is read
    only once its step has finished (or when too many are queued), oldest first, none dropped."""
    from types import SimpleNamespace

    class Event:
        def __init__(self):
            self.done = False

        def query(self):
            return self.done

        def synchronize(self):
            self.done = True

    cb = Trainability()
    cb.diverged_at = [None, None, None]
    trainer = SimpleNamespace(should_stop=False)
    events = [Event() for _ in range(4)]
    cb._pending.extend([(torch.tensor([True, False, True]), events[0], 0),
                        (torch.tensor([True, True, True]), events[1], 0),
                        (torch.tensor([False, False, True]), events[2], 1),
                        (torch.tensor([True, True, False]), events[3], 1)])
    cb._check_pending(trainer, wait_beyond=8)
    assert cb.diverged_at == [None, None, None] and len(cb._pending) == 4  # GPU still busy
    events[1].done = True
    cb._check_pending(trainer, wait_beyond=8)
    assert len(cb._pending) == 4  # the oldest check is not ready: nothing is read out of order
    events[0].done = True
    cb._check_pending(trainer, wait_beyond=8)
    assert cb.diverged_at == [None, 0, None] and len(cb._pending) == 2
    cb._check_pending(trainer, wait_beyond=1)  # too many queued: wait for the oldest
    assert cb.diverged_at == [1, 0, None] and len(cb._pending) == 1 and not trainer.should_stop
    cb._check_pending(trainer)  # end of epoch: wait for all
    assert cb.diverged_at == [1, 0, 1] and not cb._pending and trainer.should_stop


@pytest.mark.parametrize("name, replicas, fast, memory_format, channels_last", [
    ("resnet", 1, "auto", "channels_last", True), ("resnet", 2, "auto", "contiguous", False),
    ("cnn_tanh_newinit", 1, False, "channels_last", True), ("resnet", 2, "auto", "auto", True)])
def test_memory_format_overrides_the_fast_paths_choice(name, replicas, fast, memory_format, channels_last):
    """memory_format=channels_last|contiguous sets the layout whatever fast's rule would pick."""
    module = DepthClassifier(build_model(name, 6, seeds=list(range(replicas))), optim=sgd(lr=0.05), fast=fast,
                             memory_format=memory_format)
    module.on_fit_start()
    weights = [m.weight for m in module.net.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[1] > 1]
    assert module.channels_last is channels_last
    assert all(w.is_contiguous(memory_format=torch.channels_last) is channels_last for w in weights)
    assert weights and module._layout(torch.zeros(2, 3, 28, 28)).is_contiguous(memory_format=torch.channels_last) \
        is channels_last

