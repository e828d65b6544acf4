"""The bisect sweeper end to end: real `python -m deepdepth.train -m hydra/sweeper=bisect` runs
on tiny IDX data, through the basic, joblib, submitit_local and a failing launcher."""
import csv
import json
import os
import subprocess
import sys


import pytest

from conftest import ROOT, run_train, tiny
from deepdepth.sweep import canonical, seed_packs, trial_key
from deepdepth.sweep.setup import bound_for
from hydra_plugins.deepdepth_bisect._impl import BisectError, parse_grid

pytestmark = pytest.mark.e2e  # subprocess runs of the CLI, a sweep or an install: left out of make test-fast


def sweep(tmp_path, *args, name="sweep", check=True, env=None):
    d = tmp_path / name
    proc = run_train("hydra/sweeper=bisect", *args, f"hydra.sweep.dir={d}", cwd=tmp_path,
                     multirun=True, check=check, env=env)
    return d, proc, proc.stdout + proc.stderr


def frontier(d):
    return json.loads((d / "frontier.json").read_text())


def job_dirs(d):
    return sorted((p.parent.parent for p in d.rglob(".hydra/overrides.yaml")), key=lambda p: int(p.name))


def csv_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def assert_consistent(doc):
    """k* is trainable and k*+step is not (or lies past the bound), by the recorded verdicts."""
    for row in doc["frontier"]:
        verdict = {p["k"]: p["trainable"] for p in row["probe_history"]}
        above = (row["k_star"] or 0) + row["step"] if row["k_star"] else row["lower"]
        if row["k_star"] is not None:
            assert verdict[row["k_star"]] is True
        assert above in verdict or row["censored"]  # both neighbours of the limit were trained
        assert row["censored"] or verdict[above] is False


def test_grid_parallel_seeds_and_resume(tmp_path, mnist_root):
    args = ["model=cnn_tanh_newinit,resnet_nobn", "optim.lr=0.05", "hydra.sweeper.upper=12",
            "hydra.sweeper.parallel=2", "hydra.sweeper.seeds=2", *tiny(mnist_root)]
    d, _, out = sweep(tmp_path, *args)
    # both searches' first rounds (k=3 and 9, one packed job each) go out as one batch
    assert "launching 4 jobs (#0-#3)" in out
    doc = frontier(d)
    rows = doc["frontier"]
    assert [r["params"]["model"] for r in rows] == ["cnn_tanh_newinit", "resnet_nobn"]
    assert all(r["done"] and r["seeds"] == 2 and r["failed_trials"] == 0 for r in rows)
    assert_consistent(doc)
    assert [r["model"] for r in csv_rows(d / "frontier.csv")] == ["cnn_tanh_newinit", "resnet_nobn"]
    assert {"k_star", "confirmed", "trials", "rounds", "seconds", "optim.lr"} <= set(csv_rows(d / "frontier.csv")[0])
    history = csv_rows(d / "history.csv")
    assert len(history) == len(doc["history"]) == sum(r["trials"] for r in rows)
    assert {"k", "seed", "train_err", "test_err", "probe_verdict", "job_dir"} <= set(history[0])
    jobs = job_dirs(d)
    assert len(jobs) == sum(r["probes"] for r in rows)  # pack: one job per probe
    for j in jobs:
        assert "replicas=2" in (j / ".hydra" / "overrides.yaml").read_text()
        assert len(json.loads((j / "result.json").read_text())["trials"]) == 2

    # the same command again: everything is read back, nothing is trained
    _, _, out = sweep(tmp_path, *args)
    assert "launching" not in out and job_dirs(d) == jobs
    again = frontier(d)
    assert {r["status"] for r in again["history"]} == {"resumed"}
    assert [(r["k_star"], r["model"], r["lr"]) for r in again["frontier"]] == \
        [(r["k_star"], r["model"], r["lr"]) for r in rows]
    # the same numbers spelt differently are the same trials
    _, _, out = sweep(tmp_path, *[a.replace("optim.lr=0.05", "optim.lr=5e-2") for a in args])
    assert "launching" not in out and job_dirs(d) == jobs

    # a job killed in flight (no result.json) is the only one trained again, under a new number
    # (the first: the shallowest probe of its round, never moot)
    (jobs[0] / "result.json").unlink()
    _, _, out = sweep(tmp_path, *args)
    assert f"launching 1 jobs (#{len(jobs)}-#{len(jobs)})" in out
    assert len(job_dirs(d)) == len(jobs) + 1
    statuses = [r["status"] for r in frontier(d)["history"]]
    assert statuses.count("ok") == 2 and statuses.count("resumed") == len(statuses) - 2


