"""CPU benchmark: the package against the original study's loop, and packed vs separate replicas.

    DEEPDEPTH_DATA=/work/shared/data .venv/bin/python benchmarks/bench_cpu.py [--quick] [--threads N]

1. ``cnn_tanh_newinit`` k=3, one epoch + test: the reference loop (torchvision dataset with
   per-sample ToTensor+Normalize, DataLoader(batch_size=256, shuffle=True), eager PyTorch,
   SGD) against the package as a user runs it (``deepdepth.train.train`` on the composed
   Hydra config: data loading, Lightning trainer, callbacks and all). The package's epoch is
   timed inside a 1-epoch trial (first epoch: warm-up included; the callback notes the time
   at the start of training and around the test pass), and the whole trial is timed too (cold
   data load from disk and trainer setup included). Target (issue 2, item 7): the package's
   epoch + test at least 2.5x faster than the reference's.
2. Packed replicas: ``resnet`` k=12 on a slice of MNIST, S=4 replicas in one trial against
   4 separate one-replica trials; seconds per replica-epoch (training + test). Target
   (issue 4): packing is not slower per replica.

About 1-2 minutes on a quiet 2-core machine; prints its table last. Both loops use torch's
default thread count (one per core) unless ``--threads`` says otherwise. On a shared machine,
two OpenMP threads per process make every timing swing up to tenfold with the other
processes' load (threads wait for each other at every operator): the load average is printed
with the figures, each figure is the fastest of 3 interleaved runs, and ``--threads 1`` gives
figures that hold up under load.
"""
from __future__ import annotations

import argparse
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat of everything (noisier)")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for both loops (default: torch's own choice, one per core)")
    parser.add_argument("--skip-packing", action="store_true")
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

    ref, pkg = cnn_tanh_runs(repeats)
    print(f"reference: {ref}", flush=True)
    print(f"package:   {pkg}", flush=True)
    fraction = 30 * 256  # 30 steps of each replica's own data
    pack = packing("resnet", 12, args.replicas, fraction, 2560)
    print(f"packing:   {pack}", flush=True)

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
    print()
    print(f"CPU benchmark - {common.describe_device()} - {common.utc_now()} - "
          f"load average {load0} at start, {load()} at end - {time.perf_counter() - started:.0f} s in all")
    print(f"reference test errors: train {100 * ref['train_err']:.2f}% test {100 * ref['test_err']:.2f}%; "
          f"package 3-epoch test error {100 * pkg['test_err']:.2f}%")
    print(common.table(rows, ["workload", "what", "train + test s", "seconds", "speed-up"]))
    if busy:
        print("WARNING: the machine was busy when this run started (see the load average): figures suspect")


if __name__ == "__main__":
    main()
