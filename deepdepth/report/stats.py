"""Pure statistics of a sweep: per depth, how many seeds trained (with Wilson intervals); per
combination, the measured depth limit (the 50% depth k50 where the data cross it, else an honest
bound, never an extrapolation); the ranking by that limit."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..science.confidence import LEVEL, half_trainable_depth
from .load import Combination, Trial
from .points import DepthPoint, depth_points
from .settings import varying

INTERVAL = f"{100 * LEVEL:g}%"  # the one level of every k50 interval the report prints


@dataclass(frozen=True)
class Limit:
    """A measured depth limit. kind 'k50': the 50% depth with its interval at confidence.LEVEL
    (None: open side) and the fitted logistic slope; where the data are separated (``bracket``:
    the deepest depth where all trained, the shallowest where none did, nothing probed between)
    there is no estimate: ``value`` is only the bracket's geometric middle, for sorting and
    drawing, and the limit prints as the bracket; 'above': every probe trained in at least half
    the seeds, or the fit put k50 beyond the deepest probe: the limit is > ``value``, the deepest probe with a
    majority trained; 'below': the mirror image (< the shallowest probe where most failed);
    'none': no trial with a verdict."""
    kind: str
    value: Optional[float] = None
    low: Optional[float] = None
    high: Optional[float] = None
    slope: Optional[float] = None
    bracket: Optional[tuple[float, float]] = None

    @property
    def bounds(self) -> tuple[Optional[float], Optional[float]]:
        """The range the limit lies in, for comparisons (None: open)."""
        return {"k50": (self.low, self.high), "above": (self.value, None),
                "below": (None, self.value)}.get(self.kind, (None, None))

    def __str__(self) -> str:
        if self.kind == "k50" and self.bracket:
            return f"{fmt_k(self.bracket[0])}–{fmt_k(self.bracket[1])} (bracket) {span(self.low, self.high)}"
        if self.kind == "k50":
            return f"{fmt_k(self.value)} {span(self.low, self.high)}"
        if self.kind == "above":
            return f"> {fmt_k(self.value)} (lower bound)"
        if self.kind == "below":
            return f"< {fmt_k(self.value)} (upper bound)"
        return "—"


@dataclass
class Confidence:
    """One combination: its search, the seeds per probed depth and the measured limit."""
    combination: Combination
    depths: list[DepthPoint]
    limit: Limit
    trials: int = 0   # trials with a verdict
    crashed: int = 0  # trials without one (excluded)
    seeds: str = ""   # how its trials' seeds were drawn: "shared", "independent", or "6 shared, 46 independent"

    @property
    def variant(self) -> str:
        return self.combination.model

    @property
    def k_star_shown(self) -> Optional[int]:
        """The search's k*; when censored at its bound, the deepest probe a majority trained (a lower bound)."""
        c = self.combination
        if c.k_star is None or not c.censored:
            return c.k_star
        return max([d.k for d in self.depths if d.majority] + [c.k_star])

    @property
    def k_star_str(self) -> str:
        k = self.k_star_shown
        return "none" if k is None else f"≥ {k} (censored)" if self.combination.censored else str(k)


def measured_limit(trials: list[Trial]) -> Limit:
    """The limit the counted trials support (see ``Limit``)."""
    counted = [t for t in trials if t.counted]
    if not counted:
        return Limit("none")
    points = next(iter(depth_points(counted).values()))
    ks, ys = [t.k for t in counted], [bool(t.trainable) for t in counted]
    fit = half_trainable_depth(ks, ys, level=LEVEL)
    if all(2 * d.passes >= d.n for d in points) or (fit.centre is not None and fit.centre > points[-1].k):
        return Limit("above", max([d.k for d in points if d.majority] or [d.k for d in points]))
    if all(2 * d.passes <= d.n for d in points) or (fit.centre is not None and fit.centre < points[0].k):
        return Limit("below", min([d.k for d in points if 2 * d.passes < d.n] or [d.k for d in points]))
    return Limit("k50", fit.centre, fit.low, fit.high, logistic_slope(ks, ys, fit.centre), fit.bracket)


def logistic_slope(depths: list[int], trained: list[bool], k50: float) -> float:
    """The maximum-likelihood sharpness b of p(k) = sigmoid(b (log k50 - log k)) at the fitted k50
    (the curve the report draws; capped where the data are perfectly separated)."""
    z = np.log(k50) - np.log(np.asarray(depths, float))
    y = np.asarray(trained, bool)
    slopes = np.geomspace(0.05, 500.0, 400)
    ll = np.where(y, -np.logaddexp(0, -slopes[:, None] * z), -np.logaddexp(0, slopes[:, None] * z)).sum(1)
    return float(slopes[int(np.argmax(ll))])