def test_everything_trainable_unpacked_joblib(tmp_path, mnist_root):
    # threshold 1.0: every depth trains; nothing past the bound is trained: k* >= 6 is censored
    d, _, out = sweep(tmp_path, "model=resnet_nobn", "hydra.sweeper.upper=6", "hydra.sweeper.seeds=2",
                      "hydra.sweeper.pack=false", "hydra.sweeper.rule=all", "trainability.threshold=1.0",
                      "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *tiny(mnist_root))
    assert "Joblib" in out
    (row,) = frontier(d)["frontier"]
    assert row["k_star"] == 6 and row["censored"] and row["hit_upper"] and row["confirmed"] is None
    assert [p["k"] for p in row["probe_history"]] == [3, 6]
    jobs = job_dirs(d)
    assert len(jobs) == 4 and all("replicas=1" in (j / ".hydra/overrides.yaml").read_text() for j in jobs)
    assert sorted(r["job_dir"] for r in frontier(d)["history"]) == sorted(map(str, jobs))


def test_submitit_local(tmp_path, mnist_root):
    d, _, _ = sweep(tmp_path, "model=resnet_nobn", "hydra.sweeper.upper=3", "hydra/launcher=submitit_local",
                    *tiny(mnist_root))
    assert (d / ".submitit").is_dir()
    doc = frontier(d)
    assert doc["frontier"][0]["done"] and doc["history"][0]["status"] == "ok"
    assert_consistent(doc)


def test_failing_job_is_retried_and_the_sweep_goes_on(tmp_path, mnist_root):
    """A trial that fails at run time (here: no data in one combination's root) is retried, recorded
    as failed, and the other combinations' searches finish."""
    nodata = tmp_path / "nodata"
    d, proc, _ = sweep(tmp_path, "model=resnet_nobn", f"data.root={mnist_root},{nodata}", "hydra.sweeper.upper=6",
                       "hydra.sweeper.retries=1", *tiny(mnist_root)[1:])
    good, bad = frontier(d)["frontier"]
    assert good["trials"] >= 1 and good["failed_trials"] == 0 and good["done"]
    assert bad["trials"] == 0 and bad["failed_trials"] == 2  # the job raised: first try + one retry
    assert bad["k_star"] is None and bad["confirmed"] is None and bad["crashed"] == [3]
    failed = [r for r in csv_rows(d / "history.csv") if r["status"] == "failed" and r["combo"] == "1"]
    assert [r["attempt"] for r in failed] == ["0", "1"]
    assert all("DataError" in r["error"] and str(nodata) in r["error"] for r in failed)
    report_out = run_report(d)
    assert str(nodata) in report_out and "failed trials" in report_out


@pytest.mark.parametrize("args,messages", [
    (["model=resnet_nobn,no_such_variant", "optim.lr=0.05,-1"],
     ["model=no_such_variant optim.lr=0.05", "does not compose", "Could not find 'model/no_such_variant'",
      "model=resnet_nobn optim.lr=-1", "optim.lr must be positive"]),
    (["model=resnet_nobn", "hydra.sweeper.step=4"], ["k must be a positive multiple of 3", "k=7"]),
    (["model=resnet_nobn", "hydra.sweeper.lower=2"], ["k must be a positive multiple of 3", "k=2"]),
])
def test_bad_combinations_stop_the_sweep_before_any_training(tmp_path, mnist_root, args, messages):
    d, proc, out = sweep(tmp_path, *args, "hydra.sweeper.upper=12", *tiny(mnist_root), check=False)
    assert proc.returncode != 0 and "no trial started" in out and "Traceback" not in out
    assert all(m in out for m in messages), out[-2000:]
    assert not job_dirs(d)
    if "no_such_variant" in args[0]:  # the good combination is not reported as bad
        assert "model=resnet_nobn optim.lr=0.05:" not in out


def run_report(d):
    proc = subprocess.run([sys.executable, "-m", "deepdepth.report", str(d)], capture_output=True, text=True,
                          check=True)
    return proc.stdout


def test_launcher_that_raises(tmp_path, mnist_root):
    """launch() raising mid-batch: the job that finished is read back, the others retried (every
    depth trains, so no retry is moot)."""
    env = {"PYTHONPATH": str(ROOT / "tests" / "plugins")}
    d, _, out = sweep(tmp_path, "model=resnet_nobn", "hydra.sweeper.upper=12", "hydra.sweeper.parallel=2",
                      "hydra/launcher=flaky", "trainability.threshold=1.0", *tiny(mnist_root), env=env)
    assert (d / "flaky.raised").exists() and "simulated" in out
    doc = frontier(d)
    failed = [r for r in doc["history"] if r["status"] == "failed"]
    assert len(failed) == 1 and "launcher: RuntimeError: simulated" in failed[0]["error"]
    assert doc["frontier"][0]["done"] and doc["frontier"][0]["failed_trials"] == 1
    first = [r for r in doc["history"] if r["round"] == 1 and r["status"] == "ok"]
    assert sorted((r["k"], r["attempt"], r["job_num"]) for r in first) == [(3, 0, 0), (6, 1, 2)]
    assert_consistent(doc)


def test_every_job_failing_is_an_error(tmp_path, mnist_root):
    d, proc, out = sweep(tmp_path, f"data.root={tmp_path / 'nodata'}", "hydra.sweeper.upper=6",
                         "hydra.sweeper.retries=0", *tiny(mnist_root)[1:], check=False)
    assert proc.returncode != 0 and "all 1 trials failed" in out and "DataError" in out
    assert frontier(d)["history"][0]["status"] == "failed"


def test_k_in_a_bisect_sweep_is_an_error(tmp_path):
    _, proc, out = sweep(tmp_path, "k=3,6", "hydra.sweeper.upper=6", check=False)
    assert proc.returncode != 0 and "k is the searched depth" in out and "Traceback" not in out


@pytest.mark.parametrize("arg,message", [("k=3", "k is the searched depth"),
                                         ("seed=0,1", "hydra.sweeper.seeds"),
                                         ("seed=-1", r"integer in \[0, 2\*\*32-1\]"),
                                         ("seed=4294967296", r"got seed=4294967296"),
                                         ("replicas=2", "replicas is set by the sweeper")])
def test_sweeper_owned_keys(arg, message):
    with pytest.raises(BisectError, match=message):
        parse_grid(None, [arg])


def test_grid_parsing_matches_the_basic_sweeper():
    grid, base = parse_grid(None, ["model=a,b", "optim.lr=0.1,0.2", "seed=7", "data.root=/x"])
    assert base == 7 and len(grid) == 4
    assert grid[0] == ["model=a", "optim.lr=0.1", "data.root=/x"]
    assert parse_grid(None, []) == ([[]], 0)


def test_resume_keys_normalise_numbers_only():
    assert canonical("optim.lr=0.010") == canonical("optim.lr=1e-2") == "optim.lr=0.01"
    assert canonical("model=resnet") == "model=resnet" and canonical("+experiment=x") == "+experiment=x"
    assert canonical("data.root=/a=b") == "data.root=/a=b"


def test_resume_keys_ignore_where_and_how_a_job_runs():
    """Trials trained with two jobs per GPU, on another device, with another logger, with cuDNN's
    algorithm search, in another memory layout or flushing denormals otherwise are found again; another data root may hold other data."""
    plain = trial_key(["model=resnet", "+experiment=depth_study"])
    assert trial_key(["model=resnet", "+experiment=depth_study", "gpu_jobs_per_device=2", "trainer.accelerator=cpu",
                      "logger=csv", "+trainer.benchmark=true", "memory_format=channels_last", "seed=3",
                      "flush_denormal=false"]) == plain
    assert trial_key(["model=resnet", "+experiment=depth_study", "optim.lr=0.05"]) != plain
    assert trial_key(["model=resnet", "+experiment=depth_study", "data.root=/x"]) != plain


def test_seed_packs():
    assert seed_packs([0, 1, 2], pack=True) == [[0, 1, 2]]
    assert seed_packs([3, 0, 2], pack=True) == [[0, 2, 3]]  # retries and derived seeds pack whatever is left
    assert seed_packs(range(5), pack=True, max_replicas=2) == [[0, 1], [2, 3], [4]]
    assert seed_packs([0, 1], pack=False) == [[0], [1]]


def test_upper_is_required(tmp_path):
    d, proc, out = sweep(tmp_path, "model=resnet", check=False)
    assert proc.returncode != 0 and "Traceback" not in out and "MissingMandatoryValue" not in out
    assert proc.stderr.splitlines()[0] == ("bisect sweeper: hydra.sweeper.upper (the deepest depth searched, never "
                                           "trained past) is not set; add e.g. hydra.sweeper.upper=90")
    assert not d.exists()
    _, proc, out = sweep(tmp_path, "hydra.sweeper.upper=2", check=False)
    assert proc.returncode != 0 and "upper (2) < lower (3)" in out and "Traceback" not in out


def test_bounds_per_combination():
    upper_for = {"resnet": 900, "optim.lr=0.1": 60}
    assert bound_for(["model=resnet", "optim.lr=0.01"], 24, upper_for) == 900
    assert bound_for(["model=cnn_tanh", "optim.lr=0.1"], 24, upper_for) == 60
    assert bound_for(["model=cnn_tanh", "optim.lr=0.01"], 24, upper_for) == 24
    # a grid value as Hydra escapes it is found by the value as typed
    assert bound_for(["model=cnn_tanh_newinit", "model.init=fan_in\\:2"], 48, {"fan_in:2": 96}) == 96


def test_extra_combinations_add_points_not_a_product():
    grid, _ = parse_grid(None, ["model=m", "model.init=fan_in:0.5,fan_in:2", "optim.lr=0.01"],
                         [["model.init=fan_in:0.5", "model.widths=[2,4,8]"], ["optim.lr=0.1"]])
    assert grid[2:] == [["model=m", "model.init=fan_in\\:0.5", "optim.lr=0.01", "model.widths=[2,4,8]"],
                        ["model=m", "model.init=fan_in\\:0.5", "optim.lr=0.1"]]
    assert len(grid) == 4


@pytest.mark.parametrize("extra, message", [([["model=m"]], r"extra_combinations\[0\] \(model=m\) is already a combination"),
                                            ([["model=a,b"]], "sets one value per key and no seed, got model=a,b"),
                                            ([["seed=3"]], "sets one value per key and no seed"),
                                            ([["k=9"]], "k is the searched depth"),
                                            (["model=a"], "must be a non-empty list of overrides")])
def test_extra_combinations_are_checked_before_any_training(extra, message):
    with pytest.raises(BisectError, match=message):
        parse_grid(None, ["model=m"], extra)


def test_an_extra_combination_trains_its_own_network(tmp_path, mnist_root):
    """A width beside the grid's inits: one more combination, its jobs train the narrower network."""
    d, _, _ = sweep(tmp_path, "model=cnn_tanh_newinit", "model.init=fan_in:1,fan_in:0.9", "hydra.sweeper.upper=6",
                    "hydra.sweeper.seeds=1", 'hydra.sweeper.extra_combinations=[["model.init=fan_in:1","model.widths=[2,4,8]"]]',
                    *tiny(mnist_root))
    rows = frontier(d)["frontier"]
    assert len(rows) == 3 and rows[2]["params"]["model.widths"] == "[2,4,8]"
    widths = {json.loads((j / "result.json").read_text())["widths"].__repr__() for j in job_dirs(d)}
    assert widths == {"[4, 8, 16]", "[2, 4, 8]"}


def test_plugin_module_is_thin_and_imports_its_implementation_lazily():
    src = (ROOT / "hydra_plugins" / "deepdepth_bisect" / "bisect_sweeper.py").read_text()
    assert len(src.splitlines()) < 80
    top = [line for line in src.splitlines() if line.startswith(("import", "from"))]
    assert not any("_impl" in line or "deepdepth" in line for line in top)


def test_protocols_share_trials_without_batchnorm(tmp_path, mnist_root):
    """cnn_tanh has no BatchNorm: protocol=correct and original train the same function, so each
    (k, seed) is trained once and both combinations read it; a resume reads it back."""
    args = ["model=cnn_tanh", "protocol=correct,original", "hydra.sweeper.upper=6", "hydra.sweeper.seeds=2",
            *tiny(mnist_root)]
    d, _, _ = sweep(tmp_path, *args)
    doc = frontier(d)
    correct, original = doc["frontier"]
    assert (correct["protocol"], original["protocol"]) == ("correct", "original")
    assert correct["probe_history"] == original["probe_history"] and correct["k_star"] == original["k_star"]
    assert len(job_dirs(d)) == correct["probes"]  # one job per probe, not two
    shared = [r for r in doc["history"] if r["status"] == "shared"]
    assert len(shared) == original["trials"] and {r["shared_from"] for r in shared} == {0}
    _, _, out = sweep(tmp_path, *args)
    assert "launching" not in out
    again = frontier(d)["history"]
    assert {(r["combo"], r["status"]) for r in again} == {(0, "resumed"), (1, "shared")}  # read once


def test_init_gains_train_packed_in_one_job_per_depth_and_resume(tmp_path, mnist_root):
    """A sweep over model.init gains (the phase diagram's columns): each depth's probes of every
    gain are one job (``inits``, one gain per replica); rows and verdicts stay per gain; a
    resume finds each (gain, depth, seed) again and trains nothing."""
    args = ["model=cnn_tanh_newinit", "model.init=fan_in:0.5,fan_in:0.9", "hydra.sweeper.upper=6",
            "hydra.sweeper.seeds=2", "hydra.sweeper.parallel=2", "trainability.threshold=1.0", *tiny(mnist_root)]
    d, _, _ = sweep(tmp_path, *args)
    rows = frontier(d)["frontier"]
    assert [r["params"]["model.init"] for r in rows] == ["fan_in\\:0.5", "fan_in\\:0.9"]
    assert all(r["done"] for r in rows)
    depths = {p["k"] for r in rows for p in r["probe_history"]}
    jobs = job_dirs(d)
    assert len(jobs) == len(depths) == 2  # k=3 and 6: one job each, 2 gains x 2 seeds packed
    for j in jobs:
        overrides = (j / ".hydra" / "overrides.yaml").read_text()
        assert "replicas=4" in overrides and "inits=['fan_in:0.5','fan_in:0.5','fan_in:0.9','fan_in:0.9']" in overrides
        result = json.loads((j / "result.json").read_text())
        assert [t["init"] for t in result["trials"]] == ["fan_in:0.5"] * 2 + ["fan_in:0.9"] * 2
    history = frontier(d)["history"]
    assert {(h["combo"], h["job_num"]) for h in history} == {(c, n) for c in (0, 1) for n in (0, 1)}
    _, _, out = sweep(tmp_path, *args)
    assert "launching" not in out and {h["status"] for h in frontier(d)["history"]} == {"resumed"}


def slow_clock(tmp_path, factor: int) -> dict:
    """An environment whose sweep clock (``Sweep.clock``) runs ``factor`` times fast (a
    ``sitecustomize`` on PYTHONPATH): to the sweep, every job then lasts ``factor`` times longer,
    whatever the machine's speed, so a wall-clock budget is reached on a fast machine too. The
    trials' own ``seconds`` stay real, so the cost model, which reads them, predicts a job far
    inside the budget even on a loaded machine, and every run trains at least one."""
    site = tmp_path / "slow_clock"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import time\n_real = time.perf_counter\n_t0 = _real()\n"
        f"time.perf_counter = lambda: _t0 + (_real() - _t0) * {factor}\n"
        "import deepdepth.sweep.driver  # binds Sweep.clock to the fast clock\n"
        "time.perf_counter = _real\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def test_only_works_on_one_part_of_a_study_and_the_full_command_finishes_it(tmp_path, mnist_root):
    """``only=[resnet_nobn]`` trains that variant's search alone; the other stays unfinished with no
    trial; the same command without ``only`` then trains only what is missing."""
    args = ["model=cnn_tanh_newinit,resnet_nobn", "hydra.sweeper.upper=6", "hydra.sweeper.seeds=1",
            "trainability.threshold=1.0", *tiny(mnist_root)]
    d, _, out = sweep(tmp_path, *args, "hydra.sweeper.only=[resnet_nobn]")
    assert "only=['resnet_nobn']: 1 of 2 combinations trained this run" in out
    rows = frontier(d)["frontier"]
    assert [(r["model"], r["done"], r["trials"]) for r in rows] == [("cnn_tanh_newinit", False, 0),
                                                                    ("resnet_nobn", True, 2)]
    def models(jobs):
        return {json.loads((j / "result.json").read_text())["model"] for j in jobs}
    first = job_dirs(d)
    assert models(first) == {"resnet_nobn"}
    d, _, out = sweep(tmp_path, *args)
    rows = frontier(d)["frontier"]
    assert all(r["done"] for r in rows) and models(job_dirs(d)[len(first):]) == {"cnn_tanh_newinit"}
    _, proc, out = sweep(tmp_path, *args, "hydra.sweeper.only=[resnet]", check=False)
    assert proc.returncode != 0 and "only=['resnet'] matches no combination of this sweep" in out


def test_time_budget_stops_cleanly_and_the_same_command_finishes(tmp_path, mnist_root):
    # threshold 1.0: every depth trains, so each search probes 3, 6 and 12: 12 one-seed jobs. The
    # sweep's clock runs 20x fast, so a job (a Lightning fit, 0.3 s or more anywhere) lasts 6 s or
    # more to the sweep and the 12 cannot end within 30 s; the first job of each run is predicted
    # at its real seconds (those the jobs before it took, or the cost model's constant of 2 s), so
    # every run trains at least one unless a job takes 30 real seconds. The sample counts tell the
    # cost model the jobs are small (it assumes all of MNIST otherwise)
    args = ["model=cnn_tanh_newinit,resnet_nobn", "hydra.sweeper.upper=12", "hydra.sweeper.seeds=2",
            "hydra.sweeper.pack=false", "trainability.threshold=1.0", "hydra.sweeper.time_budget=30",
            "data.train_samples=512", "data.test_samples=256", *tiny(mnist_root)]
    env = slow_clock(tmp_path, 20)
    d, proc, out = sweep(tmp_path, *args, env=env)
    assert proc.returncode == 0 and out.count("time budget of 30s reached") == 1, out[-3000:]
    assert "rerun the same command to resume" in out
    assert not all(r["done"] for r in frontier(d)["frontier"])
    for _ in range(30):  # each rerun resumes and trains only what is missing (at least one job a run)
        if all(r["done"] for r in frontier(d)["frontier"]):
            break
        sweep(tmp_path, *args, env=env)
    rows = frontier(d)["frontier"]
    assert all(r["done"] for r in rows)
    jobs = job_dirs(d)
    trained = [(j / ".hydra" / "overrides.yaml").read_text() for j in jobs if (j / "result.json").exists()]
    assert len(trained) == len(set(trained)) == sum(r["trials"] for r in rows)  # nothing trained twice


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path):
    d, _, out = sweep(tmp_path, "+experiment=depth_study", "hydra.sweeper.dry_run=true", "hydra.sweeper.time_budget=400")
    assert "nothing is trained" in out and "assumed limit 447 (reference k*)" in out
    plans = [line for line in out.splitlines() if line.startswith("plan: ")]
    assert plans and plans[-1].endswith("on h200") and "replica-layer-steps" in plans[-1]
    runs = [line for line in out.splitlines() if line.startswith("in runs of time_budget=6m40s: ")]
    assert len(runs) == 3 and " runs on h200 (jobs per run: " in runs[-1]  # cpu, h100, h200
    assert not d.exists() or not job_dirs(d)


