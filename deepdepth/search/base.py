"""What the sweeper asks of a depth search, and the bookkeeping every search shares.

A search is one object per grid combination, driven by verdicts::

    while not s.done:
        for k in s.next_probes():
            s.record(k, [run(k, seed) for seed in s.seeds_for(k)])   # True/False, None = crashed

``Search`` is the written-down interface (a ``typing.Protocol``): the sweeper plugin only uses
these members, so another order (``GallopSearch``) or a phase after the search (``Refine``)
plugs in by config (``hydra.sweeper.search``) without touching the plugin. Pure Python on
purpose (no torch, Hydra or Lightning).
"""
from __future__ import annotations

from typing import Optional, Protocol, Sequence, runtime_checkable

from ..seeds import MAX_SEED, SEED_SCHEMES, trial_seed

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


@runtime_checkable
class Search(Protocol):
    """One depth search: probes to train, verdicts back, a limit out."""

    lower: int
    upper: int
    step: int
    rule: str
    seeds: list[int]      # the seeds a probe trains under the shared scheme (``seeds_for`` says which)
    grid: list[int]       # the depths it may probe: lower, lower+step, ... <= upper
    history: list[dict]   # one entry per recorded probe, in order
    rounds: int
    done: bool

    def next_probes(self) -> list[int]: ...
    def seeds_for(self, k: int) -> list[int]: ...
    def record(self, k: int, verdicts: Sequence[Optional[bool]]) -> bool: ...
    def moot(self, k: int, known: Optional[dict[int, Sequence[Optional[bool]]]] = None) -> bool: ...
    def skip(self, k: int) -> None: ...
    @property
    def k_star(self) -> Optional[int]: ...
    @property
    def censored(self) -> bool: ...
    @property
    def confirmed(self) -> Optional[bool]: ...
    @property
    def nonmonotone(self) -> list[int]: ...


