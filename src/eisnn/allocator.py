"""Keep freed CPU memory in the process for reuse, instead of handing it back to the kernel.

glibc's ``malloc`` serves blocks above its mmap threshold (dynamic, at most 32 MiB) with fresh
``mmap`` pages and unmaps them on ``free``; it also trims the top of its heap once more than the
trim threshold (twice the mmap threshold) is free there. A CPU training step allocates and frees
the same activation buffers (tens of MiB each) every step, so each step page-faults them in anew:
on VGG-8 (batch 32, T = 4) 30,000-50,000 minor faults and 65-80 ms of system CPU time per E-I
step, 4,500-8,000 per BN step. With both thresholds at their largest value (``2**31 - 1`` bytes)
freed blocks stay in the heap and later steps reuse them, as a caching allocator does (no faults
after about 15 steps). The price: the process keeps the memory of its largest step until it exits,
plus some fragmentation (resident 757 MiB instead of a 697 MiB peak on that VGG-8).

The ``eisnn`` command calls :func:`retain_freed_memory` at start (set ``EISNN_RETAIN_MEMORY=0``
to keep glibc's defaults); a library user calls it once, before training. Other C libraries
than glibc are left alone.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
LARGEST = 2**31 - 1  # mallopt takes an int


def _glibc() -> ctypes.CDLL | None:
    """This process's C library when it is glibc, else ``None``."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # TypeError: Windows has no handle for the process itself
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def retain_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds to ``2**31 - 1`` bytes, so that freed blocks stay
    in the heap. Returns whether both settings took (``False`` without glibc, or when
    ``EISNN_RETAIN_MEMORY=0``)."""
    if os.environ.get("EISNN_RETAIN_MEMORY", "1") == "0":
        return False
    libc = _glibc()
    if libc is None:
        return False
    return all(
        libc.mallopt(parameter, LARGEST) == 1 for parameter in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)
    )