def test_a_bad_order_is_one_line_before_any_plan(tmp_path):
    d, proc, out = sweep(tmp_path, "+experiment=depth_study", "hydra.sweeper.dry_run=true", "hydra.sweeper.order=fast",
                         check=False)
    assert proc.returncode != 0 and "hydra.sweeper.order must be one of ['gallop', 'cost']" in out and "got 'fast'" in out
    assert "Traceback" not in out and "plan: " not in out and not d.exists()


def test_a_second_sweep_on_the_same_directory_is_refused(tmp_path, mnist_root):
    from deepdepth.sweep.lock import sweep_lock

    d = tmp_path / "sweep"
    d.mkdir()
    with sweep_lock(d):
        _, proc, out = sweep(tmp_path, "model=resnet_nobn", "hydra.sweeper.upper=6", *tiny(mnist_root), check=False)
    assert proc.returncode != 0 and "another sweep (pid" in out and "wait_for_lock" in out
    assert "Traceback" not in out and not job_dirs(d)


def test_mixed_depth_jobs_pack_a_round_and_resume(tmp_path, mnist_root):
    """mix_depths=true (the default on a GPU): each round of the search is one job whose replicas
    are its depths x seeds; a resume finds each (depth, seed) again."""
    args = ["model=resnet_nobn", "hydra.sweeper.upper=12", "hydra.sweeper.parallel=2", "hydra.sweeper.seeds=2",
            "hydra.sweeper.mix_depths=true", *tiny(mnist_root)]
    d, _, _ = sweep(tmp_path, *args)
    doc = frontier(d)
    (row,) = doc["frontier"]
    assert_consistent(doc)
    jobs = job_dirs(d)
    assert len(jobs) == row["rounds"]  # one job per round
    from deepdepth.seeds import derived_seed

    want = sorted((k, derived_seed(0, k, i)) for k in (3, 6) for i in range(2))  # independent across depths
    first = (jobs[0] / ".hydra" / "overrides.yaml").read_text()
    assert "depths=[3,3,6,6]" in first and "seeds=[" + ",".join(str(s) for _, s in want) + "]" in first
    result = json.loads((jobs[0] / "result.json").read_text())
    assert [(t["k"], t["seed"]) for t in result["trials"]] == want
    assert doc["sweeper"]["seed_scheme"] == row["seed_scheme"] == "independent"
    _, _, out = sweep(tmp_path, *args)
    assert "launching" not in out


