"""``eisnn.benchmark`` runs end to end on a tiny configuration and reports the ratios."""

from __future__ import annotations

import pytest

from eisnn import benchmark


def test_benchmark_reports_both_twins_and_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--models", "vgg8", "--batch", "2", "--T", "2", "--image-size", "32", "--warmup", "0", "--steps", "1", "--threads", "1"]
    assert benchmark.main(argv) == 0
    out = capsys.readouterr().out
    assert "ei_vgg8" in out and "bn_vgg8" in out
    assert "E-I/BN step time" in out and "peak memory" in out


def test_benchmark_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert benchmark.main(["--steps", "0"]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err
    assert benchmark.main(["--models", "nope", "--steps", "1", "--warmup", "0", "--batch", "1"]) == 2
    assert "unknown model" in capsys.readouterr().err
