"""Fault injection: what a study survives (README "Reliability"). Kill -9 and Ctrl-C of a sweep
and its resume, a killed sweep's joblib workers, two sweeps on one directory, damaged trial files,
a full disk, a read-only or missing sweep directory for the report, and bad values (a plain grid,
an override Hydra cannot parse) refused before any training. CPU, tiny IDX data; a few short
subprocess sweeps, the rest injected at the unit level."""
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

from conftest import run_train, tiny
from deepdepth import compose_config, report
from deepdepth.trial.config import ConfigError, validate
from deepdepth.search import GallopSearch
from deepdepth.sweep import Combo, Composed, CostModel, Options, Outcome, Sweep, SweepError, scan
from deepdepth.sweep import claims
from deepdepth.sweep.lock import LOCK_NAME, sweep_lock
from deepdepth.files import atomic_write
from deepdepth.sweep.options import SweeperOptions

# every depth trainable (errors under 95%): the search climbs to the bound, one job per seed and depth
# threshold 1.0: every trial trains whatever its seeds draw, so the sweep always runs to its bound
# and a signal sent after its n-th result always lands mid-sweep
SWEEP = ["hydra/sweeper=bisect", "model=resnet_nobn", "trainability.threshold=1.0", "hydra.sweeper.upper=12",
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
@pytest.mark.e2e
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
@pytest.mark.e2e
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
    ("model.init=fan_in:-1", "model.init: bad init 'fan_in:-1': the gain after ':' must be a finite number > 0"),
    ("model.init=fan_in:0", "model.init: bad init 'fan_in:0': the gain after ':' must be a finite number > 0"),
])
def test_bad_values_are_refused_in_one_line(mnist_root, override, message):
    with pytest.raises(ConfigError) as exc:
        validate(compose_config(f"data.root={mnist_root}", override))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_pack_too_big_for_the_device_is_refused_with_its_estimate(mnist_root, monkeypatch):
    monkeypatch.setattr("deepdepth.trial.capacity.device_bytes", lambda trainer: ("a small device", 2**30))
    cfg = compose_config(f"data.root={mnist_root}", "k=30", "replicas=64")
    with pytest.raises(ConfigError, match=r"k=30 with replicas=64 .* needs about [\d.]+ GiB .* a small device"):
        validate(cfg)
    validate(compose_config(f"data.root={mnist_root}", "k=3"))  # a small one fits


SWEEPER_OPTIONS = {"upper": 24, "retries": 1, "seeds": 1, "parallel": 1, "max_replicas": 16, "time_budget": None,
                   "refine": {"width": None}}


def check_options(options: dict) -> None:
    SweeperOptions.from_mapping(options).check()


@pytest.mark.parametrize("option,value", [("retries", -1), ("seeds", 0), ("parallel", 0), ("time_budget", 0),
                                          ("time_budget", float("inf")), ("max_replicas", 0)])
def test_bad_sweeper_options_are_refused(option, value):
    check_options(SWEEPER_OPTIONS)
    with pytest.raises(SweepError, match=rf"hydra.sweeper.{option} must be .*, got {value!r}"):
        check_options({**SWEEPER_OPTIONS, option: value})


def test_a_sweep_without_its_bound_is_refused_by_name():
    with pytest.raises(SweepError, match=r"hydra.sweeper.upper \(the deepest depth searched.*\) is not set; add e.g. "
                                         r"hydra.sweeper.upper=90") as exc:
        check_options({**SWEEPER_OPTIONS, "upper": None})
    assert "\n" not in str(exc.value)


@pytest.mark.e2e
def test_a_bad_value_on_the_command_line_is_one_line_exit_2(tmp_path, mnist_root):
    cmd = [sys.executable, "-m", "deepdepth.train", *tiny(mnist_root), "data.train_samples=1000000000"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"deepdepth: error: data.train_samples=1000000000, but the data under {mnist_root} holds only 512 "
        "train images; use at most 512, or null for all"]
    assert not list(tmp_path.rglob("result.json"))


