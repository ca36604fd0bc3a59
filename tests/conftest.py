"""Shared test fixtures: the reference recording (SPEC fixtures) loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

def _fixture_dir() -> Path:
    """``$EISNN_FIXTURES``, else ``shared/fixtures`` beside the checkout, else the workplace's copy."""
    if "EISNN_FIXTURES" in os.environ:
        return Path(os.environ["EISNN_FIXTURES"])
    candidates = [Path(__file__).resolve().parents[1].parent / "shared" / "fixtures", Path("/work/shared/fixtures")]
    return next((c for c in candidates if c.is_dir()), candidates[0])


FIXTURES = _fixture_dir()
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
