"""CPU benchmark: the package against the original study's loop, and packed vs separate replicas.

    DEEPDEPTH_DATA=/work/shared/data .venv/bin/python benchmarks/bench_cpu.py [--quick] [--threads N]

1. ``cnn_tanh_newinit`` k=3, one epoch + test: the reference loop (torchvision dataset with
   per-sample ToTensor+Normalize, DataLoader(batch_size=256, shuffle=True), eager PyTorch,
   SGD) against the package as a user runs it (``deepdepth.train.train`` on the composed
   Hydra config: data loading, Lightning trainer, callbacks and all). The package's epoch is
   timed inside a 1-epoch trial (first epoch: warm-up included; the callback notes the time
   at the start of training and around the test pass), and the whole trial is timed too (cold
   data load from disk and trainer setup included). Target: the package's
   epoch + test at least 2.5x faster than the reference's.
2. Packed replicas: ``resnet`` k=12 on a slice of MNIST, S=4 replicas in one trial against
   4 separate one-replica trials; seconds per replica-epoch (training + test). Target
   packing is not slower per replica.
3. ``--long``: long trials, where compiling the whole step pays: ``cnn_tanh_newinit``
   and ``cnn_elu_bn`` at k=30, ``--long-epochs`` epochs (default 1), each as a whole trial with
   ``fast=auto`` (compile time included, from a cold inductor cache: a fresh
   ``TORCHINDUCTOR_CACHE_DIR`` per trial), with ``fast=false``, and the reference loop
   (epochs x one epoch + test) in the same run; the trial's compile decision is printed.
   ``--long-only`` skips 1 and 2; ``--long-k`` and ``--long-samples`` shrink it for a smoke run.
   Target: ``fast=auto`` at least 3x the reference for ``cnn_tanh_newinit`` k=30.
4. ``--compile-check``: what the whole-step compile gains over the eager step ``fast=auto``
   would otherwise run, the constants of ``deepdepth/trial/compile_rule.py``: steady step times
   (after 5 steps) of short trials under ``fast=false``, eager channels-last, compiled
   channels-last and compiled plain layout, for ``cnn_tanh_newinit`` k=30 and k=3,
   ``cnn_elu_bn`` k=30 and 4 packed ``cnn_tanh_newinit`` k=30, with the reference loop's step
   in the same run; ``--compile-repeats`` interleaved passes sharing one inductor cache (the
   first compiles cold, later ones warm). About 20 minutes with 2 passes.

About 1-2 minutes on a quiet 2-core machine; prints its table last. Both loops use torch's
default thread count (one per core) unless ``--threads`` says otherwise. On a shared machine,
two OpenMP threads per process make every timing swing up to tenfold with the other
processes' load (threads wait for each other at every operator): the load average is printed
with the figures, each figure is the fastest of 3 interleaved runs, and ``--threads 1`` gives
figures that hold up under load.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile
import time

import torch

import common


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def cnn_tanh_runs(repeats: int) -> tuple[dict, dict]:
    """Reference epochs and package 1-epoch trials, interleaved (a shared machine's load drifts);
    the fastest of ``repeats`` of each is kept."""
    refs, pkgs = [], []
    for _ in range(repeats):
        refs.append(common.reference_epoch("cnn_tanh_newinit", 3))
        pkgs.append(common.package_trial("cnn_tanh_newinit", 3, epochs=1))
    ref = min(refs, key=lambda r: r["train_s"] + r["test_s"])
    pkg = min(pkgs, key=lambda r: r["wall_s"])
    t = min((p["timing"] for p in pkgs), key=lambda t: t["train_s"] + t["test_s"])
    three = common.package_trial("cnn_tanh_newinit", 3, epochs=3)
    return ({**ref, "loader_s": common.loader_only_epoch()},
            {"trial1_s": pkg["wall_s"], "epoch_s": t["train_s"] + t["test_s"], "train_s": t["train_s"],
             "test_s": t["test_s"], "step_ms": 1000 * t["step_s"], "trial3_s": three["wall_s"],
             "test_err": three["test_err"][-1]})


def packing(model: str, k: int, replicas: int, train_samples: int, test_samples: int) -> dict:
    over = [f"data.train_samples={train_samples}", f"data.test_samples={test_samples}"]
    common.package_trial(model, k, 1, 1, overrides=over)  # warm-up: imports, data cache
    separate = sum(common.package_trial(model, k, 1, 1, seed=s, overrides=over, cold=False)["wall_s"]
                   for s in range(replicas))
    packed = common.package_trial(model, k, 1, replicas, overrides=over, cold=False)["wall_s"]
    return {"separate_s": separate / replicas, "packed_s": packed / replicas}


@contextlib.contextmanager
def fresh_inductor_cache(prefix: str):
    """An empty inductor cache for what runs inside (inductor reads ``TORCHINDUCTOR_CACHE_DIR`` at
    each compile); the user's setting comes back after."""
    user_cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix=prefix) as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        try:
            yield cache
        finally:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR")
            if user_cache is not None:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = user_cache


