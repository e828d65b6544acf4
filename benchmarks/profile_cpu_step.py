"""Where an eager CPU training step spends its time: operators by self time (torch.profiler).

    .venv/bin/python benchmarks/profile_cpu_step.py --model cnn_tanh_newinit --k 30 --threads 2

The step is the package's eager one (``DepthClassifier``'s per-replica losses, summed, and its
foreach SGD) on a random batch of the study's size (256), in the layout ``--layout``
(channels-last is ``fast=auto``'s CPU layout but for one replica with BatchNorm). Prints the
steady step time (after warm-up) and the profiler's top operators over ``--steps`` steps. Used to see what a whole-step
compile can and cannot speed up (benchmarks/RESULTS.md).
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from deepdepth.models import DepthNet
from deepdepth.models.variants import variant_kwargs
from deepdepth.trial.module import DepthClassifier

BATCH = 256


def make_step(model: str, k: int, replicas: int, channels_last: bool):
    """The package's eager step (``DepthClassifier.replica_losses``, its SGD) on one random batch."""
    module = DepthClassifier(DepthNet(k, seeds=list(range(replicas)), **variant_kwargs(model)))
    module.channels_last = channels_last
    if channels_last:
        module.net.to(memory_format=torch.channels_last)  # as on_fit_start does
    optimizer = module.configure_optimizers()
    x, y = torch.randn(BATCH, 1, 28, 28), torch.randint(0, 10, (BATCH, replicas))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        module.replica_losses(x, y)[1].sum().backward()
        optimizer.step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cnn_tanh_newinit")
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--layout", choices=("channels_last", "contiguous"), default="channels_last")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=3, help="steps profiled (8 more are timed first)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    step = make_step(args.model, args.k, args.replicas, args.layout == "channels_last")
    for _ in range(3):
        step()
    start, timed = time.perf_counter(), 8
    for _ in range(timed):
        step()
    ms = 1000 * (time.perf_counter() - start) / timed
    print(f"{args.model} k={args.k} replicas={args.replicas} {args.layout}, {torch.get_num_threads()} threads: "
          f"{ms:.1f} ms/step")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
