"""A sweep's jobs end with it, and a resumed sweep never trains beside a job of the last run.

A sweep announces itself to the jobs it launches (``announce``: its pid and host, and its lock
file, in the environment that in-process jobs, joblib workers and other local launchers inherit).
A job claims its folder (``claim``: ``.trial.lock``, flock'ed for the job's life, naming its pid)
and watches its sweep from a daemon thread (``watch``): once the sweep is gone (its pid dead on
this host, or its lock naming another sweep) the job exits at once, without a result, and an
idle worker with it; it checks once more just before writing its result (``sweep_gone``). A
resumed sweep, holding the directory's lock, waits until no claim of the last run is held
(``wait_for_claims``) before it reads back finished trials, so an orphan neither trains beside
it nor writes a record after it has read the folder.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from .combos import SweepError

SWEEP_PID, SWEEP_HOST, SWEEP_LOCK = "DEEPDEPTH_SWEEP_PID", "DEEPDEPTH_SWEEP_HOST", "DEEPDEPTH_SWEEP_LOCK"
CLAIM_NAME = ".trial.lock"
WATCH_SECONDS = 1.0
ORPHAN_EXIT = 3


def holder(pid: Optional[int] = None, host: Optional[str] = None) -> str:
    """How a lock or a claim names its process: ``pid 123 on host``."""
    return f"pid {pid or os.getpid()} on {host or socket.gethostname()}"


def sign(handle) -> None:
    """Name this process in a lock file it holds (its whole text: one line)."""
    handle.seek(0)
    handle.truncate()
    handle.write(holder() + "\n")
    handle.flush()


def announce(lock: Optional[Path] = None) -> None:
    """This process is the sweep (``lock``: the sweep lock it holds), for the jobs it launches."""
    os.environ[SWEEP_PID], os.environ[SWEEP_HOST] = str(os.getpid()), socket.gethostname()
    if lock is None:
        os.environ.pop(SWEEP_LOCK, None)
    else:
        os.environ[SWEEP_LOCK] = str(Path(lock).resolve())


def alive(pid: int) -> bool:
    """Is ``pid`` a running process here (a zombie, killed but not yet reaped, is not)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal check is all there is
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def sweep_gone() -> Optional[str]:
    """Why the sweep that launched this job is gone, or None (it runs, the job runs in it, or no
    sweep launched it). A sweep on another host is judged by its lock file alone."""
    pid = os.environ.get(SWEEP_PID)
    if not pid or not pid.isdigit() or int(pid) == os.getpid():
        return None
    host = os.environ.get(SWEEP_HOST)
    if host == socket.gethostname() and not alive(int(pid)):
        return f"the sweep that launched it ({holder(int(pid), host)}) is gone"
    lock = os.environ.get(SWEEP_LOCK)
    if lock:
        try:
            now = Path(lock).read_text().strip().splitlines()
        except OSError:
            return None  # unreadable for now: not a reason to throw a trial away
        if now and now[0] != holder(int(pid), host):
            return f"another sweep ({now[0]}) holds {Path(lock).parent} now"
    return None


def stop_orphan(reason: str) -> None:
    """End this process at once, without a result: its sweep is gone."""
    print(f"deepdepth: trial stopped without a result: {reason} (rerun the sweep's command to resume)",
          file=sys.stderr, flush=True)
    os._exit(ORPHAN_EXIT)


_watching: list[threading.Thread] = []


def watch(interval: float = WATCH_SECONDS, on_gone: Callable[[str], None] = stop_orphan) -> None:
    """Watch this job's sweep from a daemon thread (one per process: a joblib worker keeps it
    between jobs, so an idle worker ends with its sweep too). Nothing to watch in the sweep's
    own process, or without a sweep."""
    pid = os.environ.get(SWEEP_PID)
    if not pid or pid == str(os.getpid()) or any(t.is_alive() for t in _watching):
        return

    def loop():
        while True:
            reason = sweep_gone()
            if reason:
                on_gone(reason)
                return
            time.sleep(interval)

    _watching[:] = [threading.Thread(target=loop, name="deepdepth-sweep-watch", daemon=True)]
    _watching[0].start()


@contextlib.contextmanager
def claim(job_dir: Path):
    """Hold ``job_dir/.trial.lock`` while the job trains and writes its result; the OS releases it
    when the process dies. Best effort on a full disk: the flock, not the text, is the claim."""
    path = Path(job_dir) / CLAIM_NAME
    try:
        handle = open(path, "a+")
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):
            sign(handle)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        handle.close()


def held_claims(sweep_dir: Path) -> list[tuple[Path, str]]:
    """(job folder, holder) of every claim under ``sweep_dir`` that a live process holds."""
    held = []
    for path in sorted(Path(sweep_dir).rglob(CLAIM_NAME)):
        try:
            handle = open(path)
        except OSError:
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released on close
            except BlockingIOError:
                held.append((path.parent, handle.read().strip() or "unknown"))
    return held


def wait_for_claims(sweep_dir: Path, timeout: float = 30.0, poll: float = 0.2,
                    say: Callable[..., None] = lambda *args: None) -> None:
    """Return once no job of an earlier run still trains in ``sweep_dir`` (an orphan stops within
    seconds of its sweep's end); SweepError naming the one that does not."""
    deadline = time.monotonic() + timeout
    held = held_claims(sweep_dir)
    if held:
        say("bisect: waiting for %d trials of the last run to stop (%s)", len(held),
            ", ".join(f"{who} in {where}" for where, who in held))
    while held:
        if time.monotonic() > deadline:
            where, who = held[0]
            raise SweepError(f"bisect sweeper: a trial of the last run ({who}) still trains in {where}; end it "
                             f"(it may be from an older deepdepth, which does not stop with its sweep) and rerun "
                             f"the same command to resume")
        time.sleep(poll)
        held = held_claims(sweep_dir)
