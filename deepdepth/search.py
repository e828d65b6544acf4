"""Depth search: the study's binary search, generalised to k-ary rounds and several seeds.

Pure Python on purpose (no torch, Hydra or Lightning): the sweeper plugin only feeds it
verdicts, so the search logic is tested alone and reused from a notebook or script.

Depths are the grid k_i = lower + step*i <= upper, searched by index. With parallel=1 the
probes are exactly SPEC section 5 (mid = (l+r)//2, pass -> l = mid+1, fail -> r = mid-1).
With parallel=P a round probes P indices splitting [l, r] into P+1 parts. The loop is::

    s = DepthSearch(upper=24)
    while not s.done:
        for k in s.next_probes():
            s.record(k, [run(k, seed) for seed in s.seeds])   # True/False, None = crashed
    s.k_star, s.confirmed
"""
from __future__ import annotations

from typing import Optional, Sequence

RULES = ("majority", "all", "any")


def combine(verdicts: Sequence[Optional[bool]], rule: str = "majority") -> Optional[bool]:
    """Combine per-seed verdicts; crashed trials (None) are not counted.

    Returns None when no trial produced a verdict (the caller treats that as untrainable).
    """
    counted = [bool(v) for v in verdicts if v is not None]
    if not counted:
        return None
    passes = sum(counted)
    if rule == "majority":
        return 2 * passes > len(counted)
    if rule == "all":
        return passes == len(counted)
    if rule == "any":
        return passes > 0
    raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")


def split_points(l: int, r: int, parallel: int) -> list[int]:
    """Indices splitting [l, r] into parallel+1 parts; (l+r)//2 for parallel=1."""
    qs = (l + (j * (r - l + 2)) // (parallel + 1) - 1 for j in range(1, parallel + 1))
    return sorted({min(max(q, l), r) for q in qs})


class DepthSearch:
    """Bracket [l, r] of grid indices still undecided; l-1 passed, r+1 failed (or is off-grid)."""

    def __init__(self, lower: int = 3, upper: int = 24, step: int = 3, parallel: int = 1,
                 seeds: int = 1, rule: str = "majority", confirm: bool = True, seed: int = 0):
        if step < 1 or parallel < 1 or seeds < 1 or lower < 1:
            raise ValueError("lower, step, parallel and seeds must be >= 1")
        if upper < lower:
            raise ValueError(f"upper ({upper}) < lower ({lower}): no depth to search")
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")
        self.lower, self.upper, self.step = lower, upper, step
        self.parallel, self.rule, self.confirm = parallel, rule, confirm
        self.seeds = [seed + i for i in range(seeds)]
        self.grid = list(range(lower, upper + 1, step))
        self.l, self.r = 0, len(self.grid) - 1
        self.verdicts: dict[int, bool] = {}  # k -> combined verdict
        self.crashed: set[int] = set()  # depths where no trial produced a verdict
        self.history: list[dict] = []  # one entry per recorded probe, in order
        self.rounds = 0
        self._pending: list[int] = []  # depths of the current round not yet recorded
        self._confirming = False
        self.done = False

    def k(self, i: int) -> int:
        return self.lower + self.step * i

    def next_probes(self) -> list[int]:
        """Depths to run now (the unrecorded part of the current round); [] when done."""
        while not self._pending and not self.done:
            self._open_round()
        return list(self._pending)

    def _open_round(self) -> None:
        if self.l <= self.r:
            ks = [self.k(i) for i in split_points(self.l, self.r, self.parallel)]
        elif self.confirm and not self._confirming:
            self._confirming = True
            ks = [k for k in (self.k_star, self.k(self.r + 1)) if k is not None]
        else:
            self.done = True
            return
        ks = [k for k in ks if k not in self.verdicts]
        if not ks:  # everything needed is known already (e.g. confirm found both probed)
            if self._confirming:
                self.done = True
            return
        self.rounds += 1
        self._pending = ks

    def record(self, k: int, verdicts: Sequence[Optional[bool]]) -> bool:
        """Record one probe's per-seed verdicts (None = crashed); returns the combined verdict."""
        if k not in self._pending:
            raise ValueError(f"depth {k} is not an open probe (open: {self._pending})")
        v = combine(verdicts, self.rule)
        trainable = bool(v)
        self.verdicts[k] = trainable
        if v is None:
            self.crashed.add(k)
        counted = [x for x in verdicts if x is not None]
        self.history.append({
            "round": self.rounds, "k": k, "verdicts": list(verdicts), "passes": sum(map(bool, counted)),
            "counted": len(counted), "trainable": trainable, "failed": v is None,
            "confirm": self._confirming,
        })
        self._pending.remove(k)
        if not self._pending and not self._confirming:
            self._update_bracket()
        return trainable

    def _update_bracket(self) -> None:
        probed = [i for i in range(self.l, self.r + 1) if self.k(i) in self.verdicts]
        fails = [i for i in probed if not self.verdicts[self.k(i)]]
        f = min(fails) if fails else self.r + 1
        passes = [i for i in probed if i < f and self.verdicts[self.k(i)]]
        self.r = f - 1
        if passes:
            self.l = max(passes) + 1

    @property
    def k_star(self) -> Optional[int]:
        """Largest depth the bracket holds trainable (None if none); final once done."""
        return self.k(self.r) if self.r >= 0 else None

    @property
    def hit_upper(self) -> bool:
        """Every grid depth up to upper was judged trainable: the true limit may lie beyond."""
        return self.r == len(self.grid) - 1

    @property
    def confirmed(self) -> Optional[bool]:
        """True when k*+step was trained and found untrainable; None if it has no real verdict."""
        above = self.k(self.r + 1)
        if above not in self.verdicts or above in self.crashed:
            return None
        return not self.verdicts[above]

    @property
    def trials(self) -> int:
        return sum(len(h["verdicts"]) for h in self.history)

    @property
    def nonmonotone(self) -> list[int]:
        """Depths that passed above a failing one: evidence the verdict is noisy near the limit."""
        failed = [k for k, v in self.verdicts.items() if not v]
        return sorted(k for k, v in self.verdicts.items() if v and failed and k > min(failed))

    def summary(self) -> dict:
        return {"k_star": self.k_star, "confirmed": self.confirmed, "hit_upper": self.hit_upper,
                "rounds": self.rounds, "trials": self.trials, "probes": len(self.history),
                "nonmonotone": self.nonmonotone, "crashed": sorted(self.crashed), "done": self.done}
