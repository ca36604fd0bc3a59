"""Published weights by name (``hf://``): resolved offline from a huggingface_hub cache filled with
a generated checkpoint in the published layout; without the extra, one line naming the install."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from eisnn import ei_init
from eisnn.compat import load_reference, to_reference
from eisnn.errors import UserError
from eisnn.models import create_model

SRC = Path(__file__).resolve().parents[1] / "src"
REPO, REVISION = "eisnn-test/ei-vgg8-tiny", "0123456789abcdef0123456789abcdef01234567"
CONFIG = {"arch": "VGG", "num_layers": 8, "dataset": "cifar10", "T": 2, "ei_ratio": 4,
          "neuron": {"tau": 2.0}, "dropout": 0.0}  # fmt: skip


def published_cache(cache: Path) -> dict[str, torch.Tensor]:
    """Write a small E-I VGG-8 in the published layout into ``cache`` as huggingface_hub lays out
    a downloaded snapshot; returns its reference state dict."""
    torch.manual_seed(0)
    model = create_model("ei_vgg8", num_classes=10, in_channels=3, T=2, image_size=32)
    ei_init(model, torch.rand(8, 3, 32, 32))  # data-dependent init: the network fires
    state = {k: v.contiguous() for k, v in to_reference(model).items()}
    repo = cache / f"models--{REPO.replace('/', '--')}"
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    save_file(state, snapshot / "model.safetensors")
    (snapshot / "config.json").write_text(json.dumps(CONFIG))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return state


def cifar_test_batch(root: Path) -> Path:
    """A 16-image CIFAR-10 test split in the python-pickle layout."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    pixels = torch.randint(0, 256, (16, 3 * 32 * 32), generator=torch.Generator().manual_seed(1))
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": pixels.to(torch.uint8).numpy(), "labels": list(range(10)) * 1
                     + list(range(6))}, f)  # fmt: skip
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return root


OFFLINE_SCRIPT = """
import sys, torch
from eisnn.cli import main
from eisnn import ei_init
from eisnn.compat import load_reference, to_reference
model = load_reference("hf://{repo}")
torch.save(to_reference(model), sys.argv[1])
for name in ("hf://{repo}", "hf://{repo}@{revision}", "hf://eisnn-test/not-cached"):
    print("exit", main(["eval", name, "--data-dir", sys.argv[2], "--set", "device=cpu"]))
"""


def test_a_published_model_loads_by_name_offline_from_the_cache(tmp_path, capsys):
    state = published_cache(tmp_path / "hub")
    data = cifar_test_batch(tmp_path / "data")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_HOME": str(tmp_path / "home"), "PYTHONPATH": str(SRC)}  # fmt: skip
    script = OFFLINE_SCRIPT.format(repo=REPO, revision=REVISION)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "loaded.pt"), str(data)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = torch.load(tmp_path / "loaded.pt")
    assert list(loaded) == list(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    # `eisnn eval hf://...` (both spellings) reports what `eisnn eval <the folder>` reports
    from eisnn.cli import main

    folder = tmp_path / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / REVISION
    assert main(["eval", str(folder), "--data-dir", str(data), "--set", "device=cpu"]) == 0
    local = capsys.readouterr().out.split("\n", 1)[1]
    reports = done.stdout.split("exit 0\n")
    assert len(reports) == 3 and "(T=2, 16 samples)" in reports[0]
    assert reports[0].split("\n", 1)[1] == reports[1].split("\n", 1)[1] == local
    # a name that is not in the cache: one error line naming it, and nothing fetched
    assert reports[2] == "exit 2\n"
    errors = [line for line in done.stderr.splitlines() if line.startswith("eisnn: error:")]
    assert len(errors) == 1 and "hf://eisnn-test/not-cached: cannot resolve" in errors[0]
    assert not (tmp_path / "hub" / "models--eisnn-test--not-cached" / "snapshots").exists()


def test_without_huggingface_hub_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # `import huggingface_hub` fails
    with pytest.raises(UserError, match=r"needs huggingface_hub: pip install eisnn\[hf\]") as err:
        load_reference(f"hf://{REPO}")
    assert "\n" not in str(err.value) and f"hf://{REPO}" in str(err.value)


def test_a_malformed_name_is_one_line(tmp_path):
    with pytest.raises(UserError, match="expected hf://<org>/<name>"):
        load_reference("hf://just-a-name")
