"""Plans and progress that count what is there: a dry run on a sweep dir with finished trials,
drawn futures for a refinement, wall time for parallel jobs, progress lines of a resumed run."""
import pytest

from deepdepth.search import GallopSearch, Refine
from deepdepth.sweep import CostModel, Options, Sweep, plan
from deepdepth.sweep.cost import calibrate_from_found, wall_seconds
from deepdepth.sweep.plan import PLAN_SLOPE, plan_chunks, trains, uniform
from deepdepth.sweep.records import Finished
from deepdepth.sweep.setup import chunks_summary, forecast
from test_sweep_driver import FakeBackend, combo


def pair(search=None):
    """Two combinations of one model that differ in their lr, each with its own search (with
    BatchNorm: their CPU jobs teach the cost model, no denormals)."""
    return [combo(i, ["model=cnn_tanh", f"optim.lr={lr}"], norm=True, search=search() if search else None)
            for i, lr in enumerate([0.01, 0.03])]


def finished_half(seconds=40.0):
    """A sweep of ``pair`` killed by its time budget, and the trials it left in the sweep dir."""
    disk = {}
    combos = pair()
    backend = FakeBackend({0: 12, 1: 9}, seconds=seconds, disk=disk, combos=combos)
    Sweep(None, combos, backend, CostModel("cpu"), Options(write=False, time_budget=6 * seconds),
          clock=lambda: backend.now).run()
    return disk


def test_wall_seconds_runs_jobs_on_the_first_free_worker():
    assert wall_seconds([10, 10], 2) == 10 and wall_seconds([10, 10, 10], 2) == 20
    assert wall_seconds([30, 10, 10], 2) == 30 and wall_seconds([30, 10, 10], 1) == 50
    assert wall_seconds([], 2) == 0


def test_a_plan_of_two_jobs_at_a_time_takes_half_their_job_seconds_in_wall_time():
    single = lambda: GallopSearch(seed_scheme="shared", upper=24, seeds=2, parallel=1)  # a job a round each
    one = plan(pair(single), {0: 12, 1: 12}, "cpu", Options())
    two = plan(pair(single), {0: 12, 1: 12}, "cpu", Options(), parallelism=2)
    assert one.jobs == two.jobs and one.seconds == pytest.approx(one.job_seconds)
    assert two.job_seconds == pytest.approx(one.job_seconds)
    assert two.seconds == pytest.approx(two.job_seconds / 2)  # every round: one job per combination
    assert "wall on cpu (" in two.summary() and "of job time, 2 jobs at a time" in two.summary()
    assert "job time" not in one.summary()
    runs = plan_chunks(pair(single), {0: 12, 1: 12}, "cpu", Options(), 1e9, parallelism=2)
    assert f"est. {two.summary().split('est. ')[1].split(' ')[0]} wall in all" in chunks_summary(runs, 1e9)


def test_a_dry_run_on_a_dir_with_finished_trials_counts_them_and_times_the_rest_by_their_seconds():
    """Played one job at a time (a budget), as the killed run launched them."""
    fresh = plan(pair(), {0: 12, 1: 9}, "cpu", Options(), budget=1e9)
    found = finished_half(seconds=40.0)
    rest = plan(pair(), {0: 12, 1: 9}, "cpu", Options(), found, budget=1e9)
    done_jobs = len({id(hit.result) for hit in found.values()})
    assert 0 < done_jobs < fresh.jobs and rest.jobs == fresh.jobs - done_jobs
    # the finished jobs took 40 s each: the rest is timed near that, not at the table's 2-3 s
    unmeasured = {key: Finished(hit.trial, {}, hit.job_dir, hit.job_num) for key, hit in found.items()}
    table = plan(pair(), {0: 12, 1: 9}, "cpu", Options(), unmeasured, budget=1e9)
    assert table.jobs == rest.jobs and table.seconds < 5 * table.jobs
    assert 20 * rest.jobs < rest.seconds < 80 * rest.jobs


def test_jobs_whose_every_trial_diverged_stopped_early_and_do_not_teach_the_cost_model():
    c = combo(0, ["model=cnn_tanh"], norm=True)
    result = {"k": 30, "seconds": 5.0, "device": "cpu", "model": "cnn_tanh",
              "trials": [{"seed": s, "k": 30, "trainable": False, "diverged": True} for s in (0, 1)]}
    found = {(c.key, 30, s): Finished(t, result, "/jobs/0", 0) for s, t in enumerate(result["trials"])}
    cost = CostModel("cpu")
    calibrate_from_found(cost, found, {c.key: (10, True)})
    assert cost._measured == []
    result["trials"][0]["diverged"] = False  # one replica trained to the end: a whole job
    calibrate_from_found(cost, found, {c.key: (10, True)})
    assert len(cost._measured) == 1


