"""The sweep loop without Hydra: a fake backend trains instantly from an oracle, a fake clock
charges each job, so sharing, retries, the time budget and the plan are tested in milliseconds."""
from dataclasses import replace
from pathlib import Path

import pytest

from deepdepth.search import DepthSearch, GallopSearch
from deepdepth.sweep import Combo, Composed, CostModel, Options, Outcome, Sweep, plan
from deepdepth.sweep.budget import split
from deepdepth.sweep.plan import plan_chunks
from deepdepth.sweep.setup import chunks_summary
from deepdepth.sweep.trials import Job, Trial
from deepdepth.sweep.cost import denormal_slowed, duration, steps_per_trial
from deepdepth.sweep.records import Finished, flat, written_history_rows


class FakeBackend:
    """Trains ``job.k <= limit`` for every seed; each job costs ``seconds`` on the fake clock (or
    ``seconds(job)``)."""

    def __init__(self, limits, seconds=10.0, fail=(), disk=None, combos=None):
        self.limits, self.seconds, self.fail = limits, seconds, set(fail)
        self.now, self.launched, self.jobs, self.parallelism = 0.0, [], [], 1
        self.disk, self.combos = disk, combos  # finished trials, as a resume would find them

    def compose(self, overrides):
        return None

    def launch(self, jobs, start):
        out = []
        for job in jobs:
            seconds = self.seconds(job) if callable(self.seconds) else self.seconds
            self.now += seconds
            self.launched.append((job.combo, job.k, tuple(job.seeds)))
            self.jobs.append(job)
            if (job.combo, job.k) in self.fail:
                self.fail.discard((job.combo, job.k))  # fails once, then the retry succeeds
                out.append(Outcome(error="RuntimeError: boom"))
                continue
            trials = [{"seed": s, "k": k, "trainable": k <= self.limits[ci], "train_err": [0.1],
                       "test_err": [0.1]} for ci, k, s in job.replicas]
            result = {"k": job.k, "trials": trials, "seconds": seconds, "model": "m", "device": "cpu"}
            out.append(Outcome(result=result, job_dir=f"/jobs/{start}"))
            if self.disk is not None:
                for t, (ci, _, _) in zip(trials, job.replicas):
                    key = (self.combos[ci].key, t["k"], t["seed"])
                    assert key not in self.disk  # never trained twice
                    self.disk[key] = Finished(t, result, "/x", start)
        return out


def combo(i, overrides, norm=False, search=None, model="cnn_tanh", init=None):
    return Combo(i, overrides, search or GallopSearch(seed_scheme="shared", upper=24, seeds=2, parallel=2),
                 Composed(model=model, lr=0.01, protocol="correct", norm=norm, steps=10, train_steps=10, init=init))


GAINS = ["fan_in:0.5", "fan_in:0.7", "fan_in:0.9"]


def gain_combos(extra=()):
    return [combo(i, ["model=cnn_tanh_newinit", f"model.init={g.replace(':', chr(92) + ':')}", *extra],
                  init=g) for i, g in enumerate(GAINS)]


def make(combos, backend, **options):
    return Sweep(None, combos, backend, CostModel("cpu"), Options(write=False, **options), clock=lambda: backend.now)


def test_protocol_free_combinations_share_every_trial():
    combos = [combo(0, ["model=cnn_tanh", "protocol=correct"]), combo(1, ["model=cnn_tanh", "protocol=original"])]
    backend = FakeBackend({0: 9, 1: 9})
    sweep = make(combos, backend)
    rows = sweep.run()
    assert [r["k_star"] for r in rows] == [9, 9]
    assert all(c == 0 for c, _, _ in backend.launched)  # trained once, for the first combination
    shared = [t for t in sweep.history if t.status == "shared"]
    assert len(shared) == rows[1]["trials"] and {t.shared_from for t in shared} == {0}


def test_a_resumed_sweep_reads_a_protocol_free_trial_once_and_shares_it():
    """Both protocols of a BatchNorm-free variant read a finished trial back: the first combination
    reads it, the second shares it, so the report's "Trained on" counts each trial once."""
    def protocols():
        return [combo(0, ["model=cnn_tanh", "protocol=correct"]), combo(1, ["model=cnn_tanh", "protocol=original"])]
    disk = {}
    first = make(protocols(), FakeBackend({0: 9, 1: 9}, disk=disk, combos=protocols()))
    first.run()
    again = FakeBackend({0: 9, 1: 9})
    rerun = Sweep(None, protocols(), again, CostModel("cpu"), Options(write=False), found=dict(disk),
                  clock=lambda: again.now)
    rows = rerun.run()
    assert [r["k_star"] for r in rows] == [9, 9] and again.launched == []
    statuses = {(t.combo, t.status, t.shared_from) for t in rerun.history}
    assert statuses == {(0, "resumed", None), (1, "shared", 0)}
    assert len(rerun.history) == 2 * len(disk) and rows[1]["shared_trials"] == len(disk)


