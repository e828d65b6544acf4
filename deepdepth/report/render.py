"""The report as markdown: the study table, the confidence per combination, the comparison with
the original study, the ranking with mean-field theory beside it. Every table through
``markdown.table``; every setting that varies between combinations is a column."""
from __future__ import annotations

import math

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..science import reference as ref
from ..sweep.cost import duration
from .compare import NO_SETTINGS, Comparison, compare_reference, like_for_like_lines, verdict_lines
from .load import Combination, Trial
from .markdown import table
from .phase import gain_sweep, phase_markdown, width_markdown, width_sweep
from .provenance import devices_line
from .settings import show, varying
from .stats import INTERVAL, Confidence, DepthPoint, Ranked, confidence_table, rank_variants
from .swept import key_sweeps, sweeps_markdown
from .theory import mean_field_rows, prediction_cells


@dataclass(frozen=True)
class NotDrawn:
    """A figure that applies to the sweep but has nothing to show: the report says so instead."""
    stem: str
    reason: str

    def line(self) -> str:
        return f"- {self.stem}: not drawn, {self.reason}"


def figure_lines(figures: list, stem: Optional[str] = None) -> list[str]:
    """Markdown for written figures (their paths) and for those not drawn; ``stem``: that one only."""
    return [f.line() if isinstance(f, NotDrawn) else f"![{Path(f).stem}]({Path(f).name})" for f in figures
            if stem is None or (f.stem if isinstance(f, NotDrawn) else Path(f).stem) == stem]


def columns(conf: list[Confidence]) -> list[str]:
    """The settings that differ between combinations: a column in every table."""
    return varying([r.combination.settings for r in conf])


def setting_cells(c: Combination, keys: list[str]) -> list[str]:
    return [show(c.settings.get(k)) for k in keys]


def shared_settings(conf: list[Confidence]) -> str:
    """'Every combination: lr=0.01, ...' with the keys no record states named as assumed."""
    keys = [k for k in dict.fromkeys(k for r in conf for k in r.combination.settings)
            if k not in columns(conf) and k != "data.root"]  # where the data lay on one machine: no setting
    if not conf or not keys:
        return ""
    first = conf[0].combination
    measured = [r for r in conf if r.depths] or conf  # a combination with no trial yet assumes nothing
    assumed = sorted(set().union(*(r.combination.assumed for r in measured)))
    text = "Settings of every combination: " + ", ".join(f"{k}={show(first.settings[k])}" for k in keys) + "."
    if assumed:
        text += (f" Not recorded in this sweep's files, so the package's defaults are assumed: "
                 f"{', '.join(assumed)}.")
    return text


def depth_cell(d: DepthPoint) -> str:
    """'9: 1/2 = 50% [9–91%]': passes / seeds, fraction, Wilson 95% interval."""
    low, high = d.interval
    return f"{d.k}: {d.passes}/{d.n} = {100 * d.fraction:.0f}% [{100 * low:.0f}–{100 * high:.0f}%]"


def error_cell(d: Optional[DepthPoint]) -> str:
    if d is None:
        return "—"
    seeds = f" ({d.passes}/{d.n} trainable)" if d.n > 1 else ""
    return f"{d.k}: n/a" if d.test_err is None else f"{d.k}: {100 * d.test_err:.2f}%{seeds}"


def study_notes(c: Combination, trials: list[Trial]) -> str:
    notes = []
    if not c.done:
        notes.append("unfinished: a time budget stopped this search; the data so far")
    if c.censored:
        notes.append(f"censored: every probe up to the search's bound {c.upper} trained, the limit lies deeper")
    if c.nonmonotone:
        notes.append("passed above a failure: " + ", ".join(map(str, c.nonmonotone)))
    if c.skipped:
        notes.append("not trained, above a failure of their round: " + ", ".join(map(str, c.skipped)))
    if c.failed_trials:
        notes.append(f"{c.failed_trials} failed trials")
    shared = {t.shared_from for t in trials if t.combo == c.combo and t.shared_from is not None}
    if shared:
        notes.append("trials reused from combination " + ", ".join(map(str, sorted(shared))))
    return "; ".join(notes)


