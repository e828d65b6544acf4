"""The trainability phase diagram (Schoenholz et al. 2017): a sweep over the init scale
(``model.init=fan_in:g``, so sigma_w^2 = g^2 with sigma_b = 0) measured against mean-field
theory's depth scale xi, per sigma_w^2: 6 xi, the prediction from the package's own net
(``meanfield.predict``: the input conv maps nothing, width-changing convs), the measured k50.
Pure: numpy and the mean-field module, no matplotlib."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from ..meanfield import TRAINABLE_XI, Prediction, predict, stage
from .markdown import table
from ..study import WIDTHS
from .settings import label, variant_of, varying, widths_text, widths_value
from .stats import INTERVAL, Confidence

SAME = 1e-6  # relative: stages whose sigma_w^2 agree this closely make a uniform network


@dataclass
class PhasePoint:
    """One combination of a gain sweep: its place on the sigma_w^2 axis and the theory there."""
    row: Confidence
    family: str        # the panel it belongs to: variant, init rule, other varying settings
    activation: str
    init: str          # the init spec it trained with, e.g. 'fan_in:0.7'
    sigma_w2: float    # of every conv C -> C (uniform across the three stages)
    prediction: Prediction

    @property
    def final(self):
        return self.prediction.stages[-1]

    @property
    def xi(self) -> float:
        return self.prediction.xi

    @property
    def six_xi(self) -> float:
        return TRAINABLE_XI * self.xi

    @property
    def gradient_scale(self) -> Optional[float]:
        """1/ln chi_1: the layers over which gradients grow by e in the chaotic phase (None elsewhere)."""
        chi = self.final.chi_1
        return 1.0 / math.log(chi) if self.final.phase == "chaotic" and chi > 1 else None


@lru_cache(maxsize=512)
def _predict(*network) -> Prediction:
    """meanfield.predict, once per network (the figure and the table ask for the same ones)."""
    return predict(*network)


def _field(network, key: str):
    """A field of a ``Variant`` or of the plain dict ``variant_of`` returns for an unknown name."""
    return network.get(key) if isinstance(network, dict) else getattr(network, key, None)


def phase_points(conf: list[Confidence], variants: Optional[dict] = None) -> list[PhasePoint]:
    """Every combination that trained a uniform plain network (every repeated conv at one
    sigma_w^2, mean field applicable), with the family it belongs to."""
    others = [k for k in varying([r.combination.settings for r in conf]) if k != "model.init"]
    out = []
    for r in conf:
        c = r.combination
        network = variant_of(c.model, c.settings, variants)
        if network is None:
            continue
        activation, init = _field(network, "activation"), str(_field(network, "init"))
        p = _predict(activation, init, *(bool(_field(network, k)) for k in ("norm", "residual", "branch_gain")))
        scales = [s.sigma_w2 for s in p.stages]
        if not p.applicable or not scales or max(scales) - min(scales) > SAME * max(scales):
            continue
        family = label(c.model, c.settings, others) + f" ({activation}, {init.partition(':')[0]}:g)"
        out.append(PhasePoint(r, family, activation, init, scales[0], p))
    return out


def gain_sweep(conf: list[Confidence], variants: Optional[dict] = None) -> dict[str, list[PhasePoint]]:
    """Family -> its points by sigma_w^2, for the families swept over at least two init scales;
    {} when the sweep does not vary the init gain (no phase diagram then)."""
    families: dict[str, list[PhasePoint]] = {}
    for p in phase_points(conf, variants):
        families.setdefault(p.family, []).append(p)
    return {name: sorted(ps, key=lambda p: p.sigma_w2) for name, ps in families.items()
            if len({round(p.sigma_w2, 9) for p in ps}) >= 2}


def widths_of(p: PhasePoint) -> tuple:
    """The channels per stage a point's network had."""
    w = widths_value(p.row.combination.settings.get("model.widths"))
    return tuple(w) if isinstance(w, tuple) else WIDTHS


def width_sweep(conf: list[Confidence], variants: Optional[dict] = None) -> dict[float, list[PhasePoint]]:
    """sigma_w^2 -> its points at two or more widths, narrowest first (mean field is the same for
    all of them: an infinite-width theory); {} when the sweep does not vary the widths."""
    by: dict[float, list[PhasePoint]] = {}
    for p in phase_points(conf, variants):
        by.setdefault(round(p.sigma_w2, 9), []).append(p)
    return {s2: sorted(ps, key=widths_of) for s2, ps in sorted(by.items()) if len({widths_of(p) for p in ps}) >= 2}