def test_simulated_trials_train_by_a_step_or_by_a_logistic_in_log_depth():
    assert trains(12, 12, 3, None, 0.99) and not trains(12, 15, 3, None, 0.0) and not trains(None, 3, 3, None, 0.0)
    draws = [uniform(0, 0, 27, s) for s in range(4000)]
    assert draws == [uniform(0, 0, 27, s) for s in range(4000)]  # fixed by its key
    at_k50 = sum(trains(25, 27, 4, PLAN_SLOPE, u) for u in draws) / len(draws)  # k50 = 25 + 4/2
    deep = sum(trains(25, 54, 4, PLAN_SLOPE, u) for u in draws) / len(draws)
    assert 0.45 < at_k50 < 0.55 and deep < 0.01


def test_a_refined_plan_draws_its_trials_and_adds_the_seeds_the_refinement_will():
    """A step at the limit leaves a refinement by fraction without k50 (every seed trains at 12,
    none at 15), so it runs every candidate depth to max_seeds; drawn trials give it a k50 and
    an interval that narrows, as real ones do."""
    refined = lambda: Refine(GallopSearch(seed_scheme="shared", upper=48, seeds=2, parallel=2), fraction=0.5,
                             max_seeds=24)
    base = plan(pair(lambda: GallopSearch(seed_scheme="shared", upper=48, seeds=2, parallel=2)), {0: 12, 1: 12},
                "cpu", Options())
    step = plan(pair(refined), {0: 12, 1: 12}, "cpu", Options())
    one = plan(pair(refined), {0: 12, 1: 12}, "cpu", Options(), slope=PLAN_SLOPE, draws=1)
    median = plan(pair(refined), {0: 12, 1: 12}, "cpu", Options(), slope=PLAN_SLOPE, draws=5)
    assert step.jobs > base.jobs and one.jobs > base.jobs and median.jobs > base.jobs
    assert median.jobs < step.jobs  # the step's refinement never narrows: 24 seeds at 12 and at 15
    again = plan(pair(refined), {0: 12, 1: 12}, "cpu", Options(), slope=PLAN_SLOPE, draws=5)
    assert (again.jobs, again.seconds, again.labels) == (median.jobs, median.seconds, median.labels)


def test_progress_of_a_resumed_run_counts_this_runs_jobs_against_its_own_forecast(tmp_path):
    found = finished_half(seconds=40.0)
    combos = pair()
    backend = FakeBackend({0: 12, 1: 9}, seconds=40.0)
    backend.parallelism = 2
    sweep = Sweep(tmp_path, combos, backend, CostModel("cpu"), Options(write=True), found=found,
                  clock=lambda: backend.now, forecast=lambda s: forecast(s, None, 2))
    lines = []
    sweep.say = lambda fmt, *args: lines.append(fmt % args)
    sweep.run()
    progress = [line for line in lines if line.startswith("bisect: round ")]
    assert progress and len(progress) < sweep.rounds  # the replayed rounds trained nothing: no line
    for line in progress:
        done, expected = line.split(": ", 2)[2].split(" jobs done")[0].split(" of ~")
        assert int(done) <= int(expected), line
        assert " this run, est. " in line and " wall left" in line
    assert progress[-1].split(": ", 2)[2].startswith(f"{sweep.jobs_done} of ~{sweep.jobs_done} jobs done")
    assert forecast(sweep, None, 2).jobs == 0


def test_a_cpu_cost_model_learns_a_models_speed_from_its_own_hosts_jobs_where_it_has_some():
    """Two CPU hosts stepped one network 2.5x apart: a model's jobs from this host teach it alone;
    a model with none from here learns from every host's; a host-less model learns from all."""
    here, there = {"cpu": "Xeon", "cores": 2, "torch_threads": 1}, {"cpu": "EPYC", "cores": 2, "torch_threads": 1}
    c, d = combo(0, ["model=cnn_elu"], norm=True), combo(1, ["model=cnn_tanh"], norm=True)

    def job(n, key, model, seconds, host):
        result = {"k": 30, "seconds": seconds, "device": "cpu", "model": model, "host": host,
                  "trials": [{"seed": 0, "k": 30, "trainable": True}]}
        return {(key, 30, n): Finished(result["trials"][0], result, f"/jobs/{n}", n)}

    found = {**job(0, c.key, "cnn_elu", 100.0, here), **job(1, c.key, "cnn_elu", 250.0, there),
             **job(2, d.key, "cnn_tanh", 80.0, there)}
    combos = {c.key: (10, True), d.key: (10, True)}
    mine, anyone = CostModel("cpu", host=here), CostModel("cpu")
    calibrate_from_found(mine, found, combos)
    calibrate_from_found(anyone, found, combos)
    assert [m for _, _, m in mine._measured] == [100.0, 80.0]  # cnn_tanh: no job from here, so there's
    assert [m for _, _, m in anyone._measured] == [100.0, 250.0, 80.0]
    assert mine.scale_for("cnn_elu") / anyone.scale_for("cnn_elu") == pytest.approx(100 / 175)
    other_threads = CostModel("cpu", host={**here, "torch_threads": 2})
    calibrate_from_found(other_threads, found, combos)
    assert len(other_threads._measured) == 3  # threads differ: not this host's jobs
