"""The CPU's whole-step torch.compile: the rule that decides it, the step runner
that applies it per batch shape and mode, its fallback, and that it trains the same function.

The rule and the runner's bookkeeping are tested with ``torch.compile`` stood in by a plain
wrapper (seconds); ``slow`` tests compile for real with inductor (a minute or more per graph
on a busy 2-core machine), with a fresh cache directory.
"""
from __future__ import annotations

import json

import pytest
import torch

from conftest import compose_cfg, tiny
from deepdepth.trial import compile_rule
from deepdepth.trial.data import ShuffledBatches, load_mnist
from deepdepth.models import build_model
from deepdepth.trial.module import DepthClassifier, sgd
from deepdepth.trial.step import TIMED_STEPS, TrainStep
from deepdepth.train import train

SEEDS = [3, 4]


# ----------------------------------------------------------------------------- the rule
def test_rule_compiles_long_trials_and_not_short_ones():
    # a 3-epoch k=30 study trial (705 steps of ~165 ms, channels-last) stays eager: at the measured
    # ~1.05x a cold compile (~42 s) would cost more than it saves; 20,000 steps from a warm cache pay
    study = compile_rule.decide(steps_left=705, eager_step_s=0.165, blocks=30, warm=False, norm=False)
    long = compile_rule.decide(steps_left=20_000, eager_step_s=0.165, blocks=30, warm=True, norm=False)
    assert long.compile and not study.compile
    assert "20000 steps" in long.reason and "warm" in long.reason and "<=" in study.reason and "cold" in study.reason


def test_rule_weighs_cache_norm_and_depth():
    # the same long k=30 trial pays for a warm compile, not a cold one
    args = dict(steps_left=3_000, eager_step_s=0.165, blocks=30, norm=False)
    assert compile_rule.decide(**args, warm=True).compile and not compile_rule.decide(**args, warm=False).compile
    # one replica with BatchNorm: its compiled step was slower than eager, so never, however long
    args = dict(steps_left=10**7, eager_step_s=0.26, blocks=30, warm=True)
    assert compile_rule.decide(**args, norm=False).compile and not compile_rule.decide(**args, norm=True).compile
    assert compile_rule.expected_compile_seconds(447, warm=False) > compile_rule.expected_compile_seconds(3, warm=False)
    assert compile_rule.expected_compile_seconds(30, warm=True) < compile_rule.expected_compile_seconds(30, warm=False)
    assert not compile_rule.decide(steps_left=0, eager_step_s=1.0, blocks=3, warm=True, norm=False).compile
    # packed replicas: the same small gain without BatchNorm, none with it
    args = dict(steps_left=20_000, eager_step_s=0.7, blocks=30, warm=True, norm=False)
    assert compile_rule.decide(**args, packed=True) == compile_rule.decide(**args, packed=False)
    assert compile_rule.decide(**args, packed=True).compile
    assert not compile_rule.decide(steps_left=10**9, eager_step_s=1.0, blocks=3, warm=True, norm=True, packed=True).compile


def test_cache_counts_as_warm_only_with_our_marker_and_inductor_entries(tmp_path):
    sig = compile_rule.step_signature("net", (256, 1, 28, 28), True)
    assert sig == compile_rule.step_signature("net", (256, 1, 28, 28), True) != compile_rule.step_signature("net", 1)
    assert not compile_rule.cache_is_warm(tmp_path, sig)
    compile_rule.mark_warm(tmp_path, sig)
    assert not compile_rule.cache_is_warm(tmp_path, sig)  # a marker without inductor's graphs
    (tmp_path / "fxgraph" / "ab").mkdir(parents=True)
    assert compile_rule.cache_is_warm(tmp_path, sig) and not compile_rule.cache_is_warm(tmp_path, "other")
    (tmp_path / "file").write_text("")
    compile_rule.mark_warm(tmp_path / "file", sig)  # a cache that cannot be written: no error


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "c"))
    assert compile_rule.inductor_cache_dir() == tmp_path / "c" and not (tmp_path / "c").exists()


# ----------------------------------------------------------------------------- the runner
def batches_of(mnist_root, size: int, seeds=SEEDS):
    train_x, train_y, _, _ = load_mnist(mnist_root, check_md5=False, download=False)
    return list(ShuffledBatches(train_x, train_y, size, seeds, shuffle=True))


def runner_for(name: str, fast, k: int = 3, steps_left: int = 10**6, seeds=SEEDS):
    module = DepthClassifier(build_model(name, k, seeds=seeds), optim=sgd(lr=0.05), fast=fast)
    module.on_fit_start()
    optimizer = module.configure_optimizers()
    plan = module.compile_plan(optimizer)
    if plan is not None:
        plan.steps_left = lambda training: steps_left
    return module, TrainStep(module.replica_losses, optimizer, use_graph=False, compile_plan=plan)


def train_losses(module, runner, batches, modes) -> torch.Tensor:
    out = []
    for (x, y), training in zip(batches, modes):
        module.net.train(training)
        out.append(runner(x, y, training=training)[1])
    return torch.stack(out)


class FakeCompile:
    """Stands in for torch.compile: runs the function as it is, counting calls."""

    def __init__(self, fail: bool = False):
        self.calls, self.fail = 0, fail

    def __call__(self, fn, **kwargs):
        def compiled(*args):
            self.calls += 1
            out = fn(*args)  # the step runs (parameters, BatchNorm statistics, momentum change) ...
            if self.fail:
                raise RuntimeError("inductor: C++ compile failed\nlong log")  # ... then the compile fails
            return out
        return compiled