@pytest.mark.e2e
def test_a_bad_sweeper_option_stops_the_sweep_before_training(tmp_path, mnist_root):
    d = tmp_path / "sweep"
    proc = subprocess.run(sweep_cmd(d, mnist_root, "hydra.sweeper.retries=-1"), cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "hydra.sweeper.retries must be an integer >= 0, got -1" in out
    assert "Traceback" not in out and not results(d)


# ---- a sweep's jobs end with it; a resume waits for the last run's -----------------------------
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def as_launched_by(monkeypatch, pid: int, lock: Path | None = None) -> None:
    monkeypatch.setenv(claims.SWEEP_PID, str(pid))
    monkeypatch.setenv(claims.SWEEP_HOST, socket.gethostname())
    if lock is None:
        monkeypatch.delenv(claims.SWEEP_LOCK, raising=False)
    else:
        monkeypatch.setenv(claims.SWEEP_LOCK, str(lock))


def test_a_job_knows_when_its_sweep_is_gone(tmp_path, monkeypatch):
    monkeypatch.delenv(claims.SWEEP_PID, raising=False)
    assert claims.sweep_gone() is None  # not launched by a sweep
    as_launched_by(monkeypatch, os.getpid())
    assert claims.sweep_gone() is None  # an in-process job: the sweep is this process
    pid = dead_pid()
    as_launched_by(monkeypatch, pid)
    assert claims.sweep_gone() == f"the sweep that launched it (pid {pid} on {socket.gethostname()}) is gone"
    parent = os.getppid()  # alive: then its lock decides
    lock = tmp_path / LOCK_NAME
    lock.write_text(claims.holder(parent) + "\n")
    as_launched_by(monkeypatch, parent, lock)
    assert claims.sweep_gone() is None
    lock.write_text("pid 1 on elsewhere\n")  # a rerun took the directory over
    assert claims.sweep_gone() == f"another sweep (pid 1 on elsewhere) holds {tmp_path} now"


def test_the_watchdog_reports_a_gone_sweep(monkeypatch):
    as_launched_by(monkeypatch, dead_pid())
    gone = threading.Event()
    claims._watching.clear()
    claims.watch(interval=0.01, on_gone=lambda reason: gone.set())
    assert gone.wait(10)


HOLD_CLAIM = """import fcntl, sys, time
f = open(sys.argv[1], "a+"); fcntl.flock(f, fcntl.LOCK_EX); f.write("pid 4242 on somewhere\\n"); f.flush()
print("held", flush=True); time.sleep(float(sys.argv[2])); open(sys.argv[1] + ".done", "w").close()"""


def hold_claim(job: Path, seconds: float) -> subprocess.Popen:
    job.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD_CLAIM, str(job / claims.CLAIM_NAME), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_resume_waits_for_the_last_runs_trials_to_stop(tmp_path):
    with claims.claim(tmp_path / "0"):  # this process's own claim is released on exit: not waited for
        pass
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / claims.CLAIM_NAME).write_text("pid 999999 on here\n")  # a killed job's: not held
    said = []
    holder = hold_claim(tmp_path / "2", 0.5)  # an orphan that stops by itself
    claims.wait_for_claims(tmp_path, timeout=30, poll=0.02, say=lambda *a: said.append(a[0] % a[1:]))
    assert (tmp_path / "2" / f"{claims.CLAIM_NAME}.done").exists()  # returned only once it was done
    assert said == [f"bisect: waiting for 1 trials of the last run to stop (pid 4242 on somewhere in {tmp_path / '2'})"]
    holder = hold_claim(tmp_path / "3", 60)  # one that does not stop: named, and nothing trains beside it
    try:
        with pytest.raises(SweepError, match=rf"a trial of the last run \(pid 4242 on somewhere\) still trains in "
                                             rf"{tmp_path / '3'}; end it .* rerun the same command to resume"):
            claims.wait_for_claims(tmp_path, timeout=0.2, poll=0.02)
    finally:
        holder.kill()
        holder.wait()
    claims.wait_for_claims(tmp_path, timeout=5, poll=0.02)


