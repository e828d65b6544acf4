"""Does the k50 interval cover what it claims? Simulated studies against a known answer.

Each simulated study runs the search the depth study runs (GallopSearch: lower 3, step 3, 3
seeds, 3 parallel probes, no hint, the study's bound) and then Refine (its defaults, the width
asked for: 25% of k50) on an oracle where a trial at depth k trains with probability
p(k) = sigmoid(b (log k50 - log k)), the model ``half_trainable_depth`` fits. Two seed schemes:

- ``independent``: every (seed, depth) trial is a fresh draw (seeds independent across depths);
- ``correlated``: the old scheme at its extreme: seed s draws one u_s for all depths and trains
  at k iff u_s < p(k), so a seed that fails at one depth fails at every deeper one;
- ``half-correlated``: a mixture, each trial uses its seed's u_s with probability rho = 1/2, else
  a fresh draw.

Reported per case (scheme, k50, slope) and per RNG seed, none pooled away: studies that stopped
with a finite interval and how many of those hold the true k50, studies that reached the width
and how many of those hold it, and the mean trials a study took. Pure Python and numpy.

    python -m deepdepth.search.calibration --studies 200 --rng-seeds 3 --out benchmarks/calibration.md
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

from ..science.confidence import LEVEL
from .gallop import GallopSearch
from .refine import Refine

SLOPES = (4, 8, 15)
K50S = (6, 14, 40, 150, 450)
SCHEMES = {"independent": 0.0, "correlated": 1.0, "half-correlated": 0.5}  # name -> rho
DEFAULT_SCHEMES = ("independent", "correlated")
BOUNDS = (24, 120, 150, 300, 900)  # the depth study's per-variant upper bounds
RELATIVE_WIDTH = 0.25


@dataclass(frozen=True)
class Case:
    k50: float
    slope: float
    scheme: str = "independent"

    @property
    def rho(self) -> float:
        return SCHEMES[self.scheme]

    @property
    def upper(self) -> int:
        """The smallest of the study's bounds at least twice k50 (a search that is not censored)."""
        return next((u for u in BOUNDS if u >= 2 * self.k50), BOUNDS[-1])

    @property
    def width(self) -> float:
        return RELATIVE_WIDTH * self.k50


@dataclass
class Tally:
    """One case under one RNG seed."""
    studies: int = 0
    finite: int = 0
    covered: int = 0
    reached: int = 0
    reached_covered: int = 0
    trials: int = 0
    misses: list = field(default_factory=list)  # (low, high) of finite intervals that missed

    def add(self, s: Refine, k50: float) -> None:
        self.studies += 1
        self.trials += s.trials
        iv = s.interval
        if iv is None or iv.low is None or iv.high is None:
            return
        hit = iv.low <= k50 <= iv.high
        self.finite += 1
        self.covered += hit
        self.reached += s.reached
        self.reached_covered += hit and s.reached
        if not hit:
            self.misses.append((iv.low, iv.high))


def trainer(case: Case, rng: random.Random):
    """oracle(k, seed) -> bool for one study: a logistic fraction trainable, seeds' draws shared
    across depths with probability rho."""
    shared: dict[int, float] = {}
    log_c = math.log(case.k50)

    def oracle(k: int, seed: int) -> bool:
        p = 1 / (1 + math.exp(-case.slope * (log_c - math.log(k))))
        if case.rho > 0 and rng.random() < case.rho:
            u = shared.setdefault(seed, rng.random())
        else:
            u = rng.random()
        return u < p
    return oracle


def study(case: Case, rng: random.Random, level: float = LEVEL, **refine) -> Refine:
    """One simulated study, driven to the end."""
    s = Refine(GallopSearch(lower=3, upper=case.upper, step=3, parallel=3, seeds=3),
               width=case.width, level=level, **refine)
    oracle = trainer(case, rng)
    while not s.done:
        for k in s.next_probes():
            s.record(k, [oracle(k, seed) for seed in s.seeds_for(k)])
    return s


def calibrate(cases, studies: int, rng_seeds=(0, 1, 2), level: float = LEVEL, **refine) -> dict:
    """{(case, rng seed): Tally}; each case and RNG seed has its own random stream."""
    out = {}
    for case in cases:
        for r in rng_seeds:
            rng = random.Random(f"{case}/{r}")
            t = out[(case, r)] = Tally()
            for _ in range(studies):
                t.add(study(case, rng, level, **refine), case.k50)
    return out


