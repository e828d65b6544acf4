"""The prediction for a whole DepthNet: the decay over its convs, stage by stage, and the depth
where it reaches 6 e-folds."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..study import WIDTHS
from .maps import TRAINABLE_XI, Stage, stage

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
        from ..models.init import conv_sigma, parse_init  # torch-backed records: imported only when used
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
