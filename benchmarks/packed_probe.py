"""Where a packed resnet step's time goes, and which setting cuts it.

16 packed replicas of resnet k=447 cost 36.4 ms per replica-step on an H200 (2026-11-28), twice
the original study's ~18 ms, and what is left of the GPU study is mostly resnet. A pack is grouped
convolutions of 4-16 channels per group, where cuDNN's default algorithm choice is known to be
weak (the weight gradient of small groups above all). This times the package's own trial of
that pack under each setting, in one process, one after the other:

  base                     what the study runs: precision=fp32, cuDNN's heuristic algorithms, NCHW
  benchmark                +trainer.benchmark=true: cuDNN times its algorithms and keeps the fastest
  channels_last            memory_format=channels_last: NHWC activations and weights (the CPU path's layout)
  tf32                     precision=tf32: another arithmetic, for the record (the study stays fp32)
  channels_last+benchmark  both

Each is a trial of STEPS batches (and one test batch); its steady per-step time is taken after
the first 5 steps (warm-up, cuDNN's search, CUDA-graph capture). Then one eager step of base
(and of the fastest neutral setting) under torch.profiler: GPU time per step by kernel.
benchmark and channels_last keep float32 arithmetic (sums in another order, as between two GPUs),
so the study may use them: ``study_overrides`` in the JSON are the overrides of the fastest of
them when it is at least 15% faster than base with the CUDA graph working in both (gpu_check.sh
passes them to the study chunk; a 10-step timing varies by a few per cent, 15% is well outside).

    python benchmarks/packed_probe.py             # on a GPU: about 90 s on an H200
    python benchmarks/packed_probe.py --dry-run   # the same code on the CPU, tiny

Writes $OUT/pack_probe.json after every measurement (a run stopped at its limit keeps what it
measured) and prints its table last. PACK_PROBE_BUDGET_S (default 110): no measurement starts
with less than 15 s of it left, and one still running at its end is stopped.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback

import torch

import common
from common import Timeout, with_timeout

DRY = "--dry-run" in sys.argv
DEVICE = "cpu" if DRY else "cuda"
K, REPLICAS, STEPS = (6, 4, 8) if DRY else (447, 16, 15)
BUDGET_S = float(os.environ.get("PACK_PROBE_BUDGET_S", 110))
GAIN = 0.85  # benchmark is adopted for the study at <= 85% of base's time per step
STARTED = time.perf_counter()
BENCHMARK, CHANNELS_LAST = "+trainer.benchmark=true", "memory_format=channels_last"
# name, overrides, the same float32 arithmetic as the study (the study may use it)
VARIANTS = {
    "base": ([], True),
    "benchmark": ([BENCHMARK], True),
    "channels_last": ([CHANNELS_LAST], True),
    "tf32": (["precision=tf32"], False),
    "channels_last+benchmark": ([CHANNELS_LAST, BENCHMARK], True),
}


def timed_trial(overrides: list[str], cold: bool) -> dict:
    run = common.package_trial("resnet", K, 1, REPLICAS, cold=cold,
                               overrides=[f"data.train_samples={STEPS * 256}", "data.test_samples=256", *overrides])
    t, graph = run["timing"], run.get("cuda_graph") or {}
    return {"ms_per_replica_step": 1000 * t["step_s"] / REPLICAS, "step_ms": 1000 * t["step_s"],
            "first_steps_s": t.get("first_steps_s"), "wall_s": run["wall_s"], "peak_mem_mb": run["peak_mem_mb"],
            "graph_used": bool(graph.get("used")), "capture_failed": graph.get("failed"),
            "cudnn_benchmark": run.get("cudnn_benchmark"), "memory_format": run.get("memory_format"),
            "precision": run.get("precision")}


def kernel_kind(name: str) -> str:
    n = name.lower()
    for kind, pattern in (("conv weight grad", r"wgrad"), ("conv data grad", r"dgrad"),
                          ("conv forward", r"conv|fprop|implicit|gemm|winograd|fft"),
                          ("batch norm", r"batch_norm|batchnorm|bn_")):
        if re.search(pattern, n):
            return kind
    return "other (elementwise, optimizer, loss)"


def kernel_profile(benchmark: bool, channels_last: bool, top: int = 12) -> dict:
    """One eager training step (after two warm ones) under torch.profiler: device time by kernel."""
    from torch.profiler import ProfilerActivity, profile

    from deepdepth.trial.data import ShuffledBatches, load_mnist
    from deepdepth.trial.devices import backend_flags
    from deepdepth.models import build_model
    from deepdepth.trial.module import DepthClassifier, sgd
    from deepdepth.trial.step import TrainStep
    train_x, train_y, _, _ = load_mnist(common.DATA)
    seeds = list(range(REPLICAS))
    x_all, y_all = train_x[:256 * 3].to(DEVICE), train_y[:256 * 3].to(DEVICE)
    with backend_flags("fp32"):
        torch.backends.cudnn.benchmark = benchmark
        module = DepthClassifier(build_model("resnet", K, seeds=seeds).to(DEVICE), optim=sgd(lr=0.01),
                                 memory_format="channels_last" if channels_last else "contiguous")
        module.on_fit_start()  # the layout, as in a trial
        step = TrainStep(module.replica_losses, module.configure_optimizers(), False)
        batches = list(ShuffledBatches(x_all, y_all, 256, seeds, shuffle=True))
        for x, y in batches[:2]:
            step(x, y, True)
        sync = torch.cuda.synchronize if DEVICE == "cuda" else (lambda: None)
        sync()
        activity = ProfilerActivity.CUDA if DEVICE == "cuda" else ProfilerActivity.CPU
        with profile(activities=[activity]) as prof:
            step(*batches[2], True)
            sync()
    timed = [(e.key, e.count, self_time_us(e)) for e in prof.key_averages() if is_kernel(e)]
    timed = sorted((t for t in timed if t[2] > 0), key=lambda t: -t[2])
    total = sum(t[2] for t in timed)
    if not total:
        raise RuntimeError("the profiler recorded no kernel times (CUPTI unavailable?)")
    kinds: dict[str, float] = {}
    for name, _, us in timed:
        kind = kernel_kind(name)
        kinds[kind] = kinds.get(kind, 0.0) + us
    return {"benchmark": benchmark, "channels_last": channels_last, "kernel_ms_per_step": total / 1000,
            "kernels": sum(t[1] for t in timed),
            "by_kind_ms": {k: round(v / 1000, 3) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
            "top": [{"kernel": n[:110], "calls": c, "ms": round(us / 1000, 3), "share": round(us / total, 3)}
                    for n, c, us in timed[:top]]}


def is_kernel(event) -> bool:
    """On a GPU only the kernels count (an op's own device time would count them twice)."""
    return DEVICE != "cuda" or str(getattr(event, "device_type", "")).endswith("CUDA")


def self_time_us(event) -> float:
    """Device time of a kernel (CPU time in --dry-run), whichever name this torch gives it."""
    names = ("self_device_time_total", "self_cuda_time_total") if DEVICE == "cuda" else ("self_cpu_time_total",)
    for name in names:
        value = getattr(event, name, None)
        if value:
            return float(value)
    return 0.0


def study_overrides(variants: dict) -> tuple[list[str], str]:
    """The fastest setting of the study's own arithmetic, if clearly faster than base with the
    CUDA graph working in both: its overrides, and why."""
    base = variants.get("base", {})
    timed = {n: v for n, v in variants.items()
             if n != "base" and VARIANTS.get(n, ([], False))[1] and "ms_per_replica_step" in v}
    if "ms_per_replica_step" not in base or not timed:
        return [], "not measured (base or every other setting of the study's arithmetic missing)"
    name = min(timed, key=lambda n: timed[n]["ms_per_replica_step"])
    best, ratio = timed[name], timed[name]["ms_per_replica_step"] / base["ms_per_replica_step"]
    if DEVICE == "cuda" and not (best["graph_used"] and base["graph_used"]) or best["capture_failed"]:
        return [], f"{name} at {ratio:.2f}x base, but the CUDA graph did not run in both"
    if ratio <= GAIN:
        return VARIANTS[name][0], f"{name} at {ratio:.2f}x base (<= {GAIN}): the study chunk uses it"
    return [], f"{name} at {ratio:.2f}x base (> {GAIN}): the study keeps its settings"


def left() -> float:
    return BUDGET_S - (time.perf_counter() - STARTED)


def measure(doc: dict, section: str, name: str, fn, *args) -> None:
    t0 = time.perf_counter()
    try:
        if left() < 15:
            raise Timeout("skipped: out of budget")
        doc[section][name] = with_timeout(left(), fn, *args)
    except (Exception, Timeout) as exc:  # reported; the next measurement still runs
        if not isinstance(exc, Timeout):
            traceback.print_exc()
        doc[section][name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
    doc["study_overrides"], doc["study_reason"] = study_overrides(doc["variants"])
    doc["seconds"] = round(time.perf_counter() - STARTED, 1)
    print(f"[{doc['seconds']:6.1f}s] {section} {name} ({time.perf_counter() - t0:.1f}s): {doc[section][name]}",
          flush=True)
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "pack_probe.json"), "w") as f:
            json.dump(doc, f, indent=2, default=str)


