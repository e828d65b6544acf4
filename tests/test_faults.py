"""Fault injection: what a study survives (README "Reliability"). Kill -9 and Ctrl-C of a sweep
and its resume, two sweeps on one directory, damaged trial files, a full disk, a read-only
sweep directory for the report, and bad values refused before any training. CPU, tiny IDX
data; a few short subprocess sweeps, the rest injected at the unit level."""
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from report_helpers import frontier_row, history_row, write_sweep

from conftest import tiny
from deepdepth import compose_config, report
from deepdepth.config import ConfigError, validate
from deepdepth.search import GallopSearch
from deepdepth.sweep import Combo, Composed, CostModel, Options, Outcome, Sweep, SweepError, scan
from deepdepth.sweep.lock import LOCK_NAME, sweep_lock
from deepdepth.files import atomic_write
from deepdepth.sweep.setup import check_options

# every depth trainable (errors under 95%): the search climbs to the bound, one job per seed and depth
SWEEP = ["hydra/sweeper=bisect", "model=resnet_nobn", "trainability.threshold=0.95", "hydra.sweeper.upper=12",
         "hydra.sweeper.pack=false", "hydra.sweeper.seeds=2"]


# ---- helpers -------------------------------------------------------------------------------------
def sweep_cmd(d: Path, mnist_root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "deepdepth.train", "-m", *SWEEP, *tiny(mnist_root), f"hydra.sweep.dir={d}", *extra]


def start(cmd, cwd) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def wait_for(condition, proc: subprocess.Popen, what: str) -> None:
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended before {what}:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.05)


def results(d: Path) -> list[Path]:
    return sorted(d.glob("*/result.json"))


def trained(d: Path) -> list[str]:
    """The overrides of every job folder holding a result: one entry per trained job."""
    return [(p.parent / ".hydra" / "overrides.yaml").read_text() for p in results(d)]


def assert_frontier_matches_the_job_folders(d: Path) -> None:
    doc = json.loads((d / "frontier.json").read_text())
    row = doc["frontier"][0]
    assert row["done"] and row["failed_trials"] == 0
    assert len(doc["history"]) == row["trials"] == len(results(d))  # one seed per job (pack=false)
    verdict = {p["k"]: p["trainable"] for p in row["probe_history"]}
    if row["k_star"] is not None:
        assert verdict[row["k_star"]] is True
    for h in doc["history"]:  # every row points at the folder that trained that very depth and seed
        result = json.loads((d / Path(h["job_dir"]).name / "result.json").read_text())
        assert (result["k"], result["trials"][0]["seed"]) == (h["k"], h["seed"])


def job_folder(d: Path, num: int, overrides: list[str], result, norm=False) -> Path:
    """A finished (or damaged) job folder as Hydra and deepdepth.train leave it."""
    job = d / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"model": {"norm": norm}}))
    if result is not None:
        (job / "result.json").write_text(result if isinstance(result, str) else json.dumps(result))
    return job


def record(k: int, seed: int, trainable: bool) -> dict:
    return {"k": k, "model": "cnn_tanh", "trials": [{"seed": seed, "trainable": trainable, "train_err": [0.1],
                                                     "test_err": [0.1], "diverged": False}]}


class Backend:
    """Trains instantly: ``k <= limit`` is trainable; remembers what it was asked to train."""
    parallelism = 1

    def __init__(self, limit):
        self.limit, self.launched = limit, []

    def compose(self, overrides):
        return None

    def launch(self, jobs, start):
        self.launched += [(job.k, s) for job in jobs for s in job.seeds]
        return [Outcome(result=record(job.k, job.seeds[0], job.k <= self.limit), job_dir=f"/new/{start + i}")
                for i, job in enumerate(jobs)]


