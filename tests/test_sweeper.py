"""The bisect sweeper end to end: real `python -m deepdepth.train -m hydra/sweeper=bisect` runs
on tiny IDX data, through the basic, joblib, submitit_local and a failing launcher."""
import csv
import json
import subprocess
import sys

from types import SimpleNamespace

import pytest

from conftest import ROOT, run_train, tiny
from hydra_plugins.deepdepth_bisect.bisect_sweeper import BisectError, BisectSweeper, _canonical, _runs


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
        assert above in verdict  # confirm: both neighbours of the limit were trained
        assert verdict[above] is False or row["hit_upper"]


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
    assert {"k", "seed", "train_err", "test_err", "verdict", "job_dir"} <= set(history[0])
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
    (jobs[-1] / "result.json").unlink()
    _, _, out = sweep(tmp_path, *args)
    assert f"launching 1 jobs (#{len(jobs)}-#{len(jobs)})" in out
    assert len(job_dirs(d)) == len(jobs) + 1
    statuses = [r["status"] for r in frontier(d)["history"]]
    assert statuses.count("ok") == 2 and statuses.count("resumed") == len(statuses) - 2


def test_everything_trainable_unpacked_joblib(tmp_path, mnist_root):
    # threshold 1.0: every depth trains, so confirm trains upper+3 and flags the bound
    d, _, out = sweep(tmp_path, "model=resnet_nobn", "hydra.sweeper.upper=6", "hydra.sweeper.seeds=2",
                      "hydra.sweeper.pack=false", "hydra.sweeper.rule=all", "trainability.threshold=1.0",
                      "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *tiny(mnist_root))
    assert "Joblib" in out
    (row,) = frontier(d)["frontier"]
    assert row["k_star"] == 6 and row["hit_upper"] and row["confirmed"] is False
    assert [p["k"] for p in row["probe_history"]] == [3, 6, 9]
    jobs = job_dirs(d)
    assert len(jobs) == 6 and all("replicas=1" in (j / ".hydra/overrides.yaml").read_text() for j in jobs)
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
    """launch() raising mid-batch: the job that finished is read back, the others retried."""
    env = {"PYTHONPATH": str(ROOT / "tests" / "plugins")}
    d, _, out = sweep(tmp_path, "model=resnet_nobn", "hydra.sweeper.upper=12", "hydra.sweeper.parallel=2",
                      "hydra/launcher=flaky", *tiny(mnist_root), env=env)
    assert (d / "flaky.raised").exists() and "simulated" in out
    doc = frontier(d)
    failed = [r for r in doc["history"] if r["status"] == "failed"]
    assert len(failed) == 1 and "launcher: RuntimeError: simulated" in failed[0]["error"]
    assert doc["frontier"][0]["done"] and doc["frontier"][0]["failed_trials"] == 1
    first = [r for r in doc["history"] if r["round"] == 1 and r["status"] == "ok"]
    assert sorted((r["k"], r["attempt"], r["job_num"]) for r in first) == [(3, 0, 0), (9, 1, 2)]
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
                                         ("replicas=2", "replicas is set by the sweeper")])
def test_sweeper_owned_keys(arg, message):
    s = BisectSweeper(upper=6)
    s.hydra_context = SimpleNamespace(config_loader=None)
    # Hydra's plugin scan (run by other tests in this process) re-executes the plugin module,
    # rebinding BisectError, so compare by name rather than class identity.
    with pytest.raises(Exception, match=message) as info:
        s._grid([arg])
    assert type(info.value).__name__ == BisectError.__name__


def test_grid_parsing_matches_the_basic_sweeper():
    s = BisectSweeper(upper=6)
    s.hydra_context = SimpleNamespace(config_loader=None)
    grid, base = s._grid(["model=a,b", "optim.lr=0.1,0.2", "seed=7", "data.root=/x"])
    assert base == 7 and len(grid) == 4
    assert grid[0] == ["model=a", "optim.lr=0.1", "data.root=/x"]
    assert s._grid([]) == ([[]], 0)


def test_resume_keys_normalise_numbers_only():
    assert _canonical("optim.lr=0.010") == _canonical("optim.lr=1e-2") == "optim.lr=0.01"
    assert _canonical("model=resnet") == "model=resnet" and _canonical("+experiment=x") == "+experiment=x"
    assert _canonical("data.root=/a=b") == "data.root=/a=b"


def test_seed_runs():
    assert _runs([0, 1, 2], pack=True) == [[0, 1, 2]]
    assert _runs([0, 2, 3], pack=True) == [[0], [2, 3]]  # retries pack the contiguous seeds left
    assert _runs([0, 1], pack=False) == [[0], [1]]


def test_upper_is_required(tmp_path):
    _, proc, out = sweep(tmp_path, "model=resnet", check=False)
    assert proc.returncode != 0 and "upper" in out
    _, proc, out = sweep(tmp_path, "hydra.sweeper.upper=2", check=False)
    assert proc.returncode != 0 and "upper (2) < lower (3)" in out and "Traceback" not in out


def test_bounds_per_combination():
    s = BisectSweeper(upper=24, upper_for={"resnet": 900, "optim.lr=0.1": 60})
    assert s._upper(["model=resnet", "optim.lr=0.01"]) == 900
    assert s._upper(["model=cnn_tanh", "optim.lr=0.1"]) == 60
    assert s._upper(["model=cnn_tanh", "optim.lr=0.01"]) == 24