def study_markdown(conf: list[Confidence], trials: list[Trial]) -> str:
    keys = columns(conf)
    rows = []
    for r in conf:
        c, at = r.combination, {d.k: d for d in r.depths}
        above = c.k_star + c.step if c.k_star is not None else min(at, default=None)
        rows.append([c.model, *setting_cells(c, keys), r.k_star_str, error_cell(at.get(c.k_star)),
                     error_cell(at.get(above)), r.trials, study_notes(c, trials)])
    head = ["variant", *keys, "k*", "at k*: test err", "next depth: test err", "trials", "notes"]
    return table(head, rows) + ("\n\nFinal-epoch test errors; with several seeds, the median and how many seeds "
                                "were trainable.")


def confidence_markdown(conf: list[Confidence]) -> str:
    keys = columns(conf)
    rows = [[r.variant, *setting_cells(r.combination, keys), "; ".join(map(depth_cell, r.depths)) or "—",
             str(r.limit), str(r.trials), r.seeds,
             r.k_star_str + ("" if r.combination.rule == "majority" else f" (rule: {r.combination.rule})")
             + ("" if r.combination.done else " (unfinished)")] for r in conf]
    return table(["variant", *keys, "per depth: trained/seeds = fraction [Wilson 95%]",
                  f"measured limit (k50 [{INTERVAL}])", "trials", "seeds", "k* (search)"], rows)


def comparison_markdown(comparison: list[Comparison]) -> str:
    keys = columns([c.row for c in comparison])
    rows = []
    for x in comparison:
        r, known = x.row, x.reference
        shown = "—" if known is None else f"{known.k_star} ({known.failed} failed)" if not known.censored \
            else f"{known.k_star} (censored)"
        rows.append([r.variant, *setting_cells(r.combination, keys), r.combination.seeds or max(
            (d.n for d in r.depths), default=0), shown, r.k_star_str, str(r.limit), x.cell])
    return table(["variant", *keys, "seeds/probe", "reference k*", "this run's k*", "measured limit",
                  "reference inside?"], rows)


def ranking_markdown(ranking: list[Ranked], mean_field: Optional[dict] = None) -> str:
    """The ranking with the mean-field prediction (6 xi) of each combination's own network."""
    keys = [k for k in columns([x.row for x in ranking]) if k not in ("protocol", "lr")]
    rows = []
    for x in ranking:
        c = x.row.combination
        theory = list(prediction_cells(mean_field.get(c.combo))) if mean_field else []
        rows.append([c.protocol, show(c.lr), x.rank, c.model, *setting_cells(c, keys), x.shown, x.row.k_star_str,
                     *theory])
    return table(["protocol", "lr", "rank", "variant", *keys, "measured limit", "k* (search)",
                  *(["mean-field k* (6 xi)", "theory"] if mean_field else [])], rows)


def phase_section(conf: list[Confidence], figures: list, variants: Optional[dict] = None) -> list[str]:
    """'## Phase diagram' where the sweep varies the init gain (else nothing): per sigma_w^2 the
    depth scale, 6 xi and the measured k50."""
    families = gain_sweep(conf, variants)
    if not families:
        return []
    return section("## Phase diagram",
                   "The sweep varies the init gain g (model.init=rule:g), so sigma_w^2 = g^2 for the fan-in rules, "
                   "sigma_b = 0 (zero conv biases). Mean field (Schoenholz et al. 2017): below sigma_w^2 = 1 "
                   "(ordered) signals forget their input over xi = -1/ln chi_1 layers; above it (chaotic) xi is the "
                   "correlation depth scale and gradients grow over 1/ln chi_1 layers; at 1 (critical) xi is "
                   "infinite. Trainable up to about 6 xi; the mean-field k is the depth over which the package's own "
                   "net decays by 6 e-folds (the input conv maps nothing, width-changing convs at their own "
                   f"sigma_w^2). Measured: k50 and its {INTERVAL} "
                   "interval, as in the confidence table; the ratio k50 / 6 xi says how far 6 xi misses.",
                   phase_markdown(families), figure_lines(figures, "phase_diagram")) \
        + width_section(conf, figures, variants)