def test_a_config_edited_under_a_running_sweep_stops_it_before_the_job_trains_something_else():
    """Each combination must compose as it did at the start: a default changed on disk (here the
    optimizer's lr) would otherwise train later jobs differently under the same trial identity.
    A job's own keys (k, seeds, ...) and another combination are not a change."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from hydra_plugins.deepdepth_bisect._impl import HydraBackend

    on_disk = {"model": {"name": "cnn_tanh"}, "optim": {"lr": 0.01}, "k": 3, "seed": 0, "replicas": 1}

    def load_sweep_config(config, overrides):
        job = dict(o.split("=", 1) for o in overrides)
        return OmegaConf.create({**on_disk, "k": int(job.get("k", 3)), "hydra": {"job": {"num": len(overrides)}}})
    backend = HydraBackend(SimpleNamespace(config_loader=SimpleNamespace(load_sweep_config=load_sweep_config)),
                           OmegaConf.create({}), launcher=None)
    backend.load(["model=cnn_tanh", "k=3", "seed=0", "replicas=3"])
    backend.load(["model=cnn_tanh", "k=9", "seed=0", "replicas=3", "seeds=[0,1,2]"])  # a job: same combination
    on_disk["optim"] = {"lr": 0.1}
    backend.load(["model=cnn_elu", "k=3"])  # first seen now: nothing to compare with
    with pytest.raises(ValueError, match=r"composes differently from when the sweep started \(optim\.lr changed\)"):
        backend.load(["model=cnn_tanh", "k=12", "seed=0", "replicas=3"])
