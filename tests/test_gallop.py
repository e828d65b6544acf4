"""GallopSearch: bisection's limit under every monotone oracle, at a fraction of the depth trained;
the search interface and the factory the sweeper uses."""
import random

import pytest

from deepdepth.search import DepthSearch, GallopSearch, Search, make_search


def rounds(search, oracle):
    """Drive a search; returns its rounds (lists of depths) in order."""
    out = []
    while not search.done:
        probes = search.next_probes()
        if probes:
            out.append(probes)
        for k in probes:
            search.record(k, [oracle(k, s) for s in search.seeds_for(k)])
    return out


def cost(rs):
    """What a round of packed probes costs on a launch-bound GPU: about its deepest probe."""
    return sum(max(r) for r in rs)


def below(limit):
    return lambda k, seed=0: k <= limit


@pytest.mark.parametrize("parallel", [1, 2, 3, 5])
@pytest.mark.parametrize("upper", [3, 24, 150, 451, 900])
def test_same_limit_as_bisection_under_every_monotone_oracle(parallel, upper):
    rng = random.Random(upper * 10 + parallel)
    for limit in range(0, upper + 4, 3):
        ref = DepthSearch(upper=upper)
        rounds(ref, below(limit))
        for hint in (None, rng.randrange(1, upper + 60), limit or 3):
            s = GallopSearch(upper=upper, parallel=parallel, hint=hint)
            rs = rounds(s, below(limit))
            assert (s.k_star, s.censored) == (ref.k_star, ref.censored), (limit, hint)
            assert max(k for r in rs for k in r) <= upper  # never past the bound
            verdicts = {h["k"]: h["trainable"] for h in s.history}
            if s.k_star is not None:
                assert verdicts[s.k_star] is True
            if not s.censored:  # the depth above the limit was trained and failed
                assert verdicts[(s.k_star or 0) + 3] is False


def test_random_monotone_oracles_with_seeds_and_rules():
    rng = random.Random(0)
    for _ in range(300):
        upper = rng.choice([24, 120, 300, 900])
        limits = {s: rng.randrange(0, upper + 6, 3) for s in range(3)}  # per-seed limits
        oracle = lambda k, seed: k <= limits[seed]
        rule = rng.choice(["majority", "all", "any"])
        ref = DepthSearch(upper=upper, seeds=3, rule=rule, seed_scheme="shared")  # a seed's own limit
        rounds(ref, oracle)
        s = GallopSearch(upper=upper, seeds=3, rule=rule, seed_scheme="shared", parallel=rng.randint(1, 4),
                         hint=rng.choice([None, rng.randrange(3, upper + 1)]))
        rounds(s, oracle)
        assert s.k_star == ref.k_star


def test_hint_that_holds_ends_in_one_round():
    s = GallopSearch(upper=900, parallel=3, hint=447)
    assert rounds(s, below(447)) == [[447, 450]]
    assert s.k_star == 447 and s.confirmed is True and not s.censored and s.rounds == 1


def test_bound_probed_once_a_doubling_passes_two_thirds_of_it():
    s = GallopSearch(upper=900, parallel=3, hint=447)
    assert rounds(s, below(10_000)) == [[447, 450], [600, 750, 900]]
    assert s.k_star == 900 and s.censored and s.confirmed is None


def test_cost_against_bisection():
    """Far cheaper with a hint or a limit well below the bound; without either, a deep limit
    costs about what k-ary bisection pays (its doublings buy back about one round)."""
    for limit, hint, ratio in [(12, None, 1 / 10), (93, 93, 1 / 5), (84, 120, 1 / 2), (447, 447, 1 / 5),
                               (156, None, 1 / 1.5), (447, None, 1.35)]:
        ref = DepthSearch(upper=900, parallel=3)
        s = GallopSearch(upper=900, parallel=3, hint=hint)
        assert cost(rounds(s, below(limit))) < ratio * cost(rounds(ref, below(limit))), (limit, hint)


def test_shallow_limit_without_hint_is_found_from_below():
    s = GallopSearch(upper=900, parallel=3)
    assert rounds(s, below(12)) == [[3, 6, 12], [15, 21, 24]]
    assert s.k_star == 12 and s.confirmed is True


def test_relative_resolution_stops_early_within_its_width():
    s = GallopSearch(upper=900, parallel=3, resolution=0.05)
    rounds(s, below(447))
    above = min(k for k, v in s.verdicts.items() if not v)
    assert s.k_star <= 447 < above and above - s.k_star <= 0.05 * s.k_star
    with pytest.raises(ValueError, match="resolution"):
        GallopSearch(upper=24, resolution=-1)


def test_nothing_trainable_and_crashes():
    s = GallopSearch(upper=24, parallel=2)
    rounds(s, below(0))
    assert s.k_star is None and s.confirmed is True
    s = GallopSearch(upper=24, seeds=2)
    rounds(s, lambda k, seed: None if k > 6 else True)
    assert s.k_star == 6 and s.crashed and s.confirmed is None


def test_interface_and_factory():
    for name, cls in [("bisect", DepthSearch), ("gallop", GallopSearch)]:
        s = make_search(name, upper=24, parallel=2, seeds=2, hint=12, seed=5)
        assert isinstance(s, cls) and isinstance(s, Search) and s.seeds == [5, 6]
    s = make_search({"_target_": "deepdepth.search.GallopSearch", "resolution": 0.1}, upper=24)
    assert isinstance(s, GallopSearch) and s.resolution == 0.1
    assert make_search("deepdepth.search.DepthSearch", upper=24, hint=3).parallel == 1  # hint ignored
    with pytest.raises(ValueError, match="unknown search"):
        make_search("golden", upper=24)
    with pytest.raises(ValueError, match="cannot be imported"):
        make_search("deepdepth.search.Nope", upper=24)


@pytest.mark.parametrize("parallel", [2, 3, 5])
def test_skipping_moot_probes_keeps_the_limit_and_trains_less(parallel):
    """Each round's probes in order, a moot one (above a failure of its round) skipped: the same
    k* as training them all, under every monotone oracle, with or without a hint."""
    skipped = 0
    for limit in range(0, 153, 3):
        for hint in (None, limit + 30):
            full = GallopSearch(upper=150, parallel=parallel, hint=hint)
            rounds(full, below(limit))
            s = GallopSearch(upper=150, parallel=parallel, hint=hint)
            while not s.done:
                known = {}
                for k in s.next_probes():
                    if s.moot(k, known):
                        s.skip(k)
                        continue
                    known[k] = [below(limit)(k)]
                    s.record(k, known[k])
            assert (s.k_star, s.censored, s.confirmed) == (full.k_star, full.censored, full.confirmed), (limit, hint)
            skipped += len(s.skipped)
    assert skipped > 0
