"""order="cost": the probe order of least expected device seconds gives bisection's limit under
every monotone oracle, never probes past the bound or a known failure, and costs no more than
gallop's order averaged over its prior (the simulated cost: a sum of round costs, deterministic)."""
import copy
import random

import numpy as np
import pytest

from deepdepth.search import DepthSearch, GallopSearch
from deepdepth.search.order import CostOrder, limit_prior
from deepdepth.sweep.combos import SweepError
from deepdepth.sweep.options import SweeperOptions


def packed(k, probes):
    """A launch-bound GPU round: a job's fixed seconds, then the deepest depth times the packed
    replicas at a per-replica cost that falls as more are packed (cost.py's table, roughly)."""
    return 8.0 + k * probes ** 0.6


def lone(k, probes):
    return float(k) * probes  # one job per probe: a round costs the sum (here each at its deepest)


def drive(search, oracle, cost):
    """Run a search to the end: its simulated seconds, and every round's (lo, hi) and probes."""
    spent, seen = 0.0, []
    while not search.done:
        probes = search.next_probes()
        if not probes:
            continue
        spent += cost(max(probes), len(probes))
        seen.append(((getattr(search, "lo", None), getattr(search, "hi", None)), [search.index(k) for k in probes]))
        for k in probes:
            search.record(k, [oracle(k, s) for s in search.seeds_for(k)])
    return spent, seen


def test_same_limit_as_bisection_never_past_the_bound_or_a_failure():
    rng = random.Random(0)
    for case in range(250):
        upper = rng.choice([24, 60, 150, 300, 24, 60, 150, 900])
        seeds = rng.choice([1, 3])
        parallel = rng.choice([1, 2, 3, 4])
        below_first, past_bound = 0, upper + 3 * rng.randint(1, 5)
        limits = {s: rng.choice([below_first, past_bound, rng.randrange(3, upper + 1, 3)]) for s in range(seeds)}
        oracle = lambda k, seed: k <= limits[seed]  # majority over seeds: monotone in k  # noqa: E731
        ref = DepthSearch(upper=upper, seeds=seeds, seed_scheme="shared")
        drive(ref, oracle, lone)
        hint = rng.choice([None, rng.randrange(3, 2 * upper, 3)])
        s = GallopSearch(upper=upper, seeds=seeds, seed_scheme="shared", parallel=parallel, hint=hint,
                         order="cost", cost=rng.choice([None, packed, lone]))
        _, seen = drive(s, oracle, packed)
        assert (s.k_star, s.censored) == (ref.k_star, ref.censored), (case, limits, hint)
        for (lo, hi), probes in seen:
            assert all(lo < i < hi for i in probes), (case, lo, hi, probes)  # inside what is unknown
            assert len(probes) <= parallel and max(probes) <= len(s.grid) - 1  # never past the bound
        failed = [h["k"] for h in s.history if not h["trainable"]]
        assert all(h["k"] < min(failed, default=10**9) or not h["trainable"] for h in s.history)
        if s.k_star is not None:
            assert any(h["k"] == s.k_star and h["trainable"] for h in s.history)


def oracle_for(search, limit_index):
    """A monotone oracle whose limit is grid index L (-1: nothing trains; last: the bound trains)."""
    depth = search.k(limit_index) if limit_index >= 0 else 0
    return lambda k, seed=0: k <= depth


@pytest.mark.parametrize("upper, hint, parallel, cost", [
    (900, 447, 1, lone), (900, 447, 3, packed), (900, None, 1, lone), (900, None, 3, packed),
    (150, 93, 3, packed), (120, 84, 1, lone), (300, 156, 2, packed), (24, None, 3, packed)])
def test_expected_seconds_over_the_prior_no_more_than_gallop_or_bisection(upper, hint, parallel, cost):
    grid = list(range(3, upper + 1, 3))
    prior = limit_prior(grid, hint)
    expected = {}
    for name, make in (("cost", lambda: GallopSearch(upper=upper, parallel=parallel, hint=hint, order="cost",
                                                     cost=cost)),
                       ("gallop", lambda: GallopSearch(upper=upper, parallel=parallel, hint=hint)),
                       ("bisect", lambda: DepthSearch(upper=upper, parallel=parallel))):
        total, template = 0.0, make()
        template.next_probes()  # its first round open (and the cost order's table built): copied per limit
        for index in range(-1, len(grid)):
            s = copy.deepcopy(template)
            spent, _ = drive(s, oracle_for(s, index), cost)
            assert s.k_star == (grid[index] if index >= 0 else None)
            total += prior[index + 1] * spent
        expected[name] = total
    assert expected["cost"] <= expected["gallop"] + 1e-9 and expected["cost"] <= expected["bisect"] + 1e-9
    # the programme's own expectation is what the searches it orders spend, limit by limit
    planner = CostOrder(grid, prior, cost, parallel)
    assert planner.expected(-1, len(grid)) == pytest.approx(expected["cost"], rel=1e-9)


