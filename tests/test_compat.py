"""Reading the reference's checkpoint formats, and clear errors for mismatches."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import eisnn
from eisnn.compat import ReferenceFormatError, load_reference, load_safetensors, to_reference
from eisnn.models import create_model


def _input(name: str, temporal: bool) -> torch.Tensor:
    size = 8 if "resnet" in name else 32  # global pooling: a small image keeps ResNet fast
    return torch.rand(2, 4, 2, size, size) if temporal else torch.rand(2, 3, size, size)


def _reference_like(name: str, temporal: bool = False) -> tuple[torch.nn.Module, dict]:
    model = create_model(name, 11 if temporal else 10, 2 if temporal else 3, 4)
    eisnn.ei_init(model, _input(name, temporal))
    return model, dict(to_reference(model, temporal_input=temporal))


@pytest.mark.parametrize("name,temporal", [("ei_vgg11", False), ("ei_vgg8", True), ("ei_resnet18", False)])
def test_formats_round_trip(tmp_path, name, temporal):
    model, state = _reference_like(name, temporal)
    config = {"type": "EI-SNN", "T": 4, "arch": "VGG", "ei_ratio": 4, "light_classifier": True, "dropout": 0.0, "neuron": {"tau": 2.0}}
    folder = tmp_path / "published"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    torch.save({"model_state_dict": state, "config": config, "epoch": 3}, tmp_path / "ckpt.pth")
    x = _input(name, temporal)
    model.eval()
    expected = model(x)
    for source in (state, folder, tmp_path / "ckpt.pth", str(tmp_path / "ckpt.pth")):
        loaded = load_reference(source).eval()
        assert eisnn.is_initialized(loaded)
        torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)
        back = to_reference(loaded)
        assert list(back) == list(state) and all(torch.equal(back[k], state[k]) for k in state)


def test_safetensors_reader_matches_writer(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(6, dtype=torch.int64).reshape(2, 3), "c": torch.randn(5).to(torch.bfloat16)}
    save_file(tensors, str(tmp_path / "t.safetensors"))
    loaded = load_safetensors(tmp_path / "t.safetensors")
    assert set(loaded) == set(tensors) and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    (tmp_path / "bad.safetensors").write_bytes((tmp_path / "t.safetensors").read_bytes()[:-8])
    with pytest.raises(ValueError, match="bad.safetensors.*truncated"):
        load_safetensors(tmp_path / "bad.safetensors")


def test_mismatched_keys_are_listed():
    _, state = _reference_like("ei_vgg8")
    del state["layers.3.gain_e"]
    state["layers.3.extra"] = torch.zeros(1)
    with pytest.raises(ReferenceFormatError, match=r"missing \['layers.3.gain_e'\], unexpected \['layers.3.extra'\]"):
        load_reference(state)


def test_unknown_architecture_and_missing_folder(tmp_path):
    with pytest.raises(ReferenceFormatError, match="unrecognized"):
        load_reference({"encoder.weight": torch.zeros(2, 2)})
    with pytest.raises(ReferenceFormatError, match="match no VGG"):
        load_reference({"layers.2.conv_ee.weight": torch.zeros(7, 3, 3, 3)})
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_reference(tmp_path)
    with pytest.raises(ReferenceFormatError, match="light classifier"):
        load_reference({"layers.2.conv_ee.weight": torch.zeros(64, 3, 3, 3)}, {"light_classifier": False})
