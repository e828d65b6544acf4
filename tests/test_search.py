"""DepthSearch: the original study's search sequences, k-ary rounds, seed rules, edge cases."""
import math

import pytest

from deepdepth.search import DepthSearch, GallopSearch, combine, split_points


def run(search, oracle):
    """Drive a search with oracle(k, seed) -> bool|None; returns the probes in order."""
    probes = []
    while not search.done:
        for k in search.next_probes():
            probes.append(k)
            search.record(k, [oracle(k, s) for s in search.seeds])
    return probes


def threshold(limit):
    return lambda k, seed=0: k <= limit


def original(upper, trainable):
    """The original study's search verbatim: binary search over m = k/3 in [1, upper//3]."""
    l, r, probes = 1, upper // 3, []
    while l <= r:
        mid = (l + r) // 2
        probes.append(3 * mid)
        if trainable(3 * mid):
            l = mid + 1
        else:
            r = mid - 1
    return probes, 3 * r


def test_spec_example_upper_24():
    s = DepthSearch(upper=24)
    assert run(s, lambda k, seed: k == 3) == [12, 6, 3]
    assert s.k_star == 3 and s.confirmed is True and s.rounds == 3


# (variant, upper, verdicts of the logged probes, expected probe prefix, reported k*)
REFERENCE = [
    ("cnn_tanh", 24, {12: 0, 6: 0, 3: 1}, [12, 6, 3], 3),
    ("cnn_tanh_newinit", 120, {60: 1, 90: 0, 75: 1, 81: 1, 84: 1, 87: 0}, [60, 90, 75, 81, 84], 84),
    ("cnn_elu", 150, {75: 1, 114: 0, 93: 1, 102: 0, 96: 0}, [75, 114, 93, 102, 96], 93),
    ("cnn_elu_bn", 300, {150: 1, 225: 0, 186: 0, 168: 0, 159: 0, 153: 1, 156: 1},
     [150, 225, 186, 168, 159], 156),
    ("resnet", 450, {225: 1, 339: 1, 396: 1, 423: 1, 438: 1, 444: 1, 447: 1, 450: 0},
     [225, 339, 396, 423, 438, 444, 447, 450], 447),
    ("cnn_tanh_bn_oldinit", 120, {60: 1, 90: 1, 105: 0, 96: 1, 99: 0}, [60, 90, 105, 96, 99], 96),
    ("resnet_nobn", 24, {12: 1, 18: 0, 15: 0}, [12, 18, 15], 12),
]


