"""``eisnn.benchmark`` runs end to end on a tiny configuration and reports the ratios; the targets
that judge them live in ``benchmarks/train_step.py``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from eisnn import benchmark


def test_benchmark_reports_both_twins_and_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--models",
        "vgg8",
        "--batch",
        "2",
        "--T",
        "2",
        "--image-size",
        "32",
        "--warmup",
        "0",
        "--steps",
        "1",
        "--threads",
        "1",
    ]
    assert benchmark.main(argv) == 0
    out = capsys.readouterr().out
    assert "ei_vgg8" in out and "bn_vgg8" in out
    assert "E-I/BN step time" in out and "peak memory" in out


def test_benchmark_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert benchmark.main(["--steps", "0"]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err
    assert (
        benchmark.main(["--models", "nope", "--steps", "1", "--warmup", "0", "--batch", "1"]) == 2
    )
    assert "unknown model" in capsys.readouterr().err


def test_the_targets_live_in_benchmarks_and_judge_the_ratios(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    train_step = importlib.import_module("train_step")
    assert not hasattr(benchmark, "TARGETS")
    line, ok = train_step.verdict("vgg8", benchmark.Ratios(time=1.2, memory=1.31))
    assert not ok and "step time 1.200 (target <= 1.3: ok)" in line
    assert "peak memory 1.310 (target <= 1.3: MISSED)" in line
    assert train_step.verdict("resnet18", benchmark.Ratios(time=1.35, memory=1.0))[1]
    no_targets = train_step.verdict("vgg11", benchmark.Ratios(time=9.0, memory=9.0))
    assert no_targets == ("  vgg11: no targets", True)


def test_benchmark_takes_event_frames_of_other_channel_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--models", "vgg8", "--batch", "2", "--T", "2", "--frames", "--channels", "2"]
    argv += ["--image-size", "32", "--width", "0.125", "--warmup", "0", "--steps", "1"]
    assert benchmark.main([*argv, "--threads", "1"]) == 0
    assert "ei_vgg8" in capsys.readouterr().out


def test_gpu_check_judges_the_issue_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    gpu_check = importlib.import_module("gpu_check")
    resnet, vgg = gpu_check.WORKLOADS
    fp32, bf16, compiled = gpu_check.PRECISIONS

    def row(work, precision, ei_ms, bn_ms, ei_mib, sync="ok"):
        ei = benchmark.Result("ei", work.batch, ei_ms / 1e3, 0.0, ei_mib << 20, [], sync)
        bn = benchmark.Result("bn", work.batch, bn_ms / 1e3, 0.0, 100 << 20, [], "ok")
        return gpu_check.Row(work, precision, ei, bn)

    assert gpu_check.misses(row(vgg, fp32, 20.0, 10.0, 120)) == []  # fp32 time is not judged
    assert gpu_check.misses(row(vgg, bf16, 14.0, 10.0, 120)) == ["time ratio 1.40 > 1.3"]
    assert gpu_check.misses(row(vgg, bf16, 12.0, 10.0, 140)) == ["memory ratio 1.40 > 1.3"]
    fast = gpu_check.misses(row(resnet, compiled, 12.5, 11.0, 110))  # 10,240 img/s
    assert fast == [] and gpu_check.misses(row(resnet, compiled, 13.0, 11.0, 110)) == [
        "E-I 9846 img/s < 10000"
    ]
    assert gpu_check.misses(row(vgg, bf16, 10.0, 10.0, 100, sync="host synchronization: x")) == [
        "ei: host synchronization: x"
    ]
