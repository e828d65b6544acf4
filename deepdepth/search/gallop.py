"""GallopSearch: the same limit as bisection for a fraction of the compute.

A probe at depth k costs about k (every layer is a kernel per step, and on a GPU the step is
bound by kernel launches), so what a search costs is the sum of its probes' depths, and
bisection on [3, 900] pays for 450, 675, 787, ... before it gets near a limit of 447. This
order spends depth only where the limit can be:

1. **Start where the limit is expected.** With a ``hint`` (e.g. the original study's k*), the
   first round probes the hint and the depth above it: if the hint holds, the search ends in
   one round, both neighbours of the limit trained.
2. **Gallop to a bracket.** With no failure seen yet, each round reaches one doubling above
   the deepest pass, its ``parallel`` probes spread evenly up to it (packed, they cost about
   as much as the deepest alone), so reaching a limit L costs about 2L, not L log L, and the
   bracket it finds is already split. Without a hint the first round is lower, 2 lower, ...
   A doubling past two thirds of ``upper`` probes ``upper`` itself: it costs little more and,
   if it trains, ends the search (censored: k* >= upper); the probes packed beside it split
   the bracket in case it fails (probing the bound alone was tried: cheaper when it trains,
   dearer when it fails: 3,828 against 3,075 layers for a limit of 447 without a hint). With no pass yet, each round
   reaches one halving below the shallowest failure the same way.
3. **Bisect the bracket** [deepest pass, shallowest failure] in k-ary rounds, as DepthSearch
   does, until the two are neighbours on the grid (``resolution=0``, the default) or closer than
   ``resolution * k`` (a relative resolution for deep limits, where one grid step is < 1%).

Measured against 3-ary bisection on [3, 900] (sum over rounds of the deepest probe,
tests/test_gallop.py): a hint that holds costs 1/5 or less, a hint 40% too deep 0.4, a limit
of 12 with no hint under 1/10, a limit of 156 two thirds, a limit of 447 with no hint about
1.3x (its doublings buy back only about one bisection round). Averaged over every limit on
the grids of bounds 24, 120, 150, 300 and 900, without hints, it costs 1.1x bisection: the
order pays where the limit is far below the bound or roughly known, so the study passes the
original study's k* as the hint (``hydra.sweeper.hints=reference``).

Under any monotone verdict oracle this returns bisection's k* (exactly with resolution 0); a
failure is never probed past, and no depth above ``upper`` is ever trained.

``order="cost"`` replaces the three phases by the rounds that least expected seconds buy
(``deepdepth.search.order``: an optimal search tree for the round cost ``cost(k, probes)`` the
sweeper gives from its cost model, or the depth of the deepest probe by default, under a prior
around the hint); the same limit, the same guarantees.
"""
from __future__ import annotations

from typing import Callable, Optional

from .base import Bookkeeping
from .bisect import narrow, split_points
from .order import CostOrder, limit_prior

ORDERS = ("gallop", "cost")

BOUND_JUMP = 2 / 3  # a doubling past this fraction of upper probes upper instead


