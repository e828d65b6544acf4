"""Wilson intervals and the pooled 50%-depth estimate."""
import numpy as np
import pytest

from deepdepth.science.confidence import LEVEL, cut_deviance, half_trainable_depth, wilson


def test_wilson_known_values():
    lo, hi = wilson(3, 3)
    assert lo == pytest.approx(0.4385, abs=1e-3) and hi == 1.0
    lo, hi = wilson(0, 5)
    assert lo == 0.0 and hi == pytest.approx(0.4345, abs=1e-3)
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


def test_separated_data_give_a_bracket_not_a_point():
    """All trained at 75, none at 90, nothing probed between: no estimate, only the bracket; with
    3 seeds a side the interval reaches past it, with 8 unanimous seeds a side it is the bracket."""
    depths = [30] * 3 + [60] * 3 + [75] * 3 + [90] * 3
    c = half_trainable_depth(depths, [True] * 9 + [False] * 3)
    assert c.k50 is None and c.bracket == (75, 90) and 75 < c.centre < 90
    assert c.low < 75 and c.high > 90
    c = half_trainable_depth([75] * 8 + [90] * 8, [True] * 8 + [False] * 8)
    assert c.k50 is None and c.bracket == (75, 90)
    assert c.low == pytest.approx(75, rel=1e-3) and c.high == pytest.approx(90, rel=1e-3)
    assert half_trainable_depth([75] * 4 + [90] * 4, [True, True, True, False] + [False] * 4).bracket is None


def brute_profile(depths, trained, log_c):
    """The profile log-likelihood by brute force over a fine grid of slopes (a check, not fast)."""
    k, y = np.log(np.asarray(depths, float)), np.asarray(trained, float)
    b = np.concatenate([[0.0], np.geomspace(1e-4, 500, 3000)])
    z = b[:, None, None] * (np.asarray(log_c)[None, :, None] - k[None, None, :])
    return (-(np.logaddexp(0, -z) + (1 - y) * z).sum(-1)).max(0)


def test_interval_ends_are_where_the_likelihood_crosses_the_cut_even_far_out():
    """The high end lies beyond 1.65x the deepest probe (where the search used to stop and call it
    open): the profile is inside the cut just below it and outside just above it."""
    depths = [10] * 8 + [20] * 8 + [40] * 8
    trained = [True] * 8 + [True] * 6 + [False] * 2 + [True] * 2 + [False] * 6
    c = half_trainable_depth(depths, trained)
    assert c.low is not None and c.high is not None and c.high > 1.65 * 40
    peak = brute_profile(depths, trained, np.linspace(np.log(15), np.log(45), 301)).max()
    cut = peak - cut_deviance(LEVEL) / 2
    for end, step in ((c.low, 1.01), (c.high, 1.01)):
        inside, outside = (end * step, end / step) if end == c.low else (end / step, end * step)
        below, above = brute_profile(depths, trained, np.log([inside, outside]))
        assert below >= cut > above, (end, below, cut, above)


def test_an_open_end_is_one_the_likelihood_never_excludes():
    depths, trained = [93] * 3 + [96] * 3, [True, True, False, True, False, False]
    c = half_trainable_depth(depths, trained)
    assert c.low is None and c.high is None
    far = brute_profile(depths, trained, np.log([1e-3, 1e6]))
    peak = brute_profile(depths, trained, np.linspace(np.log(80), np.log(110), 300)).max()
    assert (far >= peak - cut_deviance(LEVEL) / 2).all()


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


def test_ends_past_the_old_search_range_match_an_independent_recomputation():
    """Two committed study points whose 95% high end lies beyond 1.65x the deepest probe, where
    the report used to print an open end: cnn_elu_bn (original protocol) and the phase diagram
    at sigma_w^2 = 0.4; an independent recomputation found 418.6 and 20.2."""
    elu_bn = half_trainable_depth([102] * 3 + [126] * 3 + [153] * 3 + [156] * 3 + [159] * 3,
                                  [1, 1, 1] * 2 + [1, 1, 0] + [1, 0, 0] + [1, 1, 0], level=0.95)
    assert elu_bn.high == pytest.approx(418.6, rel=0.002)
    phase = half_trainable_depth([3] * 3 + [6] * 3 + [9] * 3 + [12] * 3, [1] * 9 + [1, 0, 0], level=0.95)
    assert phase.high == pytest.approx(20.2, rel=0.005)
