"""Depth searches (pure Python): the original bisection, a cost-aware order, and the
``Search`` interface the sweeper drives. ``make_search`` builds one from config."""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Mapping

from .base import RULES, Bookkeeping, Search, combine
from .bisect import DepthSearch, split_points
from .gallop import GallopSearch
from .refine import Refine

SEARCHES: dict[str, type] = {"bisect": DepthSearch, "gallop": GallopSearch}


def search_class(spec: Any) -> tuple[type, dict]:
    """A search class and its extra arguments from a name (``gallop``), a dotted path, or a
    ``{_target_: ..., **kwargs}`` mapping (how ``hydra.sweeper.search`` swaps the algorithm)."""
    extra: dict = {}
    if isinstance(spec, Mapping):
        extra = {k: v for k, v in spec.items() if k != "_target_"}
        spec = spec.get("_target_")
    if isinstance(spec, str) and spec in SEARCHES:
        return SEARCHES[spec], extra
    if isinstance(spec, str) and "." in spec:
        module, _, name = spec.rpartition(".")
        try:
            return getattr(importlib.import_module(module), name), extra
        except (ImportError, AttributeError) as e:
            raise ValueError(f"search {spec!r} cannot be imported: {e}") from None
    raise ValueError(f"unknown search {spec!r}; choose one of {sorted(SEARCHES)} or give a _target_")


def make_search(spec: Any, **kwargs) -> Search:
    """Build a search, passing only the arguments its constructor takes (``hint`` is ignored
    by bisection, for instance)."""
    cls, extra = search_class(spec)
    params = inspect.signature(cls).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    merged = {**kwargs, **extra}
    return cls(**{k: v for k, v in merged.items() if takes_all or k in params})


__all__ = ["RULES", "SEARCHES", "Bookkeeping", "DepthSearch", "GallopSearch", "Refine", "Search", "combine",
           "make_search", "search_class", "split_points"]