class GallopSearch(Bookkeeping):
    def __init__(self, lower: int = 3, upper: int = 24, step: int = 3, parallel: int = 1,
                 seeds: int = 1, rule: str = "majority", confirm: bool = True, seed: int = 0,
                 seed_scheme: str = "independent",
                 hint: Optional[int] = None, resolution: float = 0.0, order: str = "gallop",
                 cost: Optional[Callable[[int, int], float]] = None):
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}; choose one of {list(ORDERS)}")
        if parallel < 1:
            raise ValueError("lower, step, parallel and seeds must be >= 1")
        if resolution < 0:
            raise ValueError(f"resolution must be >= 0, got {resolution!r}")
        super().__init__(lower, upper, step, seeds, rule, seed, seed_scheme)
        self.parallel, self.hint, self.resolution = parallel, hint, resolution
        self.confirm = confirm  # kept for the interface: neighbours of the limit are always trained
        self.lo, self.hi = -1, len(self.grid)  # deepest pass, shallowest failure (grid indices)
        self.order = order
        self._cost, self._pairs, self._planner = cost, None, None

    def price(self, cost: Optional[Callable[[int, int], float]], pairs: Optional[dict] = None) -> None:
        """The seconds of a round, ``cost(deepest depth, probes)`` (the sweeper's cost model):
        what ``order="cost"`` minimises; ``pairs``: depths partly trained already, each with the
        seconds of a round of it and a deeper probe (``CostOrder``). Plans again from the next round."""
        self._cost, self._pairs, self._planner = cost, pairs, None

    # ---- rounds ------------------------------------------------------------------------------
    def next_probes(self) -> list[int]:
        while not self._pending and not self.done:
            ks = self._plan()
            if not ks or not self._open([self.k(i) for i in ks], phase=self.phase):
                self.done = True
        return list(self._pending)

    @property
    def phase(self) -> str:
        if self.order == "cost":
            return "cost"
        if self.rounds == 0 and self.hint is not None:
            return "hint"
        if self.hi == len(self.grid):
            return "up"
        return "down" if self.lo < 0 else "bisect"

    def _plan(self) -> list[int]:
        n, last = len(self.grid), len(self.grid) - 1
        if self.hi - self.lo <= 1 or self._resolved():
            return []
        phase = self.phase
        if phase == "cost":
            return self._cheapest()
        if phase == "hint":
            c = min(max(self.index(self.hint), 0), last)
            return [c] + ([c + 1] if self.parallel > 1 and c + 1 < n else [])
        if phase == "up" and self.lo < 0:  # nothing known: the first doublings from lower
            return sorted({self.upper_index(self.lower * 2 ** j) for j in range(self.parallel)})
        if phase == "up":  # one doubling above the deepest pass, split into `parallel` probes
            top = self.upper_index(2 * self.k(self.lo))
            return self._spread(self.lo, top)
        if phase == "down":  # one halving below the shallowest failure, likewise
            bottom = max(0, self.index(self.k(self.hi) // 2))
            return self._spread(bottom - 1, self.hi - 1)
        return split_points(self.lo + 1, self.hi - 1, self.parallel)

    def _cheapest(self) -> list[int]:
        """The next round of the optimal search tree (built once, on the first round's bracket)."""
        if self._planner is None:
            cost = self._cost or (lambda k, probes: float(k))  # a packed round: about its deepest probe
            self._planner = CostOrder(self.grid, limit_prior(self.grid, self.hint), cost, self.parallel,
                                      resolved=self._resolved_between if self.resolution > 0 else None,
                                      pairs=self._pairs)
        return self._planner.next_round(self.lo, self.hi)

    def _spread(self, after: int, top: int) -> list[int]:
        """``parallel`` grid indices evenly spaced in (after, top], top included."""
        span = top - after
        return sorted({after + max(1, round(span * (j + 1) / self.parallel)) for j in range(self.parallel)
                       if after + max(1, round(span * (j + 1) / self.parallel)) <= top})

    def upper_index(self, depth: int) -> int:
        """Grid index of a gallop depth: snapped down to the grid, or upper past BOUND_JUMP."""
        last = len(self.grid) - 1
        if depth > BOUND_JUMP * self.upper:
            return last
        return min(max(self.index(depth), 0), last)

    def _resolved(self) -> bool:
        return self._resolved_between(self.lo, self.hi)

    def _resolved_between(self, lo: int, hi: int) -> bool:
        if self.resolution <= 0 or lo < 0 or hi >= len(self.grid):
            return False
        return self.k(hi) - self.k(lo) <= max(self.step, self.resolution * self.k(lo))

    def _narrowing(self) -> bool:
        return True  # every phase's round narrows [lo, hi] by its lowest failure

    def _closed(self) -> None:
        if not self._pending:
            self.lo, r = narrow(self.verdicts, self.k, self.lo + 1, self.hi - 1)
            self.lo, self.hi = self.lo - 1, r + 1

    # ---- result ------------------------------------------------------------------------------
    @property
    def last_pass(self) -> int:
        return self.lo
