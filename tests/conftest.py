"""Shared test fixtures: the reference recording (SPEC fixtures) loaded once per session.

The recording is found through ``$EISNN_FIXTURES`` (a folder holding
``reference-vgg8-cifar10.pt``). Without it the parity tests are skipped and the summary says so;
with ``EISNN_REQUIRE_FIXTURES=1`` (as CI runs) a missing recording fails them instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Without CUDA the Triton kernels run through Triton's interpreter. The setting must precede the
# first import of triton anywhere in the session (torch.compile's inductor imports it too).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REFERENCE_NAME = "reference-vgg8-cifar10.pt"
HOW_TO_POINT = (
    f"set EISNN_FIXTURES to a folder holding {REFERENCE_NAME} "
    "(EISNN_REQUIRE_FIXTURES=1 makes a missing recording a failure)"
)


def _reference_path() -> Path | None:
    folder = os.environ.get("EISNN_FIXTURES")
    return Path(folder) / REFERENCE_NAME if folder else None


def _missing_reason() -> str | None:
    """Why the recording cannot be used, or ``None`` when it can."""
    path = _reference_path()
    if path is None:
        return f"no reference recording: {HOW_TO_POINT}"
    if not path.is_file():
        return f"reference recording not found at {path}: {HOW_TO_POINT}"
    return None


@pytest.fixture(scope="session")
def reference_vgg8() -> dict:
    """The recording of the paper's reference E-I VGG-8 (see the fixtures' README)."""
    reason = _missing_reason()
    if reason is not None:
        if os.environ.get("EISNN_REQUIRE_FIXTURES") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return torch.load(_reference_path(), weights_only=False)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say, under the summary, why the parity tests were skipped and how to run them."""
    reason = _missing_reason()
    skipped = terminalreporter.stats.get("skipped", [])
    if reason is not None and any(REFERENCE_NAME in str(report.longrepr) for report in skipped):
        terminalreporter.write_line(f"parity tests skipped: {reason}", yellow=True)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
