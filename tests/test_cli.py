"""The ``eisnn`` command: train / eval / convert, one-line errors, ``python -m eisnn``."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from eisnn.cli import COMMANDS, main
from eisnn.compat import to_reference

SRC = Path(__file__).resolve().parents[1] / "src"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_runs_a_config_and_prints_the_test_accuracy(tmp_path, capsys):
    code, out, err = run(
        capsys,
        "train",
        "--out",
        str(tmp_path),
        "--set",
        "name=r",
        "--set",
        "model=ei_mlp",
        "--set",
        "image_size=8",
        "--set",
        "epochs=1",
        "--set",
        "limit_batches=2",
        "--set",
        "progress=false",
        "--set",
        "T=2",
        "--set",
        f"cpu_threads={torch.get_num_threads()}",
    )
    assert code == 0, err
    assert "test accuracy: top-1 " in out and f"run directory: {tmp_path / 'r'}" in out
    assert (tmp_path / "r" / "checkpoints" / "last.pt").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "T=0"], "eisnn: error: T: must be >= 1, got 0"),
        (["--set", "lrr=1"], "eisnn: error: unknown key 'lrr'; known keys: model,"),
        (["--set", "model=ei_vgg7"], "eisnn: error: model: 'ei_vgg7' is not one of "),
        (["no_such_config"], "eisnn: error: no config file 'no_such_config'"),
        (["--stop-after", "0"], "eisnn: error: --stop-after: must be >= 1, got 0"),
        (
            ["--resume", "/nonexistent/run"],
            "eisnn: error: no checkpoint at /nonexistent/run/checkpoints/last.pt",
        ),
    ],
)
def test_bad_input_ends_with_one_error_line(tmp_path, capsys, argv, message):
    code, out, err = run(capsys, "train", *argv)
    assert code == 2 and err.startswith(message) and err.count("\n") == 1 and out == ""


def test_a_missing_dataset_or_run_directory_ends_with_one_error_line(tmp_path, capsys):
    code, _, err = run(
        capsys,
        "train",
        "cifar10_vgg8",
        "--data-dir",
        str(tmp_path),
        "--out",
        str(tmp_path),
        "--set",
        "device=cpu",
    )
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("eisnn: error: cifar10: dataset not found")
    code, _, err = run(capsys, "plot", str(tmp_path))
    assert code == 2
    assert err == f"eisnn: error: {tmp_path} is not a run directory: no metrics.csv in it\n"
    code, _, err = run(capsys, "eval", str(tmp_path))
    assert code == 2
    assert err.startswith(f"eisnn: error: {tmp_path} is a folder without model.safetensors")


def test_a_reference_checkpoint_of_no_known_layout_ends_with_one_error_line(tmp_path, capsys):
    source = str(tmp_path / "other.safetensors")
    save_file({"head.weight": torch.zeros(2)}, source)
    code, _, err = run(
        capsys,
        "convert",
        source,
        str(tmp_path / "out.pt"),
        "--set",
        "model=ei_vgg8",
        "--set",
        "dataset=cifar10",
    )
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("eisnn: error: unrecognized reference checkpoint")


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory", "libnvrtc-builtins.so"),
        NotImplementedError("aten::_fused_op is not implemented for this backend"),
        RuntimeError(
            "DataLoader worker timed out after 5 seconds"
        ),  # in a launch, yet no collective
    ],
)
def test_an_unexpected_exception_from_deep_inside_keeps_its_traceback(
    tmp_path, monkeypatch, capsys, error
):
    from eisnn.train import trainer

    def fail(*args, **kwargs):
        monkeypatch.setenv("RANK", "0")  # as under torchrun, once the launch is up
        monkeypatch.setenv("WORLD_SIZE", "2")
        raise error

    monkeypatch.setattr(trainer, "build_loaders", fail)
    with pytest.raises(type(error)) as info:
        main(["train", "--out", str(tmp_path), "--set", "model=ei_mlp", "--set", "image_size=8"])
    assert info.value is error and "eisnn: error" not in capsys.readouterr().err


def test_resume_refuses_a_second_config(capsys):
    code, _, err = run(capsys, "train", "some.yaml", "--resume", "runs/x")
    assert code == 2 and "--resume takes the run's own config" in err


def test_subcommands_are_registered_and_python_m_works(capsys):
    assert {"train", "eval", "convert"} <= set(COMMANDS)
    code, out, _ = run(capsys, "train", "--keys")
    assert code == 0 and out.startswith("model: str = 'ei_vgg8'") and "\nlr: float = 0.001" in out
    done = subprocess.run(
        [sys.executable, "-m", "eisnn", "--help"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        timeout=120,
    )
    assert done.returncode == 0 and "train" in done.stdout and "convert" in done.stdout


# ------------------------------------------------------------------ reference checkpoint
@pytest.fixture(scope="module")
def reference(tmp_path_factory, reference_vgg8):
    """The fixture as a reference training checkpoint (``model_state_dict`` + ``config``) and a
    CIFAR-10 test split made of its images, in the python-pickle layout."""
    fx = reference_vgg8
    root = tmp_path_factory.mktemp("reference")
    torch.save({"model_state_dict": fx["state_dict"], "config": fx["config"]}, root / "ref.pth")
    published = root / "published"  # the layout of the paper's released weights
    published.mkdir()
    save_file(
        {k: v.contiguous() for k, v in fx["state_dict"].items()}, published / "model.safetensors"
    )
    (published / "config.json").write_text(json.dumps(fx["config"]))
    images = torch.cat([fx["X0"], fx["X1"]])
    labels = torch.cat([torch.arange(8) % 10, fx["y1"]])
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    folder = root / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": pixels.reshape(16, -1).numpy(), "labels": labels.tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return {"fx": fx, "root": root, "pixels": pixels, "labels": labels}


def expected_accuracy(reference) -> tuple[float, float]:
    from eisnn.compat import load_reference

    model = load_reference(reference["fx"]["state_dict"], config=reference["fx"]["config"]).eval()
    with torch.no_grad():
        logits = model(reference["pixels"].float() / 255)
    top5 = logits.topk(5, dim=1).indices
    y = reference["labels"]
    return (
        100 * (top5[:, 0] == y).float().mean().item(),
        100 * (top5 == y[:, None]).any(1).float().mean().item(),
    )


def test_convert_then_eval_reports_accuracy_and_firing_rates(reference, capsys):
    root = reference["root"]
    code, out, err = run(capsys, "convert", str(root / "ref.pth"), str(root / "converted.pt"))
    assert code == 0, err
    assert "ei_vgg8 for cifar10, T=4" in out

    from eisnn.train.convert import load_model

    model, cfg = load_model(root / "converted.pt")
    # The converted weights are the reference's (in float32; the float64 parity is test_parity's).
    back = to_reference(model)
    assert list(back) == list(reference["fx"]["state_dict"])
    for key, value in reference["fx"]["state_dict"].items():
        assert torch.equal(back[key], value.float()), key

    top1, top5 = expected_accuracy(reference)
    reports = []
    for source in ("converted.pt", "ref.pth", "published"):
        code, out, err = run(capsys, "eval", str(root / source), "--data-dir", str(root / "data"))
        assert code == 0, err
        assert f"top-1 {top1:.2f}%  top-5 {top5:.2f}%" in out and "16 samples" in out
        rates = [line.split() for line in out.splitlines() if line.startswith("  ")]
        assert len(rates) == 5 and all(0 <= float(r[1]) <= 1 for r in rates)  # 5 conv LIF layers
        reports.append(out.split("\n", 1)[1])
    assert reports[0] == reports[1] == reports[2]


def test_eval_of_a_damaged_file_names_it(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    code, _, err = run(capsys, "eval", str(bad))
    assert code == 2 and err.startswith(f"eisnn: error: cannot read {bad}")
