"""The measured limits against the original study's single-seed figures, only where a combination
was trained under the reference's settings; what this sweep itself saw at the reference's depths.
Pure."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..science import reference as ref
from .settings import differences, protocol_caveat
from .stats import Confidence, DepthPoint

NO_SETTINGS = "no reference for these settings"


@dataclass
class Comparison:
    row: Confidence
    reference: Optional[ref.Reference]
    verdict: str   # inside / below (run deeper) / above (reference deeper) / no reference / NO_SETTINGS / no data
    reason: str
    caveat: str = ""      # the reference ran under another protocol (BatchNorm variants)
    this_sweep: str = ""  # what this sweep measured at the reference's k* and failed probe

    @property
    def cell(self) -> str:
        word = {"below": "no: run deeper", "above": "no: reference deeper"}.get(self.verdict, self.verdict)
        return word + (" (other protocol)" if self.caveat else "")


def reference_verdict(ref_k: int, low: Optional[float], high: Optional[float], step: int = ref.STEP,
                      censored: bool = False) -> str:
    """Is the reference k* inside the measured range [low, high] (None: open side)?

    The reference k* is the last trainable depth while the 50% depth lies between k* and the
    failed probe k* + step, so the range is widened to [low - step, high]. A censored reference
    (every probe up to its bound trained) is only a lower limit, consistent with any range
    reaching k*. Returns "inside", "below" (this run trains deeper) or "above" (the reference
    trained deeper)."""
    lo = -math.inf if low is None else low - step
    hi = math.inf if high is None else high
    if censored:
        return "inside" if hi >= ref_k else "above"
    return "below" if ref_k < lo else "above" if ref_k > hi else "inside"


def compare_reference(conf: list[Confidence], reference: Optional[dict] = None) -> list[Comparison]:
    """One Comparison per confidence row (``reference``: variant -> Reference, default the original study's)."""
    reference = ref.REFERENCE if reference is None else reference
    return [_compare(r, reference.get(r.variant)) for r in conf]


def _compare(r: Confidence, reference: Optional[ref.Reference]) -> Comparison:
    if reference is None:
        return Comparison(r, None, "no reference", "not in the original study")
    seen = _this_sweep(r.depths, reference)
    other = differences(r.variant, r.combination.settings)
    if other:
        return Comparison(r, reference, NO_SETTINGS, "trained under other settings than the reference's: "
                          + ", ".join(other), this_sweep=seen)
    caveat = protocol_caveat(reference, r.combination.protocol)
    if r.limit.kind == "none":
        return Comparison(r, reference, "no data", "no trial with a verdict", caveat, seen)
    low, high = r.limit.bounds
    verdict = reference_verdict(reference.k_star, low, high, ref.STEP, reference.censored)
    shown = f"reference k* = {reference.k_star} ({reference.bracket}; one seed per probe)"
    measured, upper = str(r.limit), r.combination.upper
    if verdict == "inside":
        reason = f"{shown} is consistent with {measured}"
        if high is None and upper is not None and upper < reference.k_star:
            reason += f" (open-ended: this run's search stopped at k={upper})"
    elif verdict == "below":
        reason = f"{shown} is below {measured}: this run trains deeper"
    else:
        reason = f"{shown} is above {measured}: the reference trained deeper"
        if upper is not None and upper < reference.k_star:
            reason += f" (this run searched only up to k={upper})"
    return Comparison(r, reference, verdict, reason, caveat, seen)


def _this_sweep(depths: list[DepthPoint], reference: ref.Reference) -> str:
    """'this sweep: k=12 trained 3/3, k=15 0/3' at the reference's k* and failed probe."""
    at = {d.k: d for d in depths}
    parts = [f"k={k} trained {at[k].passes}/{at[k].n}" for k in (reference.k_star, reference.failed) if k in at]
    return "this sweep: " + ", ".join(parts) if parts else ""


def verdict_lines(comparison: list[Comparison]) -> list[str]:
    """One line per variant: the verdict under each of its settings, what this sweep saw at the
    reference's depths, then the reference's own (attributed) note."""
    by_variant: dict[str, list[Comparison]] = {}
    for c in comparison:
        by_variant.setdefault(c.row.variant, []).append(c)
    lines = []
    for variant, rows in by_variant.items():
        several = len(rows) > 1
        parts = []
        for c in rows:
            text = (f"{c.row.combination.label}: " if several else "") + f"{c.verdict.upper()}, {c.reason}"
            text += f" (caveat: {c.caveat})" if c.caveat else ""
            parts.append(text + (f"; {c.this_sweep}" if c.this_sweep else ""))
        note = rows[0].reference.note if rows[0].reference else ""
        lines.append(f"- {variant}: " + "; ".join(parts) + (f". {note}." if note else "."))
    return lines


def like_for_like_lines(conf: list[Confidence]) -> list[str]:
    """For each variant with a one-idea baseline (reference.LIKE_FOR_LIKE): the two limits side by
    side within the same settings, or a line saying the baseline is missing from the sweep."""
    lines = []
    for r in conf:
        if r.variant not in ref.LIKE_FOR_LIKE:
            continue
        base, why = ref.LIKE_FOR_LIKE[r.variant]
        same = [b for b in conf if b.variant == base and _same_training(b, r)]
        if same:
            shown = "; ".join(f"{b.combination.label}: {b.limit}" for b in same)
            lines.append(f"- {r.combination.label} ({r.limit}) against its like-for-like baseline {base} ({why}): "
                         f"{shown}.")
        else:
            reference = ref.REFERENCE.get(base)
            known = f"; the original study's single-seed k* for it is {reference.k_star}" if reference else ""
            lines.append(f"- {r.combination.label} ({r.limit}): its like-for-like baseline {base} ({why}) is not "
                         f"in this sweep{known}, so a gain over any other baseline mixes two causes.")
    return lines


def _same_training(a: Confidence, b: Confidence) -> bool:
    keys = {k for k in (*a.combination.settings, *b.combination.settings) if not k.startswith("model.")}
    return all(str(a.combination.settings.get(k)) == str(b.combination.settings.get(k)) for k in keys)