def fmt(x, spec=".1f") -> str:
    return "-" if x is None else format(x, spec)


def text(doc: dict) -> str:
    base = doc["variants"].get("base", {}).get("ms_per_replica_step")
    rows = []
    for name, v in doc["variants"].items():
        ms = v.get("ms_per_replica_step")
        rows.append([name, fmt(ms), f"{ms / base:.2f}x" if ms and base else "-", fmt(v.get("peak_mem_mb"), ".0f"),
                     v.get("error") or f"graph {'used' if v['graph_used'] else 'NOT used'}"
                     + (f", capture failed: {v['capture_failed'][:60]}" if v.get("capture_failed") else "")
                     + f", cudnn_benchmark {v['cudnn_benchmark']}, {v['memory_format']}, {v['precision']}"])
    lines = ["", f"packed probe - {doc['device']} - {doc['date']} - resnet k={K}, {REPLICAS} replicas, "
             f"{STEPS} steps a trial - {doc['seconds']:.0f} s in all",
             common.table(rows, ["setting", "ms per replica-step", "vs base", "peak MiB", "note"])]
    for name, p in doc["profiles"].items():
        if "error" in p:
            lines.append(f"profile {name}: {p['error']}")
            continue
        lines.append(f"profile {name}: {p['kernel_ms_per_step']:.1f} ms of kernels in one eager step "
                     f"({p['kernels']} kernels; {p['kernel_ms_per_step'] / REPLICAS:.1f} ms per replica); by kind: "
                     + ", ".join(f"{k} {v:.1f}" for k, v in p["by_kind_ms"].items()))
        lines += [f"  {t['ms']:8.2f} ms {t['share']:6.1%} x{t['calls']:<6d} {t['kernel']}" for t in p["top"]]
    lines.append(f"study: {doc['study_reason']}; overrides {doc['study_overrides']}")
    return "\n".join(lines)


def main() -> None:
    if not DRY and not torch.cuda.is_available():
        sys.exit("packed_probe.py needs a CUDA GPU (or --dry-run on the CPU)")
    doc = {"device": common.describe_device(), "date": common.utc_now(), "k": K, "replicas": REPLICAS,
           "steps": STEPS, "variants": {}, "profiles": {}}
    print(f"packed probe: {doc['device']}, resnet k={K} x {REPLICAS}, budget {BUDGET_S:.0f} s", flush=True)
    names = list(VARIANTS)
    for i, name in enumerate(names[:4]):
        measure(doc, "variants", name, timed_trial, VARIANTS[name][0], i == 0)
    measure(doc, "profiles", "base", kernel_profile, False, False)
    measure(doc, "variants", names[4], timed_trial, VARIANTS[names[4]][0], False)
    chosen = doc["study_overrides"]
    if chosen:  # the setting the study chunk takes, profiled too
        measure(doc, "profiles", "+".join(chosen), kernel_profile, BENCHMARK in chosen, CHANNELS_LAST in chosen)
    print(text(doc), flush=True)


if __name__ == "__main__":
    main()
