"""How sure is a depth limit? Binomial intervals per depth and a pooled estimate of the depth
at which half the seeds train, with a likelihood-ratio interval. Pure numpy.

The pooled model is p(k) = sigmoid(b * (log c - log k)): c is the 50% depth, b >= 0 the
sharpness. Bisection data are often perfectly separated (every seed trains below a depth and
none above), where the maximum-likelihood slope is infinite; profiling the likelihood over b
for each candidate c still gives a finite, honest interval for c.

Fast enough to refit after every refinement round (deepdepth.search.refine): trials are pooled
into counts per depth, candidate values of c are a coarse grid plus every probed depth and the
midpoints between neighbouring depths (where a separated maximum lies), and each interval end
is then located between its grid neighbours by two rounds of subdivision. For each c the
likelihood is concave in b, so the slope is found by bisecting its derivative (not a fixed grid).

``level`` sets the likelihood-ratio cut. The nominal 95% covers about 95% on a fixed design with
~10 seeds per depth, but on bisection data (3 seeds per depth, depths chosen by the verdicts) and
after a stop at the first narrow interval only about 90% (tests/test_refine.py); Refine therefore
cuts at 97%.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CHI2_95 = 3.841458820694124  # 95% quantile of chi-square with one degree of freedom
SLOPES = np.concatenate([[0.0], np.geomspace(0.05, 500.0, 21)])  # coarse slopes, refined per c


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
    """The depth where half the seeds train: estimate and 95% interval (None: unbounded side)."""
    k50: float | None
    low: float | None
    high: float | None


def _loglik(b: np.ndarray, d: np.ndarray, passes: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Log-likelihood of passes of n per depth at slope b, d = log c - log k (broadcast);
    log sigmoid(-z) = log sigmoid(z) - z leaves one logaddexp per term."""
    z = b[..., None] * d
    return -(n * np.logaddexp(0, -z) + (n - passes) * z).sum(-1)


def _profile_loglik(log_k: np.ndarray, passes: np.ndarray, n: np.ndarray, log_c: np.ndarray) -> np.ndarray:
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


def _peak(log_c: np.ndarray, ll: np.ndarray, data) -> tuple[float, float]:
    """The profile's maximum and where it is: between the best grid point's neighbours, two
    rounds of 16-way subdivision."""
    j = int(ll.argmax())
    a, b, best, at = log_c[max(j - 1, 0)], log_c[min(j + 1, len(log_c) - 1)], ll[j], log_c[j]
    for _ in range(2):
        pts = np.linspace(a, b, 17)
        val = _profile_loglik(*data, pts)
        i = int(val.argmax())
        if val[i] > best:
            best, at = float(val[i]), float(pts[i])
        a, b = pts[max(i - 1, 0)], pts[min(i + 1, 16)]
    return best, at


def _edge(inside: float, outside: float, cut: float, data) -> float:
    """Where the profile crosses ``cut`` between an inside and an outside log c (two rounds of
    16-way subdivision: 1/289 of the grid step)."""
    for _ in range(2):
        pts = np.linspace(inside, outside, 17)
        ok = _profile_loglik(*data, pts) >= cut
        j = int(np.argmin(ok)) if not ok.all() else len(pts) - 1  # first point outside
        inside, outside = pts[j - 1], pts[j]
    return float(inside)


def half_trainable_depth(depths: list[float], trained: list[bool], grid: int = 100,
                         level: float = 0.95) -> Crossing:
    """Pool every trial (one depth and verdict each) into the 50% depth and its LR interval
    (``level``: its nominal coverage, 95% unless asked)."""
    k = np.asarray(depths, dtype=float)
    y = np.asarray(trained, dtype=float)
    if len(k) == 0 or y.min() == y.max():
        if len(k) and y.min() == 1:
            return Crossing(None, float(k.max()), None)  # all trained: the limit lies above
        return Crossing(None, None, float(k.min()) if len(k) else None)
    uniq, where = np.unique(k, return_inverse=True)
    data = (np.log(uniq), np.bincount(where, weights=y), np.bincount(where).astype(float))
    lo, hi = np.log(k.min()) - 0.5, np.log(k.max()) + 0.5
    mids = (data[0][1:] + data[0][:-1]) / 2
    log_c = np.unique(np.concatenate([np.linspace(lo, hi, grid), data[0], mids]))
    ll = _profile_loglik(*data, log_c)
    peak, at = _peak(log_c, ll, data)
    cut = peak - (CHI2_95 if level == 0.95 else NormalDist().inv_cdf((1 + level) / 2) ** 2) / 2
    inside = np.flatnonzero(ll >= cut)
    flat = log_c[ll >= ll.max() - 1e-9]  # separated data: a plateau, estimate its middle
    estimate = float(np.exp((flat.min() + flat.max()) / 2 if len(flat) > 1 else at))
    first, last = inside.min(), inside.max()
    low = None if first == 0 else math.exp(_edge(log_c[first], log_c[first - 1], cut, data))
    high = None if last == len(log_c) - 1 else math.exp(_edge(log_c[last], log_c[last + 1], cut, data))
    return Crossing(estimate, low, high)
