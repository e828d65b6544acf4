"""How sure is a depth limit? Binomial intervals per depth and a pooled estimate of the depth
at which half the seeds train, with a likelihood-ratio interval. Pure numpy.

The pooled model is p(k) = sigmoid(b * (log c - log k)): c is the 50% depth, b >= 0 the
sharpness. Bisection data are often perfectly separated (every seed trains below a depth and
none above), where the maximum-likelihood slope is infinite; profiling the likelihood over b
for each candidate c still gives a finite, honest interval for c.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CHI2_95 = 3.841458820694124  # 95% quantile of chi-square with one degree of freedom


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


def _profile_loglik(log_k: np.ndarray, y: np.ndarray, log_c: np.ndarray) -> np.ndarray:
    slopes = np.concatenate([[0.0], np.geomspace(0.05, 500.0, 160)])
    z = slopes[None, :, None] * (log_c[:, None, None] - log_k[None, None, :])  # (C, B, N)
    ll = np.where(y[None, None, :] == 1, -np.logaddexp(0, -z), -np.logaddexp(0, z)).sum(-1)
    return ll.max(axis=1)


def half_trainable_depth(depths: list[float], trained: list[bool], grid: int = 600) -> Crossing:
    """Pool every trial (one depth and verdict each) into the 50% depth and its LR interval."""
    k = np.asarray(depths, dtype=float)
    y = np.asarray(trained, dtype=float)
    if len(k) == 0 or y.min() == y.max():
        if len(k) and y.min() == 1:
            return Crossing(None, float(k.max()), None)  # all trained: the limit lies above
        return Crossing(None, None, float(k.min()) if len(k) else None)
    lo, hi = np.log(k.min()) - 0.5, np.log(k.max()) + 0.5
    log_c = np.linspace(lo, hi, grid)
    ll = _profile_loglik(np.log(k), y, log_c)
    inside = log_c[2 * (ll.max() - ll) <= CHI2_95]
    best = log_c[ll >= ll.max() - 1e-9]
    estimate = float(np.exp((best.min() + best.max()) / 2))
    low = None if inside.min() <= lo + 1e-12 else float(np.exp(inside.min()))
    high = None if inside.max() >= hi - 1e-12 else float(np.exp(inside.max()))
    return Crossing(estimate, low, high)
