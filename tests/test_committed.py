"""What the README states of the committed depth study is what its files give: each variant and
protocol's k*, trials, seed schemes and k50 (with its interval) recomputed from results/gpu_study by the report's
own code."""
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
