"""The cheapest order of probes for a known cost per round: an optimal search tree.

Which depths to probe next, given the deepest pass ``lo`` and the shallowest failure ``hi``
(grid indices; -1 and ``len(grid)`` when there is none), so that the expected seconds until
they are neighbours are least. A round probes 1 to ``parallel`` depths (three at most) and costs
``cost(k, probes)``: the seconds of a round whose deepest probe is k (packed into one job on a
GPU, so it is about the deepest probe's; on a CPU each probe is its own job). A probe at a
deep k costs about k times a shallow one, so the order spends probes low where a failure is
likely and jumps high only where the prior says the limit is.

The programme is the classic one for search trees with unequal probe costs, over brackets
(lo, hi) of the grid: F(lo, hi) = min over rounds [W(lo, hi) cost(round) + sum of F over the
sub-brackets the round cuts], W the prior mass of a limit in the bracket. A round of several
probes is split by its deepest one and the best split below it (two chained minima), so the
whole table is O(n^3) numpy work: a 300-point grid takes about a tenth of a second, once per
search (every later bracket is a sub-bracket, looked up). A depth with some seeds trained
already (``pairs``) may also go packed beside one deeper probe at the price of its missing seeds.

The prior (``limit_prior``) over the limit L (the deepest grid depth that trains; L = -1:
none does; L = last: the bound trains): log-uniform in depth on [lower, 2 upper), the cells at
and past the bound lumped into L = last and the cell below ``lower`` weighted as the first. With
a ``hint`` (the original study's k*), most of it goes to the hint: ``HINT_EXACT`` to the hint's
own cell and ``HINT_NEAR`` log-normal around it (sigma ``HINT_SPREAD`` in log depth), the rest
log-uniform. The shares are Laplace's rule on this study's twelve finished searches that
started from the reference k*: eight found exactly it, the other four within 7% of it, none
further off.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np

HINT_EXACT = 9 / 14  # the prior's share on the hint's own cell
HINT_NEAR = 4 / 14  # its share log-normal around the hint (the rest, 1/14: log-uniform)
HINT_SPREAD = 0.1  # sigma of that log-normal, in natural log of depth

RoundCost = Callable[[int, int], float]  # (deepest depth, probes in the round) -> seconds
PairCost = Callable[[int], float]  # a depth partly trained already: (the deeper probe beside it) -> seconds


def limit_prior(grid: Sequence[int], hint: Optional[int] = None) -> np.ndarray:
    """Prior weights of the limit index L = -1 .. len(grid)-1 (entry L+1), summing to 1."""
    ks = np.asarray(grid, dtype=float)
    edges = np.append(ks, 2.0 * ks[-1])  # cell L: [k_L, k_L+1), the last one [upper, 2 upper)
    cells = np.diff(np.log(edges))
    base = np.concatenate([[cells[0]], cells])  # L = -1 weighted as L = 0
    base = base / base.sum()
    if hint is None or hint <= 0:
        return base
    z = (np.log(ks) - math.log(hint)) / HINT_SPREAD
    cdf = np.array([0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in z])
    near = np.maximum(np.diff(np.concatenate([[0.0], cdf, [1.0]])), 0.0)  # below lower, each cell, past upper
    exact = np.zeros(len(ks) + 1)
    exact[int(np.searchsorted(ks, hint, side="right"))] = 1.0  # the cell [k_L, k_L+1) holding the hint
    return (1 - HINT_EXACT - HINT_NEAR) * base + HINT_NEAR * near / near.sum() + HINT_EXACT * exact


PAIR = 4  # the round chosen is a partly trained depth and one above it (``CostOrder.pairs``)


class CostOrder:
    """The optimal rounds over a grid for a prior and a round cost (``next_round``)."""

    def __init__(self, grid: Sequence[int], prior: np.ndarray, cost: RoundCost, parallel: int = 1,
                 resolved: Optional[Callable[[int, int], bool]] = None, pairs: Optional[dict[int, PairCost]] = None):
        if len(prior) != len(grid) + 1:
            raise ValueError(f"prior has {len(prior)} weights for a grid of {len(grid)} depths; want one more")
        self.grid, self.parallel = list(grid), max(1, int(parallel))
        self.prior = np.asarray(prior, dtype=float)
        self.cost = cost
        self.resolved = resolved  # (lo, hi) -> no probe needed (a relative resolution)
        # depths some of whose seeds are trained: a round of one and a deeper probe packed costs
        # less than ``cost(k, 2)`` says (only its missing seeds train), so it is an option of its own
        self.pairs = dict(pairs or {}) if self.parallel > 1 else {}
        self._span: Optional[tuple[int, int]] = None  # the bracket the table covers

    def next_round(self, lo: int, hi: int) -> list[int]:
        """Grid indices of the cheapest next round in (lo, hi), sorted; [] when resolved."""
        if hi - lo <= 1 or (self.resolved and self.resolved(lo, hi)):
            return []
        if self._span is None or not (self._span[0] <= lo and hi <= self._span[1]):
            self._solve(lo, hi)
        a, b = lo - self._span[0], hi - self._span[0]
        probes, top = int(self.choice_n[a, b - a]), int(self.choice_p[a, b - a])
        if probes == PAIR:
            return sorted(self._span[0] + p for p in (int(self.choice_f[a, b - a]), top))
        out = [top]
        for arg in (self.arg3, self.arg2)[3 - probes:]:
            out.append(int(arg[a, out[-1] - a]))
        return sorted(self._span[0] + p for p in out)

    def expected(self, lo: int, hi: int) -> float:
        """Expected cost to resolve (lo, hi) under the prior restricted to it."""
        if hi - lo <= 1:
            return 0.0
        if self._span is None or not (self._span[0] <= lo and hi <= self._span[1]):
            self._solve(lo, hi)
        a, b = lo - self._span[0], hi - self._span[0]
        mass = self._mass[b] - self._mass[a]
        return float(self.F[a, b - a] / mass) if mass > 0 else 0.0

    def _solve(self, lo: int, hi: int) -> None:
        """Fill the tables for every sub-bracket of (lo, hi), by width. Positions are offsets from
        lo; F[a, d] is the bracket (lo+a, lo+a+d), the limit's weights are prior[lo+1 .. hi]."""
        size = hi - lo + 1
        self._span = (lo, hi)
        w = self.prior[lo + 1:hi + 1]  # position a's cell: limit index lo+a
        mass = np.concatenate([[0.0], np.cumsum(w)])  # W(a, b) = mass[b] - mass[a]
        self._mass = mass
        depth = [self.grid[lo + p] if 0 <= lo + p < len(self.grid) else 0 for p in range(size)]
        costs = np.full((4, size), np.inf)
        for n in range(1, self.parallel + 1 if self.parallel < 3 else 4):
            costs[n, 1:size - 1] = [self.cost(depth[p], n) for p in range(1, size - 1)]
        inf = np.inf
        F = np.full((size, size), inf)  # F[a, d]: weighted expected cost of bracket (a, a+d)
        G2 = np.full((size, size), inf)  # G2[a, d]: best F(a, q) + F(q, a+d) over a < q < a+d
        G3 = np.full((size, size), inf)  # G3[a, d]: best G2(a, q) + F(q, a+d)
        arg2 = np.zeros((size, size), dtype=int)  # q of G2, as an absolute position
        arg3 = np.zeros((size, size), dtype=int)
        choice_n = np.zeros((size, size), dtype=int)
        choice_p = np.zeros((size, size), dtype=int)
        choice_f = np.zeros((size, size), dtype=int)
        pairs = {self.grid.index(k) - lo: fn for k, fn in self.pairs.items() if k in self.grid
                 and 0 < self.grid.index(k) - lo < size - 2}  # a position with a position above it
        pair_costs = {f: np.array([fn(depth[p]) if f < p < size - 1 else inf for p in range(size)])
                      for f, fn in pairs.items()}
        F[:, 1] = 0.0
        F[:, 0] = 0.0
        for d in range(2, size):
            a = np.arange(size - d)
            t = np.arange(1, d)
            left = F[a[:, None], t[None, :]]  # F(a, a+t)
            right = F[a[:, None] + t[None, :], d - t[None, :]]  # F(a+t, a+d)
            weight = (mass[a + d] - mass[a])[:, None]
            top = a[:, None] + t[None, :]  # the round's deepest probe, absolute position
            best = np.full(len(a), inf)
            for n, below in ((1, left), (2, G2[a[:, None], t[None, :]]), (3, G3[a[:, None], t[None, :]])):
                if n > self.parallel:
                    break
                total = weight * costs[n][top] + below + right
                i = np.argmin(total, axis=1)
                value = total[a, i]
                better = value < best * (1 - 1e-12) - 1e-300  # a tie keeps fewer probes
                best = np.where(better, value, best)
                choice_n[a, d] = np.where(better, n, choice_n[a, d])
                choice_p[a, d] = np.where(better, a + t[i], choice_p[a, d])
            for f, pc in pair_costs.items():  # {f, top}: the brackets (a, f), (f, top), (top, a+d)
                rows = a[(a < f) & (f < a + d - 1)]
                if not len(rows):
                    continue
                tops = rows[:, None] + t[None, :]
                ok = tops > f
                total = np.where(ok, (mass[rows + d] - mass[rows])[:, None] * pc[np.minimum(tops, size - 1)]
                                 + F[rows, f - rows][:, None] + F[f, np.where(ok, tops - f, 0)]
                                 + F[np.minimum(tops, size - 1), d - t[None, :]], inf)
                i = np.argmin(total, axis=1)
                value = total[np.arange(len(rows)), i]
                better = value < best[rows] * (1 - 1e-12) - 1e-300
                best[rows] = np.where(better, value, best[rows])
                choice_n[rows, d] = np.where(better, PAIR, choice_n[rows, d])
                choice_p[rows, d] = np.where(better, rows + t[i], choice_p[rows, d])
                choice_f[rows, d] = np.where(better, f, choice_f[rows, d])
            done = np.array([bool(self.resolved and self.resolved(lo + x, lo + x + d)) for x in a]) \
                if self.resolved else np.zeros(len(a), dtype=bool)
            F[a, d] = np.where(done, 0.0, best)
            choice_n[a, d] = np.where(done, 0, choice_n[a, d])
            # rounds of several probes, for the wider brackets: G2 from F of narrower ones, G3 from G2
            split = left + right
            i = np.argmin(split, axis=1)
            G2[a, d], arg2[a, d] = split[a, i], a + t[i]
            if d >= 3:
                chained = G2[a[:, None], t[None, :]] + right
                i = np.argmin(chained, axis=1)
                G3[a, d], arg3[a, d] = chained[a, i], a + t[i]
        self.F, self.choice_n, self.choice_p, self.choice_f = F, choice_n, choice_p, choice_f
        # next_round reads arg tables by (a, offset of the round's deepest probe from a)
        self.arg2, self.arg3 = arg2, arg3