def test_a_resume_that_does_not_ask_for_a_finished_trial_still_records_it(tmp_path):
    """A resume under other options (a higher ``refine.max_seeds``) may replay a path that stops
    before a trial the last run trained: history.csv keeps it (``kept``, shared by the second
    protocol), so the report's k50 rests on every finished trial, and nothing is retrained."""
    import csv

    def protocols():
        return [combo(0, ["model=cnn_tanh", "protocol=correct"]), combo(1, ["model=cnn_tanh", "protocol=original"])]
    disk = {}
    make(protocols(), FakeBackend({0: 9, 1: 9}, disk=disk, combos=protocols())).run()
    key = protocols()[0].key
    disk[key, 21, 7] = Finished({"seed": 7, "k": 21, "trainable": False, "test_err": [0.9]}, {"device": "cpu"},
                                tmp_path / "99", 99)  # trained under options this run does not have
    again = FakeBackend({0: 9, 1: 9})
    rerun = Sweep(tmp_path, protocols(), again, CostModel("cpu"), Options(), found=dict(disk), clock=lambda: again.now)
    rows = rerun.run()
    assert again.launched == [] and rows[0]["trials"] == len(disk) - 1  # the search's own trials
    with open(tmp_path / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert {(int(r["k"]), int(r["seed"])) for r in history} == {(k, s) for _, k, s in disk}
    extra = [(r["combo"], r["status"], r["shared_from"], r["job_num"]) for r in history if r["k"] == "21"]
    assert extra == [("0", "kept", "", "99"), ("1", "shared", "0", "99")]


def test_only_trains_the_chosen_combinations_and_the_rest_resume_later():
    """``only`` works on one part of a study: the other combinations read back what they have,
    train nothing and stay unfinished; a run without it finishes them, retraining nothing."""
    from deepdepth.sweep.setup import focused

    def study():
        return [combo(0, ["model=cnn_tanh"]), combo(1, ["model=cnn_elu"]), combo(2, ["model=resnet_nobn"])]
    disk = {}
    half = FakeBackend({0: 9, 1: 12, 2: 15}, disk=disk, combos=study())
    first = make(study(), half, time_budget=25)  # the first run stops early
    first.run()
    before = dict(disk)
    focus = FakeBackend({0: 9, 1: 12, 2: 15}, disk=disk, combos=study())
    sweep = Sweep(None, study(), focus, CostModel("cpu"), Options(write=False, only=focused(study(), ["cnn_elu"])),
                  found=dict(disk), clock=lambda: focus.now)
    rows = sweep.run()
    assert focus.launched and {c for c, _, _ in focus.launched} == {1}
    assert [r["done"] for r in rows] == [False, True, False] and rows[1]["k_star"] == 12
    assert {key for key in before if key[0] != study()[1].key} <= {(study()[t.combo].key, t.k, t.seed)
                                                                  for t in sweep.history}  # read back
    rest = FakeBackend({0: 9, 1: 12, 2: 15}, disk=disk, combos=study())
    rows = Sweep(None, study(), rest, CostModel("cpu"), Options(write=False), found=dict(disk),
                 clock=lambda: rest.now).run()
    assert [r["k_star"] for r in rows] == [9, 12, 15] and {c for c, _, _ in rest.launched} <= {0, 2}
    with pytest.raises(ValueError, match=r"only=\['cnn_tnah'\] matches no combination"):
        focused(study(), ["cnn_elu", "cnn_tnah"])
    assert focused(study(), []) is None and focused(study(), ["model=resnet_nobn"]) == {2}


def test_history_rows_say_where_their_job_trained_and_how_long_it_took():
    """A study resumed on other machines keeps each trial's device (GPU sittings, a CPU chunk)."""
    combos = [combo(0, ["model=cnn_tanh", "protocol=correct"]), combo(1, ["model=cnn_tanh", "protocol=original"])]
    backend = FakeBackend({0: 9, 1: 9}, seconds=7.0)
    sweep = make(combos, backend)
    sweep.run()
    rows = [t.row({}) for t in sweep.history]
    assert rows and {(r["device"], r["job_seconds"]) for r in rows} == {("cpu", 7.0)}  # shared rows too
    named = {"device": "cuda:0", "device_name": "NVIDIA H200", "seconds": 3.5, "k": 6, "trials": []}
    t = Trial.from_result(0, 6, 0, "resumed", {"trainable": True}, named)
    assert (t.device, t.job_seconds) == ("NVIDIA H200", 3.5)  # the model where recorded, else the device


def test_batchnorm_combinations_train_their_own_trials():
    combos = [combo(0, ["model=resnet", "protocol=correct"], norm=True),
              combo(1, ["model=resnet", "protocol=original"], norm=True)]
    backend = FakeBackend({0: 9, 1: 6})
    rows = make(combos, backend).run()
    assert [r["k_star"] for r in rows] == [9, 6] and {c for c, _, _ in backend.launched} == {0, 1}


def test_failed_job_is_retried():
    backend = FakeBackend({0: 9}, fail={(0, 3)})
    sweep = make([combo(0, ["model=a"])], backend, retries=1)
    rows = sweep.run()
    assert rows[0]["k_star"] == 9 and rows[0]["failed_trials"] == 2
    assert [t.attempt for t in sweep.history if t.k == 3 and t.status == "failed"] == [0, 0]


def test_time_budget_stops_before_a_job_predicted_to_end_late_and_resume_finishes():
    limits, disk, runs = {0: 12, 1: 6}, {}, 0
    while True:
        combos = [combo(0, ["model=a"]), combo(1, ["model=b"])]
        backend = FakeBackend(limits, seconds=10, disk=disk, combos=combos)
        sweep = make(combos, backend, time_budget=35)
        sweep.cost.scale = 5.0  # the model predicts ~10 s a job, as measured
        sweep.found = dict(disk)
        rows = sweep.run()
        runs += 1
        assert backend.now <= 35  # no job ends past the budget
        if all(r["done"] for r in rows):
            break
        assert sweep.out_of_time and not any(r["done"] and r["k_star"] is None for r in rows) and runs < 10
    assert runs > 1 and [r["k_star"] for r in rows] == [12, 6]


def resumed_runs(make_combos, limits, budget, seconds, runs=40, **options):
    """Run a budgeted sweep again and again, each run resuming the trials the last ones finished,
    until it is done; every launched job and each run's clock."""
    disk, jobs, clocks = {}, [], []
    for _ in range(runs):
        combos = make_combos()
        backend = FakeBackend(limits, seconds=seconds, disk=disk, combos=combos)
        sweep = Sweep(None, combos, backend, CostModel("h200"), Options(write=False, time_budget=budget, **options),
                      found=dict(disk), clock=lambda: backend.now)
        rows = sweep.run()
        jobs += backend.jobs
        clocks.append(backend.now)
        if all(r["done"] for r in rows):
            return rows, jobs, clocks
    raise AssertionError(f"not done after {runs} runs: {clocks}")


def test_a_job_longer_than_the_whole_budget_is_split_so_the_study_never_sticks():
    """resnet probes at 600/750/900 packed 9 wide cost more than a 7-minute run: split by depth
    (600 and 750 then cost their own depth), then by seeds, each run finishes what fits."""
    cost = CostModel("h200")
    steps = steps_per_trial(3, 60000, 10000, 256)
    make_combos = lambda: [Combo(0, ["model=resnet"], GallopSearch(seed_scheme="shared", upper=900, seeds=3, parallel=3, hint=447),
                                 Composed(model="resnet", lr=0.01, norm=True, steps=steps, train_steps=705))]
    whole = cost.job_seconds(900, 9, steps)
    budget = 0.6 * whole
    assert cost.job_seconds(447, 6, steps) < budget < whole
    predicted = lambda job: cost.job_seconds(job.k, len(job.seeds), job.steps)
    rows, jobs, clocks = resumed_runs(make_combos, {0: 900}, budget, predicted, mix_depths=True)
    assert (rows[0]["k_star"], rows[0]["censored"]) == (900, True) and max(clocks) <= budget
    assert all(predicted(j) <= budget for j in jobs)
    assert any(j.k == 900 and j.depths is None for j in jobs)  # the deepest probe apart, its seeds halved
    assert any(j.depths for j in jobs)  # packs that fit stay mixed
    rows, jobs, clocks = resumed_runs(make_combos, {0: 700}, budget, predicted, mix_depths=True)
    assert rows[0]["k_star"] == 699 and max(clocks) <= budget
    assert rows[0]["skipped"] == [900] and max(j.k for j in jobs) == 750  # moot once 750 failed: not trained


def test_a_job_that_does_not_fit_what_is_left_waits_while_shorter_ones_go():
    cost = CostModel("cpu")
    combos = [Combo(i, [f"model={m}"], DepthSearch(seed_scheme="shared", upper=24, seeds=1), Composed(model=m, lr=0.01, steps=steps))
              for i, (m, steps) in enumerate([("a", 200), ("b", 150), ("c", 50)])]
    backend = FakeBackend({0: 24, 1: 24, 2: 24}, seconds=lambda job: cost.job_seconds(job.k, 1, job.steps))
    sweep = Sweep(None, combos, backend, cost, Options(write=False, time_budget=16), clock=lambda: backend.now)
    sweep.run()
    assert [cost.job_seconds(12, 1, s) for s in (200, 150, 50)] == pytest.approx([11.1, 8.8, 4.3], abs=0.1)
    assert sweep.out_of_time and [c for c, _, _ in backend.launched] == [0, 2]  # b's would end at 20 s


def test_a_job_whose_one_trial_is_longer_than_the_budget_stays_whole_and_is_named(caplog):
    backend = FakeBackend({0: 447}, seconds=100.0)
    sweep = Sweep(None, [combo(0, ["model=resnet"], search=DepthSearch(seed_scheme="shared", upper=900, seeds=3), norm=True)], backend,
                  CostModel("h200"), Options(write=True, time_budget=1), clock=lambda: backend.now)
    sweep.write = lambda: None
    with caplog.at_level("INFO", logger="deepdepth.sweep"):
        rows = sweep.run()
    assert backend.launched == [] and sweep.out_of_time and not rows[0]["done"]
    # the 3 seeds stay one job: splitting them would only cost packing
    assert "1 jobs cannot run under the time budget of 1s, not even one trial of each (cnn_tanh k=450)" in caplog.text
    assert "smaller than one job" in caplog.text


def test_a_resumed_sweep_judges_its_first_launch_by_the_finished_jobs_on_its_kind_of_device():
    c = combo(0, ["model=resnet"], norm=True)
    predicted = CostModel("h200").job_seconds(447, 2, 10)

    def job(num, seconds, **device):  # a finished job of two replicas at k=447, seeds 2*num and 2*num+1
        trials = [{"k": 447, "seed": s, "trainable": True} for s in (2 * num, 2 * num + 1)]
        result = {"k": 447, "trials": trials, "seconds": seconds, **device}
        return {(c.key, 447, t["seed"]): Finished(t, result, f"/jobs/{num}", num) for t in trials}

    found = {**job(0, 2 * predicted, device="cuda:0", device_name="NVIDIA H200"),
             **job(1, 2 * predicted, device="cuda:0")}  # before device_name: a CUDA device
    sweep = Sweep(None, [c], FakeBackend({0: 9}), CostModel("h200"), Options(write=False), found=found)
    assert sweep.cost.scale == pytest.approx(2.0) and len(sweep.cost._measured) == 2  # each job once, not per trial
    elsewhere = {**job(0, 5 * predicted, device="cuda:0", device_name="NVIDIA H100 80GB HBM3"),
                 **job(1, 9 * predicted, device="cpu", device_name="cpu")}
    assert len(elsewhere) == 4
    other = Sweep(None, [c], FakeBackend({0: 9}), CostModel("h200"), Options(write=False), found=elsewhere)
    assert other.cost.scale == 1.0


def test_a_job_of_scattered_seeds_lists_them():
    assert Job(0, 9, [0, 2], 1.0).launch_overrides() == ["k=9", "seed=0", "replicas=2", "seeds=[0,2]"]
    assert Job(0, 9, [1, 2], 1.0).launch_overrides() == ["k=9", "seed=1", "replicas=2"]


def test_plan_matches_what_the_sweep_launches_under_its_assumed_limits():
    combos = [combo(0, ["model=a"], search=GallopSearch(seed_scheme="shared", upper=300, seeds=3, parallel=3, hint=150)),
              combo(1, ["model=b"], search=DepthSearch(seed_scheme="shared", upper=24, seeds=3))]
    p = plan(combos, {0: 156, 1: 12}, "h200", Options())
    backend = FakeBackend({0: 156, 1: 12})
    make(combos, backend).run()
    assert p.jobs == len(backend.launched)
    assert p.work == sum(k * len(seeds) * 10 for _, k, seeds in backend.launched)
    assert combos[0].search.rounds > 0 and p.summary().startswith(f"plan: {p.jobs} jobs")
    assert p.seconds == pytest.approx(sum(CostModel("h200").job_seconds(k, len(s), 10) for _, k, s in backend.launched))


def test_a_plan_in_runs_of_a_budget_counts_the_runs_and_resumes_between_them():
    combos = [combo(0, ["model=a"], search=GallopSearch(seed_scheme="shared", upper=300, seeds=3, parallel=3, hint=150)),
              combo(1, ["model=b"], search=DepthSearch(seed_scheme="shared", upper=24, seeds=3))]
    whole = plan(combos, {0: 156, 1: 12}, "h200", Options())
    budget = 2.5 * max(CostModel("h200").job_seconds(300, 3, 10), CostModel("h200").job_seconds(24, 3, 10))
    runs = plan_chunks(combos, {0: 156, 1: 12}, "h200", Options(), budget)
    assert len(runs) > 1 and runs[-1].done and not any(r.done for r in runs[:-1])
    waves = plan(combos, {0: 156, 1: 12}, "h200", Options(), budget=1e9)  # one job at a time: moot ones dropped
    assert waves.jobs < whole.jobs and waves.work < whole.work
    assert all(r.seconds <= budget for r in runs) and sum(r.jobs for r in runs) == waves.jobs  # none trained twice
    assert sum(r.work for r in runs) == waves.work
    assert combos[0].search.rounds == 0  # the plan works on copies
    stuck = plan_chunks(combos, {0: 156, 1: 12}, "h200", Options(), budget=1.0)
    assert len(stuck) == 1 and stuck[0].jobs == 0 and not stuck[0].done
    assert "then stuck" in chunks_summary(stuck, 1.0) and chunks_summary(runs, budget).startswith(
        f"in runs of time_budget={duration(budget)}: {len(runs)} runs on h200")
    assert chunks_summary(runs, budget).endswith("; the first run: cnn_tanh@150x3, cnn_tanh@153x3")


def test_cost_model():
    h200 = CostModel("h200")
    assert h200.ms_per_replica_layer_step(16) == pytest.approx(36.4 / 447)
    assert 43.1 / 447 > h200.ms_per_replica_layer_step(8) > 36.4 / 447  # log-interpolated
    assert h200.ms_per_replica_layer_step(64) == h200.ms_per_replica_layer_step(16)  # clamped
    before = h200.job_seconds(447, 16, 745)
    h200.calibrate(447, 16, 745, 2 * before)
    assert h200.scale == pytest.approx(2.0) and h200.job_seconds(447, 16, 745) == pytest.approx(2 * before)
    by_model = CostModel("h200")
    one = by_model.job_seconds(447, 6, 745)
    by_model.calibrate(447, 6, 745, 2 * one, "resnet")
    by_model.calibrate(447, 6, 745, one, "cnn_tanh")
    assert by_model.job_seconds(447, 6, 745, "resnet") == pytest.approx(2 * one)
    assert by_model.job_seconds(447, 6, 745, "cnn_tanh") == pytest.approx(one)
    assert by_model.job_seconds(447, 6, 745, "cnn_elu") == pytest.approx(1.5 * one) == by_model.job_seconds(447, 6, 745)
    fast = CostModel("h200")
    fast.calibrate(447, 6, 745, one / 2, "cnn_tanh")
    assert fast.job_seconds(447, 6, 745, "resnet") == pytest.approx(one)  # not measured: never below the table
    assert steps_per_trial(3, 60000, 10000, 256) == pytest.approx(3 * (235 + 40 / 3))
    assert duration(59) == "59s" and duration(61) == "1m01s" and duration(3700) == "1h01m"
    with pytest.raises(ValueError, match="unknown device"):
        CostModel("tpu")


def test_mixed_depth_packs_put_a_rounds_probes_in_one_job():
    search = GallopSearch(seed_scheme="shared", upper=900, seeds=3, parallel=3, hint=447)
    backend = FakeBackend({0: 447})
    sweep = make([combo(0, ["model=resnet"], norm=True, search=search)], backend, mix_depths=True)
    rows = sweep.run()
    assert rows[0]["k_star"] == 447 and backend.launched == [(0, 450, (0, 1, 2, 0, 1, 2))]
    job = sweep._jobs([(0, 447, 0), (0, 450, 0), (0, 450, 1)])[0]
    assert job.k == 450 and job.members == [(447, 0), (450, 0), (450, 1)]
    assert job.launch_overrides() == ["k=450", "seed=0", "replicas=3", "depths=[447,450,450]", "seeds=[0,0,1]"]
    many = sweep._jobs([(0, k, s) for k in (3, 6, 9) for s in range(8)])  # 24 replicas, 16 a job at most
    assert [len(j.seeds) for j in many] == [16, 8] and many[0].k == 9 and many[1].k == 3 and many[1].depths is None


def test_plan_with_mixed_packs_costs_less_on_a_gpu():
    combos = lambda: [combo(0, ["model=resnet"], norm=True, search=GallopSearch(seed_scheme="shared", upper=900, seeds=3, parallel=3, hint=447))]
    single = plan(combos(), {0: 447}, "h200", Options())
    mixed = plan(combos(), {0: 447}, "h200", Options(mix_depths=True))
    assert (single.jobs, mixed.jobs) == (2, 1) and single.work == mixed.work
    assert mixed.seconds < 0.8 * single.seconds


def test_refinement_trains_more_seeds_and_reports_its_interval():
    from deepdepth.search import Refine

    base = GallopSearch(seed_scheme="shared", upper=30, seeds=3, parallel=2)
    limits = {0: 12}
    backend = FakeBackend(limits)
    # every seed trains at 12 and none at 15: the interval is that bracket, one grid step wide
    rows = make([combo(0, ["model=a"], search=Refine(base, width=3.5, max_seeds=12))], backend).run()
    row = rows[0]
    assert row["search"] == "Refine(GallopSearch)" and row["k_star"] == 12
    refine = row["refine"]
    assert refine["reached"] and (refine["low"], refine["high"]) == (12, 15)
    assert refine["k50"] is None and refine["bracket"] == [12, 15]
    assert max(int(n) for n in refine["seeds_at"].values()) > 3  # seeds beyond the base's three
    assert len({(k, s) for _, k, seeds in backend.launched for s in seeds}) == \
        sum(len(seeds) for _, _, seeds in backend.launched)  # no (depth, seed) trained twice


def test_the_report_shows_the_refinement(tmp_path):
    import json

    from deepdepth.report import load_frontier, load_sweep, render_report
    from deepdepth.search import Refine

    combos = [combo(0, ["model=cnn_tanh"], search=Refine(GallopSearch(seed_scheme="shared", upper=30, seeds=3, parallel=2), width=3.5,
                                                         max_seeds=12))]
    sweep = Sweep(tmp_path, combos, FakeBackend({0: 12}), CostModel("cpu"), Options())
    sweep.run()
    doc = json.loads((tmp_path / "frontier.json").read_text())
    assert doc["frontier"][0]["refine"]["reached"]
    text = render_report(load_frontier(tmp_path), load_sweep(tmp_path), mean_field=False)
    assert "## Precision (refinement phase)" in text and "interval narrower than 3.5" in text
    assert "12–15 (bracket) [12, 15]" in text and "| 3.5 layers | yes |" in text
    doc["frontier"][0]["refine"]["width"] = 2.0  # a record whose own rule called a wider interval narrow enough
    (tmp_path / "frontier.json").write_text(json.dumps(doc))
    text = render_report(load_frontier(tmp_path), load_sweep(tmp_path), mean_field=False)
    assert "| 2 layers | no (reached under the interval rule of the run that trained it, not at this level) |" in text


def test_mixed_packs_are_halved_until_they_fit_the_device():
    fits = lambda ci, depths: max(depths) * len(depths) <= 900 * 4  # a toy memory: 3,600 replica-layers
    sweep = make([combo(0, ["model=resnet"], norm=True)], FakeBackend({0: 9}), mix_depths=True, fits=fits)
    jobs = sweep._jobs([(0, k, s) for k in (447, 900) for s in range(3)])
    assert [len(j.seeds) for j in jobs] == [3, 3] and [j.k for j in jobs] == [447, 900]  # split by depth: the shallow half is cheap
    assert all(fits(0, [k for k, _ in j.members]) for j in jobs)


def test_a_budget_stop_judges_the_searches_whose_round_is_in_and_keeps_the_others_trials():
    """a's round (3 and 6) is in: judged. b's job at 6 waits: b stops at its round, its trial at 3
    kept in the history without a verdict; a's next round does not fit the budget either."""
    combos = [combo(0, ["model=a"]), combo(1, ["model=b"])]
    backend = FakeBackend({0: 12, 1: 6}, seconds=10)
    sweep = make(combos, backend, time_budget=35)
    sweep.cost.scale = 5.0
    rows = sweep.run()
    assert sweep.out_of_time and not any(r["done"] for r in rows) and sweep.stalled == {0, 1}
    assert backend.launched == [(0, 3, (0, 1)), (0, 6, (0, 1)), (1, 3, (0, 1))]  # one job a launch, 10 s each
    assert [(t.combo, t.k, t.probe_verdict) for t in sweep.history] == [(0, 3, True)] * 2 + [(0, 6, True)] * 2 + \
        [(1, 3, None)] * 2
    assert (rows[0]["probes"], rows[1]["probes"]) == (2, 0)


def test_a_search_whose_next_job_fits_goes_on_while_another_waits():
    """Rounds are per search under a budget: b's deep job waits, a's next rounds use the time left."""
    cost = CostModel("cpu")
    deep = Combo(1, ["model=b"], DepthSearch(seed_scheme="shared", lower=600, upper=600, seeds=1), Composed(model="b", lr=0.01, steps=100))
    combos = [combo(0, ["model=a"]), deep]
    backend = FakeBackend({0: 12, 1: 600}, seconds=lambda job: cost.job_seconds(job.k, len(job.seeds), job.steps))
    sweep = Sweep(None, combos, backend, cost, Options(write=False, time_budget=30), clock=lambda: backend.now)
    assert cost.job_seconds(600, 1, 100) > 30
    rows = sweep.run()
    assert sweep.stalled == {1} and rows[0]["done"] and rows[0]["k_star"] == 12 and not rows[1]["done"]
    assert all(c == 0 for c, _, _ in backend.launched) and len(backend.launched) > 2  # a's later rounds ran

def test_a_resumed_sweep_leaves_the_last_runs_files_until_it_has_caught_up(tmp_path):
    """Killed while its first job trains (a device sitting cut short), a resumed sweep must leave
    the last run's frontier and history in place, not blank them; its own end writes them all."""
    cost = CostModel("cpu")

    def searches():
        deep = Combo(1, ["model=b"], DepthSearch(seed_scheme="shared", lower=600, upper=600, seeds=1), Composed(model="b", lr=0.01, steps=100))
        return [combo(0, ["model=a"]), deep]

    def seconds(job):
        return cost.job_seconds(job.k, len(job.seeds), job.steps)

    disk, first = {}, searches()
    Sweep(tmp_path, first, FakeBackend({0: 12, 1: 600}, seconds=seconds, disk=disk, combos=first), cost,
          Options(time_budget=30)).run()  # b's deep job waits: a's rows only
    before = written_history_rows(tmp_path)
    again = searches()
    backend = FakeBackend({0: 12, 1: 600}, seconds=seconds, disk=disk, combos=again)
    seen, launch = [], backend.launch
    backend.launch = lambda jobs, start: seen.append(written_history_rows(tmp_path)) or launch(jobs, start)
    rerun = Sweep(tmp_path, again, backend, CostModel("cpu"), Options(), found=dict(disk))
    rerun.run()
    assert before > 0 and seen == [before]  # b's job trained while the first run's files stood
    assert written_history_rows(tmp_path) == len(rerun.history) == before + 1


def test_a_budget_stop_shares_the_finished_trials_with_the_other_protocol():
    """A report of a stopped sweep shows a variant without BatchNorm under both protocols."""
    combos = [combo(0, ["model=cnn_tanh", "protocol=correct"]), combo(1, ["model=cnn_tanh", "protocol=original"]),
              combo(2, ["model=b"])]
    backend = FakeBackend({0: 12, 1: 12, 2: 6}, seconds=10)
    sweep = make(combos, backend, time_budget=15)
    sweep.cost.scale = 5.0
    sweep.run()
    assert sweep.out_of_time and backend.launched == [(0, 3, (0, 1))]
    assert [(t.combo, t.status, t.shared_from) for t in sweep.history] == [(0, "ok", None)] * 2 + [(1, "shared", 0)] * 2


def test_combinations_that_differ_only_in_init_train_packed_and_resume():
    """A column of the phase diagram (every gain at one depth) is one job; each replica's verdict
    goes to its own gain's search; a resume finds every trial again."""
    limits, disk = {0: 6, 1: 12, 2: 18}, {}
    combos = gain_combos()
    backend = FakeBackend(limits, disk=disk, combos=combos)
    rows = make(combos, backend).run()
    assert [r["k_star"] for r in rows] == [6, 12, 18]
    first = backend.jobs[0]
    assert first.replicas == [(ci, 3, s) for ci in range(3) for s in (0, 1)]
    assert first.launch_overrides() == ["k=3", "seed=0", "replicas=6", "seeds=[0,1,0,1,0,1]",
                                        "inits=['fan_in:0.5','fan_in:0.5','fan_in:0.7','fan_in:0.7',"
                                        "'fan_in:0.9','fan_in:0.9']"]
    assert len(backend.jobs) < sum(r["probes"] for r in rows)  # fewer jobs than probes
    assert len(disk) == sum(r["trials"] for r in rows)  # nothing trained twice (the backend asserts it)
    again = FakeBackend(limits)
    rerun = Sweep(None, gain_combos(), again, CostModel("cpu"), Options(write=False), found=dict(disk),
                  clock=lambda: again.now)
    assert [r["k_star"] for r in rerun.run()] == [6, 12, 18] and again.launched == []


def test_init_packing_is_off_with_pack_false_or_other_differences_or_no_init_override():
    assert all(j.combos is None for j in run_jobs(gain_combos(), pack=False))
    assert all(j.combos is None for j in run_jobs(gain_combos(), pack_inits=False))
    differ = gain_combos()
    differ[1].overrides.append("optim.lr=0.05")
    assert {tuple(j.combos or [j.combo]) for j in run_jobs(differ) if j.k == 3} == {(0, 0, 2, 2), (1,)}
    implicit = [combo(0, ["model=cnn_tanh_newinit"], init="fan_in"), *gain_combos()[1:]]
    assert all(0 not in (j.combos or []) for j in run_jobs(implicit))


def test_init_packs_mix_depths_on_a_gpu():
    backend = FakeBackend({0: 6, 1: 12, 2: 18})
    sweep = make(gain_combos(), backend, mix_depths=True)
    job = sweep._jobs([(0, 6, 0), (1, 9, 0), (2, 9, 1)])[0]
    assert job.replicas == [(0, 6, 0), (1, 9, 0), (2, 9, 1)] and job.k == 9
    assert job.launch_overrides()[3:] == ["depths=[6,9,9]", "seeds=[0,0,1]",
                                          "inits=['fan_in:0.5','fan_in:0.7','fan_in:0.9']"]


def test_a_split_init_pack_keeps_each_replicas_init():
    sweep = make(gain_combos(), FakeBackend({0: 6, 1: 12, 2: 18}), mix_depths=True)
    job = sweep._jobs([(0, 6, 0), (1, 9, 0), (2, 9, 1), (1, 6, 2)])[0]
    by_depth = split(job, sweep._job)
    assert [(j.k, j.depths, j.replicas) for j in by_depth] == [(6, None, [(0, 6, 0), (1, 6, 2)]),
                                                              (9, None, [(1, 9, 0), (2, 9, 1)])]
    assert [j.inits for j in by_depth] == [["fan_in:0.5", "fan_in:0.7"], ["fan_in:0.7", "fan_in:0.9"]]
    halves = split(by_depth[1], sweep._job)  # one combination each: its own overrides carry its init
    assert [(j.combo, j.combos, j.inits, j.launch_overrides()) for j in halves] == [
        (1, None, None, ["k=9", "seed=0", "replicas=1"]), (2, None, None, ["k=9", "seed=1", "replicas=1"])]
    assert split(halves[0], sweep._job) == []


def run_jobs(combos, **options):
    backend = FakeBackend({c.index: 9 for c in combos})
    make(combos, backend, **options).run()
    return backend.jobs


def test_a_plan_assumes_mean_field_depths_for_another_init_and_the_reference_for_the_variants_own():
    """The reference k* is the variant's own init's; a gain sweep's plan (and its hints) start from
    mean field's 6 xi depth instead (0.25: 5.3 -> 3; 0.8: 27.9 -> 27, capped by the bound 24), and
    fan_in:1 is fan_in."""
    from deepdepth.sweep.setup import assumed_limits, hint_for, mean_field_limit

    combos = [combo(i, ["model=cnn_tanh_newinit", f"model.init={g}"], model="cnn_tanh_newinit", init=g)
              for i, g in enumerate(["fan_in:0.5", "fan_in:0.894427", "fan_in:1"])]
    combos.append(combo(3, ["model=cnn_tanh_newinit"], model="cnn_tanh_newinit", init="fan_in"))
    limits, notes = assumed_limits(combos, None)
    assert limits == {0: 3, 1: 24, 2: 84, 3: 84}
    assert "mean field's 6 xi depth 5.3" in notes[0] and "reference k*" in notes[2]
    assert [hint_for("cnn_tanh_newinit", "reference", mean_field_limit(c)) for c in combos] == [3, 24, 84, 84]


def test_under_a_budget_a_probe_above_a_failure_of_its_round_is_not_trained():
    """Jobs go in waves of what runs at once: once k=6 fails, its round's 12 and 18 cannot move
    k*, so they are skipped; the limit is the one training every probe finds."""
    def searches():
        return [combo(0, ["model=a"], search=DepthSearch(seed_scheme="shared", upper=24, parallel=3, seeds=2))]
    full = FakeBackend({0: 3})
    assert [r["k_star"] for r in make(searches(), full).run()] == [3]
    assert {k for _, k, _ in full.launched} >= {6, 12, 18}
    waves = FakeBackend({0: 3})
    rows = make(searches(), waves, time_budget=1000).run()
    assert [r["k_star"] for r in rows] == [3] and rows[0]["skipped"] == [12, 18]
    assert [k for _, k, _ in waves.launched] == [6, 3]


def test_a_resumed_round_does_not_train_what_its_finished_failure_made_moot():
    limits, disk = {0: 3}, {}

    def searches():
        return [combo(0, ["model=a"], search=DepthSearch(seed_scheme="shared", upper=24, parallel=3, seeds=2))]
    combos = searches()
    first = make(combos, FakeBackend(limits, seconds=10, disk=disk, combos=combos), time_budget=15)
    first.cost.scale = 5.0  # ~10 s a job predicted: one fits
    first.run()
    assert first.out_of_time and {k for _, k, _ in disk} == {6}
    again = FakeBackend(limits)
    rerun = Sweep(None, searches(), again, CostModel("cpu"), Options(write=False), found=dict(disk),
                  clock=lambda: again.now)
    rows = rerun.run()
    assert [r["k_star"] for r in rows] == [3] and rows[0]["skipped"] == [12, 18] and again.launched == [(0, 3, (0, 1))]


def test_a_resumed_combination_keeps_the_seed_scheme_its_trials_were_drawn_with(tmp_path):
    """A frontier.json written before schemes were recorded is the original study's shared
    seeds; a combination new to the sweep dir draws independent ones; the refinement of a
    recorded combination keeps its own recorded scheme."""
    import json
    from deepdepth.sweep.records import recorded_seed_schemes
    from deepdepth.sweep.setup import build_searches

    rows = [{"params": {"model": "cnn_elu"}},
            {"params": {"model": "cnn_tanh"}, "seed_scheme": "independent",
             "refine": {"seed_scheme": "independent", "seeds_at": {"6": 7}}}]
    (tmp_path / "frontier.json").write_text(json.dumps({"frontier": rows}))
    recorded = recorded_seed_schemes(tmp_path)
    from deepdepth.sweep.options import SweeperOptions

    opts = SweeperOptions.from_mapping({"seeds": 3, "upper": 30, "refine": {"width": 3.0}})
    old, tanh, new = build_searches([["model=cnn_elu"], ["model=cnn_tanh"], ["model=resnet"]], opts, 0, recorded)
    assert old.base.seeds_for(9) == [0, 1, 2] and old.seed_scheme == "shared"
    assert tanh.base.seed_scheme == tanh.seed_scheme == "independent"
    assert new.base.seed_scheme == "independent" and new.base.seeds_for(9) != [0, 1, 2]
    opts = SweeperOptions.from_mapping({"seeds": 3, "upper": 30, "refine": {"width": 3.0, "seed_scheme": "independent"}})
    extra = build_searches([["model=cnn_elu"]], opts, 0, recorded)[0]
    assert extra.base.seed_scheme == "shared" and extra.seed_scheme == "independent"  # shared study, new seeds


def test_derived_seeds_pack_into_one_job_per_probe():
    search = GallopSearch(upper=24, seeds=3, parallel=1)
    backend = FakeBackend({0: 12})
    Sweep(None, [combo(0, ["model=a"], search=search)], backend, CostModel("cpu"), Options(write=False)).run()
    first = backend.launched[0]
    assert len(first[2]) == 3 and sorted(first[2]) == sorted(search.seeds_for(first[1]))


def test_a_shared_trial_row_carries_its_own_combinations_protocol():
    """Trained once under protocol=correct, a BatchNorm-free trial read by the original-protocol
    combination is recorded there as protocol=original; its own verdict and the probe's stay apart."""
    t = Trial.from_result(1, 6, 0, "shared", {"trainable": False, "test_err": [0.3]},
                          {"protocol": "correct", "model": "cnn_tanh", "lr": 0.01}, probe_verdict=True)
    row = flat(t.row({"model": "cnn_tanh", "protocol": "original"}))
    assert row["protocol"] == "original" and row["trainable"] is False and row["probe_verdict"] is True
    assert row["lr"] == 0.01 and "verdict" not in row


def test_a_plan_assumes_each_combinations_own_limit_from_plan_limits_or_its_finished_trials():
    """plan_limits keyed by a whole override tells apart combinations of one model; a combination
    with finished trials assumes what they show (all of 12, most of 15, none of 18 trained: 15)."""
    from deepdepth.sweep.setup import assumed_limits

    combos = [combo(i, ["model=resnet_nobn", f"optim.lr={lr}"], model="resnet_nobn") for i, lr in enumerate([0.003, 0.03])]
    limits, notes = assumed_limits(combos, {"optim.lr=0.03": 9})
    assert limits == {0: 12, 1: 9} and "reference k*" in notes[0] and "plan_limits" in notes[1]
    verdicts = {12: [True] * 3, 15: [True, True, False], 18: [False] * 3}
    found = {(combos[0].key, k, s): Finished({"trainable": v}, {}, Path("j"), 0)
             for k, vs in verdicts.items() for s, v in enumerate(vs)}
    limits, notes = assumed_limits(combos, None, found)
    assert limits == {0: 15, 1: 12} and "its 9 finished trials" in notes[0]
    shallow = {(combos[1].key, 6, s): Finished({"trainable": True}, {}, Path("j"), 0) for s in range(3)}
    limits, notes = assumed_limits(combos, None, shallow)  # all trained at 6: a bound, not the limit
    assert limits[1] == 12 and "reference k*" in notes[1]
    deep = {(combos[1].key, 21, s): Finished({"trainable": True}, {}, Path("j"), 0) for s in range(3)}
    limits, notes = assumed_limits(combos, None, deep)
    assert limits[1] == 21 and "all trained: a lower bound" in notes[1]
    minority = {(combos[1].key, k, s): Finished({"trainable": s == 0}, {}, Path("j"), 0) for k in (87, 90) for s in range(3)}
    limits, notes = assumed_limits(combos, None, minority)  # 1 of 3 at each depth: below them
    assert limits[1] == 84 and "none by a majority: a step below them" in notes[1]
    nothing = {(combos[1].key, 3, s): Finished({"trainable": False}, {}, Path("j"), 0) for s in range(3)}
    assert assumed_limits(combos, None, nothing)[0][1] is None  # no seed trained anywhere


def test_the_cost_model_does_not_learn_from_cpu_jobs_slowed_by_denormals():
    """A norm-free network trained on the CPU without flushing denormals (every job recorded before
    flush_denormal) ran at microcode speed: neither a finished job nor a new one calibrates."""
    def run(found=None, **recorded):
        c = combo(0, ["model=cnn_tanh"], norm=False)
        backend = FakeBackend({0: 6}, seconds=1000.0)
        launch = backend.launch
        backend.launch = lambda jobs, start: [replace(o, result={**o.result, **recorded}) if o.result else o
                                              for o in launch(jobs, start)]
        sweep = Sweep(None, [c], backend, CostModel("cpu"), Options(write=False), found=found or {},
                      clock=lambda: backend.now)
        sweep.run()
        return sweep.cost

    assert run()._measured == [] and run().scale == 1.0  # unflushed: not learnt
    assert run(flush_denormal=False, norm=False)._measured == []
    assert len(run(flush_denormal=True)._measured) > 0 and run(flush_denormal=True).scale > 1
    assert len(run(norm=True)._measured) > 0  # a network with BatchNorm never meets them
    c = combo(0, ["model=cnn_tanh"], norm=False)
    old = {(c.key, 3, s): Finished({"k": 3, "seed": s, "trainable": True},
                                   {"k": 3, "trials": [], "seconds": 500.0, "device": "cpu"}, "/jobs/0", 0)
           for s in (0, 1)}
    resumed = Sweep(None, [c], FakeBackend({0: 6}), CostModel("cpu"), Options(write=False), found=old)
    assert resumed.cost._measured == []
    flushed = {key: replace(f, result={**f.result, "flush_denormal": True}) for key, f in old.items()}
    assert len(Sweep(None, [c], FakeBackend({0: 6}), CostModel("cpu"), Options(write=False),
                     found=flushed).cost._measured) == 1


def test_denormal_slowed_is_only_unflushed_norm_free_cpu_jobs():
    assert denormal_slowed({"device": "cpu"}, norm=False)
    assert not denormal_slowed({"device": "cpu", "flush_denormal": True}, norm=False)
    assert not denormal_slowed({"device": "cpu", "norm": True}, norm=False)
    assert not denormal_slowed({"device": "cpu"}, norm=True)
    assert not denormal_slowed({"device": "cuda:0", "device_name": "NVIDIA H200"}, norm=False)


def test_the_sweeps_guide_lists_every_option_with_its_default():
    """docs/guide/sweeps.md's option table and the typed options agree: names and defaults."""
    import dataclasses
    import json
    import re
    from pathlib import Path

    from deepdepth.sweep.options import RefineOptions, SweeperOptions

    def default(f):
        return f.default if f.default is not dataclasses.MISSING else f.default_factory()

    def shown(x):  # as YAML writes it
        return json.dumps(x) if isinstance(x, (bool, type(None), dict, list)) else str(x)

    want = {f.name: shown(default(f)) for f in dataclasses.fields(SweeperOptions) if f.name != "refine"}
    want.update({f"refine.{f.name}": shown(default(f)) for f in dataclasses.fields(RefineOptions)})
    want["upper"] = "required"
    text = (Path(__file__).resolve().parent.parent / "docs" / "guide" / "sweeps.md").read_text()
    table = dict(re.findall(r"^\| `([a-z_.]+)` \| `?([^`|]+?)`? \|", text.split("## Options", 1)[1], re.M))
    assert table == want


def test_a_cost_ordered_search_resumed_on_another_device_trains_only_inside_the_bracket_left():
    """order="cost" plans by this sweep's cost model, which differs between a CPU (a job per depth)
    and a GPU (a round in one job); a lone probe it finds finished costs nothing, so a resume
    on the other device trains only inside the bracket the first run left."""
    def deep():
        return [combo(0, ["model=resnet"], norm=True, model="resnet",
                      search=GallopSearch(upper=300, seeds=3, parallel=3, order="cost", hint=156))]
    disk = {}
    first = FakeBackend({0: 201}, disk=disk, combos=deep())
    stopped = make(deep(), first, time_budget=60)  # a job per depth on the CPU: stops after a few
    rows = stopped.run()
    trained = set(disk)
    assert len({k for _, k, _ in trained}) > 2 and not rows[0]["done"]
    again = FakeBackend({0: 201}, disk=disk, combos=deep())
    rerun = Sweep(None, deep(), again, CostModel("h200"), Options(write=False, mix_depths=True), found=dict(disk),
                  clock=lambda: again.now)
    rows = rerun.run()  # the backend asserts that no trial is trained twice
    assert rows[0]["k_star"] == 201 and rows[0]["done"]
    passed = max(k for _, k, _ in trained if k <= 201)
    failed = min((k for _, k, _ in trained if k > 201), default=301)
    assert again.launched and all(passed < k < failed for _, k, _ in again.launched)  # only what is still open