def test_auto_times_eager_steps_then_compiles_the_full_batch_only(mnist_root, monkeypatch):
    fake = FakeCompile()
    monkeypatch.setattr(torch, "compile", fake)
    batches = batches_of(mnist_root, 96)  # 5 full batches and a partial one
    module, runner = runner_for("cnn_tanh_newinit", "auto")
    train_losses(module, runner, batches * 2, [True] * 6 + [False] * 6)
    stats = runner.compile_stats()
    # 1 untimed + TIMED_STEPS timed eager steps, then compiled; the mode does not matter without BatchNorm
    assert stats["used"] and stats["compiled_steps"] == 10 - (1 + TIMED_STEPS) == fake.calls
    assert runner.eager_steps == 2 + 1 + TIMED_STEPS and stats["failed"] is None
    assert "batch 96, train mode: compile" in stats["reason"] and stats["compile_seconds"] >= 0


def test_auto_stays_eager_when_the_trial_is_short(mnist_root, monkeypatch):
    monkeypatch.setattr(torch, "compile", FakeCompile())
    module, runner = runner_for("cnn_tanh_newinit", "auto", steps_left=5)
    train_losses(module, runner, batches_of(mnist_root, 96), [True] * 6)
    stats = runner.compile_stats()
    assert not stats["used"] and "eager: 5 steps" in stats["reason"] and runner.eager_steps == 6


def test_batchnorm_eval_mode_is_decided_and_compiled_on_its_own(mnist_root, monkeypatch):
    monkeypatch.setattr(torch, "compile", FakeCompile())
    module, runner = runner_for("cnn_elu_bn", "compile")
    train_losses(module, runner, batches_of(mnist_root, 96) * 2, [True] * 6 + [False] * 6)
    stats = runner.compile_stats()
    assert stats["reason"].count("forced (fast=compile)") == 2 and "eval mode" in stats["reason"]
    assert stats["compiled_steps"] == 4 + 4 and runner.eager_steps == 4


def test_failed_compile_restores_the_state_and_trains_on_eagerly(mnist_root, monkeypatch, caplog):
    batches = batches_of(mnist_root, 96)
    module, plain = runner_for("resnet", False)
    expected = train_losses(module, plain, batches, [True] * 6)
    monkeypatch.setattr(torch, "compile", FakeCompile(fail=True))
    module, runner = runner_for("resnet", "compile")
    with caplog.at_level("WARNING", logger="deepdepth.trial.step"):
        losses = train_losses(module, runner, batches, [True] * 6)
    torch.testing.assert_close(losses, expected, atol=1e-5, rtol=1e-4)  # the failed attempt left no trace
    stats = runner.compile_stats()
    assert not stats["used"] and stats["failed"] == "RuntimeError: inductor: C++ compile failed"
    assert runner.eager_steps == 6 and len([r for r in caplog.records if r.name == "deepdepth.trial.step"]) == 1


def test_fast_false_and_gpu_have_no_compile_plan():
    module, runner = runner_for("cnn_tanh_newinit", False)
    assert runner.plan is None and runner.compile_stats() is None


def test_result_json_records_the_compile(mnist_root, tmp_path, monkeypatch):
    """A tiny trial on the CPU: too short to compile under fast=auto, compiled under
    fast=compile (torch.compile stood in), recorded either way."""
    fake = FakeCompile()
    monkeypatch.setattr(torch, "compile", fake)
    common = ["model=cnn_tanh_newinit", "k=3", *tiny(mnist_root), "replicas=2", "data.batch_size=64"]
    auto = train(compose_cfg(*common, "fast=auto"), tmp_path / "a", interactive=False)
    forced = train(compose_cfg(*common, "fast=compile"), tmp_path / "c", interactive=False)
    plain = train(compose_cfg(*common, "fast=false"), tmp_path / "p", interactive=False)
    assert not auto["compile"]["used"] and "eager" in auto["compile"]["reason"]
    assert forced["compile"]["used"] and forced["compile"]["failed"] is None and fake.calls > 0
    assert plain["compile"] is None
    json.dumps(forced)  # goes into result.json as it is
    for key in ("train_err", "test_err"):  # fractions of 512 / 256 images: one image at most
        values = torch.tensor([[t[key] for t in run["trials"]] for run in (auto, forced, plain)])
        assert (values - values[2]).abs().max() <= 1 / 256 + 1e-9, key


# ----------------------------------------------------------------------------- real compiles
@pytest.mark.slow
@pytest.mark.parametrize("name, k, modes", [
    ("cnn_tanh_newinit", 3, [True] * 6),                          # plain
    ("cnn_elu_bn", 3, [True] * 6 + [False] * 3),                  # BatchNorm, then eval mode (protocol=original)
    ("resnet", 6, [True] * 6),                                    # residual (from the second block of a stage)
])
@pytest.mark.slow
def test_compiled_step_trains_the_same_function(name, k, modes, mnist_root, tmp_path, monkeypatch):
    """Inductor's compiled step (packed replicas, channels-last) gives the plain eager step's
    losses; the partial batch runs eagerly between compiled steps."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    batches = batches_of(mnist_root, 96)  # 5 x 96 + 32
    batches = (batches + batches)[:len(modes)]
    module, plain = runner_for(name, False, k)
    expected = train_losses(module, plain, batches, modes)
    torch._dynamo.reset()
    module, runner = runner_for(name, "compile", k)
    try:
        losses = train_losses(module, runner, batches, modes)
        stats = runner.compile_stats()
    finally:
        runner.release()
    assert stats["failed"] is None and stats["used"], stats
    assert stats["compiled_steps"] == len(modes) - 1 - 1 - (1 if False in modes else 0)
    torch.testing.assert_close(losses, expected, atol=1e-5, rtol=1e-4)
    assert compile_rule.cache_is_warm(tmp_path / "inductor", runner._signature(((96, 2, 28, 28), True)))
