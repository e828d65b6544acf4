"""``python -m deepdepth.report <sweep_dir> [--out DIR]``: print the report, write report.md and
the figures' PNGs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .load import load_frontier, load_sweep, sweeper_settings
from .render import render_report
from .stats import confidence_table


def write_figures(frontier, trials, out: Path) -> list[Path]:
    """Every registered figure as a PNG in ``out``."""
    from .figures import all_figures
    paths = []
    for stem, fig in all_figures(confidence_table(frontier, trials)):
        paths.append(out / f"{stem}.png")
        fig.savefig(paths[-1], dpi=110)
    return paths


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m deepdepth.report", description=__doc__.splitlines()[0])
    p.add_argument("sweep_dir", type=Path)
    p.add_argument("--out", type=Path, help="where to write report.md and the PNGs (default: the sweep dir)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-mean-field", action="store_true", help="leave out the mean-field prediction")
    args = p.parse_args(argv)
    trials = load_sweep(args.sweep_dir)
    if not trials:
        p.error(f"no trials found in {args.sweep_dir} (no frontier.json and no result.json files)")
    frontier = load_frontier(args.sweep_dir, trials)
    out = args.out or args.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    figures = [] if args.no_plots else write_figures(frontier, trials, out)
    text = render_report(frontier, trials, title=f"Depth study: {args.sweep_dir.resolve().name}",
                         sweeper=sweeper_settings(args.sweep_dir), figures=figures,
                         mean_field=not args.no_mean_field)
    print(text, end="")
    (out / "report.md").write_text(text)
    for path in [out / "report.md", *figures]:
        print(f"wrote {path}", file=sys.stderr)
