"""Where a finished trial's reserved GPU memory stays (tests/test_gpu.py (d)).

Trains a few small trials in one process, as a local-launcher sweep does (clean ones, then one
whose capture fails, then clean ones again), and after each prints memory allocated and reserved,
the CUDA graphs still alive and the allocator's segments by memory pool and stream; then whether
clearing cuBLAS's per-stream workspaces hands the rest back. First run (H200, 2026-11-28, clean
trials only): 0 MiB reserved after each of 3 graph and 2 eager trials.

    python benchmarks/gpu_memory_probe.py            # on a GPU, with DEEPDEPTH_DATA set
"""
from __future__ import annotations

import collections
import gc
import tempfile

import torch

from deepdepth.api import compose_config
from deepdepth.trial.testing import BreakCapture
from deepdepth.train import train

MIB = 2 ** 20


def segments() -> dict:
    """Reserved MiB per (pool id, stream), and the MiB still allocated in them."""
    out = collections.defaultdict(lambda: [0.0, 0.0])
    for seg in torch.cuda.memory_snapshot():
        key = (tuple(seg.get("segment_pool_id", ())), seg.get("stream"))
        out[key][0] += seg["total_size"] / MIB
        out[key][1] += seg["allocated_size"] / MIB
    return {f"pool={k[0]} stream={k[1]}": f"{v[0]:.0f} MiB ({v[1]:.0f} allocated)" for k, v in out.items()}


def report(label: str) -> None:
    graphs = [o for o in gc.get_objects() if isinstance(o, torch.cuda.CUDAGraph)]
    print(f"{label}: allocated {torch.cuda.memory_allocated() / MIB:.0f} MiB, "
          f"reserved {torch.cuda.memory_reserved() / MIB:.0f} MiB, live CUDAGraphs {len(graphs)}")
    for key, value in segments().items():
        print(f"    {key}: {value}")
    for g in graphs[:2]:
        print("    a graph's referrers:", [type(r).__name__ for r in gc.get_referrers(g)][:6])


def main() -> None:
    if not torch.cuda.is_available():
        print("gpu_memory_probe: no CUDA device, nothing to measure")
        return
    overrides = ["model=resnet", "k=24", "replicas=8", "data.batch_size=128", "trainer.max_epochs=1",
                 "data.train_samples=4096", "data.test_samples=1024", "logger=none"]
    # clean trials (graph, eager), then one whose capture fails, then clean graph trials again
    plan = [("auto", False), ("auto", False), ("false", False), ("auto", True), ("auto", False), ("auto", False)]
    with tempfile.TemporaryDirectory() as tmp:
        report("start")
        for fast, broken in plan:
            result = train(compose_config(*overrides, f"fast={fast}"), tmp, interactive=False,
                           callbacks=[BreakCapture()] if broken else [])
            gc.collect()
            torch.cuda.empty_cache()
            graph = result["cuda_graph"] or {}
            report(f"after a trial, fast={fast}, graph used {graph.get('used')}, capture failed {bool(graph.get('failed'))}")
        if hasattr(torch._C, "_cuda_clearCublasWorkspaces"):
            torch._C._cuda_clearCublasWorkspaces()
            torch.cuda.empty_cache()
            report("after clearing cuBLAS workspaces")


if __name__ == "__main__":
    main()
