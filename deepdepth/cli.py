"""Console scripts (pyproject's ``[project.scripts]``). ``deepdepth-train`` is
``deepdepth.train:main`` itself; ``deepdepth-report`` needs this wrapper to pick matplotlib's
file-only backend before the report imports pyplot, as ``python -m deepdepth.report`` does."""
from __future__ import annotations


def report() -> None:
    """The ``deepdepth-report`` command: ``python -m deepdepth.report`` without a display."""
    import matplotlib

    matplotlib.use("Agg")
    from .report.cli import main

    main(prog="deepdepth-report")