def width_section(conf: list[Confidence], figures: list, variants: Optional[dict] = None) -> list[str]:
    """Where the sweep varies the widths at an init scale: the limit against width beside 6 xi,
    which mean field gives the same at every width."""
    sweep = width_sweep(conf, variants)
    if not sweep:
        return []
    return section("### Width",
                   "Mean field is a theory of infinitely wide networks: its 6 xi is the same at every width. The "
                   "measured k50 over 6 xi at each width says how far finite width moves the limit from it.",
                   width_markdown(sweep), figure_lines(figures, "depth_scale_vs_width"))


def section(heading: str, intro: str, body: str, drawn: list[str]) -> list[str]:
    """A report section: heading, one paragraph, its table, its figures where drawn."""
    return ["", heading, "", intro, "", body, *([""] + drawn if drawn else [])]


def reached(r: Confidence, f: dict) -> str:
    """Is the interval shown (the report's level) narrower than the width asked? The search's own
    record may say otherwise: it stopped under the interval rule of the code that ran it."""
    lim = r.limit
    span = lim.high - lim.low if lim.low is not None and lim.high is not None else math.inf
    now = (not f.get("width") or span < f["width"]) and (not f.get("fraction") or (
        lim.value is not None and span < f["fraction"] * lim.value))
    if now or not f["reached"]:
        return "yes" if now else "no"
    return "no (reached under the interval rule of the run that trained it, not at this level)"


def job_time(combo: int, trials: list[Trial]) -> str:
    """What a combination's own jobs took (search and refinement; a job counted once, a trial it
    reuses from another combination not at all)."""
    jobs = {t.job: t.job_seconds for t in trials if t.combo == combo and t.shared_from is None and t.job}
    timed = [x for x in jobs.values() if x is not None]
    return "—" if not timed else duration(sum(timed)) + (f" ({len(jobs) - len(timed)} jobs untimed)"
                                                           if len(timed) < len(jobs) else "")


def precision_section(conf: list[Confidence], trials: list[Trial]) -> list[str]:
    """The refinement phase: the width asked for, whether it was reached, the seeds it took and
    what its jobs cost. Its k50 is the confidence table's (one fit over the same trials at the
    one level), not a second number."""
    rows = [(r, r.combination.extra["refine"]) for r in conf if r.combination.extra.get("refine")]
    if not rows:
        return []
    keys = columns(conf)
    table_rows = []
    for r, f in rows:
        seeds = "; ".join(f"{k}: {n}" for k, n in f["seeds_at"].items())
        asked = " and ".join(([f"{f['width']:g} layers"] if f.get("width") else [])
                             + ([f"{f['fraction']:g} of k50"] if f.get("fraction") else []))
        table_rows.append([r.variant, *setting_cells(r.combination, keys), str(r.limit), asked,
                           reached(r, f), f"{sum(f['seeds_at'].values())}", seeds,
                           job_time(r.combination.combo, trials), f["stopped"]])
    return ["", "## Precision (refinement phase)", "",
            "After the search, more seeds where they narrow k50's interval most, until it is narrower than the "
            f"width asked for. k50 and its {INTERVAL} interval as in the confidence table (the same trials); "
            "how often such an interval holds the true k50 in simulated studies: benchmarks/calibration.md "
            "(deepdepth/search/calibration.py).", "",
            table(["variant", *keys, f"k50 [{INTERVAL}]", "width asked", "reached", "trials",
                   "seeds per depth", "job time (search and refinement)", "stopped"], table_rows)]


def reference_applies(comparison: list[Comparison]) -> bool:
    """Does any combination have the original study's figure under its own settings?"""
    return any(c.verdict not in ("no reference", NO_SETTINGS) for c in comparison)


def ranking_intro(ranking: list[Ranked], theory: bool) -> str:
    together = len({x.group for x in ranking}) == 1 and len(ranking) > 1
    text = ("All combinations ranked together" if together else "Within each setting") + (
        ", deepest first; a lower bound ranks by its bound, so a combination shown '> k' may belong higher.")
    if theory:
        text += (" Mean-field theory (Schoenholz et al. 2017) predicts k* ~ 6 xi for plain networks only, here "
                 "from each combination's own activation and init.")
    return text