def all_cases(schemes=DEFAULT_SCHEMES) -> list[Case]:
    return [Case(c, b, s) for s in schemes for c in K50S for b in SLOPES]


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "—"


def markdown(result: dict, level: float) -> str:
    """One row per case: per RNG seed and over the seeds together (never across cases)."""
    cases = list(dict.fromkeys(c for c, _ in result))
    head = ["scheme", "k50", "slope", "bound", "width", "finite / studies", "covered (finite)",
            "per RNG seed", "reached width", "covered (reached)", "mean trials"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in cases:
        ts = [t for (c, _), t in result.items() if c == case]
        tot = {k: sum(getattr(t, k) for t in ts) for k in ("studies", "finite", "covered", "reached",
                                                            "reached_covered", "trials")}
        per = " / ".join(pct(t.covered, t.finite) for t in ts)
        lines.append(f"| {case.scheme} | {case.k50:g} | {case.slope:g} | {case.upper} | {case.width:g} | "
                     f"{tot['finite']}/{tot['studies']} | {pct(tot['covered'], tot['finite'])} | {per} | "
                     f"{tot['reached']} | {pct(tot['reached_covered'], tot['reached'])} | "
                     f"{tot['trials'] / tot['studies']:.0f} |")
    return "\n".join(lines)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def document(table: str, command: str, level: float, took: float) -> str:
    """The committed page: what was simulated, how to read the columns, the table."""
    return "\n".join([
        "# Coverage of the k50 interval in simulated studies", "",
        f"`{command}` ({time.strftime('%Y-%m-%d')}, {cpu_name()}, 1 process, {took / 60:.0f} min). "
        f"Cut: the profile-likelihood interval at nominal {100 * level:g}% (confidence.LEVEL).", "",
        "Each study: GallopSearch (lower 3, step 3, 3 seeds, 3 parallel probes, no hint, the bound shown: the "
        "smallest of the depth study's bounds 24, 120, 150, 300, 900 at least 2 k50), then Refine (its "
        f"defaults; width asked: {100 * RELATIVE_WIDTH:g}% of k50). A trial at depth k trains with probability "
        "sigmoid(slope (log k50 - log k)). independent: every trial a fresh draw; correlated: seed s draws one "
        "u_s for all depths and trains at k iff u_s < p(k) (the old seed scheme at its extreme).", "",
        "finite: studies that stopped with both ends of the interval finite; covered (finite): of those, the "
        "share whose interval holds the true k50 (over the RNG seeds together; per RNG seed beside it); "
        "reached width: studies that stopped because the interval was narrower than the width; covered "
        "(reached): of those, the share that holds k50; mean trials: per study, search and refinement.", "",
        table, ""])


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(description="Coverage of the k50 interval in simulated studies.")
    ap.add_argument("--studies", type=int, default=200, help="simulated studies per case and RNG seed")
    ap.add_argument("--rng-seeds", type=int, default=3)
    ap.add_argument("--level", type=float, default=LEVEL, help="nominal level of the profile cut")
    ap.add_argument("--scheme", choices=[*SCHEMES, "both"], default="both", help="both: independent, correlated")
    ap.add_argument("--k50", type=float, nargs="*", default=list(K50S))
    ap.add_argument("--slope", type=float, nargs="*", default=list(SLOPES))
    ap.add_argument("--out", help="also write the page (command, date, CPU, table) to this markdown file")
    a = ap.parse_args(argv)
    schemes = list(DEFAULT_SCHEMES) if a.scheme == "both" else [a.scheme]
    cases = [Case(c, b, s) for s in schemes for c in a.k50 for b in a.slope]
    start = time.time()
    result = {}
    for case in cases:
        result.update(calibrate([case], a.studies, range(a.rng_seeds), a.level))
        print(markdown({k: v for k, v in result.items() if k[0] == case}, a.level).splitlines()[-1], flush=True)
    text = markdown(result, a.level)
    took = time.time() - start
    print(text)
    print(f"{len(cases)} cases x {a.rng_seeds} RNG seeds x {a.studies} studies, level {a.level:g}, {took:.0f} s")
    if a.out:
        command = "python -m deepdepth.search.calibration " + " ".join(argv if argv is not None else sys.argv[1:])
        with open(a.out, "w") as f:
            f.write(document(text, command.strip(), a.level, took))


if __name__ == "__main__":
    main(sys.argv[1:])
