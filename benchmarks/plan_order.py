"""resnet's search, gallop's order against order=cost: the cost model's seconds on one H200 /
H100, averaged over the cost order's prior of the limit (``deepdepth.search.order``), from the
same simulation as ``hydra.sweeper.dry_run=true``.

    python benchmarks/plan_order.py [--sweep-dir COPY_OF_results/gpu_study]

With ``--sweep-dir`` the finished trials there are read back (give a copy: nothing is written,
but the study's directory is not the place to try). ``--known K`` averages only over limits
>= K (what is known to train). Pure: nothing is trained, no GPU is needed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from deepdepth.search import GallopSearch
from deepdepth.search.order import limit_prior
from deepdepth.sweep import Combo, Composed, Options, plan
from deepdepth.sweep.cost import steps_per_trial
from deepdepth.sweep.records import params_id, recorded_seed_schemes, scan
from deepdepth.sweep.trials import combo_params

STEPS = steps_per_trial(3, 60000, 10000, 256)
TRAIN_STEPS = 3 * 235
UPPER, HINT = 900, 447  # conf/experiment/depth_study.yaml's bound for resnet, the reference k*


def resnet(protocol: str, order: str, schemes: dict) -> Combo:
    overrides = ["model=resnet", f"protocol={protocol}", "+experiment=depth_study"]
    scheme = schemes.get(params_id(combo_params(overrides)), ("independent", None))[0]
    s = GallopSearch(upper=UPPER, parallel=3, seeds=3, seed_scheme=scheme, hint=HINT, order=order)
    return Combo(0, overrides, s, Composed("resnet", 0.01, protocol, True, STEPS, TRAIN_STEPS))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep-dir", type=Path, help="read its finished trials back (a copy of the study's)")
    p.add_argument("--known", type=int, default=0, help="average over limits >= this depth only")
    p.add_argument("--protocols", default="correct,original")
    args = p.parse_args(argv)
    found = scan(args.sweep_dir, ".hydra", warn=False)[0] if args.sweep_dir else {}
    schemes = recorded_seed_schemes(args.sweep_dir) if args.sweep_dir else {}
    grid = list(range(3, UPPER + 1, 3))
    prior = limit_prior(grid, HINT)
    print("| protocol | limits averaged | order | E[seconds] H200 | E[seconds] H100 | at 447 H200 | at 450 H200 |")
    print("|---|---|---|---|---|---|---|")
    for protocol in args.protocols.split(","):
        for order in ("gallop", "cost"):
            row = {}
            for device in ("h200", "h100"):
                total = mass = 0.0
                options = Options(mix_depths=True)
                for index in range(-1, len(grid)):
                    limit = grid[index] if index >= 0 else None
                    if (limit or 0) < args.known:
                        continue
                    seconds = plan([resnet(protocol, order, schemes)], {0: limit}, device, options, found).seconds
                    total, mass = total + prior[index + 1] * seconds, mass + prior[index + 1]
                    if device == "h200" and limit in (447, 450):
                        row[limit] = seconds
                row[device] = total / mass
            print(f"| {protocol} | >= {args.known or 'any'} | {order} | {row['h200']:.0f} | {row['h100']:.0f} | "
                  f"{row.get(447, float('nan')):.0f} | {row.get(450, float('nan')):.0f} |")


if __name__ == "__main__":
    main()
