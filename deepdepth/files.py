"""Atomic file writes, shared by a trial's result.json and a sweep's records: a reader, or a
resume after kill -9, sees the old file or the whole new one, never half of one."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # no retry helps: a sweep stops at the first


class WriteError(OSError):
    """A write that failed, naming its file: ``cannot write PATH: REASON`` (``filename``: PATH)."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def no_room(exc) -> bool:
    """Is ``exc`` a full disk, an exhausted quota or a read-only file system?"""
    return isinstance(exc, OSError) and exc.errno in NO_ROOM


def atomic_write(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, flush it to disk and rename it over ``path``:
    a reader (or a resume after kill -9) sees the old file or the whole new one, and a failed
    write (a full disk) leaves no partial file; the error names ``path``."""
    path, tmp = Path(path), None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o644)  # as an ordinary write leaves it, not mkstemp's 0600
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise WriteError(e.errno, e.strerror or str(e), str(path)) from e
