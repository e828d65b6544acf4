"""One trial per GPU: jobs of a parallel sweep on one machine claim a GPU through a lock file."""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from pathlib import Path


@contextlib.contextmanager
def claim_gpu(count: int, lock_dir: str | os.PathLike | None = None, poll: float = 0.5):
    """Hold an exclusive lock on one of ``count`` GPUs for the duration of the block; yield its index.

    Locks are released by the OS if the process dies, so a killed job never strands a GPU.
    """
    lock_dir = Path(lock_dir or os.environ.get("DEEPDEPTH_LOCK_DIR", tempfile.gettempdir()))
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for index in range(count):
            handle = open(lock_dir / f"deepdepth-gpu{index}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield index
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        time.sleep(poll)