def long_trials(model: str, k: int, epochs: int, train_samples: int | None) -> dict:
    """One workload of section 3: the reference loop, then fast=auto (cold compile cache) and
    fast=false as whole trials."""
    steps = math.ceil(train_samples / 256) if train_samples else None
    ref = common.reference_epoch(model, k, train_steps=steps)
    over = [f"data.train_samples={train_samples}"] if train_samples else []
    out = {"ref_s": epochs * (ref["train_s"] + ref["test_s"]), "ref_step_ms": 1000 * ref["step_s"]}
    for fast in ("auto", "false"):
        with fresh_inductor_cache("inductor-cold-"):  # this trial's cache is cold
            trial = common.package_trial(model, k, epochs, overrides=[*over, f"fast={fast}"])
        out[fast] = trial["wall_s"]
        if fast == "auto":
            out["compile"] = trial["compile"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat of everything (noisier)")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for both loops (default: torch's own choice, one per core)")
    parser.add_argument("--skip-packing", action="store_true")
    parser.add_argument("--long", action="store_true", help="also section 3: long trials, fast=auto's compile")
    parser.add_argument("--long-only", action="store_true", help="only section 3")
    parser.add_argument("--long-epochs", type=int, default=1)
    parser.add_argument("--long-k", type=int, default=30)
    parser.add_argument("--long-samples", type=int, default=None, help="training images per epoch (default: all)")
    parser.add_argument("--compile-check", action="store_true", help="only section 4: compiled vs eager steps")
    parser.add_argument("--compile-repeats", type=int, default=2)
    parser.add_argument("--compile-steps", type=int, default=80, help="training steps per trial in section 4")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else 3
    started, load0 = time.perf_counter(), load()
    print(f"device: {common.describe_device()}  date: {common.utc_now()}  load: {load0}", flush=True)
    busy = os.getloadavg()[0] > 1.5 and torch.get_num_threads() > 1  # others' load, before this run's
    if busy:
        print(f"WARNING: load average {load0} with {torch.get_num_threads()} threads per process: "
              "other processes will make these timings swing; rerun when the machine is quiet, "
              "or with --threads 1", flush=True)

    rows = []
    if args.compile_check:
        rows = compile_rows(args)
        header = ["workload", "setting", "step ms (each pass)", "vs reference step", "vs eager channels-last", "compile s"]
    else:
        if not args.long_only:
            rows += short_rows(args, repeats)
        if args.long or args.long_only:
            rows += long_rows(args)
        header = ["workload", "what", "train + test s", "seconds", "speed-up"]
    print()
    print(f"CPU benchmark - {common.describe_device()} - {common.utc_now()} - "
          f"load average {load0} at start, {load()} at end - {time.perf_counter() - started:.0f} s in all")
    print(common.table(rows, header))
    if busy:
        print("WARNING: the machine was busy when this run started (see the load average): figures suspect")


def long_rows(args) -> list[list]:
    rows = []
    for model in ("cnn_tanh_newinit", "cnn_elu_bn"):
        r = long_trials(model, args.long_k, args.long_epochs, args.long_samples)
        print(f"long {model}: {r}", flush=True)
        c = r["compile"] or {}
        decision = (f"compiled ({c['compile_seconds']:.1f} s compiling)" if c.get("used")
                    else f"eager{' (compile failed)' if c.get('failed') else ''}")
        what = f"{args.long_epochs}-epoch trial" + (f", {args.long_samples} train imgs" if args.long_samples else "")
        rows += [[f"{model} k={args.long_k}", f"reference loop: {args.long_epochs} x (epoch + test)", "",
                  f"{r['ref_s']:.2f}", "1.00x"],
                 ["", f"{what}, fast=false (eager)", "", f"{r['false']:.2f}", f"{r['ref_s'] / r['false']:.2f}x"],
                 ["", f"{what}, fast=auto, cold compile cache: {decision}", "", f"{r['auto']:.2f}",
                  f"{r['ref_s'] / r['auto']:.2f}x"]]
    return rows


COMPILE_WORKLOADS = (("cnn_tanh_newinit", 30, 1), ("cnn_tanh_newinit", 3, 1), ("cnn_elu_bn", 30, 1),
                     ("cnn_tanh_newinit", 30, 4))
