"""Count the compute operators of one training step (forward, backward, optimizer), per block.

    .venv/bin/python benchmarks/count_ops.py

Runs on the CPU: every aten operator that does work (views, reshapes and other metadata-only
operators left out) is what a GPU launches at least one kernel for, so the count per block,
times the blocks, is a lower bound on the kernels of a step on a GPU. The per-block figure is
the difference between k=24 and k=12, divided by the 12 extra blocks.
"""
from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from deepdepth.models import build_model
from deepdepth.trial.module import DepthClassifier
from deepdepth.trial.step import TrainStep

METADATA = {"view", "_unsafe_view", "reshape", "as_strided", "t", "transpose", "permute", "expand",
            "detach", "alias", "empty", "empty_strided", "empty_like", "unsqueeze", "squeeze", "slice",
            "select", "split", "unbind", "lift_fresh", "_to_copy", "new_empty_strided", "set_", "is_same_size",
            "new_empty", "clone"}


class OpCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name not in METADATA:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))


def count_step(model: str, k: int, replicas: int = 1) -> Counter:
    module = DepthClassifier(build_model(model, k, seeds=list(range(replicas))))
    step = TrainStep(module.replica_losses, module.configure_optimizers(), use_graph=False)
    x, y = torch.randn(8, replicas, 28, 28), torch.randint(0, 10, (8, replicas))
    step(x, y, True)  # momentum buffers exist from here on, as in every later step
    with OpCounter() as counter:
        step(x, y, True)
    return counter.ops


def main() -> None:
    for model in ("resnet", "cnn_elu_bn", "cnn_tanh"):
        small, large = count_step(model, 12), count_step(model, 24)
        per_block = {op: (large[op] - small[op]) / 12 for op in large if large[op] != small[op]}
        total = sum(per_block.values())
        print(f"{model}: {total:.1f} compute operators per block per step "
              f"(fwd + bwd + optimizer), step total at k=12: {sum(small.values())}")
        print("   " + ", ".join(f"{op} {n:g}" for op, n in sorted(per_block.items(), key=lambda kv: -kv[1])))
        if model == "resnet":
            print(f"   resnet k=447: about {447 * total + sum(small.values()) - 12 * total:.0f} operators a step")


if __name__ == "__main__":
    main()
