"""GPU benchmark: the package against the original study's loop, same GPU, same job.

    DEEPDEPTH_DATA=data python3 benchmarks/bench_gpu.py      # or, as one device call: bash benchmarks/gpu_check.sh

Unattended, about 3-5 minutes on one H100/H200; prints its table LAST (and writes
bench_gpu.md / bench_gpu.json under $OUT when that is set). Workloads:
  (a) resnet k=447, 1 replica      (b) resnet k=447, 16 packed replicas (per-replica seconds)
  (c) cnn_elu_bn k=156, 1 replica  (d) cnn_tanh k=3, 1 replica
each against the reference loop (torchvision dataset, per-sample ToTensor+Normalize,
DataLoader(batch_size=256, shuffle=True), eager PyTorch, SGD) run in this process.

How a figure is made, so that it fits the budget:
- reference: the first ``ref_steps`` batches of an epoch are timed (data loading included) and
  extrapolated to the epoch's 235 batches from the steady per-step time; the test pass is
  timed whole (10,000 images). Where the epoch is timed whole the table says "measured".
- package: ``deepdepth.train.train`` (as a user runs it: config, data to the GPU, Lightning,
  callbacks, CUDA-graph capture, compile when asked, the whole test set) is run once with the
  first N training batches per replica (``data.train_samples``); its callback also notes the
  steady per-step time after the first 5 steps and the test pass. The epoch figure is the
  whole trial's time with the steady steps extrapolated to the epoch's 235: setup, warm-up,
  capture and compile time are all in it. cnn_tanh k=3 runs a whole 1-epoch trial: the table
  gives the whole trial (data load and trainer setup included) and its epoch + test.
- peak GPU memory: ``torch.cuda.max_memory_allocated`` over each run.
A workload that fails (out of memory, say) is reported as such; the others still run.
``--dry-run`` runs the same code on the CPU with tiny networks, to check the script itself.
Before the timings, a check that the fast step (CUDA graph) and the plain eager step give the
same losses on this GPU.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback

import torch

import common
from common import Timeout, with_timeout

EPOCH_STEPS = math.ceil(60000 / 256)  # 235
BUDGET_S = float(os.environ.get("BENCH_BUDGET_S", 300))  # the optional runs start only inside it
HARD_S = float(os.environ.get("BENCH_HARD_S", 480))      # any run still going then is stopped
STARTED = time.perf_counter()
DEVICE = "cuda"
COMPILE_BACKEND = "inductor"

# name, model, k, replicas, reference steps ("epoch": whole; None: reuse (a)), package steps (None: a 1-epoch trial)
WORKLOADS = [
    ("a", "resnet", 447, 1, 30, 50),
    ("b", "resnet", 447, 16, None, 30),   # reference: the one-replica loop of (a), per replica
    ("c", "cnn_elu_bn", 156, 1, 60, 100),
    ("d", "cnn_tanh", 3, 1, "epoch", None),
]
EXTRAS = [  # run while the budget lasts: what the fast path is worth, and the compile option
    ("a-eager", "resnet", 447, 1, ["fast=false"], 30),
    ("a-cudnn-benchmark", "resnet", 447, 1, ["+trainer.benchmark=true"], 50),
    ("a-compile", "resnet", 447, 1, ["+compile"], 50),
]
DRY_WORKLOADS = [("a", "resnet", 6, 1, 8, 8), ("b", "resnet", 6, 4, None, 8),
                 ("c", "cnn_elu_bn", 6, 1, 8, 8), ("d", "cnn_tanh", 3, 1, "epoch", None)]
DRY_EXTRAS = [("a-eager", "resnet", 6, 1, ["fast=false"], 8),
              ("a-compile", "resnet", 6, 1, ["+compile"], 8)]


def elapsed() -> float:
    return time.perf_counter() - STARTED


def warm_up_gpu() -> None:
    """CUDA context, cuDNN and cuBLAS initialised once, outside every timed figure."""
    if DEVICE != "cuda":
        return
    x = torch.randn(8, 4, 28, 28, device="cuda", requires_grad=True)
    conv = torch.nn.Conv2d(4, 4, 3, padding=1).cuda()
    conv(x).sum().backward()
    torch.randn(64, 64, device="cuda") @ torch.randn(64, 64, device="cuda")
    torch.cuda.synchronize()


def check_equivalence() -> dict:
    """Fast (CUDA graph) vs plain step on identical batches: max |loss difference| over 20 steps,
    and between two plain runs (the GPU's own run-to-run noise, e.g. atomics in conv backward)."""
    from deepdepth.trial.data import ShuffledBatches, load_mnist
    from deepdepth.models import build_model
    from deepdepth.trial.module import DepthClassifier, sgd
    from deepdepth.trial.step import TrainStep
    train_x, train_y, _, _ = load_mnist(common.DATA)
    k, n = (6, 512) if DEVICE == "cpu" else (24, 5120)  # --dry-run: the same code, tiny
    x_gpu, y_gpu = train_x[:n].to(DEVICE), train_y[:n].to(DEVICE)
    out = {}
    for model in ("resnet", "cnn_elu_bn"):
        losses = {}
        for use_graph in (False, True, "again"):
            module = DepthClassifier(build_model(model, k, seeds=[3, 4]).to(DEVICE), optim=sgd(lr=0.01))
            step = TrainStep(module.replica_losses, module.configure_optimizers(), use_graph is True)
            batches = ShuffledBatches(x_gpu, y_gpu, 256, [3, 4], shuffle=True)
            losses[use_graph] = torch.stack([step(x, y, True)[1] for x, y in batches])
            if use_graph is True:
                out[f"{model}_replays"] = step.replays
                out[f"{model}_capture_failed"] = step.failed
        out[model] = (losses[True] - losses[False]).abs().max().item()
        out[f"{model}_noise"] = (losses["again"] - losses[False]).abs().max().item()
    return out


def peak(*runs: dict) -> float | None:
    values = [r["peak_mem_mb"] for r in runs if r.get("peak_mem_mb") is not None]
    return max(values) if values else None


def reference(model: str, k: int, steps) -> dict:
    r = common.reference_epoch(model, k, device=DEVICE, train_steps=None if steps == "epoch" else steps)
    if r["steps"] >= r["epoch_steps"]:
        r["epoch_s"], r["how"] = r["train_s"], "measured"
    else:
        first = r["train_s"] - (r["steps"] - 5) * r["step_s"]
        r["epoch_s"], r["how"] = first + (r["epoch_steps"] - 5) * r["step_s"], f"{r['steps']} steps, extrapolated"
    return r


def package(model: str, k: int, replicas: int, steps, overrides=()) -> dict:
    overrides = list(overrides)
    compile_ = "+compile" in overrides
    callbacks = []
    if compile_:  # fast=compile: torch.compile of each block, then the CUDA graph
        overrides[overrides.index("+compile")] = "fast=compile"
        callbacks.append(compile_backend_callback(COMPILE_BACKEND))  # --dry-run: aot_eager (no code generation)
    try:
        if steps is None:  # a whole 1-epoch trial
            one = common.package_trial(model, k, 1, replicas, overrides=overrides, callbacks=callbacks)
            t = one["timing"]
            return {"epoch_s": one["wall_s"], "steady_epoch_s": t["train_s"] + t["test_s"],
                    "step_ms": 1000 * t["step_s"], "how": "1-epoch trial, measured whole",
                    "peak_mem_mb": one["peak_mem_mb"], "test_err": one["trials"][0]["test_err"],
                    "cuda_graph": one["cuda_graph"]}
        run = common.package_trial(model, k, 1, replicas, overrides=overrides + [f"data.train_samples={steps * 256}"],
                                   callbacks=callbacks)
        t = run["timing"]
        fixed = run["wall_s"] - (t["steps"] - common.WARM_STEPS) * t["step_s"] - t["test_s"]
        return {"epoch_s": fixed + (EPOCH_STEPS - common.WARM_STEPS) * t["step_s"] + t["test_s"],
                "step_ms": 1000 * t["step_s"], "test_s": t["test_s"], "fixed_s": fixed,
                "how": f"trial of {steps} steps, extrapolated", "wall_s": run["wall_s"],
                "peak_mem_mb": run["peak_mem_mb"], "diverged": [x["diverged"] for x in run["trials"]],
                "cuda_graph": run["cuda_graph"]}
    finally:
        if compile_:
            import torch._dynamo as dynamo
            dynamo.reset()


def compile_backend_callback(backend: str):
    """Sets the module's torch.compile backend before its blocks are compiled (on_train_start)."""
    import lightning as L

    class CompileBackend(L.Callback):
        def setup(self, trainer, pl_module, stage):
            pl_module.compile_backend = backend

    return CompileBackend()


def graph_note(run: dict) -> str:
    """The CUDA graph's part in a run, for the table: replayed steps, or why none were."""
    g = run.get("cuda_graph") or {}
    if g.get("failed"):
        return f"; CUDA graph capture FAILED ({g['failed'][:60]}), ran eagerly"
    if g.get("used"):
        return f"; graph replays {g['replays']}, eager {g['eager_steps']}"
    return "; no CUDA graph" if g else ""


def attempt(results: dict, name: str, fn, *args, timeout: float | None = None, **kw):
    t0 = time.perf_counter()
    timeout = min(timeout or math.inf, HARD_S - elapsed())
    try:
        if timeout < 5:
            raise Timeout("skipped: the job's time is up")
        results[name] = with_timeout(timeout, fn, *args, **kw)
    except (Exception, Timeout) as exc:  # report, go on with the next workload
        traceback.print_exc()
        results[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
        torch.cuda.empty_cache()
    print(f"[{elapsed():6.1f}s] {name} ({time.perf_counter() - t0:.1f}s): {results[name]}", flush=True)


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def main() -> None:
    global DEVICE, COMPILE_BACKEND, WORKLOADS, EXTRAS
    if "--dry-run" in sys.argv:
        DEVICE, COMPILE_BACKEND, WORKLOADS, EXTRAS = "cpu", "aot_eager", DRY_WORKLOADS, DRY_EXTRAS
    elif not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA GPU; on the CPU run benchmarks/bench_cpu.py (or this with --dry-run)")
    print(f"device: {common.describe_device()}  date: {common.utc_now()}  budget: {BUDGET_S:.0f} s", flush=True)
    warm_up_gpu()
    res: dict = {}
    attempt(res, "equivalence", check_equivalence)
    for name, model, k, replicas, ref_steps, pkg_steps in WORKLOADS:
        if ref_steps is not None:
            attempt(res, f"{name}/reference", reference, model, k, ref_steps)
        attempt(res, f"{name}/package", package, model, k, replicas, pkg_steps)
    for name, model, k, replicas, overrides, pkg_steps in EXTRAS:
        left = BUDGET_S - elapsed()
        if left < 40:
            res[name] = {"error": "skipped: out of budget"}
            continue
        attempt(res, name, package, model, k, replicas, pkg_steps, overrides, timeout=left - 10)

    rows = []
    mem = lambda r: fmt(r.get("peak_mem_mb"), ".0f")
    for name, model, k, replicas, ref_steps, _ in WORKLOADS:
        ref = res.get(f"{'a' if ref_steps is None else name}/reference", {})
        pkg = res.get(f"{name}/package", {})
        ref_epoch = ref.get("epoch_s", math.nan) + ref.get("test_s", math.nan)
        label = f"({name}) {model} k={k}" + (f", {replicas} replicas" if replicas > 1 else "")
        rows.append([label, "reference loop" + (" (1 replica, per replica)" if replicas > 1 else ""),
                     f"{fmt(ref.get('epoch_s'))} + {fmt(ref.get('test_s'))}", fmt(ref_epoch), "1.00x",
                     mem(ref), ref.get("how", ref.get("error", ""))])
        if "error" in pkg:
            rows.append(["", "package", "", "-", "-", "-", pkg["error"]])
            continue
        per_replica = pkg["epoch_s"] / replicas
        rows.append(["", "package (epoch + test, capture incl.)" + (", per replica" if replicas > 1 else ""),
                     "", fmt(per_replica), f"{ref_epoch / per_replica:.1f}x", mem(pkg), pkg["how"] + graph_note(pkg)])
        if "steady_epoch_s" in pkg:
            rows.append(["", "package, its epoch + test inside the trial", "", fmt(pkg["steady_epoch_s"]),
                         f"{ref_epoch / pkg['steady_epoch_s']:.1f}x", "",
                         f"first epoch incl. warm-up and capture; {pkg['step_ms']:.2f} ms/step after"])
    ref_a = res.get("a/reference", {})
    ref_a_epoch = ref_a.get("epoch_s", math.nan) + ref_a.get("test_s", math.nan)
    for name, *_ in EXTRAS:
        r = res.get(name, {})
        if "error" in r:
            rows.append([f"({name})", "package", "", "-", "-", "-", r["error"]])
        else:
            rows.append([f"({name})", "package", "", fmt(r["epoch_s"]), f"{ref_a_epoch / r['epoch_s']:.1f}x",
                         mem(r), f"{r['how']}; {fmt(r.get('step_ms'), '.1f')} ms/step, {fmt(r.get('fixed_s'), '.1f')} s fixed"
                         + graph_note(r)])

    eq = res.get("equivalence", {})
    text = "\n".join([
        "",
        f"GPU benchmark - {common.describe_device()} - {common.utc_now()} - {elapsed():.0f} s in all",
        f"fast (CUDA graph) vs plain step, max |loss difference| over 20 steps of k=24, 2 replicas: "
        f"resnet {fmt(eq.get('resnet'), '.2e')}, cnn_elu_bn {fmt(eq.get('cnn_elu_bn'), '.2e')} "
        f"(plain vs plain: {fmt(eq.get('resnet_noise'), '.2e')}, {fmt(eq.get('cnn_elu_bn_noise'), '.2e')}; "
        f"graph replays: {eq.get('resnet_replays', '-')}"
        f"{'; capture FAILED: ' + str(eq['resnet_capture_failed']) if eq.get('resnet_capture_failed') else ''})"
        f"{'; ' + eq['error'] if 'error' in eq else ''}",
        "seconds per training epoch (235 steps) + the 10,000-image test pass; speed-up against the reference",
        common.table(rows, ["workload", "run", "train + test s", "epoch s", "speed-up", "peak MiB", "how"]),
    ])
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "bench_gpu.json"), "w") as f:
            json.dump(res, f, indent=2, default=str)
        with open(os.path.join(out, "bench_gpu.md"), "w") as f:
            f.write(text + "\n")
    print(text, flush=True)


if __name__ == "__main__":
    main()
