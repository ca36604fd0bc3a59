"""Reading the reference's checkpoint formats, and clear errors for mismatches."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import eisnn
from eisnn.compat import ReferenceFormatError, load_reference, to_reference
from eisnn.models import create_model


def _input(name: str, temporal: bool) -> torch.Tensor:
    size = 8 if "resnet" in name else 32  # global pooling: a small image keeps ResNet fast
    return torch.rand(2, 4, 2, size, size) if temporal else torch.rand(2, 3, size, size)


def _reference_like(name: str, temporal: bool = False) -> tuple[torch.nn.Module, dict]:
    model = create_model(name, 11 if temporal else 10, 2 if temporal else 3, 4)
    eisnn.ei_init(model, _input(name, temporal))
    return model, dict(to_reference(model))


@pytest.mark.parametrize(
    "name,temporal", [("ei_vgg11", False), ("ei_vgg8", True), ("ei_resnet18", False)]
)
def test_formats_round_trip(tmp_path, name, temporal):
    model, state = _reference_like(name, temporal)
    config = {
        "type": "EI-SNN",
        "T": 4,
        "arch": "VGG",
        "ei_ratio": 4,
        "light_classifier": True,
        "dropout": 0.0,
        "neuron": {"tau": 2.0},
    }
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


def test_lone_safetensors_file_round_trips(tmp_path):
    _, state = _reference_like("ei_vgg8")
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    back = to_reference(load_reference(path))
    assert list(back) == list(state) and all(torch.equal(back[k], state[k]) for k in state)


def _damage(raw: bytes, how: str) -> bytes:
    """A ``.safetensors`` file's bytes damaged one way: ``raw`` is 8 bytes of header length
    (little-endian u64), the JSON header, then the tensor data."""
    size = int.from_bytes(raw[:8], "little")
    header, data = json.loads(raw[8 : 8 + size]), raw[8 + size :]
    first = next(name for name in header if name != "__metadata__")
    if how == "truncated":
        return raw[: len(raw) - 8]
    if how == "header length beyond the file":
        return (len(raw) * 2).to_bytes(8, "little") + raw[8:]
    if how == "corrupted header":
        return raw[:8] + b"#" + raw[9:]
    if how == "offsets beyond the data":
        header[first]["data_offsets"][1] = len(data) + 64
    elif how == "byte count does not fit dtype and shape":
        header[first]["shape"] = [header[first]["shape"][0] + 1, *header[first]["shape"][1:]]
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


@pytest.mark.parametrize(
    "how",
    [
        "truncated",
        "header length beyond the file",
        "corrupted header",
        "offsets beyond the data",
        "byte count does not fit dtype and shape",
    ],
)
@pytest.mark.parametrize("folder", [False, True], ids=["file", "folder"])
def test_damaged_safetensors_is_a_one_line_error_naming_the_file(tmp_path, how, folder):
    _, state = _reference_like("ei_vgg8")
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    path.write_bytes(_damage(path.read_bytes(), how))
    with pytest.raises(ReferenceFormatError) as info:
        load_reference(tmp_path if folder else path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_mismatched_keys_are_listed():
    _, state = _reference_like("ei_vgg8")
    del state["layers.3.gain_e"]
    state["layers.3.extra"] = torch.zeros(1)
    with pytest.raises(
        ReferenceFormatError,
        match=r"missing \['layers.3.gain_e'\], unexpected \['layers.3.extra'\]",
    ):
        load_reference(state)


def test_unknown_architecture_and_missing_folder(tmp_path):
    with pytest.raises(ReferenceFormatError, match="unrecognized"):
        load_reference({"encoder.weight": torch.zeros(2, 2)})
    with pytest.raises(ReferenceFormatError, match="match no VGG"):
        load_reference({"layers.2.conv_ee.weight": torch.zeros(7, 3, 3, 3)})
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_reference(tmp_path)
    with pytest.raises(ReferenceFormatError, match="light classifier"):
        load_reference(
            {"layers.2.conv_ee.weight": torch.zeros(64, 3, 3, 3)}, {"light_classifier": False}
        )


# ------------------------------------------------ VGG layout: event frames vs static input

VGG8_PLAN = (64, "P", 128, "P", 256, "P", 512, "P", 512, "P")  # SPEC section 6


def _reference_vgg_keys(plan: tuple, event_frames: bool) -> set[str]:
    """The reference VGG's parameter keys, by enumerating its flat sequential (SPEC section 8):
    a time module at the front (repeat + merge for static input, merge only for event frames),
    then conv, norm, split-time, LIF, dropout, merge-time per conv unit, a pooling, the flatten,
    the readout linear and its norm."""
    modules = ["merge"] if event_frames else ["repeat", "merge"]
    for item in plan:
        modules += ["pool"] if item == "P" else ["conv", "norm", "split", "lif", "dropout", "merge"]
    modules += ["flatten", "linear", "norm"]
    params = {
        "conv": ("conv_ee.weight", "conv_ie.weight"),
        "linear": ("weight_ee", "weight_ie"),
        "norm": ("weight_ei", "gain_i", "gain_e", "bias"),
    }
    return {f"layers.{i}.{p}" for i, m in enumerate(modules) for p in params.get(m, ())}


def _frames(T: int = 2) -> torch.Tensor:
    return torch.rand(2, T, 2, 32, 32)


def _event_vgg8() -> torch.nn.Module:
    model = create_model("ei_vgg8", 11, 2, 2)
    eisnn.ei_init(model, _frames())
    return model


def test_event_vgg_exports_the_event_layout_however_made():
    initialized = _event_vgg8()
    reloaded = create_model("ei_vgg8", 11, 2, 2)
    reloaded.load_state_dict(initialized.state_dict())
    loaded = load_reference(to_reference(initialized), {"T": 2})
    expected = _reference_vgg_keys(VGG8_PLAN, event_frames=True)
    for model in (initialized, reloaded, loaded):
        keys = set(to_reference(model))
        assert keys == expected and "layers.2.gain_i" in keys and "layers.3.gain_i" not in keys


def test_static_vgg_exports_the_static_layout_even_when_later_given_frames():
    model = create_model("ei_vgg8", 10, 2, 2)
    eisnn.ei_init(model, torch.rand(2, 2, 32, 32))
    model(_frames())  # frames after the E-I Init do not change what the model was made for
    keys = set(to_reference(model))
    assert keys == _reference_vgg_keys(VGG8_PLAN, event_frames=False) and "layers.3.gain_i" in keys
    assert set(to_reference(load_reference(to_reference(model), {"T": 2}))) == keys


def test_event_vgg_round_trip_is_exact():
    model = _event_vgg8().eval()
    state = to_reference(model)
    loaded = load_reference(state, {"T": 2}).eval()
    back = to_reference(loaded)
    assert list(back) == list(state) and all(torch.equal(back[k], state[k]) for k in state)
    x = _frames()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_trainer_builds_vgg_for_its_dataset_input_form():
    from eisnn.train.config import load_config
    from eisnn.train.factory import build_model

    def build(dataset: str) -> torch.nn.Module:
        options = ["model=ei_vgg8", f"dataset={dataset}", "T=2", "init=standard"]
        return build_model(load_config(None, options))

    event, static = build("digits_dvs"), build("cifar10")
    assert set(to_reference(event)) == _reference_vgg_keys(VGG8_PLAN, event_frames=True)
    assert set(to_reference(static)) == _reference_vgg_keys(VGG8_PLAN, event_frames=False)


def test_state_dict_without_event_frames_keeps_the_built_input_form():
    old = {k: v for k, v in _event_vgg8().state_dict().items() if k != "event_frames"}
    as_static = create_model("ei_vgg8", 11, 2, 2)
    as_event = create_model("ei_vgg8", 11, 2, 2, event_frames=True)
    as_static.load_state_dict(old)  # strict: a missing event_frames is no error
    as_event.load_state_dict(old)
    assert not bool(as_static.event_frames) and bool(as_event.event_frames)
    assert "layers.2.gain_i" in to_reference(as_event)
    assert "layers.3.gain_i" in to_reference(as_static)
