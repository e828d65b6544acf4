"""Does a CPU step's cost per replica depend on how many replicas a job packs?

Times a plain SGD step (forward, a squared-output loss, backward, update) of ``build_model``'s
packed network on random input, channels-last, one torch thread and denormals flushed, as a
study job on this machine runs; prints the median of steps 4-8 per pack size.

    python benchmarks/pack_scan_cpu.py cnn_elu 30 1,2,3,4
"""
import sys
import time

import torch

from deepdepth.models.net import build_model


def step_seconds(model: str, k: int, replicas: int, steps: int = 8) -> float:
    net = build_model(model, k, seeds=list(range(replicas))).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(256, 1, 28, 28).to(memory_format=torch.channels_last)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        loss = net(x).float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    steady = sorted(times[3:])
    return steady[len(steady) // 2]


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    model, k, packs = sys.argv[1], int(sys.argv[2]), [int(r) for r in sys.argv[3].split(",")]
    for r in packs:
        s = step_seconds(model, k, r)
        print(f"{model} k={k}, {r} replicas: {s * 1000:.0f} ms per step, {s * 1000 / r:.0f} ms per replica-step")
