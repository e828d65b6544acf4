"""How the report's figures name and draw a row: file-name slugs, legend labels, colours and dashes."""
from __future__ import annotations

import re
from typing import Callable

from matplotlib import colormaps

from .stats import Confidence


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=:-]+", "_", s).replace(":", "-").strip("_")


def legend_label(r: Confidence) -> str:
    c = r.combination
    marked = c.protocol != "correct" and "protocol=" not in c.label
    return c.label + (f" (protocol={c.protocol})" if marked else "") + ("" if c.done else " (unfinished)")


def style(conf: list[Confidence]) -> Callable[[Confidence], dict]:
    """Colour per combination, dashes for protocol=original, marker per lr."""
    cmap = colormaps["tab10" if len(conf) <= 10 else "tab20"]
    colors = {r.combination.combo: cmap(i % cmap.N) for i, r in enumerate(conf)}
    lrs = list(dict.fromkeys(str(r.combination.lr) for r in conf))
    return lambda r: dict(color=colors[r.combination.combo], ls="-" if r.combination.protocol == "correct" else "--",
                          marker="osD^v<>ph*"[lrs.index(str(r.combination.lr)) % 10])