def width_markdown(sweep: dict[float, list[PhasePoint]]) -> str:
    """Per sigma_w^2 and width: the measured k50 and k50 / 6 xi."""
    rows = [[f"{p.sigma_w2:.3g}", widths_text(widths_of(p)), num(p.six_xi),
             str(p.row.limit) + ("" if p.row.combination.done else " (unfinished)"), ratio_cell(p), str(p.row.trials)]
            for ps in sweep.values() for p in ps]
    return table(["sigma_w^2", "widths", "6 xi", f"measured k50 [{INTERVAL}]", "k50 / 6 xi", "trials"], rows)


def theory_curves(activation: str, sigma_w2) -> tuple[np.ndarray, np.ndarray]:
    """(6 xi, 6/ln chi_1 where chaotic else nan) over a grid of sigma_w^2, sigma_b = 0, for the
    uniform net (xi: the correlation depth scale; inf at criticality)."""
    pairs = [_scales(activation, float(s2)) for s2 in sigma_w2]
    return np.array([a for a, _ in pairs], float), np.array([b for _, b in pairs], float)


@lru_cache(maxsize=4096)
def _scales(activation: str, sigma_w2: float) -> tuple[float, float]:
    try:
        st = stage(activation, sigma_w2)
    except RuntimeError:  # no correlation fixed point found: leave a gap
        return math.nan, math.nan
    grows = st.phase == "chaotic" and st.chi_1 > 1
    return TRAINABLE_XI * st.xi, TRAINABLE_XI / math.log(st.chi_1) if grows else math.nan


def ratio_cell(p: PhasePoint) -> str:
    """The measured limit over 6 xi: '1.9 [1.5, 2.4]', '> 3.2', '—' where 6 xi is infinite."""
    lim, ref = p.row.limit, p.six_xi
    if not math.isfinite(ref) or ref <= 0 or lim.kind == "none":
        return "—"
    r = lambda x: "∞" if x is None else f"{x / ref:.2g}"  # noqa: E731
    if lim.kind == "k50" and lim.bracket:
        low = "0" if lim.low is None else r(lim.low)
        return f"{r(lim.bracket[0])}–{r(lim.bracket[1])} (bracket) [{low}, {r(lim.high)}]"
    if lim.kind == "k50":
        return f"{r(lim.value)} [{'0' if lim.low is None else r(lim.low)}, {r(lim.high)}]"
    return ("> " if lim.kind == "above" else "< ") + r(lim.value)


def num(x: Optional[float]) -> str:
    """A depth scale: three significant digits ('0.721', '26.9'), whole layers from 100, '∞', '—'."""
    if x is None or x != x:
        return "—"
    return "∞" if x == math.inf else f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


HEAD = ["sigma_w^2", "init", "phase", "xi (layers)", "6 xi", "mean-field k (decay <= 6 e-folds)",
        "6/ln chi_1 (gradient growth)", f"measured k50 [{INTERVAL}]", "k50 / 6 xi"]


def phase_rows(points: list[PhasePoint]) -> list[list[str]]:
    """One row per sigma_w^2, the columns of ``HEAD``."""
    rows = []
    for p in points:
        grad = p.gradient_scale
        rows.append([f"{p.sigma_w2:.3g}", p.init, p.final.phase, num(p.xi), num(p.six_xi),
                     num(p.prediction.k_pred), "—" if grad is None else num(TRAINABLE_XI * grad),
                     str(p.row.limit) + ("" if p.row.combination.done else " (unfinished)"), ratio_cell(p)])
    return rows


def phase_markdown(families: dict[str, list[PhasePoint]]) -> str:
    """One table per family (variant x init rule x other varying settings)."""
    parts = []
    for name, points in families.items():
        seeds = sorted({d.n for p in points for d in p.row.depths})
        count = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}" if seeds else ""
        parts += [f"**{name}**" + (f" ({count} seeds per probe)" if seeds else ""), "",
                  table(HEAD, phase_rows(points)), ""]
    return "\n".join(parts).rstrip()

