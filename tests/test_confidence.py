"""Wilson intervals and the pooled 50%-depth estimate."""
import pytest

from deepdepth.confidence import half_trainable_depth, wilson


def test_wilson_known_values():
    lo, hi = wilson(3, 3)
    assert lo == pytest.approx(0.4385, abs=1e-3) and hi == 1.0
    lo, hi = wilson(0, 5)
    assert lo == 0.0 and hi == pytest.approx(0.4345, abs=1e-3)
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


def test_separated_data_give_a_crossing_between_last_pass_and_first_fail():
    depths = [30] * 3 + [60] * 3 + [75] * 3 + [90] * 3
    trained = [True] * 9 + [False] * 3
    c = half_trainable_depth(depths, trained)
    assert 75 < c.k50 < 90
    assert c.low == pytest.approx(75, rel=0.01) and c.high == pytest.approx(90, rel=0.01)


def test_fewer_seeds_or_mixed_verdicts_widen_the_interval():
    def interval(depths, trained):
        c = half_trainable_depth(depths, trained)
        return (c.low or 0, c.high or float("inf"))
    one_seed = interval([60, 75, 90], [True, True, False])
    assert one_seed[0] < 70 and one_seed[1] > 95  # a single seed cannot exclude much
    mixed = interval([60] * 3 + [75] * 3 + [90] * 3, [True] * 3 + [True, False, True] + [False] * 3)
    assert mixed[0] < 70


def test_noisy_verdicts_near_the_limit():
    depths = [3] * 3 + [6] * 3 + [12] * 3
    trained = [True, True, True, True, True, False, False, False, False]
    c = half_trainable_depth(depths, trained)
    assert 6 <= c.k50 <= 12 and c.low < 6


def test_all_or_nothing():
    assert half_trainable_depth([3, 6, 9], [True] * 3).low == 9
    assert half_trainable_depth([3, 6, 9], [True] * 3).k50 is None
    assert half_trainable_depth([3, 6, 9], [False] * 3).high == 3
