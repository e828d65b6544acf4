"""GPU slots: parallel sweep jobs claim distinct GPU slots and wait when all are taken. Flushing
denormals: every torch thread, or a record that says it was not."""
import fcntl
import os
import subprocess
import sys
import threading
import time

import torch

from deepdepth.trial import devices
from deepdepth.trial.devices import claim_gpu


def test_claims_are_exclusive_and_released(tmp_path):
    with claim_gpu(2, tmp_path) as first, claim_gpu(2, tmp_path) as second:
        assert {first, second} == {0, 1}
        got = []
        waiter = threading.Thread(target=lambda: got.append(_claim_once(tmp_path)))
        waiter.start()
        time.sleep(0.3)
        assert not got  # both GPUs busy: the third job waits
    waiter.join(timeout=5)
    assert got and got[0] in (0, 1)


def test_jobs_per_device_slots_spread_over_gpus_first(tmp_path):
    with claim_gpu(2, tmp_path, jobs_per_device=2) as a, claim_gpu(2, tmp_path, jobs_per_device=2) as b, \
            claim_gpu(2, tmp_path, jobs_per_device=2) as c, claim_gpu(2, tmp_path, jobs_per_device=2) as d:
        assert [a, b, c, d] == [0, 1, 0, 1]
        got = []
        waiter = threading.Thread(target=lambda: got.append(_claim_once(tmp_path, jobs_per_device=2)))
        waiter.start()
        time.sleep(0.3)
        assert not got  # four slots, four jobs: the fifth waits
    waiter.join(timeout=5)
    assert got


def test_locks_are_named_by_gpu_and_kept_per_user(tmp_path, monkeypatch):
    with claim_gpu(1, tmp_path, names=["gpu-GPU-1234"]):
        assert [p.name for p in tmp_path.iterdir()] == ["gpu-GPU-1234-slot0.lock"]
    monkeypatch.delenv("DEEPDEPTH_LOCK_DIR", raising=False)
    assert devices.lock_dir().name == f"deepdepth-locks-{os.getuid()}"
    monkeypatch.setenv("DEEPDEPTH_LOCK_DIR", str(tmp_path / "mine"))
    assert devices.lock_dir() == tmp_path / "mine"


def test_lock_file_of_another_user_does_not_crash_a_claim(tmp_path, monkeypatch):
    """A lock file we may not write (another user's 0644 file) is locked read-only; one we may
    not even read is sidestepped with a name of our own."""
    real_open = os.open

    def foreign(readable):
        def open_(path, flags, mode=0o777):
            if str(path).endswith(".lock") and (flags & os.O_RDWR or not readable):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, mode)
        return open_

    (tmp_path / "gpu0-slot0.lock").touch()
    monkeypatch.setattr(os, "open", foreign(readable=True))
    with claim_gpu(1, tmp_path) as index:  # locked read-only: still exclusive
        assert index == 0 and not _free(tmp_path)
    monkeypatch.setattr(os, "open", foreign(readable=False))
    with claim_gpu(1, tmp_path) as index:
        assert index == 0
    assert (tmp_path / f"gpu0-slot0.lock.uid{os.getuid()}").exists()


def test_a_trial_on_a_one_gpu_machine_holds_its_slot(tmp_path, monkeypatch):
    """Parallel jobs on one GPU queue for it: train's device choice claims a slot even when only
    one GPU exists (CUDA faked: only the claim is exercised)."""
    from deepdepth.train import _device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("DEEPDEPTH_LOCK_DIR", str(tmp_path))
    kw = {"devices": None, "accelerator": "auto"}
    with _device(kw, 1):
        assert kw["devices"] == [0] and not _free(tmp_path)
    assert _free(tmp_path)
    kw = {"devices": None, "accelerator": "auto"}
    with _device(kw, None):  # no limit: no claim
        assert kw["devices"] == 1


def _free(lock_dir) -> bool:
    """Whether the first slot of GPU 0 could be locked right now."""
    fd = os.open(lock_dir / "gpu0-slot0.lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the lock
    return True


def _claim_once(lock_dir, jobs_per_device=1):
    with claim_gpu(2, lock_dir, poll=0.05, jobs_per_device=jobs_per_device) as index:
        return index


FLUSH_IN_WORKERS = """
import logging, torch
from deepdepth.trial.devices import denormals_flushed, flushing_now
logging.basicConfig()
torch.set_num_threads(2)
if "{early}" == "yes":
    torch.full((1 << 22,), 1.0) * 1.0  # torch's second thread starts here, not flushing
with denormals_flushed(True) as flushed:
    tiny = torch.full((1 << 22,), 1 << 20, dtype=torch.int32).view(torch.float32)  # denormal, written as bits
    print("flushed", flushed, "whole product zero", (tiny * 1.0).count_nonzero().item() == 0)
print("after", flushing_now(all_threads=False))
"""


def test_denormals_are_flushed_in_every_thread_or_the_record_says_not():
    """set_flush_denormal sets the calling thread; torch's worker threads keep the setting they
    started with. Set first, every thread flushes; a worker started before is found out, named in a
    warning and recorded as not flushed. The caller's setting is put back after."""
    def run(early):
        env = {**os.environ, "OMP_NUM_THREADS": "2"}
        proc = subprocess.run([sys.executable, "-c", FLUSH_IN_WORKERS.format(early=early)], env=env,
                              capture_output=True, text=True, timeout=120, check=True)
        return proc.stdout, proc.stderr

    out, err = run("no")
    assert "flushed True whole product zero True" in out and "after False" in out and not err
    out, err = run("yes")
    assert "flushed False whole product zero False" in out and "after False" in out
    assert "flushed on the main thread only (torch's 2 threads started before this trial)" in err
