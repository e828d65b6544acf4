"""The study's plan, change by change: jobs, rounds, replica-layer-steps and the cost
model's time on one H200 / H100, from the same simulation as ``hydra.sweeper.dry_run=true``.

    python benchmarks/plan_study.py            # the table in benchmarks/RESULTS.md

Each variant's limit is assumed to be the original study's k* (``--resnet-limit 900`` assumes
resnet trains to its bound instead). Pure: nothing is trained, no GPU is needed.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

from deepdepth.models import VARIANTS
from deepdepth.science.reference import REFERENCE
from deepdepth.search import make_search
from deepdepth.sweep import Combo, Composed, Options, plan
from deepdepth.sweep.cost import steps_per_trial

STUDY = ["cnn_tanh", "cnn_tanh_newinit", "cnn_elu", "cnn_elu_bn", "resnet", "cnn_tanh_bn_oldinit", "resnet_nobn"]
BOUNDS = {"cnn_tanh": 24, "cnn_tanh_newinit": 120, "cnn_elu": 150, "cnn_elu_bn": 300, "resnet": 900,
          "cnn_tanh_bn_oldinit": 120, "resnet_nobn": 24}  # conf/experiment/depth_study.yaml
STEPS = steps_per_trial(3, 60000, 10000, 256)
TRAIN_STEPS = 3 * 235

CHANGES = [  # (label, search, hints, share protocols, mixed-depth packs)
    ("original bisection, one job per (probe, protocol)", "bisect", False, False, False),
    ("+ trials shared between protocols (no BatchNorm)", "bisect", False, True, False),
    ("gallop order, no hints", "gallop", False, True, False),
    ("gallop from the reference k* (hints)", "gallop", True, True, False),
    ("+ a round's depths in one packed job (GPU)", "gallop", True, True, True),
]


def combos(search: str, hints: bool, share: bool) -> list[Combo]:
    out = []
    for model in STUDY:
        for protocol in ("correct", "original"):
            s = make_search(search, lower=3, upper=BOUNDS[model], step=3, parallel=3, seeds=3, rule="majority",
                            confirm=True, seed=0, hint=REFERENCE[model].k_star if hints else None)
            norm = VARIANTS[model].norm or not share  # sharing off: every combination trains its own
            info = Composed(model, 0.01, protocol, norm, STEPS, TRAIN_STEPS)
            out.append(Combo(len(out), [f"model={model}", f"protocol={protocol}"], s, info))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resnet-limit", type=int, help="assume resnet's limit (default: the reference k*)")
    args = p.parse_args(argv)
    limits = {m: REFERENCE[m].k_star for m in STUDY}
    if args.resnet_limit:
        limits["resnet"] = args.resnet_limit
    print("| change | jobs | rounds | replica-layer-steps | est. H200 | est. H100 |")
    print("|---|---|---|---|---|---|")
    for label, search, hints, share, mix in CHANGES:
        cs = combos(search, hints, share)
        assumed = {c.index: limits[c.info.model] for c in cs}
        options = replace(Options(), mix_depths=mix)
        h200, h100 = (plan(cs, assumed, d, options) for d in ("h200", "h100"))
        print(f"| {label} | {h200.jobs} | {h200.rounds} | {h200.work:.2e} | {h200.seconds / 60:.1f} min | "
              f"{h100.seconds / 60:.1f} min |")


if __name__ == "__main__":
    main()
