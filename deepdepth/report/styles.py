"""How the report's figures name and draw a row: file-name slugs, legend labels, colours and dashes,
and which rows are one set of trials (a BatchNorm-free variant's two protocols)."""
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


def same_trials(r: Confidence) -> tuple:
    """What a row's limit rests on: its variant and settings but the protocol, and its probes. Two
    rows with the same key are one set of trials (a BatchNorm-free variant's two protocols)."""
    c = r.combination
    return (re.sub(r" ?protocol=\S+", "", c.label), str(r.limit),
            tuple((d.k, d.n, d.passes, tuple(sorted(e for e in d.test_errs if e is not None))) for d in r.depths))


def distinct(conf: list[Confidence]) -> list[tuple[Confidence, bool]]:
    """Each distinct set of trials once, with whether another protocol's row shares it."""
    seen: dict[tuple, list] = {}
    for r in conf:
        seen.setdefault(same_trials(r), []).append(r)
    return [(rows[0], len({x.combination.protocol for x in rows}) > 1) for rows in seen.values()]
