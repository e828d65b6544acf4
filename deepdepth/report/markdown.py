"""The one markdown-table writer of the package (the report's tables; meanfield and the
benchmarks can use it too). No dependencies."""
from __future__ import annotations

from typing import Iterable, Sequence


def table(head: Sequence, rows: Iterable[Sequence], pad: bool = False) -> str:
    """A GitHub-markdown table; every cell through str(), '|' inside a cell escaped. ``pad``
    aligns the columns for reading as plain text."""
    cells = [[str(c).replace("|", "\\|") for c in r] for r in [list(head), *rows]]
    widths = [max(len(r[i]) for r in cells) if pad else 0 for i in range(len(cells[0]))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    rule = "|" + "|".join("-" * (w + 2) if pad else "---" for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:])])