@pytest.mark.parametrize("name,upper,verdicts,prefix,k_star", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_reference_sequences(name, upper, verdicts, prefix, k_star):
    s = DepthSearch(upper=upper)
    probes = run(s, lambda k, seed: bool(verdicts[k]))
    assert probes[:len(prefix)] == prefix
    assert s.k_star == k_star and s.confirmed is True
    assert probes == original(upper, lambda k: bool(verdicts[k]))[0]


@pytest.mark.parametrize("upper", [3, 6, 24, 25, 60, 150, 451])
def test_matches_original_for_every_limit(upper):
    for limit in range(0, upper + 4, 3):
        s = DepthSearch(upper=upper, confirm=False)
        probes, k = original(upper, threshold(limit))
        assert run(s, threshold(limit)) == probes
        assert s.k_star == (k or None)


def test_no_probe_above_the_bound():
    s = DepthSearch(upper=24)
    probes = run(s, threshold(100))
    assert probes == [12, 18, 21, 24]  # 27 > upper is never trained: k* >= 24 is censored
    assert s.k_star == 24 and s.censored and s.hit_upper and s.confirmed is None and s.rounds == 4


def test_no_confirm_when_neighbours_known():
    s = DepthSearch(upper=24)
    assert run(s, threshold(12)) == [12, 18, 15]
    assert s.k_star == 12 and s.confirmed is True and not s.hit_upper and s.rounds == 3


def test_nothing_trainable():
    s = DepthSearch(upper=24)
    assert run(s, threshold(0)) == [12, 6, 3]
    assert s.k_star is None and s.confirmed is True and not s.hit_upper


def test_upper_not_on_grid_and_upper_below_lower():
    s = DepthSearch(upper=25)
    assert s.grid[-1] == 24
    run(s, threshold(100))
    assert s.k_star == 24 and s.censored and max(h["k"] for h in s.history) == 24
    with pytest.raises(ValueError, match="upper"):
        DepthSearch(lower=3, upper=2)
    with pytest.raises(ValueError, match="rule"):
        DepthSearch(upper=24, rule="median")


def test_single_depth_grid():
    s = DepthSearch(upper=3)
    assert run(s, threshold(3)) == [3]
    assert s.k_star == 3 and s.censored and s.confirmed is None
    s = DepthSearch(upper=6)
    assert run(s, threshold(3)) == [3, 6]
    assert s.k_star == 3 and s.confirmed is True and not s.censored


def test_split_points():
    assert split_points(0, 7, 1) == [3]
    assert split_points(0, 7, 2) == [2, 5]
    assert split_points(0, 7, 3) == [1, 3, 5]
    assert split_points(0, 1, 3) == [0, 1]  # deduplicated and clipped
    assert split_points(4, 4, 5) == [4]
    for l, r in [(0, 49), (3, 17), (10, 10)]:
        assert split_points(l, r, 1) == [(l + r) // 2]


@pytest.mark.parametrize("parallel", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("upper", [24, 150, 450])
def test_parallel_finds_the_limit_in_fewer_rounds(parallel, upper):
    n = upper // 3
    for limit in range(0, upper + 1, 3):
        s = DepthSearch(upper=upper, parallel=parallel, confirm=False)
        run(s, threshold(limit))
        assert s.k_star == (limit or None)
        assert s.rounds <= math.ceil(math.log(n + 1, parallel + 1)) + 1
        assert all(len(h) <= parallel for h in _rounds(s))


def _rounds(s):
    out = {}
    for h in s.history:
        out.setdefault(h["round"], []).append(h["k"])
    return list(out.values())


def test_parallel_round_contents():
    s = DepthSearch(upper=24, parallel=2)
    assert s.next_probes() == [9, 18]
    s.record(9, [True])
    assert s.next_probes() == [18]  # the round stays open until every probe is in
    s.record(18, [False])
    assert s.next_probes() == [12, 15]  # bracket indices [3, 4] -> k 12, 15


def test_nonmonotone_pass_above_fail_is_ignored():
    s = DepthSearch(upper=24, parallel=3)
    assert s.next_probes() == [6, 12, 18]
    for k, v in [(6, True), (12, False), (18, True)]:
        s.record(k, [v])
    assert (s.l, s.r) == (2, 2)  # only k=9 left between the pass at 6 and the fail at 12
    run(s, lambda k, seed: True)
    assert s.k_star == 9 and s.confirmed is True and s.nonmonotone == [18]


def test_combine_rules():
    assert combine([True, False, True]) is True
    assert combine([True, False]) is False  # a tie is not a majority
    assert combine([True, None, None]) is True  # crashed trials are not counted
    assert combine([True, False], "any") is True and combine([False], "any") is False
    assert combine([True, False], "all") is False and combine([True, True], "all") is True
    assert combine([None, None]) is None


def test_seeds_and_rules_drive_the_search():
    # k=6 trains for seeds 0 and 1 only; k=9 for seed 0 only
    ok = {3: {0, 1, 2}, 6: {0, 1}, 9: {0}}
    oracle = lambda k, seed: seed in ok.get(k, ())
    expected = {"majority": 6, "all": 3, "any": 9}
    for rule, k_star in expected.items():
        s = DepthSearch(upper=24, seeds=3, rule=rule)
        run(s, oracle)
        assert s.k_star == k_star, rule
        assert s.seeds == [0, 1, 2]
        assert all(h["counted"] == 3 for h in s.history)
    assert DepthSearch(upper=24, seeds=2, seed=10).seeds == [10, 11]


def test_crashed_probe_counts_as_untrainable():
    s = DepthSearch(upper=24, seeds=2)
    s.next_probes()
    assert s.record(12, [None, None]) is False
    assert s.history[0]["failed"] and s.history[0]["counted"] == 0
    assert s.next_probes() == [6]
    s.record(6, [True, None])  # one crash: the other seed decides
    assert s.history[1]["counted"] == 1 and s.history[1]["trainable"]
    run(s, lambda k, seed: None)  # everything above 6 crashes
    assert s.k_star == 6 and s.crashed == {9, 12} and s.confirmed is None


def test_all_crashed():
    s = DepthSearch(upper=24)
    run(s, lambda k, seed: None)
    assert s.k_star is None and s.confirmed is None and sorted(s.crashed) == [3, 6, 12]


def test_record_rejects_unknown_depth():
    s = DepthSearch(upper=24)
    with pytest.raises(ValueError, match="not an open probe"):
        s.record(6, [True])


def test_pure_package():
    from pathlib import Path
    import deepdepth.search as mod
    for path in Path(mod.__file__).parent.glob("*.py"):
        src = path.read_text()
        for name in ("torch", "hydra", "lightning", "omegaconf"):
            assert f"import {name}" not in src, path


def test_a_probe_above_a_failure_of_its_round_is_moot_and_skipping_it_keeps_the_bracket():
    s = DepthSearch(upper=24, parallel=3)
    assert s.next_probes() == [6, 12, 18]
    assert s.moot(18, {12: [False, False, True]}) and s.moot(18, {6: [None]})  # a crash counts as failing
    assert not s.moot(18, {12: [True, False, True]}) and not s.moot(6, {12: [False]})  # only above a failure
    assert not s.moot(18, {}) and not s.moot(9, {6: [False]})  # 9 is not an open probe
    s.record(6, [True])
    s.record(12, [False])
    s.skip(18)
    assert (s.l, s.r) == (2, 2) and s.skipped == [18] and [h["k"] for h in s.history] == [6, 12]
    with pytest.raises(ValueError, match="not an open probe"):
        s.skip(18)
    run(s, lambda k, seed: True)
    assert s.k_star == 9 and s.confirmed is True


def test_a_confirming_round_has_no_moot_probe():
    """Its probes (k* and the depth above) are the limit's evidence: each is trained."""
    s = DepthSearch(upper=24)
    s._confirming = True  # a confirming round, as _open_round opens one
    s._open([12, 15], confirm=True)
    assert not s.moot(15, {12: [False]})


def test_independent_seeds_differ_across_depths_and_shared_seeds_do_not():
    from deepdepth.seeds import MAX_SEED, derived_seed

    ind = GallopSearch(upper=30, seeds=3)  # the default scheme
    a, b = ind.seeds_for(3), ind.seeds_for(6)
    assert len(set(a)) == 3 and not set(a) & set(b) and all(0 <= s <= MAX_SEED for s in a + b)
    assert a == [derived_seed(0, 3, i) for i in range(3)] == GallopSearch(upper=30, seeds=3).seeds_for(3)
    assert GallopSearch(upper=30, seeds=3, seed=1).seeds_for(3) != a  # the sweep seed moves them all
    shared = DepthSearch(upper=30, seeds=3, seed=5, seed_scheme="shared")
    assert shared.seeds_for(3) == shared.seeds_for(27) == [5, 6, 7]  # the original study's seeds


def test_a_seed_range_past_32_bits_or_an_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="2\\*\\*32-1"):
        DepthSearch(upper=30, seeds=3, seed=2**32 - 2, seed_scheme="shared")
    with pytest.raises(ValueError, match="unknown seed scheme 'random'"):
        GallopSearch(upper=30, seed_scheme="random")
    assert GallopSearch(upper=30, seeds=3, seed=2**32 - 1).seeds_for(3)  # derived seeds stay in range
