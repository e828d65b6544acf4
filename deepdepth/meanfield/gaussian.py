"""Gaussian integrals of the activations: Gauss-Legendre quadrature on [-10, 10] split at the
kink (z = 0), since Gauss-Hermite converges only like 1/n for ELU/ReLU, whose derivatives jump there."""
from __future__ import annotations

import math

import numpy as np
from numpy.polynomial.legendre import leggauss

QUADRATURE_NOISE = 1e-13  # below this a difference of Gaussian integrals is rounding
_X, _W = leggauss(80)
_Z = 10.0


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


ACTIVATIONS = {  # phi and phi'
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "elu": (_elu, lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0)))),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "linear": (lambda x: x, lambda x: np.ones_like(x)),
}


def _nodes(lo, hi, mean=0.0):
    """Legendre nodes on [lo, 0] and [0, hi] (0 clipped into [lo, hi]), weights times the N(mean, 1)
    density; lo, hi, mean may be arrays (one interval per row)."""
    lo, hi, mean = (np.asarray(a, float)[..., None] for a in (lo, hi, mean))
    cut = np.clip(0.0, lo, hi)
    parts = [((a + b) / 2 + (b - a) / 2 * _X, (b - a) / 2 * _W) for a, b in ((lo, cut), (cut, hi))]
    z = np.concatenate([p[0] for p in parts], -1)
    w = np.concatenate([p[1] for p in parts], -1) * np.exp(-(z - mean) ** 2 / 2) / math.sqrt(2 * math.pi)
    return z, w


_Z1, _W1 = _nodes(-_Z, _Z)


def gauss(f, q: float) -> float:
    """E[f(sqrt(q) z)], z ~ N(0, 1).

    >>> round(gauss(lambda x: x ** 2, 2.0), 6)
    2.0
    """
    return float(np.sum(_W1 * f(math.sqrt(q) * _Z1)))


def gauss2(f, g, q: float, c: float) -> float:
    """E[f(u1) g(u2)], (u1, u2) centred Gaussian, variances q, correlation c. Writing
    u2 = sqrt(q) s t with t ~ N(c z1 / s, 1), s = sqrt(1 - c^2), the inner integral over t is split
    at t = 0 where a kinked activation bends.

    >>> round(gauss2(lambda x: x, lambda x: x, 1.0, 0.5), 6)   # E[u1 u2] = q c
    0.5
    """
    s = math.sqrt(max(1.0 - c * c, 0.0))
    if s < 1e-12:
        return gauss(lambda x: f(x) * g(x), q)
    shift = c * _Z1 / s
    t, wt = _nodes(shift - _Z, shift + _Z, shift)
    inner = np.sum(wt * g(math.sqrt(q) * s * t), axis=1)
    return float(np.sum(_W1 * f(math.sqrt(q) * _Z1) * inner))