def test_where_the_hint_holds_it_probes_the_hint_and_the_depth_above_it():
    for parallel, rounds in ((1, [[447], [450]]), (3, [[447, 450]])):
        s = GallopSearch(upper=900, parallel=parallel, hint=447, order="cost", cost=packed)
        _, seen = drive(s, lambda k, seed: k <= 447, packed)
        assert [[s.k(i) for i in probes] for _, probes in seen] == rounds
        assert s.k_star == 447 and s.confirmed is True


def test_a_limit_just_past_the_hint_is_found_without_training_the_bound():
    s = GallopSearch(upper=900, parallel=1, hint=447, order="cost", cost=packed)
    _, seen = drive(s, lambda k, seed: k <= 450, packed)
    assert s.k_star == 450 and max(max(probes) for _, probes in seen) < len(s.grid) // 2 + 20


def test_prior_weights_sum_to_one_and_peak_at_the_hint():
    grid = list(range(3, 901, 3))
    for hint in (None, 447, 2, 5000):
        p = limit_prior(grid, hint)
        assert len(p) == len(grid) + 1 and p.min() > 0 and p.sum() == pytest.approx(1.0)
    p = limit_prior(grid, 447)
    assert int(np.argmax(p)) == grid.index(447) + 1  # entry L+1 is the limit at grid index L


def test_a_lone_probe_that_is_free_is_taken_first():
    free = {600}
    s = GallopSearch(upper=900, parallel=1, hint=447, order="cost",
                     cost=lambda k, n: 0.0 if (n == 1 and k in free) else lone(k, n))
    assert s.next_probes() == [600]


def test_bad_orders_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown order 'fast'"):
        GallopSearch(order="fast")
    with pytest.raises(SweepError, match=r"hydra.sweeper.order must be one of \['gallop', 'cost'\].*got 'fast'"):
        SweeperOptions(upper=90, order="fast").check()
    with pytest.raises(SweepError, match="got {'resnet': 'quick'}"):
        SweeperOptions(upper=90, order={"resnet": "quick"}).check()
    SweeperOptions(upper=90, order={"resnet": "cost"}).check()


def test_the_sweeper_builds_the_order_per_combination_and_refuses_it_for_bisection():
    from deepdepth.sweep.setup import build_searches

    opts = SweeperOptions(upper=90, order={"resnet": "cost"}, upper_for={"resnet": 900})
    a, b = build_searches([["model=resnet"], ["model=cnn_tanh"]], opts, 0)
    assert (a.order, b.order, a.upper, b.upper) == ("cost", "gallop", 900, 90)
    with pytest.raises(ValueError, match="order 'cost' needs a search that takes an order"):
        build_searches([["model=resnet"]], SweeperOptions(upper=90, order="cost", search="bisect"), 0)


def test_a_partly_trained_depth_packs_with_the_depth_above_where_that_is_cheaper():
    """447 has some seeds trained: a round of it and 450 trains only the missing ones beside 450's,
    cheaper than two lone jobs; the programme's expectation still matches what the search spends."""
    unpacked = lambda k, n: n * (8.0 + k)  # noqa: E731  (no other round packs cheaper than lone probes)
    pair = lambda top: 8.0 + 1.1 * top  # noqa: E731

    def charged(probes):
        return pair(max(probes)) if len(probes) == 2 and min(probes) == 447 else unpacked(max(probes), len(probes))

    grid = list(range(3, 901, 3))
    prior = limit_prior(grid, 447)
    for pairs, first in ((None, [447]), ({447: pair}, [447, 450])):
        template = GallopSearch(upper=900, parallel=3, hint=447, order="cost")
        template.price(unpacked, pairs)
        assert template.next_probes() == first
        total = 0.0
        for index in range(-1, len(grid)):
            s = copy.deepcopy(template)
            oracle = oracle_for(s, index)
            while not s.done:
                probes = s.next_probes()
                total += prior[index + 1] * (charged(probes) if probes else 0.0)
                for k in probes:
                    s.record(k, [oracle(k)])
            assert s.k_star == (grid[index] if index >= 0 else None)
        if pairs:
            assert CostOrder(grid, prior, unpacked, 3, pairs=pairs).expected(-1, len(grid)) == pytest.approx(total)
            assert total < without
        without = total
