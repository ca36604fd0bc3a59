"""Page faults of repeated large allocations with and without ``retain_freed_memory``.

A "step" allocates and frees two 40 MiB temporaries (above glibc's largest dynamic mmap
threshold). With glibc's defaults each step maps them anew and page-faults them in; with the
setting the heap keeps them and the faults stop within a few steps. Counts depend on the
machine's allocator and load, so this is a measurement, not a test.

    PYTHONPATH=src python benchmarks/allocator.py
"""

from __future__ import annotations

import os
import subprocess
import sys

FAULTS_OF_REPEATED_STEPS = """
import resource, torch
from eisnn.allocator import retain_freed_memory
retained = retain_freed_memory()
x = torch.rand(10 * 2**20)
faults = []
for _ in range(24):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    y = (x * 2).sin_()
    (x + 1).sum()
    del y
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(retained, sum(faults[12:]))
"""


def faults_of_last_steps(retain: str) -> tuple[bool, int]:
    """``(setting applied, minor page faults over the last 12 of 24 steps)`` in a fresh process."""
    env = {**os.environ, "EISNN_RETAIN_MEMORY": retain}
    done = subprocess.run(
        [sys.executable, "-c", FAULTS_OF_REPEATED_STEPS],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    retained, faults = done.stdout.split()
    return retained == "True", int(faults)


def main() -> None:
    pages = 12 * 2 * 40 * 2**20 // os.sysconf("SC_PAGE_SIZE")
    print(f"pages touched by the last 12 steps: {pages}")
    for retain, label in (("0", "glibc defaults"), ("1", "retain_freed_memory")):
        retained, faults = faults_of_last_steps(retain)
        print(
            f"{label:20s} applied={retained!s:5s} minor faults {faults:8d} "
            f"({faults / pages:.2f} per page)"
        )


if __name__ == "__main__":
    main()
