"""Refine: the base search unchanged, then seeds where they narrow the k50 interval (how often
that interval holds the true k50: tests/test_calibration.py, deepdepth/search/calibration.py)."""
import pytest

from deepdepth.search import GallopSearch, Refine, Search


def drive(search, oracle):
    """Run a search to the end with oracle(k, seed) -> bool|None; returns (k, seeds) per probe."""
    probes = []
    while not search.done:
        for k in search.next_probes():
            seeds = search.seeds_for(k)
            probes.append((k, seeds))
            search.record(k, [oracle(k, s) for s in seeds])
    return probes


def step_at(limit):
    return lambda k, seed: k <= limit


def noisy(limit, every=3):
    """Every third seed fails at the limit itself: a crossing the data can place inside a step."""
    return lambda k, seed: k < limit or (k == limit and seed % every != 0)


def test_base_phase_is_the_base_search():
    bare = GallopSearch(upper=150, seeds=3, parallel=3, hint=40)
    wrapped = Refine(GallopSearch(upper=150, seeds=3, parallel=3, hint=40), width=1)
    assert isinstance(wrapped, Search)
    plain = drive(bare, noisy(42))
    both = drive(wrapped, noisy(42))
    assert both[:len(plain)] == plain
    assert (wrapped.k_star, wrapped.censored, wrapped.confirmed) == (bare.k_star, bare.censored, bare.confirmed)
    assert wrapped.history[:len(bare.history)] == bare.history
    refine = [h for h in wrapped.history if h.get("phase") == "refine"]
    assert refine and wrapped.rounds == bare.rounds + wrapped.refine_rounds
    assert wrapped.trials == sum(len(s) for _, s in both)


def test_refinement_seeds_are_new_at_every_depth():
    s = Refine(GallopSearch(upper=60, seeds=3, seed=10, seed_scheme="shared"), width=1, max_seeds=11, batch=4)
    probes = drive(s, noisy(30))
    used: dict[int, list[int]] = {}
    for k, seeds in probes:
        used.setdefault(k, []).extend(seeds)
    for k, seeds in used.items():
        assert len(seeds) == len(set(seeds)) <= 11, k
    for h in s.history:
        if h.get("phase") == "refine":
            assert min(h["seeds"]) >= 13 and len(h["seeds"]) == len(h["verdicts"]) <= 4
    assert max(k for k, _ in probes) <= 60 and min(k for k, _ in probes) >= 3


def test_independent_refinement_seeds_differ_across_depths_and_extend_a_shared_base():
    """A study trained with shared seeds adds independent ones: the base keeps its seeds, the
    added seeds at one depth are none of another depth's, and none repeats at its depth."""
    s = Refine(GallopSearch(upper=60, seeds=3, seed_scheme="shared"), width=1, max_seeds=11, batch=4,
               seed_scheme="independent")
    probes = drive(s, noisy(30))
    added: dict[int, set[int]] = {}
    for h in s.history:
        if h.get("phase") == "refine":
            added.setdefault(h["k"], set()).update(h["seeds"])
    assert len(added) >= 2 and all(min(v) > 2 for v in added.values())
    depths = sorted(added)
    assert not added[depths[0]] & added[depths[1]]
    for k in depths:
        seeds = [seed for kk, ss in probes if kk == k for seed in ss]
        assert len(seeds) == len(set(seeds)) <= 11 and {0, 1, 2} & set(seeds) in (set(), {0, 1, 2})


def test_a_step_narrower_than_the_grid_is_not_reached_and_says_so():
    """A deterministic limit: every seed trains at 30 and fails at 33, so no number of seeds
    places the crossing inside the step; refinement ends at max_seeds without claiming it."""
    s = Refine(GallopSearch(upper=90, seeds=3), width=2, max_seeds=12, batch=4)
    drive(s, step_at(30))
    assert s.done and not s.reached and "not reached" in s.stopped
    assert s.k_star == 30 and s.confirmed is True
    assert s.interval.low == pytest.approx(30, rel=0.01) and s.interval.high == pytest.approx(33, rel=0.01)
    assert s.seeds_at[30] == s.seeds_at[33] == 12
    assert all(n <= 12 for n in s.seeds_at.values())


def test_mixed_verdicts_inside_the_step_reach_the_width():
    s = Refine(GallopSearch(upper=90, seeds=3, seed_scheme="shared"), width=3, max_seeds=24, batch=4)
    drive(s, noisy(30))
    assert s.reached and s.interval.high - s.interval.low < 3
    assert s.interval.low < 30 < s.interval.high  # 2 in 3 seeds train at 30, none at 33
    assert s.next_probes() == []


def test_censored_or_nothing_trainable_has_no_crossing_to_refine():
    s = Refine(GallopSearch(upper=24, seeds=3), width=3)
    drive(s, step_at(100))
    assert s.done and s.censored and not s.reached and "censored" in s.stopped
    assert s.interval is None and all(h.get("phase") != "refine" for h in s.history)
    s = Refine(GallopSearch(upper=24, seeds=3), width=3)
    drive(s, step_at(0))
    assert s.done and s.k_star is None and "nothing trainable" in s.stopped and s.interval is None


def test_crashed_trials_use_up_seeds_but_are_not_counted():
    crash_odd = lambda k, seed: None if seed % 2 else k <= 30 or (k == 33 and seed % 4 == 0)
    s = Refine(GallopSearch(upper=90, seeds=3, seed_scheme="shared"), width=1, max_seeds=12)
    drive(s, crash_odd)
    assert all(s.seeds_at[k] == sum(v is not None for _, v in t) for k, t in s.tried.items())
    assert max(len(t) for t in s.tried.values()) == 12 and max(s.seeds_at.values()) == 6
    ks, ys = s.pairs()
    assert len(ks) == sum(s.seeds_at.values()) and set(ys) == {True, False}


def test_record_checks_the_probe_and_its_seeds():
    s = Refine(GallopSearch(upper=60, seeds=3), width=1)
    while not any(h.get("phase") == "refine" for h in s.history):
        ks = s.next_probes()
        for k in ks:
            s.record(k, [noisy(30)(k, x) for x in s.seeds_for(k)])
    k = s.next_probes()[0]
    with pytest.raises(ValueError, match="verdicts"):
        s.record(k, [True] * (len(s.seeds_for(k)) + 1))
    with pytest.raises(ValueError):
        s.record(59, [True])  # not an open probe
    with pytest.raises(ValueError):
        Refine(GallopSearch(seeds=3), width=0)
    with pytest.raises(ValueError, match="max_seeds"):
        Refine(GallopSearch(seeds=3), width=3, max_seeds=2)


def test_a_fraction_of_k50_sets_the_width_to_reach():
    s = Refine(GallopSearch(upper=90, seeds=3, seed_scheme="shared"), fraction=0.25, max_seeds=24, batch=4)
    drive(s, noisy(30))
    iv = s.interval
    assert s.reached and iv.high - iv.low < 0.25 * iv.k50 and "0.25 of k50" in s.stopped
    with pytest.raises(ValueError, match="width .* or a fraction"):
        Refine(GallopSearch(upper=90), max_seeds=24)
