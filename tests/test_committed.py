"""What the README states of the committed studies is what their files give: each variant and
protocol's k*, trials, seed schemes and k50 (with its interval) recomputed from results/gpu_study by the report's
own code, and each phase-diagram point's k50 from results/phase_diagram."""
import re

import pytest

from conftest import ROOT
from deepdepth.report import confidence_table, load_frontier, load_sweep
from deepdepth.report.stats import Limit, distinct

STUDY = ROOT / "results" / "gpu_study"


def readme_rows() -> dict[tuple[str, str], list[str]]:
    """(variant, protocol) -> the README results table's cells; a 'both' row under either protocol,
    an 'a / b' row split per protocol."""
    text = (ROOT / "README.md").read_text().split("## Results", 1)[1]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`(\w+)`", cells[0]) if len(cells) == 7 else None
        if not m:
            continue
        protocols = ["correct", "original"] if cells[1].startswith("both") else cells[1].split(" / ")
        for i, protocol in enumerate(protocols):
            per = [c.split(" / ")[i] if " / " in c and "/" in cells[1] else c for c in cells]
            rows[m.group(1), protocol] = per
    return rows


def core(limit: Limit) -> str:
    """What a README cell must start with: the k50 and interval, or the bound."""
    if limit.kind in ("above", "below"):
        return str(limit).split(" (")[0]
    return "—" if limit.kind == "none" else str(limit)


@pytest.mark.skipif(not (STUDY / "frontier.json").exists(), reason="no committed study")
def test_the_readme_results_table_is_the_committed_study():
    trials = load_sweep(STUDY)
    conf = confidence_table(load_frontier(STUDY, trials), trials)
    rows = readme_rows()
    assert {(r.variant, r.combination.protocol) for r in conf} == set(rows)
    shared = {id(r): both for r, both in distinct(conf)}
    for r in conf:
        cells = rows[r.variant, r.combination.protocol]
        where = f"README row {r.variant} {r.combination.protocol}"
        assert cells[6].startswith(core(r.limit)), f"{where}: k50 {cells[6]!r}, the study gives {r.limit}"
        assert cells[4] == str(r.trials), f"{where}: {cells[4]} trials, the study has {r.trials}"
        assert cells[5] == r.seeds, f"{where}: seeds {cells[5]!r}, the study's are {r.seeds!r}"
        if cells[2][:1].isdigit():
            assert cells[2] == r.k_star_str, f"{where}: k* {cells[2]}, the study's search gives {r.k_star_str}"
        if id(r) in shared and shared[id(r)]:
            assert "both" in cells[1], f"{where}: both protocols are one set of trials"


PHASE = ROOT / "results" / "phase_diagram"


def readme_phase_rows() -> dict[tuple[float, tuple], str]:
    """(sigma_w^2, widths) -> the k50 cell of the README's phase-diagram table (its columns: sigma_w^2,
    phase, 6 xi, then one k50 column per widths header '... (c1, c2, c3)'); '—' cells left out."""
    text = (ROOT / "README.md").read_text().split("### What moves the limit", 1)[1].split("\n#", 1)[0]
    lines = [line for line in text.splitlines() if line.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    widths = [tuple(int(w) for w in re.findall(r"\d+", h.rsplit("(", 1)[1])) for h in head[3:]]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for w, cell in zip(widths, cells[3:]):
            if cell != "—":
                rows[float(cells[0]), w] = cell
    return rows


@pytest.mark.skipif(not (PHASE / "frontier.json").exists(), reason="no committed phase diagram")
def test_the_readme_phase_diagram_is_the_committed_one():
    from deepdepth.report.phase import phase_points, widths_of
    trials = load_sweep(PHASE)
    points = {(round(p.sigma_w2, 2), widths_of(p)): p
              for p in phase_points(confidence_table(load_frontier(PHASE, trials), trials))}
    rows = readme_phase_rows()
    assert set(rows) == set(points), "the README's phase-diagram table has one cell per combination"
    for key, cell in rows.items():
        p = points[key]
        assert cell.startswith(core(p.row.limit)), f"README phase diagram {key}: {cell!r}, the study gives {p.row.limit}"
        assert ("unfinished" in cell) == (not p.row.combination.done), f"README phase diagram {key}: {cell!r}"
