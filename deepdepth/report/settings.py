"""What each combination of a sweep was trained under, which of those settings vary (they become
columns and legend entries), and whether the original study's figures apply to it. Pure."""
from __future__ import annotations

import json
import math
from typing import Any, Iterable, Optional

from ..science import reference as ref
from ..study import MNIST_SIZES, PROTOCOL, RUNTIME_KEYS
from ..sweep.trials import unescape

# Override keys and the names their values are recorded under in result.json / history rows.
CANONICAL = {"optim.lr": "lr", "trainer.max_epochs": "epochs", "data.train_samples": "train_samples",
             "data.test_samples": "test_samples", "trainability.criterion": "criterion",
             "trainability.threshold": "threshold"}
DEFAULTS = PROTOCOL  # what a run used when neither an override nor its record says otherwise
RECORDED = tuple(DEFAULTS)  # the settings a trial record carries
FULL = {f"{split}_samples": n for split, n in MNIST_SIZES.items()}
# Keys that do not change what is measured: how a trial runs (``study.RUNTIME_KEYS``), where the
# data live, and what names or numbers a run rather than setting it.
NEUTRAL = {*RUNTIME_KEYS, "model", "experiment", "data.root", "seed", "replicas", "search"}
VARIANT_FIELDS = ("activation", "norm", "residual", "init", "branch_gain", "widths")


def value(x: Any) -> Any:
    """An override string or a recorded value as a comparable value: '1e-2' -> 0.01, 'null' -> None,
    'true' -> True, '3' -> 3; anything else unchanged."""
    if not isinstance(x, str):
        return x
    x = unescape(x)  # Hydra's escapes in a swept value: fan_in\:0.5 -> fan_in:0.5
    low = x.strip().lower()
    if low in ("null", "none", "~", ""):
        return None
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(low)
        except ValueError:
            pass
    return x.strip()


def show(x: Any) -> str:
    """A setting as a table cell: 0.01, 60000, fan_in:0.7, —."""
    if x is None:
        return "—"
    return f"{x:g}" if isinstance(x, float) else str(x)


def settings_of(params: dict, recorded: Iterable[dict] = ()) -> tuple[dict, frozenset]:
    """A combination's settings (canonical key -> value) from its override params (which win),
    then its trial records, then the package defaults; the second value names the keys that came
    from the defaults (not recorded anywhere)."""
    out: dict[str, Any] = {}
    for record in recorded:
        for key in RECORDED:
            # a null sample count is a record too: the whole of MNIST
            if key not in out and (record.get(key) is not None or (key in FULL and key in record)):
                out[key] = value(record[key])
    for key, raw in (params or {}).items():
        key = CANONICAL.get(key, key)
        if key != "model":  # neutral keys too: where they vary they tell the rows apart
            out[key] = value(raw)
    assumed = frozenset(k for k in DEFAULTS if k not in out)
    for key in assumed:
        out[key] = DEFAULTS[key]
    for key, full in FULL.items():
        if out.get(key) is None or out[key] >= full:
            out[key] = full
    return {k: out[k] for k in sorted(out, key=lambda k: (RECORDED.index(k) if k in RECORDED else len(RECORDED)))}, \
        assumed


def varying(all_settings: list[dict]) -> list[str]:
    """The keys whose values differ between combinations, in first-seen order."""
    keys = dict.fromkeys(k for s in all_settings for k in s)
    return [k for k in keys if len({show(s.get(k)) for s in all_settings}) > 1]


def label(model: str, settings: dict, keys: Iterable[str]) -> str:
    """'cnn_tanh_newinit model.init=fan_in:0.7': the variant and the given (varying) settings."""
    return " ".join([str(model)] + [f"{k}={show(settings.get(k))}" for k in keys])


def variant_of(model: str, settings: dict, known: Optional[dict] = None):
    """The variant a combination trained: the named one with its model.* overrides applied (a
    plain dict when the name is unknown but the overrides describe a network; None otherwise)."""
    if known is None:
        from ..models import VARIANTS as known
    overrides = {k[len("model."):]: widths_value(v) if k == "model.widths" else v for k, v in settings.items()
                 if k.startswith("model.") and k[len("model."):] in VARIANT_FIELDS}
    base = known.get(model)
    if base is None:
        return overrides if "activation" in overrides and "init" in overrides else None
    if not overrides:
        return base
    from dataclasses import replace
    return replace(base, **overrides)


def widths_value(x: Any) -> Any:
    """'[2,4,8]' (an override) or [2, 4, 8] (a record) as the tuple a Variant holds."""
    if isinstance(x, str):
        try:
            x = json.loads(x)
        except ValueError:
            return x
    return tuple(x) if isinstance(x, (list, tuple)) else x


def widths_text(widths) -> str:
    """(4, 8, 16) as an override writes it: '[4,8,16]'."""
    return "[" + ",".join(str(int(w)) for w in widths) + "]"


def network_default(model: str, key: str, known: Optional[dict] = None) -> Any:
    """What a combination without a ``model.*`` override trained for it: its variant's own value
    (widths as an override writes them), or None for an unknown variant."""
    base = variant_of(model, {}, known)
    field = key[len("model."):]
    value = base.get(field) if isinstance(base, dict) else getattr(base, field, None)
    return widths_text(value) if field == "widths" and value is not None else value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9)
    return show(a) == show(b)


def differences(model: str, settings: dict, known: Optional[dict] = None) -> list[str]:
    """Why the original study's figure for ``model`` does not apply to these settings:
    'lr=0.05 (reference 0.01)', ... ; empty when it applies (protocol is judged separately)."""
    out = []
    for key, x in settings.items():
        if key in NEUTRAL or key == "protocol":
            continue
        if key.startswith("model."):
            if variant_of(model, settings, known) != variant_of(model, {}, known):
                out.append(f"{key}={show(x)} (reference: the variant's own)")
        elif key not in ref.SETTINGS:
            out.append(f"{key}={show(x)} (not recorded for the reference)")
        elif not _same(x, ref.SETTINGS[key]):
            out.append(f"{key}={show(x)} (reference {show(ref.SETTINGS[key])})")
    return list(dict.fromkeys(out))


def protocol_caveat(reference, protocol: str) -> str:
    """'' when the protocols agree or do not matter (no BatchNorm), else the caveat to print."""
    if reference is None or reference.protocol is None or reference.protocol == protocol:
        return ""
    return f"the reference ran protocol={reference.protocol}, this row protocol={protocol}"
