"""Trials grouped by depth: each probed depth's seeds and verdicts, and a plain multirun's limit
by the majority rule. Below the statistics and above the records: ``load`` and ``stats`` both use it."""
from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import median
from typing import TYPE_CHECKING, Optional

from ..science.confidence import wilson

if TYPE_CHECKING:
    from .load import Combination, Trial


@dataclass(frozen=True)
class DepthPoint:
    """The seeds with a verdict at one depth."""
    k: int
    n: int
    passes: int
    test_errs: tuple = ()
    train_errs: tuple = ()
    diverged: int = 0

    @property
    def fraction(self) -> float:
        return self.passes / self.n

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.passes, self.n)

    @property
    def majority(self) -> bool:
        return 2 * self.passes > self.n

    # medians: with a few seeds, one failed seed must not drag a trainable depth's error up
    @property
    def test_err(self) -> Optional[float]:
        return _median(self.test_errs)

    @property
    def train_err(self) -> Optional[float]:
        return _median(self.train_errs)


def depth_points(trials: list[Trial]) -> dict[int, list[DepthPoint]]:
    """Per combination, per depth (sorted): the trials with a verdict."""
    groups: dict[int, dict[int, list[Trial]]] = {}
    for t in trials:
        if t.counted:
            groups.setdefault(t.combo, {}).setdefault(t.k, []).append(t)
    return {ci: [DepthPoint(k, len(ts), sum(bool(t.trainable) for t in ts), tuple(t.test_err for t in ts),
                            tuple(t.train_err for t in ts), sum(t.diverged for t in ts))
                 for k, ts in sorted(by_k.items())]
            for ci, by_k in sorted(groups.items())}


def majority_search(c: Combination, trials: list[Trial]) -> Combination:
    """A plain multirun's limit by the majority rule: the last depth, below any majority failure,
    where most seeds trained."""
    points = depth_points([t for t in trials if t.combo == c.combo]).get(c.combo, [])
    if not points:
        return c
    ks = [d.k for d in points]
    step = min((b - a for a, b in zip(ks, ks[1:])), default=3)
    fails = [d.k for d in points if not d.majority]
    passes = [d.k for d in points if d.majority and (not fails or d.k < min(fails))]
    k_star = max(passes) if passes else None
    above = next((d for d in points if d.k == (k_star or ks[0] - step) + step), None)
    return replace(c, k_star=k_star, upper=ks[-1], step=step, seeds=max(d.n for d in points),
                   confirmed=None if above is None else not above.majority,
                   censored=bool(passes) and k_star == ks[-1], trials=sum(d.n for d in points),
                   nonmonotone=tuple(d.k for d in points if fails and d.k > min(fails) and d.majority))


def _median(xs):
    xs = [x for x in xs if x is not None]
    return median(xs) if xs else None
