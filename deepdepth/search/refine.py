"""Refine: after a depth search, more seeds where they narrow the interval of k50 most.

A search's k* says where the seeds' majority stops training on a grid; it does not say how
sure that is. ``Refine`` wraps any ``Search``: while the base runs it is the base (same probes,
same seeds). Once the base is done, after each round it pools every (depth, verdict) pair so
far (crashed trials not counted) into ``half_trainable_depth`` (logistic in log depth; a
profile-likelihood interval of the 50% depth k50, cut so that it covers at least 95%: see
below) and stops when that interval is closed and narrower than ``width`` layers
(``reached``). Otherwise it trains ``batch`` more seeds at a few grid depths, until every
candidate depth holds ``max_seeds`` trials (``reached`` is False).

Where to add seeds. The trials that move an interval end are those near it (a depth where
seeds keep training excludes a crossing below it) and those near k50 (under the logistic model
a trial's information about log k50 is b^2 p(1-p), largest where p = 1/2). So the candidates
are the grid depths just below and just above k50 and the grid depths nearest the two interval
ends (an open end: one grid step beyond the probed depths on that side), never outside
[lower, upper]; a round trains ``probes`` of them, those with the fewest trials first (a depth
with few seeds gains most from a batch), ties to the nearest k50 in log depth.

Seeds: replica indices 0..S-1 are the base's; refinement indices at every depth start at S and
go up past any index already tried there, so a (depth, seed) pair is never trained twice. An
index becomes a seed by the base's scheme (``deepdepth.seeds``), or by ``seed_scheme``
where it is given: a study trained with shared seeds can add independent ones.

k_star, censored and confirmed stay the base's: they are the rule's answer; ``interval`` and
``seeds_at`` are the precision stated beside it. A base that is censored (every probe trained)
or found nothing trainable has no crossing to refine: Refine is done at once (``stopped``).

The interval and the stop. The interval is ``half_trainable_depth``'s at ``level``, by default
the one level of every k50 interval (confidence.LEVEL: a 99% likelihood-ratio cut), and a stop
also needs ``min_seeds`` = 8 trials at each grid depth bracketing k50. Why not the plain 95% cut:
after an adaptive search with 3 seeds per depth and a stop at the first narrow interval it
covered the true k50 in only 87-95% of simulated studies (100 per case, slopes 4-15, k50 6-450):
3 unanimous seeds at a depth cost 2 ln 8 = 4.16 > 3.84 in deviance, so they alone exclude a
crossing beyond that depth, and stopping selects such lucky-narrow data.

Coverage (deepdepth/search/calibration.py, table in benchmarks/calibration.md: GallopSearch lower 3,
step 3, 3 seeds, parallel 3, then Refine defaults, width 25% of k50; slopes 4, 8, 15; k50 6, 14,
40, 150, 450; 200 studies x 3 RNG seeds per case, every case reported). Seeds independent
across depths: the finite intervals hold the true k50 in 96.7-98.8% of studies in every case
(95.5-99.5% per RNG seed), those that reached the width in 95.9-100%, except k50 = 14 at slope 4:
there the width (3.5 layers) asks for more trials than max_seeds allows, only 61 of 600 studies
reach it, by luck, and 79% of those cover; read a reached interval on a shallow curve with care.
Seeds correlated across depths (the old scheme at its extreme, one draw per seed for every
depth): 46-99%, worst for deep limits and shallow slopes (k50 = 450, slope 4: 46%): the
interval treats the trials as independent, so it is only honest for independent seeds (a
milder mixture, half the trials sharing their seed's draw: 76-99.8%).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

from ..science.confidence import LEVEL, Crossing, half_trainable_depth
from .base import Search, combine
from ..seeds import trial_seed

class Refine:
    """A ``Search`` that is its base, then a refinement phase (see the module docstring)."""

    def __init__(self, base: Search, width: Optional[float] = None, max_seeds: int = 24, batch: int = 4,
                 probes: int = 2, min_seeds: int = 8, level: float = LEVEL,
                 seed_scheme: Optional[str] = None, fraction: Optional[float] = None):
        if width is None and fraction is None:
            raise ValueError("give a width (layers) or a fraction (of k50) for the interval")
        if not (width is None or width > 0) or not (fraction is None or fraction > 0) or batch < 1 or probes < 1:
            raise ValueError("width and fraction must be > 0, batch and probes >= 1")
        if max_seeds < len(base.seeds):
            raise ValueError(f"max_seeds ({max_seeds}) < the base's seeds ({len(base.seeds)})")
        self.base, self.width, self.max_seeds, self.batch, self.probes = base, width, max_seeds, batch, probes
        self.fraction = fraction  # the interval narrower than this fraction of k50, too
        self.min_seeds = min(min_seeds, max_seeds)
        self.level = level
        self.lower, self.upper, self.step, self.rule = base.lower, base.upper, base.step, base.rule
        self.seeds, self.grid = base.seeds, base.grid
        self.seed_scheme = seed_scheme or getattr(base, "seed_scheme", "shared")
        trial_seed(self.seed_scheme, 0, 3, 0)  # an unknown scheme fails here, before any training
        self.tried: dict[int, list[tuple[int, Optional[bool]]]] = {}  # k -> (seed, verdict)
        self.refine_history: list[dict] = []
        self.refine_rounds = 0
        self.interval: Optional[Crossing] = None
        self.reached = False
        self.stopped = ""  # why the refinement ended ("" while it runs)
        self._pending: dict[int, list[int]] = {}  # k -> seeds of the open refinement round

    # ---- the Search interface ----------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.base.done and bool(self.stopped)

    @property
    def rounds(self) -> int:
        return self.base.rounds + self.refine_rounds

    @property
    def history(self) -> list[dict]:
        return list(self.base.history) + self.refine_history

    def next_probes(self) -> list[int]:
        if not self.base.done:
            probes = self.base.next_probes()
            if probes or not self.base.done:
                return probes
        if not self._pending and not self.stopped:
            self._plan()
        return sorted(self._pending)

    def seeds_for(self, k: int) -> list[int]:
        if k in self._pending:
            return list(self._pending[k])
        return self.base.seeds_for(k)

    def moot(self, k: int, known: Optional[dict[int, Sequence[Optional[bool]]]] = None) -> bool:
        """The base's rule (only the base's open probes can be moot): a refinement probe never is,
        every seed counts."""
        return self.base.moot(k, known)

    def skip(self, k: int) -> None:
        self.base.skip(k)  # the base checks k is an open probe

    @property
    def skipped(self) -> list[int]:
        return list(self.base.skipped)

    def record(self, k: int, verdicts: Sequence[Optional[bool]]) -> bool:
        if k not in self._pending:
            seeds = self.base.seeds_for(k)
            trainable = self.base.record(k, verdicts)  # the base checks k is an open probe
            self.tried.setdefault(k, []).extend(zip(seeds, verdicts))
            return trainable
        seeds = self._pending[k]
        if len(verdicts) != len(seeds):
            raise ValueError(f"depth {k}: {len(verdicts)} verdicts for seeds {seeds}")
        self.tried.setdefault(k, []).extend(zip(seeds, verdicts))
        counted = [bool(v) for v in verdicts if v is not None]
        v = combine(verdicts, self.rule)
        self.refine_history.append({"round": self.rounds, "k": k, "seeds": list(seeds),
                                    "verdicts": list(verdicts), "passes": sum(counted),
                                    "counted": len(counted), "trainable": bool(v),
                                    "failed": v is None, "phase": "refine"})
        del self._pending[k]
        return bool(v)

    @property
    def k_star(self) -> Optional[int]:
        return self.base.k_star

    @property
    def censored(self) -> bool:
        return self.base.censored

    @property
    def hit_upper(self) -> bool:
        return self.base.censored

    @property
    def confirmed(self) -> Optional[bool]:
        return self.base.confirmed

    @property
    def nonmonotone(self) -> list[int]:
        return self.base.nonmonotone

    @property
    def crashed(self) -> set[int]:
        return getattr(self.base, "crashed", set())

    @property
    def trials(self) -> int:
        return sum(len(t) for t in self.tried.values())

    # ---- the refinement ----------------------------------------------------------------------
    @property
    def seeds_at(self) -> dict[int, int]:
        """Depth -> seeds with a verdict there (both phases; crashed trials not counted)."""
        return {k: sum(v is not None for _, v in t) for k, t in sorted(self.tried.items())}

    def pairs(self) -> tuple[list[int], list[bool]]:
        """Every counted (depth, verdict) so far, the data the interval is fitted on."""
        ks = [k for k, t in self.tried.items() for _, v in t if v is not None]
        ys = [bool(v) for t in self.tried.values() for _, v in t if v is not None]
        return ks, ys

    def _plan(self) -> None:
        if self.base.k_star is None or self.base.censored:
            self.stopped = ("no crossing: every probe trained (censored)" if self.base.censored
                            else "no crossing: nothing trainable")
            return
        fit = self.interval = half_trainable_depth(*self.pairs(), level=self.level)
        have = self.seeds_at
        if self.narrower(fit) and all(have.get(k, 0) >= self.min_seeds for k in self.bracket(fit)):
            self.reached, self.stopped = True, f"interval narrower than {self.target}"
            return
        chosen = self.candidates(fit)[:self.probes]
        if not chosen:
            self.stopped = f"width not reached: every candidate depth has {self.max_seeds} trials"
            return
        self.refine_rounds += 1
        self._pending = {k: self._next_seeds(k) for k in chosen}

    def candidates(self, fit: Crossing) -> list[int]:
        """Grid depths worth more seeds, best first (rule in the module docstring)."""
        probed = sorted(self.tried)
        centre = self.centre(fit)
        low = fit.low if fit.low is not None else probed[0] - self.step
        high = fit.high if fit.high is not None else probed[-1] + self.step
        below, above = self.bracket(fit)
        ends = [min(self.grid, key=lambda g: abs(g - x)) for x in (low, high)]
        room = [k for k in dict.fromkeys([below, above, *ends]) if len(self.tried.get(k, ())) < self.max_seeds]
        have = self.seeds_at
        return sorted(room, key=lambda k: (have.get(k, 0), abs(math.log(k / centre))))

    @property
    def target(self) -> str:
        """The width to reach, in words."""
        parts = ([f"{self.width} layers"] if self.width else []) + ([f"{self.fraction:g} of k50"] if self.fraction else [])
        return " and ".join(parts)

    def narrower(self, fit: Crossing) -> bool:
        if fit.low is None or fit.high is None:
            return False
        span = fit.high - fit.low
        return (self.width is None or span < self.width) and (
            self.fraction is None or (fit.k50 is not None and span < self.fraction * fit.k50))

    def centre(self, fit: Crossing) -> float:
        return fit.centre if fit.centre is not None else self.base.k_star + self.step / 2

    def bracket(self, fit: Crossing) -> tuple[int, int]:
        """The grid depths just below and just above k50 (k50 on the grid: it and the next)."""
        centre = self.centre(fit)
        below = max((g for g in self.grid if g <= centre), default=self.grid[0])
        above = min((g for g in self.grid if g > below), default=below)
        return below, above

    def seed_at(self, k: int, index: int) -> int:
        """The seed of replica ``index`` at depth k: the base's below S, this phase's scheme above."""
        if index < len(self.seeds):
            return self.base.seeds_for(k)[index]
        return trial_seed(self.seed_scheme, getattr(self.base, "seed", self.seeds[0]), k, index)

    def _next_seeds(self, k: int) -> list[int]:
        used = {s for s, _ in self.tried.get(k, ())}
        top = len(self.seeds) - 1  # the highest index tried at k (the base's last at least)
        for i in range(len(self.seeds), len(self.seeds) + self.max_seeds + len(used)):
            if self.seed_at(k, i) in used:
                top = i
        n = min(self.batch, self.max_seeds - len(used))
        return [self.seed_at(k, i) for i in range(top + 1, top + 1 + n)]
