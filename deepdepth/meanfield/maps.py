"""The variance and correlation maps of one uniform layer: q*, chi_1, c*, the phase and the depth
scale xi (Schoenholz et al. 2017)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .gaussian import ACTIVATIONS, QUADRATURE_NOISE, gauss, gauss2

CRITICAL_TOL = 1e-6  # |chi_1 - 1| below this is "critical": no finite depth scale
TRAINABLE_XI = 6.0   # Schoenholz et al.: trainable while depth <= ~6 xi


def variance_map(q: float, activation: str, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    """q_{l+1} = sigma_w^2 E[phi(sqrt(q_l) z)^2] + sigma_b^2.

    >>> round(variance_map(1.0, "linear", 2.0), 6)   # a linear layer doubles the variance
    2.0
    """
    phi = ACTIVATIONS[activation][0]
    return sigma_w2 * gauss(lambda x: phi(x) ** 2, q) + sigma_b2


def fixed_point(activation: str, sigma_w2: float, sigma_b2: float = 0.0, q0: float = 1.0) -> float:
    """The limit of iterating the variance map from q0. The map is increasing in q, so iteration
    moves monotonically to the nearest fixed point in the direction of V(q0) - q0; we bracket that
    root on a geometric grid and bisect, which also finds q* = 0 (or inf) exactly, where plain
    iteration at criticality would crawl there polynomially. Returns 0.0 or math.inf at the ends.

    >>> fixed_point("tanh", 0.7)            # ordered, no bias: the variance dies out
    0.0
    >>> round(fixed_point("tanh", 2.0), 3)  # chaotic: a finite q*
    0.618
    """
    g = lambda q: variance_map(q, activation, sigma_w2, sigma_b2) - q
    g0 = g(q0)
    if g0 == 0:
        return q0
    step = 0.5 if g0 < 0 else 2.0
    prev = q0
    for _ in range(100):
        cur = prev * step
        if (g(cur) >= 0) if g0 < 0 else (g(cur) <= 0):
            lo, hi = sorted((prev, cur))
            for _ in range(200):
                mid = math.sqrt(lo * hi)
                if (g(mid) < 0) == (g(lo) < 0):
                    lo = mid
                else:
                    hi = mid
            return math.sqrt(lo * hi)
        prev = cur
    return 0.0 if g0 < 0 else math.inf


def chi_1(activation: str, sigma_w2: float, q_star: float) -> float:
    """sigma_w^2 E[phi'(sqrt(q*) z)^2]: the per-layer gain of small perturbations (and of gradients).

    >>> round(chi_1("tanh", 0.7, 0.0), 3)   # ordered: perturbations shrink by 0.7 a layer
    0.7
    """
    dphi = ACTIVATIONS[activation][1]
    q = min(max(q_star, 1e-30), 1e12)  # q* = 0: the limit q -> 0+ (ReLU's phi' jumps at 0)
    return sigma_w2 * gauss(lambda x: dphi(x) ** 2, q)


def correlation_fixed_point(activation: str, sigma_w2: float, q_star: float, sigma_b2: float = 0.0,
                            tol: float = 1e-12) -> tuple[float, float]:
    """(c*, chi_c): the correlation map's fixed point below 1, and sigma_w^2 E[phi'(u1) phi'(u2)] at c*.

    c = 1 is always a fixed point; in the chaotic phase (slope chi_1 > 1 there) the map, convex on
    [0, 1], crosses the diagonal once more below it. We bracket that root (just below 1 the map lies
    under the diagonal; at 0, or else at -1, on or above it) and bisect to ``tol``: iterating the map
    instead crawls near criticality (at sigma_w^2 = 1.05, tanh is still at c = 0.957 after 2,000
    steps). RuntimeError when there is no such root (not chaotic) or the bisection does not converge.

    >>> c, chi_c = correlation_fixed_point("tanh", 2.0, fixed_point("tanh", 2.0))
    >>> 0 < c < 1 and chi_c < 1
    True
    """
    phi, dphi = ACTIVATIONS[activation]
    gap = lambda c: (sigma_w2 * gauss2(phi, phi, q_star, c) + sigma_b2) / q_star - c  # noqa: E731
    hi = next((1.0 - 10.0 ** -e for e in range(2, 10) if gap(1.0 - 10.0 ** -e) < -QUADRATURE_NOISE), None)
    if hi is None:
        raise RuntimeError(f"{activation} at sigma_w^2={sigma_w2}, q*={q_star}: no correlation fixed point "
                           f"below 1 (the map stays above the diagonal: not chaotic)")
    lo = 0.0 if gap(0.0) >= 0 else -1.0
    for _ in range(200):
        if hi - lo < tol:
            break
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) >= 0 else (lo, mid)
    else:
        raise RuntimeError(f"correlation fixed point did not converge: bracket [{lo}, {hi}]")
    c = (lo + hi) / 2
    return c, sigma_w2 * gauss2(dphi, dphi, q_star, c)


@dataclass
class Stage:
    """One uniform stretch of layers at ``sigma_w2``: its fixed point, slope, phase and depth scale."""
    sigma_w2: float
    q_star: float
    chi_1: float
    phase: str          # ordered (chi_1 < 1), critical, chaotic (chi_1 > 1)
    c_star: float       # correlation fixed point (1 in the ordered phase)
    xi: float           # -1/ln chi_c*: equals -1/ln chi_1 when ordered; inf at criticality

    @property
    def growth(self) -> float:
        """Layers per e-fold of gradient growth, 1/ln chi_1, in the chaotic phase (inf elsewhere):
        the other depth scale that may bound training there, beside the correlation's xi."""
        return 1.0 / math.log(self.chi_1) if self.chi_1 > 1.0 + CRITICAL_TOL else math.inf


def stage(activation: str, sigma_w2: float, sigma_b2: float = 0.0) -> Stage:
    """Mean field of a deep stack of identical layers at (sigma_w^2, sigma_b^2): q*, chi_1, the
    phase (ordered chi_1 < 1, critical, chaotic chi_1 > 1), the correlation fixed point c* and the
    depth scale xi, in layers, over which a perturbation (or a gradient) decays by e.

    >>> s = stage("tanh", 0.7)
    >>> s.phase, round(s.chi_1, 3), round(s.xi, 2)   # xi = -1/ln 0.7
    ('ordered', 0.7, 2.8)
    >>> stage("tanh", 1.0).phase
    'critical'
    """
    q = fixed_point(activation, sigma_w2, sigma_b2)
    chi = chi_1(activation, sigma_w2, q)
    if abs(chi - 1.0) < CRITICAL_TOL:
        return Stage(sigma_w2, q, chi, "critical", 1.0, math.inf)
    if chi < 1.0:
        return Stage(sigma_w2, q, chi, "ordered", 1.0, -1.0 / math.log(chi) if chi > 0 else 0.0)
    if math.isinf(q):  # the variance itself explodes: use the gradient growth rate
        return Stage(sigma_w2, q, chi, "chaotic", float("nan"), 1.0 / math.log(chi))
    c, chi_c = correlation_fixed_point(activation, sigma_w2, q, sigma_b2)
    return Stage(sigma_w2, q, chi, "chaotic", c, -1.0 / math.log(chi_c) if chi_c < 1 else math.inf)
