"""DepthSearch: the study's binary search, generalised to k-ary rounds and several seeds.

Depths are the grid k_i = lower + step*i <= upper, searched by index. With parallel=1 the
probes are exactly the original search's (mid = (l+r)//2, pass -> l = mid+1, fail -> r = mid-1), so
``hydra.sweeper.search=bisect parallel=1 seeds=1`` replays the original study's probe sequence.
With parallel=P a round probes P indices splitting [l, r] into P+1 parts. ``confirm`` trains
k* and k*+step when the search did not, but never a depth above ``upper``: a search whose every
probe trained reports k* = upper as censored (the limit is >= upper).
"""
from __future__ import annotations

from .base import Bookkeeping


def split_points(l: int, r: int, parallel: int) -> list[int]:
    """Indices splitting [l, r] into parallel+1 parts; (l+r)//2 for parallel=1."""
    qs = (l + (j * (r - l + 2)) // (parallel + 1) - 1 for j in range(1, parallel + 1))
    return sorted({min(max(q, l), r) for q in qs})


def narrow(verdicts: dict[int, bool], k, l: int, r: int) -> tuple[int, int]:
    """The bracket [l, r] after a round: r below the lowest failing probe, l above the highest
    pass beneath it (a pass above a failure is noise, not evidence)."""
    probed = [i for i in range(l, r + 1) if k(i) in verdicts]
    fails = [i for i in probed if not verdicts[k(i)]]
    f = min(fails) if fails else r + 1
    passes = [i for i in probed if i < f and verdicts[k(i)]]
    return (max(passes) + 1 if passes else l), f - 1


class DepthSearch(Bookkeeping):
    """Bracket [l, r] of grid indices still undecided; l-1 passed, r+1 failed (or is off-grid)."""

    def __init__(self, lower: int = 3, upper: int = 24, step: int = 3, parallel: int = 1,
                 seeds: int = 1, rule: str = "majority", confirm: bool = True, seed: int = 0,
                 seed_scheme: str = "independent"):
        if parallel < 1:
            raise ValueError("lower, step, parallel and seeds must be >= 1")
        super().__init__(lower, upper, step, seeds, rule, seed, seed_scheme)
        self.parallel, self.confirm = parallel, confirm
        self.l, self.r = 0, len(self.grid) - 1
        self._confirming = False

    def next_probes(self) -> list[int]:
        """Depths to run now (the unrecorded part of the current round); [] when done."""
        while not self._pending and not self.done:
            self._open_round()
        return list(self._pending)

    def _open_round(self) -> None:
        if self.l <= self.r:
            self._open([self.k(i) for i in split_points(self.l, self.r, self.parallel)], confirm=False)
        elif self.confirm and not self._confirming:
            self._confirming = True
            above = [self.k(self.r + 1)] if self.r + 1 < len(self.grid) else []  # never past the bound
            if not self._open([k for k in [self.k_star, *above] if k is not None], confirm=True):
                self.done = True
        else:
            self.done = True

    def _narrowing(self) -> bool:
        return not self._confirming  # a confirming round keeps k*: its probes are its evidence

    def _closed(self) -> None:
        if not self._pending and not self._confirming:
            self.l, self.r = narrow(self.verdicts, self.k, self.l, self.r)

    @property
    def last_pass(self) -> int:
        """The bracket's top: the deepest grid index still held trainable (final once done)."""
        return self.r
