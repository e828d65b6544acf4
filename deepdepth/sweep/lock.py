"""One sweep per directory: an exclusive lock held for the sweep's lifetime.

A study resubmitted while it still runs would otherwise train every probe twice and interleave
records. ``flock`` is released by the OS when the holder dies, so a lock left by a killed sweep
is taken over at once; the file names the holder (pid, host) for the message.
"""
from __future__ import annotations

import contextlib
import fcntl
import time
from pathlib import Path

from .claims import sign
from .combos import SweepError

LOCK_NAME = ".sweep.lock"


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path, wait: bool = False, poll: float = 2.0):
    path = Path(sweep_dir) / LOCK_NAME
    handle = open(path, "a+")
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    handle.seek(0)
                    who = handle.read().strip().splitlines()[:1] or ["unknown"]
                    raise SweepError(f"bisect sweeper: another sweep ({who[0]}) is running in {sweep_dir}; "
                                     "wait for it to finish, or pass hydra.sweeper.wait_for_lock=true") from None
                time.sleep(poll)
        sign(handle)
        yield
    finally:
        handle.close()
