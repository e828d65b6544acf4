"""Mean-field signal propagation (Schoenholz et al. 2017; Xiao et al. 2018) for the plain CNNs.

Predicts, from a variant's activation and initialisation alone, how deep it can be and still
train: the fixed point q* of the pre-activation variance map, the slope chi_1 of the
correlation map at c=1, the depth scale xi and the trainable depth: the largest k over whose
convs (width-changing ones included) a perturbation decays by at most 6 e-folds, 6 xi for a
uniform net. Pure numpy (the
weight std comes from the init rules' records, ``deepdepth.models.init``, imported only when a variant
is named).

In a researcher's terms: ``predict("tanh", sigma_w2=1.0)`` (sigma_w^2 = 9 c_in Var(w) of every
conv, with ``sigma_b2`` for the biases) gives the same as the init spec form
``predict("tanh", "fan_in:1.0")``; ``stage("tanh", 0.7)`` is one uniform layer's fixed point,
phase and depth scale.

Gaussian integrals use Gauss-Legendre quadrature on [-10, 10] split at the activation's kink
(z = 0): Gauss-Hermite converges only like 1/n for ELU/ReLU, whose derivatives jump there.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from numpy.polynomial.legendre import leggauss

from .study import WIDTHS

CRITICAL_TOL = 1e-6  # |chi_1 - 1| below this is "critical": no finite depth scale
TRAINABLE_XI = 6.0   # Schoenholz et al.: trainable while depth <= ~6 xi
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


@dataclass
class Prediction:
    """The mean-field prediction for one network: per-stage ``Stage`` records, the effective depth
    scale ``xi``, and ``k_pred`` / ``k_star_pred``, the deepest k predicted trainable."""
    variant: str
    applicable: bool
    reason: str = ""
    stages: list[Stage] = field(default_factory=list)  # each stage's repeated conv (C -> C)
    width_change_sigma_w2: list[float] = field(default_factory=list)  # the convs 1->4, 4->8, 8->16
    offset: float = float("nan")   # e-folds of decay k-independent: decay(k) = k/3 sum_s 1/xi_s + offset
    xi: float = float("nan")       # effective depth scale of the repeated convs, in conv layers
    k_pred: float = float("nan")   # largest k with decay(k) <= 6 (inf: no limit predicted)
    orthogonal: bool = False       # (delta-)orthogonal kernels: an isometry chi_1 does not see

    def decay(self, k: int) -> float:
        """Predicted e-folds a perturbation (or gradient) shrinks by across DepthNet(k)."""
        return k / self.xi + self.offset

    @property
    def k_star_pred(self) -> float:
        """k_pred rounded down to a depth the net can have (a multiple of 3; 0: not even k=3)."""
        return self.k_pred if not math.isfinite(self.k_pred) else 3 * math.floor(self.k_pred / 3)


def predict(activation: str, init: str | None = None, norm: bool = False, residual: bool = False,
            branch_gain: bool = False, name: str = "", *, sigma_w2: float | None = None,
            sigma_b2: float = 0.0, widths=WIDTHS) -> Prediction:
    """Mean-field prediction for one variant, conv by conv: from its init spec, or from sigma_w^2.

    ``init``: a conv init spec (``fan_in:0.7``, ``naive``, ...), as the variants name theirs; or
    instead ``sigma_w2``: every conv's sigma_w^2 = 9 c_in Var(w) (the same at every width, as a
    fan-in rule gives: ``sigma_w2=g**2`` is ``init="fan_in:g"``). ``sigma_b2``: the biases'
    variance (the package's nets start with zero biases: 0, the default).

    >>> predict("tanh", sigma_w2=0.49).k_star_pred == predict("tanh", "fan_in:0.7").k_star_pred
    True
    >>> predict("tanh", sigma_w2=1.0).k_pred          # critical: no limit predicted
    inf

    Mean field is an infinite-width theory: ``widths`` (channels per stage) enter only through
    each conv's sigma_w^2, so under a fan-in init (sigma_w^2 = gain^2 at any width) the
    prediction is the same at every width; a naive init's sigma_w^2 grows with the channels.

    Conv l of DepthNet(k) has sigma_w,l^2 = 9 c_in sigma^2 (sigma: the init rule's std, gain
    included). Stage s has one width-changing conv (c_in -> C) then k/3 - 1 convs C -> C at
    sigma_s^2 with depth scale xi_s (the fixed point of their map, ``stage``). Each conv after the
    first maps the previous conv's pre-activations and multiplies a perturbation by chi_l =
    sigma_w,l^2 E[phi'^2]; a width-changing conv's chi is its stage's times sigma_w,l^2 / sigma_s^2
    (exact in the ordered phase, where q* = 0). The first conv sees the image itself, linearly:
    it sets q but multiplies nothing. So the total decay over the k - 1 maps is
    decay(k) = (k/3) sum_s 1/xi_s - 1/xi_1 + sum_{s=2,3} ln(sigma_s^2 / sigma_w,first(s)^2), and the
    net is predicted trainable while decay(k) <= 6 (Schoenholz et al.: depth <= 6 xi for a
    uniform net). Left out: the 2x2 pooling and the classifier.
    """
    if (init is None) == (sigma_w2 is None):
        raise ValueError(f"give either init (a spec such as 'fan_in:0.7') or sigma_w2, got init={init!r}, "
                         f"sigma_w2={sigma_w2!r}")
    if sigma_w2 is not None and not (sigma_w2 > 0 and sigma_b2 >= 0):
        raise ValueError(f"sigma_w2 must be positive and sigma_b2 non-negative, got sigma_w2={sigma_w2!r}, "
                         f"sigma_b2={sigma_b2!r}")
    if norm:
        return Prediction(name, False, "BatchNorm renormalises every layer: no variance map to iterate")

    if branch_gain:
        return Prediction(name, False, "SkipInit: every residual branch starts multiplied by 0, so the "
                                       "net starts as the identity: no variance map, no depth scale")
    if sigma_w2 is not None:
        rule = None
        conv_sigma_w2 = lambda c_in, c_out: sigma_w2  # noqa: E731
    else:
        from .models.init import conv_sigma, parse_init  # torch-backed records: imported only when used
        try:
            rule, _ = parse_init(init)
        except ValueError:
            return Prediction(name, False, f"no mean-field weight variance for init {init!r}")
        conv_sigma_w2 = lambda c_in, c_out: 9 * c_in * conv_sigma(init, c_in, c_out) ** 2  # noqa: E731
    if residual and rule is not None and rule.branch_scale is not None:
        return Prediction(name, False, "Fixup: branches scaled by L^-1/2 keep the variance's growth "
                                       "bounded, but the skip still leaves no fixed point to iterate")
    if residual:
        return Prediction(name, False, "residual: the skip adds its input, so the variance grows "
                                       "with depth and has no fixed point")
    widths = tuple(widths)
    stages = [stage(activation, conv_sigma_w2(c, c), sigma_b2) for c in widths]
    first = [conv_sigma_w2(c_in, c) for c_in, c in zip((1,) + widths[:-1], widths)]
    rate = sum(1.0 / s.xi for s in stages)  # per-layer decay summed over stages; 1/inf = 0
    offset = -1.0 / stages[0].xi + sum(math.log(s.sigma_w2 / f) for s, f in zip(stages[1:], first[1:]))
    xi = len(stages) / rate if rate > 0 else math.inf
    if rate > 0:
        k_pred = max(0.0, (TRAINABLE_XI - offset) * xi)
    else:
        k_pred = math.inf if offset <= TRAINABLE_XI else 0.0
    return Prediction(name, True, "", stages, first, offset, xi, k_pred, bool(rule and rule.orthogonal))


def _field(variant, key: str, default=None):
    """A field of a ``Variant`` or of a dict with the same keys."""
    return variant.get(key, default) if isinstance(variant, dict) else getattr(variant, key, default)


def predict_variant(name: str, variant) -> Prediction:
    """``variant``: anything with activation/norm/residual/init (a ``Variant`` or a dict).

    >>> from deepdepth.models import VARIANTS
    >>> predict_variant("cnn_tanh_newinit", VARIANTS["cnn_tanh_newinit"]).applicable
    True
    """
    get = lambda key, default=None: _field(variant, key, default)  # noqa: E731
    return predict(get("activation"), get("init"), bool(get("norm", False)), bool(get("residual", False)),
                   bool(get("branch_gain", False)), name=name, widths=get("widths") or WIDTHS)


def _fmt(x: float, digits: int = 3) -> str:
    return "inf" if x == math.inf else "-" if x is None or x != x else f"{x:.{digits}g}"


def mean_field_table(variants=None, measured: dict | None = None) -> list[dict]:
    """One row per variant (``variants``: name -> Variant; default all of ``VARIANTS``); ``measured``
    maps a name to its measured k* and fills the column next to the prediction.

    >>> rows = mean_field_table(measured={"cnn_tanh": 3})
    >>> next(r for r in rows if r["variant"] == "cnn_tanh")["k_measured"]
    3
    """
    if variants is None:
        from .models import VARIANTS as variants
    rows = []
    for name, v in variants.items():
        p = predict_variant(name, v)
        row = {"variant": name, "applicable": p.applicable, "k_pred": p.k_star_pred, "xi": p.xi,
               "k_measured": (measured or {}).get(name), "stages": [asdict(s) for s in p.stages],
               "width_change_sigma_w2": p.width_change_sigma_w2, "offset": p.offset}
        if p.applicable:
            phases = {s.phase for s in p.stages}
            row["note"] = ("critical: mean field predicts no depth limit" if phases == {"critical"}
                           else "/".join(sorted(phases)))
            if p.orthogonal:  # same chi_1 as Gaussian, better spectrum
                row["note"] += ("; orthogonal kernels add dynamical isometry (all Jacobian singular values"
                                " near 1), which chi_1, a mean over them, does not see")
        else:
            row["note"] = "not applicable: " + p.reason
        rows.append(row)
    return rows


def mean_field_markdown(rows: list[dict] | None = None) -> str:
    """The table as markdown; per stage (widths 4, 8, 16): sigma_w^2 of the repeated and of the
    width-changing conv, q*, chi_1; the depth scale xi, the k-independent decay and the prediction.

    >>> print(mean_field_markdown())   # every variant of conf/model   # doctest: +SKIP
    """
    rows = mean_field_table() if rows is None else rows
    lines = ["| variant | sigma_w^2 per stage | sigma_w^2 width-changing convs | q* | chi_1 | xi (layers) | "
             "decay offset (e-folds) | predicted k* (decay <= 6) | measured k* | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        st = r["stages"]
        per = lambda key: " / ".join(_fmt(s[key]) for s in st) if st else "-"
        first = " / ".join(_fmt(x) for x in r.get("width_change_sigma_w2") or []) or "-"
        lines.append(f"| {r['variant']} | {per('sigma_w2')} | {first} | {per('q_star')} | {per('chi_1')} | "
                     f"{_fmt(r['xi']) if st else '-'} | {_fmt(r.get('offset')) if st else '-'} | "
                     f"{_fmt(r['k_pred']) if st else '-'} | "
                     f"{'-' if r['k_measured'] is None else r['k_measured']} | {r['note']} |")
    return "\n".join(lines) + "\n"
