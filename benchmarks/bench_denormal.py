"""Denormal floats on the CPU: a deep ordered network with and without flushing them to zero.

    DEEPDEPTH_DATA=/work/shared/data .venv/bin/python benchmarks/bench_denormal.py [--k 90] [--skip-off]

``cnn_tanh`` (naive init, the ordered phase) at k, 2 packed replicas, one epoch of 2,048 images
and 512 test images, with ``flush_denormal=true`` and ``false``, against ``cnn_tanh_newinit``
(critical init, never meets denormals) at the same size; one torch thread. Prints each
trial's seconds, test errors and verdicts, and the ratio of ``cnn_tanh`` (flushed) to
``cnn_tanh_newinit``. Target: within 2x, verdicts unchanged by flushing. The unflushed run
took 163 s where denormals are slow (the CPU it was first measured on); ``--skip-off`` leaves
it out. ``--phase``: also the phase diagram's deep ordered probe (sigma_w^2 = 0.25,
``model.init=fan_in:0.5``, at ``--phase-k``), flushed and not.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_device, package_trial, table, utc_now  # noqa: E402


def run(model: str, k: int, flush: str, args, extra: tuple = ()) -> list:
    overrides = [*extra, f"flush_denormal={flush}", f"data.train_samples={args.train}",
                 f"data.test_samples={args.test}", "trainer=cpu"]
    r = package_trial(model, k, epochs=1, replicas=2, overrides=overrides)
    errors = ", ".join(f"{t['test_err'][-1]:.4f}" for t in r["trials"])
    verdicts = ", ".join(str(t["trainable"]) for t in r["trials"])
    name = " ".join([f"{model} k={k}", *extra])
    print(f"{name} flush_denormal={flush}: {r['wall_s']:.1f} s (flushed: {r['flush_denormal']})", flush=True)
    return [name, flush, f"{r['wall_s']:.1f}", errors, verdicts]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=90)
    p.add_argument("--train", type=int, default=2048)
    p.add_argument("--test", type=int, default=512)
    p.add_argument("--skip-off", action="store_true", help="leave out the slow unflushed cnn_tanh run")
    p.add_argument("--phase", action="store_true", help="also the phase diagram's deep ordered probe")
    p.add_argument("--phase-k", type=int, default=48)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = [run("cnn_tanh_newinit", args.k, "true", args), run("cnn_tanh", args.k, "true", args)]
    if not args.skip_off:
        rows.append(run("cnn_tanh", args.k, "false", args))
    if args.phase:
        rows += [run("cnn_tanh_newinit", args.phase_k, flush, args, ("model.init=fan_in:0.5",))
                 for flush in ("true", "false")]
    print(f"\n{describe_device()}, {utc_now()}, 2 replicas, 1 epoch, "
          f"{args.train} train / {args.test} test images")
    print(table(rows, ["model", "flush_denormal", "seconds", "test errors", "trainable"]))
    newinit, flushed = float(rows[0][2]), float(rows[1][2])
    print(f"cnn_tanh (flushed) / cnn_tanh_newinit: {flushed / newinit:.2f}x")
    if not args.skip_off:
        print(f"cnn_tanh unflushed / flushed: {float(rows[2][2]) / flushed:.1f}x")
    if args.phase:
        print(f"phase diagram probe unflushed / flushed: {float(rows[-1][2]) / float(rows[-2][2]):.1f}x")


if __name__ == "__main__":
    main()
