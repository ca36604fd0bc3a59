"""Retaining freed memory: the setting applies under glibc and can be switched off.

Whether it stops the page faults is measured in ``benchmarks/allocator.py`` (fault counts depend
on the machine and its load, so they are not asserted in a test).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from eisnn import allocator


def _applied(retain: str) -> bool:
    """Whether ``retain_freed_memory`` applies the setting in a fresh process."""
    env = {**os.environ, "EISNN_RETAIN_MEMORY": retain}
    code = "from eisnn.allocator import retain_freed_memory; print(retain_freed_memory())"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip() == "True"


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc's malloc only")
def test_applied_under_glibc_unless_switched_off():
    assert _applied("1")
    assert not _applied("0")


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("EISNN_RETAIN_MEMORY", "0")
    assert allocator.retain_freed_memory() is False
