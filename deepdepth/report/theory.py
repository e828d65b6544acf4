"""Mean-field predictions per combination, from the network it trained: the variant with its
model.* overrides (``model.init=fan_in:0.7`` scales sigma by 0.7), through deepdepth.meanfield."""
from __future__ import annotations

from typing import Optional

from .settings import variant_of
from .stats import Confidence, fmt_k


def mean_field_rows(conf: list[Confidence], variants: Optional[dict] = None) -> dict[int, dict]:
    """Combination index -> ``meanfield.mean_field_table`` row (named by the combination's label,
    the search's k* beside the prediction); combinations with no known network are left out.
    ``variants``: name -> Variant (default ``models.VARIANTS``)."""
    from ..meanfield import mean_field_table
    out = {}
    for r in conf:
        c = r.combination
        network = variant_of(c.model, c.settings, variants)
        if network is None:
            continue
        name = c.label or c.model
        (row,) = mean_field_table({name: network}, measured={name: r.k_star_str})
        out[c.combo] = row
    return out


def prediction_cells(row: Optional[dict]) -> tuple[str, str]:
    """(predicted k*, note) for the ranking table."""
    if row is None:
        return "—", "no mean-field model for this variant"
    if not row["applicable"]:
        return "n/a", row["note"]
    return fmt_k(row["k_pred"]), "applies: " + row["note"]
