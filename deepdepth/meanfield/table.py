"""Mean field's table for the report: one row per variant, as data and as markdown."""
from __future__ import annotations

import math
from dataclasses import asdict

from .network import predict_variant

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
        from ..models import VARIANTS as variants
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
