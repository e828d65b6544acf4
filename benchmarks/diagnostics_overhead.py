"""Cost of SignalDiagnostics: one probe (forward, backward, per-layer norms) against one training
step of the same network, interleaved so machine load hits both alike, and the resulting overhead
of a trial (1 + epochs probes over epochs * 235 steps at batch 256).

    python benchmarks/diagnostics_overhead.py --model resnet --k 447 [--device cuda] [--fast]
"""
from __future__ import annotations

import argparse
import time

import torch

from deepdepth.trial.diagnostics import probe
from deepdepth.models import build_model
from deepdepth.trial.module import DepthClassifier
from deepdepth.trial.step import TrainStep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet")
    ap.add_argument("--k", type=int, default=447)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--fast", action="store_true", help="CUDA-graph training step, as train.py on a GPU")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args()
    dev = torch.device(a.device)
    module = DepthClassifier(build_model(a.model, a.k, seeds=list(range(a.replicas)))).to(dev)
    opt = torch.optim.SGD(module.net.parameters(), lr=0.01, momentum=0.9)
    step = TrainStep(module.replica_losses, opt, use_graph=a.fast)
    x = torch.randn(256, a.replicas, 28, 28, device=dev)
    y = torch.randint(0, 10, (256, a.replicas), device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    run_probe = lambda: probe(module.net, lambda u, v: module.replica_losses(u, v)[1], x, y)
    for _ in range(5):  # warm-up (and graph capture)
        step(x, y, True)
    run_probe()
    times = {"step": 0.0, "probe": 0.0}
    for _ in range(a.repeats):
        for name, f in (("step", lambda: step(x, y, True)), ("probe", run_probe)):
            sync()
            t = time.perf_counter()
            f()
            sync()
            times[name] += (time.perf_counter() - t) / a.repeats
    steps = a.epochs * 235
    overhead = (a.epochs + 1) * times["probe"] / (steps * times["step"])
    print(f"{a.model} k={a.k} S={a.replicas} on {dev} (graph step: {step.use_graph}): step {times['step'] * 1e3:.1f} ms, "
          f"probe {times['probe'] * 1e3:.1f} ms ({times['probe'] / times['step']:.2f} steps); "
          f"{a.epochs}-epoch trial overhead {100 * overhead:.2f}%")


if __name__ == "__main__":
    main()
