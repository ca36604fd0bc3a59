"""Retaining freed memory: blocks freed and allocated again are not page-faulted in again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from eisnn import allocator

FAULTS_OF_REPEATED_STEPS = """
import resource, torch
from eisnn.allocator import retain_freed_memory
retained = retain_freed_memory()
x = torch.rand(10 * 2**20)  # 40 MiB: above glibc's largest dynamic mmap threshold
faults = []
for _ in range(24):  # a "step" allocating and freeing two temporaries of that size
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    y = (x * 2).sin_()
    (x + 1).sum()
    del y
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(retained, sum(faults[12:]))
"""


def _faults(retain: str) -> tuple[bool, int]:
    env = {**os.environ, "EISNN_RETAIN_MEMORY": retain}
    out = subprocess.run([sys.executable, "-c", FAULTS_OF_REPEATED_STEPS], env=env, capture_output=True, text=True, check=True)
    retained, faults = out.stdout.split()
    return retained == "True", int(faults)


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc's malloc only")
def test_retained_memory_is_reused_without_page_faults():
    retained, faults = _faults("1")
    default_retained, default_faults = _faults("0")
    assert retained and not default_retained
    pages = 12 * 2 * 40 * 2**20 // os.sysconf("SC_PAGE_SIZE")  # two 40 MiB blocks in each of the last 12 steps
    assert default_faults > pages // 2  # glibc's default maps them anew each time
    assert faults < pages // 10  # retained: the heap settles within a few steps


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("EISNN_RETAIN_MEMORY", "0")
    assert allocator.retain_freed_memory() is False