class Bookkeeping:
    """Grid, seeds, verdicts, history and rounds: what every search records the same way."""

    def __init__(self, lower: int, upper: int, step: int, seeds: int, rule: str, seed: int,
                 seed_scheme: str = "independent"):
        if step < 1 or seeds < 1 or lower < 1:
            raise ValueError("lower, step, parallel and seeds must be >= 1")
        if seed_scheme not in SEED_SCHEMES:
            raise ValueError(f"unknown seed scheme {seed_scheme!r}; choose one of {list(SEED_SCHEMES)}")
        if not 0 <= seed <= MAX_SEED - (seeds - 1 if seed_scheme == "shared" else 0):
            raise ValueError(f"seed {seed} with {seeds} seeds per probe leaves [0, 2**32-1]")
        if upper < lower:
            raise ValueError(f"upper ({upper}) < lower ({lower}): no depth to search")
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")
        self.lower, self.upper, self.step, self.rule = lower, upper, step, rule
        self.seed, self.seed_scheme = seed, seed_scheme
        self.seeds = [seed + i for i in range(seeds)]
        self.grid = list(range(lower, upper + 1, step))
        self.verdicts: dict[int, bool] = {}  # k -> combined verdict
        self.crashed: set[int] = set()  # depths where no trial produced a verdict
        self.history: list[dict] = []
        self.skipped: list[int] = []  # open probes closed untrained: moot (``moot``)
        self.rounds = 0
        self.done = False
        self._pending: list[int] = []  # depths of the current round not yet recorded
        self._round_probes: list[int] = []  # every depth of the current round

    def k(self, i: int) -> int:
        return self.lower + self.step * i

    def index(self, k: int) -> int:
        return (k - self.lower) // self.step

    def seed_at(self, k: int, index: int) -> int:
        """The seed of replica ``index`` at depth k (``deepdepth.seeds``)."""
        return trial_seed(self.seed_scheme, self.seed, k, index)

    def seeds_for(self, k: int) -> list[int]:
        return [self.seed_at(k, i) for i in range(len(self.seeds))]

    def _open(self, ks: list[int], **extra) -> bool:
        """Start a round with the depths not yet known; False when there is none to run."""
        ks = sorted(k for k in dict.fromkeys(ks) if k not in self.verdicts)
        if ks:
            self.rounds += 1
            self._pending, self._round_probes = ks, list(ks)
            self._round_extra = extra
        return bool(ks)

    def record(self, k: int, verdicts: Sequence[Optional[bool]]) -> bool:
        """Record one probe's per-seed verdicts (None = crashed); returns the combined verdict."""
        if k not in self._pending:
            raise ValueError(f"depth {k} is not an open probe (open: {self._pending})")
        v = combine(verdicts, self.rule)
        self.verdicts[k] = bool(v)
        if v is None:
            self.crashed.add(k)
        counted = [x for x in verdicts if x is not None]
        self.history.append({"round": self.rounds, "k": k, "seeds": self.seeds_for(k), "verdicts": list(verdicts),
                             "passes": sum(map(bool, counted)), "counted": len(counted),
                             "trainable": bool(v), "failed": v is None, **self._round_extra})
        self._pending.remove(k)
        self._closed()
        return bool(v)

    def _narrowing(self) -> bool:
        """Does the open round narrow a bracket by its lowest failure (``bisect.narrow``)?"""
        return False

    def _closed(self) -> None:
        """A probe of the open round was recorded or skipped; each search moves on its own way."""

    def moot(self, k: int, known: Optional[dict[int, Sequence[Optional[bool]]]] = None) -> bool:
        """Can the open probe k no longer move the search? In a narrowing round a probe above a
        failing one cannot: ``narrow`` holds a pass above the lowest failure as noise. So under a
        time budget, whose jobs go in waves, it need not train (``skip``). A failure is one
        recorded in this round, or in ``known`` (per-seed verdicts of its probes trained, not yet
        recorded)."""
        if k not in self._pending or not self._narrowing():
            return False
        known = known or {}

        def failed(j: int) -> bool:
            if j not in self._pending:  # recorded in this round
                return not self.verdicts[j]
            return j in known and not combine(known[j], self.rule)

        return any(failed(j) for j in self._round_probes if j < k)

    def skip(self, k: int) -> None:
        """Close the open probe k untrained (it is moot): no verdict, listed in ``skipped``."""
        if k not in self._pending:
            raise ValueError(f"depth {k} is not an open probe (open: {self._pending})")
        self._pending.remove(k)
        self.skipped.append(k)
        self._closed()

    @property
    def last_pass(self) -> int:
        """Grid index of the limit (-1: nothing trainable); each search says where it keeps it."""
        raise NotImplementedError

    @property
    def k_star(self) -> Optional[int]:
        """The limit: the deepest grid depth the search holds trainable (None if none)."""
        return self.k(self.last_pass) if self.last_pass >= 0 else None

    @property
    def censored(self) -> bool:
        """Every grid depth up to upper was judged trainable: the limit is >= upper."""
        return self.last_pass == len(self.grid) - 1

    @property
    def trials(self) -> int:
        return sum(len(h["verdicts"]) for h in self.history)

    @property
    def nonmonotone(self) -> list[int]:
        """Depths that passed above a failing one: evidence the verdict is noisy near the limit."""
        failed = [k for k, v in self.verdicts.items() if not v]
        return sorted(k for k, v in self.verdicts.items() if v and failed and k > min(failed))

    @property
    def confirmed(self) -> Optional[bool]:
        """True when k*+step was trained and found untrainable; None if it has no real verdict
        (never trained: k* is the bound, or the depth above crashed)."""
        above = (self.k_star or self.lower - self.step) + self.step
        if above not in self.verdicts or above in self.crashed:
            return None
        return not self.verdicts[above]

    @property
    def hit_upper(self) -> bool:
        """Alias of ``censored`` (the frontier's older name)."""
        return self.censored
