"""Shared test fixtures: the reference recording (SPEC fixtures) loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

FIXTURES = Path(os.environ.get("EISNN_FIXTURES", Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"))
REFERENCE_VGG8 = FIXTURES / "reference-vgg8-cifar10.pt"


@pytest.fixture(scope="session")
def reference_vgg8() -> dict:
    """The recording of the paper's reference E-I VGG-8 (see shared/fixtures/README.md)."""
    if not REFERENCE_VGG8.is_file():
        pytest.skip(f"reference fixture not found at {REFERENCE_VGG8} (set EISNN_FIXTURES)")
    return torch.load(REFERENCE_VGG8, weights_only=False)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
