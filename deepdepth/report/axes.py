"""Axis helpers of the report's figures: integer depth ticks on a logarithmic axis, and the cells
of the phase diagram's heat map."""
from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator


def depth_axis(ax, depths: list[float], axis: str = "x") -> None:
    """Log depth axis with integer labels: 1-2-3-5 per decade, or the probed depths themselves
    (thinned) when the range spans less than about a decade."""
    lo, hi = min(depths), max(depths)
    ticks = [m * 10 ** e for e in range(0, 4) for m in (1, 2, 3, 5) if lo / 1.25 <= m * 10 ** e <= hi * 1.25]
    if len(ticks) < 4:
        ticks = []
        for k in sorted({max(1, round(x)) for x in depths}):  # whole depths, so each label is where it says
            if not ticks or k / ticks[-1] >= 1.12:
                ticks.append(k)
    which = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    which.set_major_locator(FixedLocator(ticks))
    which.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0f}"))
    which.set_minor_locator(NullLocator())
    which.set_minor_formatter(NullFormatter())


def cell_edges(xs: list[float], log: bool = False) -> list[tuple[float, float]]:
    """Cells around sorted points, meeting halfway (geometrically when ``log``); the outer cells as wide
    as their inner neighbours' half (a lone point: 12% either side). With ``log`` no cell reaches more
    than 1.25x from its point, so a wide unprobed stretch between two points is left empty, not
    painted with a neighbour's colour."""
    t = [math.log(x) if log else x for x in xs]
    half = [(b - a) / 2 for a, b in zip(t, t[1:])]
    outer = (half[0], half[-1]) if half else (abs(t[0]) * 0.12 or 0.12,) * 2
    reach = [outer[0]] + half + [outer[1]]  # reach[i]: point i's reach left; reach[i + 1]: its reach right
    if log:
        reach = [min(r, math.log(1.25)) for r in reach]
    back = math.exp if log else (lambda x: x)
    return [(back(x - reach[i]), back(x + reach[i + 1])) for i, x in enumerate(t)]


def theory_grid(lo: float, hi: float) -> np.ndarray:
    """sigma_w^2 from lo to hi, dense towards criticality (1), where 6 xi diverges."""
    grid = [np.linspace(lo, hi, 40)]
    if lo < 1:
        grid.append(1 - np.geomspace(1e-3, 1 - lo, 15))
    if hi > 1:
        grid.append(1 + np.geomspace(1e-3, hi - 1, 25))
    g = np.unique(np.concatenate(grid))
    return g[(g >= lo) & (g <= hi)]
