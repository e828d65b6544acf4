"""``python -m deepdepth.report <sweep_dir> [--out DIR] [--add RUN_DIR ...]``: print the report,
write report.md and the figures' PNGs."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from .load import ReportError, load_frontier, load_sweep, sweeper_settings
from .merge import add_runs
from .render import render_report
from .stats import confidence_table


def write_figures(frontier, trials, out: Path) -> list:
    """Every registered figure that has something to show as a PNG in ``out`` (its Path), and a
    ``NotDrawn`` for each that has not (the report says why)."""
    from .figures import all_figures, not_drawn
    conf = confidence_table(frontier, trials)
    paths = []
    for stem, fig in all_figures(conf):
        paths.append(out / f"{stem}.png")
        fig.savefig(paths[-1], dpi=110)
    return paths + not_drawn(conf)


DESCRIPTION = ("Print a sweep's report (study table, measured limits with intervals, the limit against every "
               "swept key, comparisons, mean field) and write report.md and its figures.")


def main(argv=None, prog: str = "python -m deepdepth.report") -> None:
    """The report, or one line naming the file at fault and exit status 2 (the traceback with
    HYDRA_FULL_ERROR=1, as for the package's other commands)."""
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    p.add_argument("sweep_dir", type=Path, help="a sweep's directory (its hydra.sweep.dir) or a plain multirun's")
    p.add_argument("--out", type=Path, help="where to write report.md and the PNGs (default: the sweep dir)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-mean-field", action="store_true", help="leave out the mean-field prediction")
    p.add_argument("--add", type=Path, nargs="+", action="extend", default=[], metavar="RUN_DIR",
                   help="also count the trials of these run folders (a single run's or a multirun's), each in "
                        "the sweep's combination of the same settings")
    args = p.parse_args(argv)
    try:
        report(args, p)
    except ReportError as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)


def report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not args.sweep_dir.is_dir():
        raise ReportError(f"{args.sweep_dir} {'is not a directory' if args.sweep_dir.exists() else 'does not exist'};"
                          " pass a sweep's directory (its hydra.sweep.dir)")
    trials = load_sweep(args.sweep_dir)
    if not trials:
        parser.error(f"no trials found in {args.sweep_dir} (no frontier.json and no result.json files)")
    frontier = load_frontier(args.sweep_dir, trials)
    added = None
    if args.add:
        trials, added = add_runs(frontier, trials, args.add)
    out = args.out or args.sweep_dir
    with _writing(out, args.out is None):
        out.mkdir(parents=True, exist_ok=True)
        figures = None if args.no_plots else write_figures(frontier, trials, out)
        text = render_report(frontier, trials, title=f"Depth study: {args.sweep_dir.resolve().name}",
                             sweeper=sweeper_settings(args.sweep_dir), figures=figures,
                             mean_field=not args.no_mean_field, added=added)
        print(text, end="")
        (out / "report.md").write_text(text)
    for path in [out / "report.md", *(p for p in figures or [] if isinstance(p, Path))]:
        print(f"wrote {path}", file=sys.stderr)


@contextlib.contextmanager
def _writing(out: Path, default_out: bool):
    """A read-only or full output folder: a ReportError naming the file and the way around it."""
    try:
        yield
    except OSError as e:
        where = f"{e.filename}: {e.strerror}" if e.filename else str(e)
        hint = ("pass --out DIR to write report.md and the figures elsewhere" if default_out
                else "choose a writable --out DIR")
        raise ReportError(f"cannot write {where}; {hint}") from e