# ---- kill -9, Ctrl-C, resume --------------------------------------------------------------------
def test_kill_9_and_ctrl_c_then_resume_trains_nothing_twice(tmp_path, mnist_root):
    d = tmp_path / "sweep"
    cmd = sweep_cmd(d, mnist_root)
    proc = start(cmd, tmp_path)
    wait_for(lambda: len(results(d)) >= 1, proc, "its first result")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = len(results(d))
    proc = start(cmd, tmp_path)  # resume, then Ctrl-C once it has trained something more
    wait_for(lambda: len(results(d)) > kept, proc, "a new result")
    proc.send_signal(signal.SIGINT)
    code, out = finish(proc)
    assert code != 0 and "Traceback" not in out
    code, out = finish(start(cmd, tmp_path))  # the same command finishes the study
    assert code == 0, out[-3000:]
    assert "resuming" in out and "Traceback" not in out
    assert len(trained(d)) == len(set(trained(d)))  # nothing trained twice
    assert_frontier_matches_the_job_folders(d)


# ---- two sweeps on one directory ----------------------------------------------------------------
def test_a_second_sweep_on_a_running_sweeps_directory_is_refused(tmp_path, mnist_root):
    d = tmp_path / "sweep"
    first = start(sweep_cmd(d, mnist_root), tmp_path)
    wait_for(lambda: (d / LOCK_NAME).exists() and (d / LOCK_NAME).read_text().strip(), first, "taking the lock")
    first.send_signal(signal.SIGSTOP)  # still running (paused), whatever the machine's speed
    try:
        code, out = finish(start(sweep_cmd(d, mnist_root), tmp_path))
    finally:
        first.send_signal(signal.SIGCONT)
    assert code != 0 and f"another sweep (pid {first.pid} on {socket.gethostname()})" in out
    assert "wait_for_lock" in out and "Traceback" not in out
    code, out = finish(first)
    assert code == 0, out[-3000:]
    assert len(trained(d)) == len(set(trained(d)))
    assert_frontier_matches_the_job_folders(d)


def test_the_lock_names_its_holder_and_a_waiting_sweep_gets_it_when_released(tmp_path):
    events = []

    def holder():
        with sweep_lock(tmp_path):
            events.append("held")
            time.sleep(0.3)
            events.append("released")

    with sweep_lock(tmp_path):
        with pytest.raises(SweepError, match=rf"pid {os.getpid()} on {socket.gethostname()}.*wait_for_lock"):
            with sweep_lock(tmp_path):
                pass
    thread = threading.Thread(target=holder)
    thread.start()
    while not events:
        time.sleep(0.01)
    with sweep_lock(tmp_path, wait=True, poll=0.02):
        events.append("second")
    thread.join()
    assert events == ["held", "released", "second"]


def test_a_lock_left_by_a_dead_sweep_is_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text("pid 999999 on elsewhere\n")  # its holder died: no flock held
    with sweep_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"


# ---- damaged trial files ------------------------------------------------------------------------
DAMAGED = {
    3: '{"k": 3, "trials": [{"seed": 0, "trainable": tr',  # truncated
    6: "\x00\x17garbage\xff not json",  # garbage
    9: json.dumps([{"k": 9, "seed": 0}]),  # valid JSON of the wrong shape
    12: json.dumps({"k": 12, "trials": [{"seed": 0, "trainable": "yes"}]}),  # a verdict that is not one
}


