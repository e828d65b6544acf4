"""The named variants of the study, read from their one definition: ``conf/model/<name>.yaml``.

Why the YAML files are the source (and not a Python registry that generates them): they are what
Hydra composes (``model=resnet``) and what a user reads and overrides (``model.init=fan_in:0.7``),
they carry each variant's citation, and they need no generation step to keep in sync. The Python
side only reads them, so adding a variant that recombines existing options is one new YAML file
(plus its test); tests and tools take their lists from ``VARIANTS``.
"""
from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..study import WIDTHS
from .blocks import ACTIVATIONS, check_widths
from .init import check_init


def conf_dir() -> Path:
    """The installed config folder: the ``deepdepth.conf`` package where the wheel ships one,
    otherwise the source checkout's ``conf/``. The one place that locates it."""
    spec = importlib.util.find_spec("deepdepth.conf")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "conf"


@dataclass(frozen=True)
class Variant:
    """One conf/model file: activation, BatchNorm, residual skips, conv init and SkipInit's branch gain."""
    activation: str
    norm: bool
    residual: bool
    init: str
    branch_gain: bool = False
    widths: tuple = WIDTHS  # channels per stage


def read_variant(path: Path) -> Variant:
    """One ``conf/model`` file as a ``Variant``; ValueError naming the file for a key or value it
    does not know (``name`` must equal the file's stem)."""
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    if data.pop("name", None) != path.stem:
        raise ValueError(f"{path}: 'name' must be {path.stem!r}")
    known = {f.name for f in fields(Variant)}
    if set(data) - known or not {"activation", "norm", "residual", "init"} <= set(data):
        raise ValueError(f"{path}: keys must be name and {sorted(known)} (branch_gain, widths optional), got {sorted(data)}")
    if "widths" in data:
        try:
            data["widths"] = check_widths(data["widths"])
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    variant = Variant(**data)
    if not all(isinstance(getattr(variant, key), bool) for key in ("norm", "residual", "branch_gain")):
        raise ValueError(f"{path}: norm, residual and branch_gain must be true or false")
    if variant.activation not in ACTIVATIONS:
        raise ValueError(f"{path}: unknown activation {variant.activation!r}")
    check_init(variant.init)
    return variant


def load_variants(folder: Path | None = None) -> dict[str, Variant]:
    """name -> Variant for every ``*.yaml`` in ``folder`` (default: the model group of ``conf_dir()``)."""
    folder = conf_dir() / "model" if folder is None else Path(folder)
    return {path.stem: read_variant(path) for path in sorted(folder.glob("*.yaml"))}


VARIANTS: dict[str, Variant] = load_variants()


def variant_kwargs(name: str) -> dict:
    """The DepthNet keyword arguments of a named variant."""
    if name not in VARIANTS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(VARIANTS)}")
    return asdict(VARIANTS[name])
