"""How sure is a depth limit? Binomial intervals per depth and a pooled estimate of the depth
at which half the seeds train, with a likelihood-ratio interval. Pure numpy.

The pooled model is p(k) = sigmoid(b * (log c - log k)): c is the 50% depth, b >= 0 the
sharpness. Bisection data are often perfectly separated (every seed trains below a depth and
none above), where the maximum-likelihood slope is infinite; profiling the likelihood over b
for each candidate c still gives a finite, honest interval for c. Separated data have no point
estimate: the fit says only that c lies between the deepest pass and the shallowest failure
(``Crossing.bracket``), and the interval is at least that pair of depths.

Fast enough to refit after every refinement round (deepdepth.search.refine): trials are pooled
into counts per depth, candidate values of c are a coarse grid plus every probed depth and the
midpoints between neighbouring depths (where a separated maximum lies), and each interval end
is then located between its grid neighbours by subdivision. For each c the likelihood is
concave in b, so the slope is found by bisecting its derivative (not a fixed grid).

Open ends. Far beyond the deepest probe the profile tends to the best constant fraction p >= 1/2
(b -> 0 with b log c fixed), far below the shallowest to the best p <= 1/2. An end is open only
when that limit is inside the cut (the likelihood never excludes the far side); otherwise the
search walks outward, doubling its step, until the profile drops below the cut.

``LEVEL`` is the one level of every k50 interval (Refine's stop, the report, the README). It is
not the textbook 95%: after an adaptive search with 3 seeds per depth and a stop at the first
narrow interval the nominal 95% cut covers less than 95%. LEVEL is chosen by the simulation in
deepdepth/search/calibration.py (table: benchmarks/calibration.md) so that the interval covers the true
k50 in at least 95% of simulated studies in every case with seeds independent across depths.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Optional

import numpy as np

LEVEL = 0.99  # nominal level of the profile cut; its real coverage: benchmarks/calibration.md
SLOPES = np.concatenate([[0.0], np.geomspace(1e-3, 500.0, 25)])  # coarse slopes, refined per c
FAR = 8  # outward doublings of the search for a finite end (2^8 in log depth: beyond any use)


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well-behaved at 0/n and n/n)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Crossing:
    """The depth where half the seeds train: estimate and interval at ``level`` (None: open
    side). Separated data (every trial at or below one depth trained, none at or above the next
    probed) have no estimate: k50 is None and ``bracket`` holds those two depths."""
    k50: Optional[float]
    low: Optional[float]
    high: Optional[float]
    bracket: Optional[tuple[float, float]] = None
    level: float = LEVEL

    @property
    def centre(self) -> Optional[float]:
        """k50, or a bracket's geometric middle (where to look, not an estimate)."""
        if self.bracket is not None:
            return math.sqrt(self.bracket[0] * self.bracket[1])
        return self.k50


def cut_deviance(level: float) -> float:
    """Twice the log-likelihood drop of a ``level`` likelihood-ratio interval (chi-square, 1 df)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return NormalDist().inv_cdf((1 + level) / 2) ** 2


def _loglik(b: np.ndarray, d: np.ndarray, passes: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Log-likelihood of passes of n per depth at slope b, d = log c - log k (broadcast);
    log sigmoid(-z) = log sigmoid(z) - z leaves one logaddexp per term."""
    z = b[..., None] * d
    return -(n * np.logaddexp(0, -z) + (n - passes) * z).sum(-1)


def profile_loglik(log_k: np.ndarray, passes: np.ndarray, n: np.ndarray, log_c: np.ndarray) -> np.ndarray:
    """Log-likelihood maximised over the slope b in [0, 500], at each log_c. For fixed c it is
    concave in b, so its maximum lies between the neighbours of the best of a coarse grid of
    slopes; twelve halvings of the sign of its derivative (in log b) locate it."""
    d = log_c[:, None] - log_k[None, :]  # (C, K)
    ll = _loglik(SLOPES[None, :], d[:, None, :], passes, n)  # (C, B)
    j = ll.argmax(1)
    lo = np.log(SLOPES[np.maximum(j - 1, 1)])
    hi = np.log(SLOPES[np.minimum(j + 1, len(SLOPES) - 1)])
    for _ in range(12):
        mid = (lo + hi) / 2
        sig = 0.5 * (1 + np.tanh(np.exp(mid)[:, None] * d / 2))
        rising = (d * (passes - n * sig)).sum(-1) > 0
        lo, hi = np.where(rising, mid, lo), np.where(rising, hi, mid)
    return np.maximum(ll.max(1), _loglik(np.exp((lo + hi) / 2), d, passes, n))


