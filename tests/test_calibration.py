"""The k50 interval against a known answer: simulated studies (GallopSearch then Refine) on a
logistic oracle cover the true k50; the full table is benchmarks/calibration.md."""
import random

from deepdepth.search.calibration import Case, all_cases, calibrate, markdown, study, trainer
from deepdepth.science.confidence import LEVEL

CASES = [Case(14, 8), Case(150, 4), Case(6, 15)]


def test_intervals_cover_the_true_k50_in_simulated_studies():
    """30 studies per case (the committed table runs 200 x 3 RNG seeds): every study stops with a
    finite interval and at least 26 of 30 hold the true k50 (the table: 95% or more per case)."""
    result = calibrate(CASES, studies=30, rng_seeds=(0,))
    for (case, _), t in result.items():
        assert t.studies == 30 and t.finite >= 29, (case, t)
        assert t.covered >= 26, (case, t.covered, t.misses)
        assert t.reached_covered <= t.reached <= t.finite
    table = markdown(result, LEVEL).splitlines()
    assert len(table) == 2 + len(CASES)  # one row per case: none pooled away


def test_correlated_seeds_share_their_draw_across_depths():
    """The old scheme at its extreme: a seed that fails at one depth fails at every deeper one;
    independent seeds do not keep to that."""
    def monotone(case):
        oracle = trainer(case, random.Random(3))
        runs = [[oracle(k, s) for k in (30, 36, 40, 44, 50)] for s in range(40)]
        return all(r == sorted(r, reverse=True) for r in runs)
    assert monotone(Case(40, 4, "correlated"))
    assert not monotone(Case(40, 4, "independent"))


def test_a_study_is_the_study_search_then_refine():
    s = study(Case(40, 8), random.Random(0))
    assert s.done and s.base.upper == 120 and len(s.base.seeds) == 3 and s.base.step == 3
    assert s.width == 10 and s.level == LEVEL and s.interval is not None
    assert {c.scheme for c in all_cases()} == {"independent", "correlated"} and len(all_cases()) == 30
