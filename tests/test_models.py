"""Every registered network builds and runs forward and backward, for static and event inputs."""

from __future__ import annotations

import pytest
import torch

import eisnn
from eisnn.models import create_model, list_models
from eisnn.nn import EIConv2d, EILinear


def _options(name: str) -> dict:
    if name.endswith(("mlp", "rnn")):
        return {"image_size": 8, "hidden": (16, 16)}
    if "resnet" in name:  # global pooling: a small image keeps the deep ones fast
        return {"image_size": 8, "width": 1 / 16}
    return {"image_size": 32, "width": 1 / 16}


@pytest.mark.parametrize("name", list_models())
def test_registry_forward_backward(name):
    T, B = 2, 2
    model = create_model(name, 5, 2, T, **_options(name))
    size = _options(name)["image_size"]
    static = torch.rand(B, 2, size, size)
    frames = (torch.rand(B, T, 2, size, size) < 0.3).float()
    eisnn.ei_init(model, static)
    for x in (static, frames):
        out = model(x)
        assert out.shape == (B, 5) and torch.isfinite(out).all()
        out.square().sum().backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        model.zero_grad()


def test_registry_names_and_errors():
    names = set(list_models())
    for arch in ("vgg8", "vgg11", "vgg16", "vgg19", "resnet18", "resnet34", "mlp"):
        assert {f"ei_{arch}", f"bn_{arch}"} <= names
    with pytest.raises(ValueError, match="unknown model"):
        create_model("ei_vgg7", 10, 3, 4)
    with pytest.raises(ValueError, match="too small"):
        create_model("ei_vgg8", 10, 3, 4, image_size=16)
    with pytest.raises(ValueError, match="ei_ratio"):
        create_model("ei_vgg8", 10, 3, 4, ei_ratio=0.5)


def test_static_input_equals_repeated_frames():
    """Direct encoding computes the first layer once; it must equal feeding the image T times."""
    model = create_model("ei_vgg8", 4, 3, 3, width=0.125)
    x = torch.rand(2, 3, 32, 32)
    eisnn.ei_init(model, x)
    frames = x.unsqueeze(1).expand(2, 3, 3, 32, 32)
    torch.testing.assert_close(model(x), model(frames))


def test_paper_shapes():
    vgg = create_model("ei_vgg16", 100, 3, 4)
    convs = [m for m in vgg.modules() if isinstance(m, EIConv2d)]
    assert [c.out_channels for c in convs] == [
        64,
        64,
        128,
        128,
        256,
        256,
        256,
        512,
        512,
        512,
        512,
        512,
        512,
    ]
    assert all(c.n_inhibitory == c.out_channels // 4 for c in convs)
    readout = [m for m in vgg.modules() if isinstance(m, EILinear)]
    assert len(readout) == 1 and readout[0].readout and readout[0].in_features == 512
    resnet = create_model("ei_resnet18", 10, 3, 4)
    assert sum(isinstance(m, EIConv2d) for m in resnet.modules()) == 1 + 16 + 3
    assert sum(p.numel() for p in create_model("bn_resnet18", 10, 3, 4).parameters()) > 1e7


def test_dropout_is_active_only_in_training():
    model = create_model("ei_mlp", 3, 1, 4, image_size=4, hidden=(32,), dropout=0.5)
    x = torch.rand(8, 1, 4, 4)
    eisnn.ei_init(model.eval(), x)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))