@pytest.mark.e2e
def test_a_killed_sweeps_joblib_workers_stop_without_a_result_and_the_resume_trains_each_trial_once(
        tmp_path, mnist_root):
    d = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "deepdepth.train", "-m", "hydra/sweeper=bisect", "hydra/launcher=joblib",
           "hydra.launcher.n_jobs=2", "model=resnet_nobn", "trainability.threshold=0.95", "hydra.sweeper.upper=3",
           "hydra.sweeper.pack=false", "hydra.sweeper.seeds=2", *tiny(mnist_root), f"hydra.sweep.dir={d}"]
    proc = start(cmd, tmp_path)
    held = lambda: [p for p in d.glob(f"*/{claims.CLAIM_NAME}") if p.exists() and p.read_text().strip()]  # noqa: E731
    wait_for(held, proc, "a worker claimed its job")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    workers = {p.parent: int(p.read_text().split()[1]) for p in held()}
    assert workers and all(pid != proc.pid for pid in workers.values())  # jobs in joblib's processes
    deadline = time.monotonic() + 60
    while any(claims.alive(pid) for pid in workers.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(claims.alive(pid) for pid in workers.values())  # the orphans stopped
    assert not any((job / "result.json").exists() for job in workers)  # without a result
    code, out = finish(start(cmd, tmp_path))
    assert code == 0 and "Traceback" not in out, out[-3000:]
    assert len(trained(d)) == len(set(trained(d))) == 2  # two seeds at k=3: each trained once
    assert_frontier_matches_the_job_folders(d)


# ---- a full disk, end to end: one line naming the file ------------------------------------------
FULL_DISK = """import errno, logging, os, sys
import deepdepth.train as t
real = t.atomic_write
def full(path, text):
    if path.name != "result.json":
        return real(path, text)
    raise t.WriteError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
def log_file_full(self):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
t.atomic_write, logging.FileHandler.flush = full, log_file_full
sys.argv[0] = "deepdepth-train"
t.main()
"""


def run_on_a_full_disk(tmp_path, *overrides) -> subprocess.CompletedProcess:
    """deepdepth.train where result.json and the log files cannot be written (no space left)."""
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    return subprocess.run([sys.executable, str(script), *overrides], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.mark.e2e
def test_a_full_disk_in_a_single_trial_is_one_line_and_claims_no_file(tmp_path, mnist_root):
    run = tmp_path / "run"
    proc = run_on_a_full_disk(tmp_path, *tiny(mnist_root), f"hydra.run.dir={run}")
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]  # Lightning's banners aside
    assert proc.returncode == 2 and errors == [
        f"deepdepth: error: cannot write {run / 'result.json'}: No space left on device; free space (or fix the "
        "folder's permissions) and run the trial again"]
    assert "Traceback" not in proc.stderr and "(not saved)" in proc.stdout and "->" not in proc.stdout and not (run / "result.json").exists()


@pytest.mark.e2e
def test_a_full_disk_stops_a_sweep_in_one_line_naming_the_file(tmp_path, mnist_root):
    d = tmp_path / "sweep"
    proc = run_on_a_full_disk(tmp_path, "-m", "hydra/sweeper=bisect", "model=resnet_nobn", "hydra.sweeper.upper=3",
                              *tiny(mnist_root), f"hydra.sweep.dir={d}")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Logging error" not in out and "Traceback" not in out
    assert f"bisect sweeper: cannot write {d / '0' / 'result.json'}: No space left on device; free space (or fix " \
           "permissions) and rerun the same command to resume" in proc.stderr
    assert "->" not in out and out.count("launching 1 jobs") == 1 and not results(d)  # no retry: it cannot help


# ---- refused before training: a plain grid, an override Hydra cannot parse ----------------------
@pytest.mark.e2e
def test_a_plain_grid_is_checked_whole_before_its_first_job(tmp_path, mnist_root):
    d = tmp_path / "grid"
    proc = subprocess.run([sys.executable, "-m", "deepdepth.train", "-m", "k=3,4,6", *tiny(mnist_root),
                           f"hydra.sweep.dir={d}"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "deepdepth: error: k=4: k must be a positive multiple of 3 (three stages of k/3 convolutions), got k=4; "
        "no job started (a grid is checked whole before its first job)"]
    assert not d.exists() and not list(tmp_path.rglob("result.json"))


def test_an_override_hydra_cannot_parse_gets_the_way_to_quote_it():
    from deepdepth.command_line import unparsable_override

    problem = unparsable_override(["-m", "k=3", "hydra.sweep.dir=/tmp/études"])
    assert problem == ("Hydra cannot parse the override hydra.sweep.dir=/tmp/études (LexerNoViableAltException); "
                       "quote its value, as 'hydra.sweep.dir=\"/tmp/études\"' (Hydra reads an unquoted value as "
                       "ASCII words)")
    assert unparsable_override(["-m", "k=3", 'hydra.sweep.dir="/tmp/études"']) is None  # the way given


# ---- damaged records warned of once; the report on a directory that is not there ----------------
@pytest.mark.e2e
def test_a_damaged_record_is_warned_of_once_per_sweep(tmp_path, mnist_root):
    d = tmp_path / "sweep"
    job_folder(d, 0, ["model=resnet_nobn", "k=3", "seed=0", "replicas=1"], '{"k": 3, "tri')
    proc = run_train("hydra/sweeper=bisect", "model=resnet_nobn", "hydra.sweeper.upper=3", *tiny(mnist_root),
                     f"hydra.sweep.dir={d}", cwd=tmp_path, multirun=True)
    out = proc.stdout + proc.stderr
    assert out.count(f"cannot read {d / '0' / 'result.json'}") == 1 and len(results(d)) == 2


def test_the_report_on_a_directory_that_does_not_exist_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        report.main([str(tmp_path / "nowhere"), "--no-plots"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and err == [
        f"python -m deepdepth.report: error: {tmp_path / 'nowhere'} does not exist; pass a sweep's directory "
        "(its hydra.sweep.dir)"]
