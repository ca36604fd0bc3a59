"""Writing files whole: a reader (or a crash) sees the previous file or the new one, never a part.

The one writer every module uses for results it must not tear: checkpoints, ``metrics.csv``,
plots, histogram data, event recordings. It depends on nothing but the standard library.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``write(f)``, all or nothing.

    ``write`` fills a new temporary file in the same folder (created if missing), which is
    flushed and fsynced, then renamed over ``path`` with ``os.replace`` (atomic on POSIX and
    Windows); the folder is fsynced where possible so that the rename survives a power cut.
    On any failure, ``write`` raising included, the temporary file is removed, ``path`` is left
    as it was, and the exception propagates unchanged. The temporary file is named
    ``.<name>.tmp<pid>-<random>``: unique per call, created with the usual permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
