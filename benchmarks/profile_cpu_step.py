"""Where an eager CPU training step spends its time: operators by self time (torch.profiler).

    .venv/bin/python benchmarks/profile_cpu_step.py --model cnn_tanh_newinit --k 30 --threads 2

The step is the package's (DepthNet, foreach SGD, per-replica cross-entropy summed) on random
inputs of the study's batch (256), in the layout ``--layout`` (channels-last is ``fast=auto``'s
CPU layout but for one replica with BatchNorm). Prints the steady step time (after warm-up)
and the profiler's top operators over ``--steps`` steps. Used for issue 16: what a whole-step
compile can and cannot speed up (benchmarks/RESULTS.md).
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from deepdepth.models import DepthNet
from deepdepth.models.variants import variant_kwargs

BATCH = 256


def make_step(model: str, k: int, replicas: int, channels_last: bool):
    net = DepthNet(k, seeds=list(range(replicas)), **variant_kwargs(model))
    x = torch.randn(BATCH, 1, 28, 28)
    if channels_last:
        net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH, replicas))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, foreach=True)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits = net(x).view(BATCH, replicas, 10)
        F.cross_entropy(logits.permute(0, 2, 1), y, reduction="none").mean(0).sum().backward()
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