def confidence_table(frontier: list[Combination], trials: list[Trial]) -> list[Confidence]:
    """One row per combination (variant x whatever settings vary)."""
    points = depth_points(trials)
    rows = []
    for c in frontier:
        mine = [t for t in trials if t.combo == c.combo]
        rows.append(Confidence(c, points.get(c.combo, []), measured_limit(mine),
                               trials=sum(t.counted for t in mine), crashed=sum(not t.counted for t in mine),
                               seeds=seed_schemes(c, mine)))
    return rows


def seed_schemes(c: Combination, mine: list[Trial]) -> str:
    """The seed scheme of a combination's counted trials: the search's, and the refinement's where
    it differs (a trial that is not one of the search's probes is the refinement's)."""
    counted = [t for t in mine if t.counted]
    if not c.refine_scheme or c.refine_scheme == c.seed_scheme or not c.search_trials:
        return c.seed_scheme
    later = sum((t.k, t.seed) not in c.search_trials and (None, t.seed) not in c.search_trials for t in counted)
    first = len(counted) - later
    return (f"{first} {c.seed_scheme}, {later} {c.refine_scheme}" if first and later
            else c.refine_scheme if later else c.seed_scheme)


@dataclass
class Ranked:
    row: Confidence
    group: tuple   # the training settings it is ranked within (not model.*: those are what is ranked)
    rank: int = 0

    @property
    def shown(self) -> str:
        text = str(self.row.limit) + (" (unfinished)" if not self.row.combination.done else "")
        return text + ("; interval open on both sides: undetermined" if self.undetermined else "")

    @property
    def undetermined(self) -> bool:
        lim = self.row.limit
        return lim.kind == "k50" and lim.low is None and lim.high is None

    @property
    def key(self) -> tuple:
        """Deepest first; a lower bound ranks by its bound (above an equal k50); no data last."""
        lim = self.row.limit
        tier = -1 if lim.kind == "none" else 0 if self.undetermined else 1
        return tier, 0.0 if lim.kind in ("none", "below") else lim.value, lim.kind == "above"


def rank_variants(conf: list[Confidence], group_keys: Optional[list[str]] = None) -> list[Ranked]:
    """Rank by measured limit within each setting of the training (protocol, lr, epochs, ...),
    deepest first, the correct protocol's group first; ties share a rank. Where that leaves every
    group a single row (one variant swept over lr, say), all rows are ranked together: across the
    settings, not within each."""
    if group_keys is None:
        spread = varying([r.combination.settings for r in conf])
        group_keys = ["protocol", "lr"] + [k for k in spread
                                           if k not in ("protocol", "lr") and not k.startswith("model.")]
        keyed = {tuple(str(r.combination.settings.get(k)) for k in group_keys) for r in conf}
        if len(conf) > 1 and len(keyed) == len(conf):
            group_keys = []
    groups: dict[tuple, list[Ranked]] = {}
    for r in conf:
        g = tuple(str(r.combination.settings.get(k)) for k in group_keys)
        groups.setdefault(g, []).append(Ranked(r, g))
    out = []
    first = group_keys.index("protocol") if "protocol" in group_keys else None
    for g in sorted(groups, key=lambda g: (first is not None and g[first] != "correct", g)):
        rows = sorted(groups[g], key=lambda x: x.key, reverse=True)
        for i, x in enumerate(rows):
            x.rank = rows[i - 1].rank if i and rows[i - 1].key == x.key else i + 1
        out += rows
    return out


def same_trials(r: Confidence) -> tuple:
    """What a row's limit rests on: its variant and settings but the protocol, and its probes. Two
    rows with the same key are one set of trials (a BatchNorm-free variant's two protocols)."""
    c = r.combination
    return (re.sub(r" ?protocol=\S+", "", c.label), str(r.limit),
            tuple((d.k, d.n, d.passes, tuple(sorted(e for e in d.test_errs if e is not None))) for d in r.depths))


def distinct(conf: list[Confidence]) -> list[tuple[Confidence, bool]]:
    """Each distinct set of trials once, with whether another protocol's row shares it."""
    seen: dict[tuple, list] = {}
    for r in conf:
        seen.setdefault(same_trials(r), []).append(r)
    return [(rows[0], len({x.combination.protocol for x in rows}) > 1) for rows in seen.values()]


def fmt_k(x) -> str:
    """A depth: '447', '10.4', '∞', '—'."""
    if x is None:
        return "—"
    if x == math.inf:
        return "∞"
    return f"{x:.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:.1f}"


def span(low, high) -> str:
    return ("(0" if low is None else f"[{fmt_k(low)}") + ", " + ("∞)" if high is None else f"{fmt_k(high)}]")