def reference_section(comparison: list[Comparison]) -> list[str]:
    """The original study's k* beside the measured limits, where its settings apply (else nothing)."""
    if not reference_applies(comparison):
        return []
    return ["", "## Comparison with the original study", "",
            f"Reference: the original study's searches, one seed per probe, lr {show(ref.SETTINGS['lr'])}, "
            f"{ref.SETTINGS['epochs']} epochs, full MNIST ({ref.SETTINGS['train_samples']:,}/"
            f"{ref.SETTINGS['test_samples']:,} images), criterion {ref.SETTINGS['criterion']}, threshold "
            f"{show(ref.SETTINGS['threshold'])}; its BatchNorm variants ran under protocol="
            f"{ref.ORIGINAL_PROTOCOL}. Its k* is a last trainable depth and its next probe failed, so the "
            "reference counts as inside when it lies in [low - step, high] of the measured range. A combination "
            "trained under other settings is not compared.", "",
            comparison_markdown(comparison), "", *verdict_lines(comparison)]


def render_report(frontier: list[Combination], trials: list[Trial], title: str = "Depth study",
                  sweeper: Optional[dict] = None, figures: Optional[list] = None,
                  mean_field: bool = True, variants: Optional[dict] = None, added: Optional[list] = None) -> str:
    """The whole report as markdown: what ``main`` prints and writes to report.md. ``added``:
    lines naming trials taken in from other folders. Sections that do not apply to the sweep (no
    combination under the original study's settings, no network mean field describes, no key
    swept) are left out."""
    conf = confidence_table(frontier, trials)
    comparison = compare_reference(conf)
    mf = mean_field_rows(conf, variants) if mean_field else None
    if mf is not None and not any(row["applicable"] for row in mf.values()):
        mf = None
    ranking = rank_variants(conf)
    parts = [f"# {title}", ""]
    if sweeper:
        parts += ["Sweeper: " + ", ".join(f"{k}={show(v)}" for k, v in sweeper.items() if not isinstance(v, dict)),
                  ""]
    trained_on = devices_line(trials)
    parts += [shared_settings(conf), *(["", trained_on] if trained_on else []),
              *(["", "Trials added from other folders (each matched to the combination of its settings):", *added]
                if added else []), "",
              "## Study table", "", study_markdown(conf, trials), "",
              "## Confidence per combination", "",
              "Per probed depth: seeds that trained / seeds with a verdict (crashed trials excluded), the fraction "
              "and its 95% Wilson interval. Measured limit: k50, the depth where half the seeds train (a logistic "
              f"fit in log depth pooled over the combination's trials, counted in 'trials') with its {INTERVAL} "
              "profile-likelihood interval, where the probes cross 50% (how often it holds the true k50 in "
              "simulated studies: benchmarks/calibration.md); where the data are separated (all trained at one "
              "depth, none at the next probed) no point: the bracket between the two and its interval; where no "
              "probe is below 50% trainable, or the fit puts k50 beyond the deepest probe, only a lower bound "
              "(> the deepest probe with a majority trained), never an extrapolation. Seeds: shared (the same "
              "seeds at every depth, the original study's scheme) or independent across depths, counted per "
              "scheme where a refinement added seeds of another. k*: the last trainable depth under the sweep's "
              "rule.", "",
              confidence_markdown(conf), *sweeps_markdown(key_sweeps(conf, trials))]
    parts += reference_section(comparison)
    parts += ["", "## Ranking by measured depth limit", "", ranking_intro(ranking, bool(mf)), "",
              ranking_markdown(ranking, mf)]
    parts += precision_section(conf, trials)
    pairs = like_for_like_lines(conf)
    if pairs:
        parts += ["", "Against the baseline that differs in one idea only:", "", *pairs]
    if mf:
        from ..meanfield import mean_field_markdown
        parts += ["", "## Mean-field prediction", "", mean_field_markdown(list(mf.values())).rstrip()]
        parts += phase_section(conf, figures or [], variants)
    if figures is not None:  # None: figures not asked for
        parts += ["", "## Figures", ""] + (figure_lines(figures) or ["No figure applies to this sweep."])
    return "\n".join(parts) + "\n"
