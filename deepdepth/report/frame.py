"""A sweep as a pandas DataFrame: one row per trial, or one per combination with its limit.

``read_sweep(sweep_dir)`` gives every trial with its combination's settings already joined
(model, variant fields, lr, protocol, epochs, ...), so ``df.groupby(["model", "k"]).trainable.mean()``
needs no join; ``read_sweep(sweep_dir, level="combinations")`` gives each combination's k* and
its measured limit (k50 and interval) exactly as the report computes them (``confidence_table``).
Names as in the report: ``test_err``/``train_err`` are a trial's final-epoch errors.
pandas is an optional extra: ``pip install 'deepdepth[pandas]'``.
"""
from __future__ import annotations

from typing import Any

from .load import Combination, Trial, load_frontier, load_sweep
from .settings import VARIANT_FIELDS, variant_of
from .stats import Confidence, confidence_table

LEVELS = ("trials", "combinations")
TRIAL_FIELDS = ("k", "seed", "trainable", "diverged", "test_err", "train_err", "status", "shared_from",
                "error", "device", "job", "job_seconds")


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError("read_sweep needs pandas, an optional extra: pip install 'deepdepth[pandas]' "
                          "(or pip install pandas)") from None
    return pandas


def read_sweep(sweep_dir, level: str = "trials"):
    """The sweep in ``sweep_dir`` (a bisect sweep's frontier.json, or a plain multirun's job
    folders) as a DataFrame.

    ``level="trials"``: one row per trial (one seed at one depth): ``combo``, ``model``, ``label``,
    every setting of its combination (lr, protocol, epochs, train_samples, ..., and what the sweep
    overrode), the variant's ``activation``/``norm``/``residual``/``init``/``branch_gain`` (its
    model.* overrides applied), then ``k``, ``seed``, ``trainable`` (the verdict; None: none),
    ``diverged``, ``test_err``, ``train_err`` (final epoch), ``status``, ``device``, ``job``, ...
    ``level="combinations"``: one row per combination: the same settings, ``k_star`` (the search's,
    with ``censored``: a lower bound), ``limit_kind`` ('k50', 'above', 'below', 'none'), ``k50`` and
    its interval at the report's level (``deepdepth.science.confidence.LEVEL``) ``k50_low``/``k50_high`` (for 'above'/'below' the bound, k50 empty), ``limit``
    (as the report prints it), ``trials`` and ``crashed``.

    >>> df = read_sweep("results/cpu_study")                                     # doctest: +SKIP
    >>> df.groupby(["model", "k"]).trainable.mean()                              # doctest: +SKIP
    >>> read_sweep("results/cpu_study", level="combinations")[["model", "k50"]]  # doctest: +SKIP
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    pd = _pandas()
    trials = load_sweep(sweep_dir)
    frontier = load_frontier(sweep_dir, trials)
    if level == "trials":
        by_combo = {c.combo: _settings_row(c) for c in frontier}
        return pd.DataFrame([{**by_combo.get(t.combo, {"combo": t.combo}), **_trial_row(t)} for t in trials])
    return pd.DataFrame([_combination_row(row) for row in confidence_table(frontier, trials)])


def _settings_row(c: Combination) -> dict[str, Any]:
    """The combination's identity and settings; the variant's fields as trained (model.* applied)."""
    row = {"combo": c.combo, "model": c.model, "label": c.label}
    row.update({k: v for k, v in c.settings.items()
                if not (k.startswith("model.") and k[len("model."):] in VARIANT_FIELDS)})
    variant = variant_of(c.model, c.settings)
    for key in VARIANT_FIELDS:
        row[key] = (variant.get(key) if isinstance(variant, dict) else getattr(variant, key, None))
    return row


def _trial_row(t: Trial) -> dict[str, Any]:
    return {key: getattr(t, key) for key in TRIAL_FIELDS}


def _combination_row(row: Confidence) -> dict[str, Any]:
    c, lim = row.combination, row.limit
    low, high = lim.bounds
    return {**_settings_row(c), "k_star": row.k_star_shown, "censored": c.censored, "done": c.done,
            "upper": c.upper, "seeds": c.seeds, "limit_kind": lim.kind,
            "k50": lim.value if lim.kind == "k50" else None, "k50_low": low, "k50_high": high,
            "slope": lim.slope, "limit": str(lim), "trials": row.trials, "crashed": row.crashed}