def _constant(passes: float, n: float, p: float) -> float:
    """Log-likelihood of a constant fraction p (0 log 0 = 0)."""
    return sum(x * math.log(q) for x, q in ((passes, p), (n - passes, 1 - p)) if x > 0)


def maximise(f, log_c: np.ndarray, values: Optional[np.ndarray] = None) -> tuple[float, float]:
    """The maximum of ``f`` over log c and where it is: the best grid point (``values``: f on the
    grid, if known), then two rounds of 16-way subdivision between its neighbours."""
    vals = f(log_c) if values is None else values
    j = int(vals.argmax())
    a, b, best, at = log_c[max(j - 1, 0)], log_c[min(j + 1, len(log_c) - 1)], float(vals[j]), float(log_c[j])
    for _ in range(2):
        pts = np.linspace(a, b, 17)
        val = f(pts)
        i = int(val.argmax())
        if val[i] > best:
            best, at = float(val[i]), float(pts[i])
        a, b = pts[max(i - 1, 0)], pts[min(i + 1, 16)]
    return best, at


def _edge(inside: float, outside: float, cut: float, data) -> float:
    """Where the profile crosses ``cut`` between an inside and an outside log c: 16-way
    subdivision until the two are 1e-3 apart in log depth (0.1% of the depth)."""
    while abs(outside - inside) > 1e-3:
        pts = np.linspace(inside, outside, 17)
        ok = profile_loglik(*data, pts) >= cut
        j = int(np.argmin(ok)) if not ok.all() else len(pts) - 1  # first point outside
        inside, outside = pts[j - 1], pts[j]
    return float(inside)


def _end(edge: float, direction: float, cut: float, far: float, data) -> Optional[float]:
    """The interval's end beyond the grid's ``edge`` (still inside the cut), walking outward:
    None when the far limit ``far`` of the profile is inside the cut (truly open)."""
    if far >= cut:
        return None
    inside, step = edge, 0.5
    for _ in range(FAR):
        outside = inside + direction * step
        if profile_loglik(*data, np.array([outside]))[0] < cut:
            return math.exp(_edge(inside, outside, cut, data))
        inside, step = outside, 2 * step
    return None


def separated(depths, trained) -> Optional[tuple[float, float]]:
    """The (deepest pass, shallowest failure) when every pass lies below every failure."""
    passed = [k for k, y in zip(depths, trained) if y]
    failed = [k for k, y in zip(depths, trained) if not y]
    if passed and failed and max(passed) < min(failed):
        return float(max(passed)), float(min(failed))
    return None


def half_trainable_depth(depths: list[float], trained: list[bool], grid: int = 100,
                         level: float = LEVEL) -> Crossing:
    """Pool every trial (one depth and verdict each) into the 50% depth and its LR interval
    (``level``: the nominal level of the cut, LEVEL unless asked)."""
    cut_dev = cut_deviance(level)
    k = np.asarray(depths, dtype=float)
    y = np.asarray(trained, dtype=float)
    if len(k) == 0 or y.min() == y.max():
        if len(k) and y.min() == 1:
            return Crossing(None, float(k.max()), None, level=level)  # all trained: the limit lies above
        return Crossing(None, None, float(k.min()) if len(k) else None, level=level)
    uniq, where = np.unique(k, return_inverse=True)
    data = (np.log(uniq), np.bincount(where, weights=y), np.bincount(where).astype(float))
    lo, hi = np.log(k.min()) - 0.5, np.log(k.max()) + 0.5
    mids = (data[0][1:] + data[0][:-1]) / 2
    log_c = np.unique(np.concatenate([np.linspace(lo, hi, grid), data[0], mids]))
    ll = profile_loglik(*data, log_c)
    peak, at = maximise(lambda c: profile_loglik(*data, c), log_c, ll)
    cut = peak - cut_dev / 2
    inside = np.flatnonzero(ll >= cut)
    first, last = inside.min(), inside.max()
    passes, n = float(y.sum()), float(len(y))
    if first > 0:
        low = math.exp(_edge(log_c[first], log_c[first - 1], cut, data))
    else:
        low = _end(log_c[0], -1.0, cut, _constant(passes, n, min(passes / n, 0.5)), data)
    if last < len(log_c) - 1:
        high = math.exp(_edge(log_c[last], log_c[last + 1], cut, data))
    else:
        high = _end(log_c[-1], 1.0, cut, _constant(passes, n, max(passes / n, 0.5)), data)
    pair = separated(depths, trained)
    if pair is not None:  # no point estimate; the interval holds at least the pair
        low = min(low, pair[0]) if low is not None else None
        high = max(high, pair[1]) if high is not None else None
        return Crossing(None, low, high, bracket=pair, level=level)
    return Crossing(float(np.exp(at)), low, high, level=level)
