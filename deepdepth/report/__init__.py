"""Study tables, confidence, reference comparison and figures from a sweep directory:
``python -m deepdepth.report <sweep_dir> [--out DIR] [--add RUN_DIR ...]``.

Works on a bisect sweep (frontier.json) and on any plain multirun of deepdepth.train (the job
folders' result.json files). Pipeline: ``load`` (Trial and Combination records; ``merge`` adds
the trials of other folders) -> ``stats`` (seeds per depth with Wilson intervals, the measured
limit: k50 or an honest bound, ranking) -> ``swept`` (the limit against each key the sweep
varies, with tests between its values) -> ``compare`` (the original study's k*, only under its
settings) -> ``theory`` (mean field per combination) -> ``provenance`` (which devices trained the trials) -> ``render`` (markdown, every
table through ``markdown.table``) and ``figures`` (one registry of Figures); ``cli`` writes
them. Only ``figures`` imports matplotlib. ``read_sweep`` gives the trials or combinations as a
pandas DataFrame (the optional extra ``deepdepth[pandas]``).
"""
from .cli import main, write_figures
from .frame import read_sweep
from .compare import Comparison, compare_reference, reference_verdict, verdict_lines
from .load import Combination, Trial, load_frontier, load_sweep
from .markdown import table
from .render import render_report
from .stats import Confidence, DepthPoint, Limit, confidence_table, depth_points, rank_variants

__all__ = ["Combination", "Comparison", "Confidence", "DepthPoint", "Limit", "Trial", "compare_reference",
           "confidence_table", "depth_points", "load_frontier", "load_sweep", "main", "rank_variants",
           "read_sweep", "reference_verdict", "render_report", "table", "verdict_lines", "write_figures"]