COMPILE_SETTINGS = {"fast=false (plain layout)": ["fast=false"],
                    "eager channels-last": ["fast=false", "memory_format=channels_last"],
                    "fast=auto (eager here)": ["fast=auto"],
                    "compiled, channels-last": ["fast=compile", "memory_format=channels_last"],
                    "compiled, plain layout": ["fast=compile", "memory_format=contiguous"]}


def compile_rows(args) -> list[list]:
    """Section 4: steady step times per setting, interleaved over passes, one inductor cache."""
    steps = args.compile_steps
    over = [f"data.train_samples={256 * steps}", "data.test_samples=512"]
    times: dict[tuple, list[float]] = {}
    compiles: dict[tuple, list[float]] = {}
    refs: dict[tuple, list[float]] = {}
    with fresh_inductor_cache("inductor-check-"):  # cold for the first pass, warm after
        for _ in range(args.compile_repeats):
            for model, k, replicas in COMPILE_WORKLOADS:
                ref = common.reference_epoch(model, k, train_steps=min(steps, 40))
                refs.setdefault((model, k, replicas), []).append(1000 * ref["step_s"] * replicas)
                for name, setting in COMPILE_SETTINGS.items():
                    r = common.package_trial(model, k, 1, replicas, overrides=[*over, *setting])
                    key = (model, k, replicas, name)
                    times.setdefault(key, []).append(1000 * r["timing"]["step_s"])
                    if (r.get("compile") or {}).get("used"):
                        compiles.setdefault(key, []).append(r["compile"]["compile_seconds"])
                    print(f"compile-check {key}: {times[key][-1]:.1f} ms/step, compile {r.get('compile')}",
                          flush=True)
    rows = []
    for model, k, replicas in COMPILE_WORKLOADS:
        label = f"{model} k={k}" + (f", {replicas} packed" if replicas > 1 else "")
        ref = min(refs[model, k, replicas])
        eager = min(times[model, k, replicas, "eager channels-last"])
        rows.append([label, f"reference loop ({replicas} x its step)", ", ".join(f"{t:.1f}" for t in refs[model, k, replicas]),
                     "1.00x", "", ""])
        for name in COMPILE_SETTINGS:
            ts = times[model, k, replicas, name]
            rows.append(["", name, ", ".join(f"{t:.1f}" for t in ts), f"{ref / min(ts):.2f}x", f"{eager / min(ts):.2f}x",
                         ", ".join(f"{c:.1f}" for c in compiles.get((model, k, replicas, name), []))])
    return rows


def short_rows(args, repeats: int) -> list[list]:
    ref, pkg = cnn_tanh_runs(repeats)
    print(f"reference: {ref}", flush=True)
    print(f"package:   {pkg}", flush=True)
    fraction = 30 * 256  # 30 steps of each replica's own data
    pack = packing("resnet", 12, args.replicas, fraction, 2560)
    print(f"packing:   {pack}", flush=True)
    print(f"reference test errors: train {100 * ref['train_err']:.2f}% test {100 * ref['test_err']:.2f}%; "
          f"package 3-epoch test error {100 * pkg['test_err']:.2f}%")

    ref_epoch = ref["train_s"] + ref["test_s"]
    rows = [
        ["cnn_tanh_newinit k=3", "reference loop: epoch + test", f"{ref['train_s']:.2f} + {ref['test_s']:.2f}",
         f"{ref_epoch:.2f}", "1.00x"],
        ["", "reference data loader alone (1 epoch)", "", f"{ref['loader_s']:.2f}", ""],
        ["", "package: epoch + test (inside a trial, first steps included)",
         f"{pkg['train_s']:.2f} + {pkg['test_s']:.2f}", f"{pkg['epoch_s']:.2f}", f"{ref_epoch / pkg['epoch_s']:.2f}x"],
        ["", "package: 1-epoch trial, whole (cold data load, trainer setup, epoch, test)", "",
         f"{pkg['trial1_s']:.2f}", f"{ref_epoch / pkg['trial1_s']:.2f}x"],
        ["", "3-epoch trial: reference (3 x epoch) vs package (whole)", f"{3 * ref_epoch:.2f}",
         f"{pkg['trial3_s']:.2f}", f"{3 * ref_epoch / pkg['trial3_s']:.2f}x"],
        [f"resnet k=12, {fraction} train / 2560 test imgs", f"{args.replicas} separate 1-replica trials, per replica",
         "", f"{pack['separate_s']:.2f}", "1.00x"],
        ["", f"one trial of {args.replicas} packed replicas, per replica", "", f"{pack['packed_s']:.2f}",
         f"{pack['separate_s'] / pack['packed_s']:.2f}x"],
    ]
    return rows


if __name__ == "__main__":
    main()