def test_damaged_trial_files_are_named_and_only_they_are_retrained(tmp_path, caplog):
    overrides = ["model=cnn_tanh"]
    for num, k in enumerate(range(3, 25, 3)):
        job_folder(tmp_path, num, overrides + [f"k={k}", "seed=0", "replicas=1"],
                   DAMAGED.get(k) or record(k, 0, k <= 15))
    good = {p: p.read_bytes() for p in results(tmp_path) if int(p.parent.name) * 3 + 3 not in DAMAGED}
    with caplog.at_level(logging.WARNING, logger="deepdepth.sweep"):
        found, next_num = scan(tmp_path, ".hydra")
    assert next_num == 8  # damaged folders keep their numbers: a retrain never reuses them
    assert sorted(k for _, k, _ in found) == [k for k in range(3, 25, 3) if k not in DAMAGED]
    for k in DAMAGED:
        path = tmp_path / str(k // 3 - 1) / "result.json"
        assert any(str(path) in r.getMessage() and "trained again" in r.getMessage() for r in caplog.records)

    search = GallopSearch(upper=24, seeds=1, seed_scheme="shared")
    c = Combo(0, overrides, search, Composed(model="cnn_tanh", lr=0.01, norm=False, steps=1, train_steps=1))
    backend = Backend(limit=15)
    sweep = Sweep(tmp_path, [c], backend, CostModel("cpu"), Options(), found, next_num)
    rows = sweep.run()
    probed = {h["k"] for h in search.history}
    assert probed & set(DAMAGED)
    assert sorted(backend.launched) == sorted((k, 0) for k in probed if k in DAMAGED)  # only the damaged
    assert rows[0]["k_star"] == 15
    assert {p: p.read_bytes() for p in good} == good  # the good records are untouched
    assert json.loads((tmp_path / "frontier.json").read_text())["frontier"][0]["k_star"] == 15


def test_a_job_folder_with_a_damaged_hydra_record_is_named(tmp_path, caplog):
    job = job_folder(tmp_path, 0, ["model=cnn_tanh", "k=3", "seed=0", "replicas=1"], record(3, 0, True))
    (job / ".hydra" / "overrides.yaml").write_text("{not: a list}")
    with caplog.at_level(logging.WARNING, logger="deepdepth.sweep"):
        found, _ = scan(tmp_path, ".hydra")
    assert not found and str(job / ".hydra" / "overrides.yaml") in caplog.text


# ---- a full disk --------------------------------------------------------------------------------
def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_leaves_no_result_file_and_names_it(tmp_path, monkeypatch):
    """result.json (deepdepth.train), frontier.json, frontier.csv and history.csv share one writer."""
    path = tmp_path / "result.json"
    monkeypatch.setattr("deepdepth.files.os.fsync", enospc)
    with pytest.raises(OSError, match=rf"cannot write {path}: No space left on device"):
        atomic_write(path, json.dumps(record(3, 0, True)))
    assert list(tmp_path.iterdir()) == []  # no result, no temporary file
    monkeypatch.undo()
    atomic_write(path, json.dumps(record(3, 0, True)))
    monkeypatch.setattr("deepdepth.files.os.fsync", enospc)
    with pytest.raises(OSError, match="cannot write"):
        atomic_write(path, json.dumps(record(6, 0, False)))
    assert json.loads(path.read_text()) == record(3, 0, True)  # the previous record stays whole
    assert list(tmp_path.iterdir()) == [path]


def test_a_full_disk_during_a_sweep_keeps_the_study_files_whole(tmp_path, monkeypatch):
    backend = Backend(limit=6)
    search = GallopSearch(upper=12, seeds=1)
    c = Combo(0, ["model=cnn_tanh"], search, Composed(model="cnn_tanh", lr=0.01, norm=False, steps=1, train_steps=1))
    sweep = Sweep(tmp_path, [c], backend, CostModel("cpu"), Options())
    sweep.write()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {"frontier.json", "frontier.csv", "history.csv"}
    monkeypatch.setattr("deepdepth.files.os.fsync", enospc)
    with pytest.raises(OSError, match=f"cannot write {tmp_path / 'frontier.json'}: No space left"):
        sweep.run()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# ---- the report in a read-only sweep directory, corrupt frontier --------------------------------
def small_sweep(d: Path) -> Path:
    history = [history_row(0, k, 0, k <= 6) for k in (3, 6, 9)]
    return write_sweep(d, [frontier_row(0, "cnn_tanh", 6, 24)], history)


def test_report_in_a_read_only_sweep_dir_suggests_out(tmp_path, monkeypatch, capsys):
    d = small_sweep(tmp_path / "sweep")
    real = Path.write_text

    def read_only(self, *args, **kwargs):
        if self.parent == d:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", read_only)
    with pytest.raises(SystemExit) as exit_:
        report.main([str(d), "--no-plots"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"cannot write {d / 'report.md'}: Permission denied" in err
    assert "--out" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    report.main([str(d), "--no-plots", "--out", str(tmp_path / "out")])  # the way around it
    assert (tmp_path / "out" / "report.md").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_report_in_a_chmod_read_only_sweep_dir(tmp_path, capsys):
    d = small_sweep(tmp_path / "sweep")
    d.chmod(0o555)
    try:
        with pytest.raises(SystemExit) as exit_:
            report.main([str(d), "--no-plots"])
    finally:
        d.chmod(0o755)
    assert exit_.value.code == 2 and "--out" in capsys.readouterr().err


@pytest.mark.parametrize("text,message", [('{"frontier": [{"combo": 0', "truncated or not JSON"),
                                          ("[1, 2, 3]", "is not a sweep's frontier.json")])
def test_report_on_a_corrupt_frontier_names_it(tmp_path, capsys, text, message):
    d = small_sweep(tmp_path / "sweep")
    (d / "frontier.json").write_text(text)
    with pytest.raises(SystemExit) as exit_:
        report.main([str(d), "--no-plots"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and str(d / "frontier.json") in err and message in err
    assert "rerun the sweep's command" in err and "Traceback" not in err


def test_report_traceback_with_hydra_full_error(tmp_path, monkeypatch):
    d = small_sweep(tmp_path / "sweep")
    (d / "frontier.json").write_text("{")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(report.load.ReportError):
        report.main([str(d), "--no-plots"])


# ---- bad values, refused before any training ----------------------------------------------------
@pytest.mark.parametrize("override,message", [
    ("seed=-1", "seed must be an integer in [0, 2**32-1] (torch seeds with 32 bits), got seed=-1"),
    ("data.batch_size=0", "data.batch_size must be a positive integer, got data.batch_size=0"),
    ("optim.lr=inf", "optim.lr=inf is not a finite number"),
    ("optim.momentum=1.0", "optim.momentum must be in [0, 1)"),
    ("data.train_samples=1000000000", "data.train_samples=1000000000, but the data under"),
])
def test_bad_values_are_refused_in_one_line(mnist_root, override, message):
    with pytest.raises(ConfigError) as exc:
        validate(compose_config(f"data.root={mnist_root}", override))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_pack_too_big_for_the_device_is_refused_with_its_estimate(mnist_root, monkeypatch):
    monkeypatch.setattr("deepdepth.capacity.device_bytes", lambda trainer: ("a small device", 2**30))
    cfg = compose_config(f"data.root={mnist_root}", "k=30", "replicas=64")
    with pytest.raises(ConfigError, match=r"k=30 with replicas=64 .* needs about [\d.]+ GiB .* a small device"):
        validate(cfg)
    validate(compose_config(f"data.root={mnist_root}", "k=3"))  # a small one fits


@pytest.mark.parametrize("option,value", [("retries", -1), ("seeds", 0), ("parallel", 0), ("time_budget", 0),
                                          ("time_budget", float("inf"))])
def test_bad_sweeper_options_are_refused(option, value):
    opts = {"retries": 1, "seeds": 1, "parallel": 1, "time_budget": None, "refine": {"width": None}}
    check_options(opts)
    with pytest.raises(SweepError, match=rf"hydra.sweeper.{option} must be .*, got {value!r}"):
        check_options({**opts, option: value})


def test_a_bad_value_on_the_command_line_is_one_line_exit_2(tmp_path, mnist_root):
    cmd = [sys.executable, "-m", "deepdepth.train", *tiny(mnist_root), "data.train_samples=1000000000"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"deepdepth: error: data.train_samples=1000000000, but the data under {mnist_root} holds only 512 "
        "train images; use at most 512, or null for all"]
    assert not list(tmp_path.rglob("result.json"))


def test_a_bad_sweeper_option_stops_the_sweep_before_training(tmp_path, mnist_root):
    d = tmp_path / "sweep"
    proc = subprocess.run(sweep_cmd(d, mnist_root, "hydra.sweeper.retries=-1"), cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "hydra.sweeper.retries must be an integer >= 0, got -1" in out
    assert "Traceback" not in out and not results(d)
