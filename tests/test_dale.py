"""Dale's law: projection after every optimizer step, with any torch optimizer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import eisnn
from eisnn.dale import constrained_parameters, split_parameters
from eisnn.models import create_model


def _tiny_model():
    model = create_model("ei_vgg8", 5, 1, 2, image_size=32, width=0.125)
    eisnn.ei_init(model, torch.rand(4, 1, 32, 32))
    return model


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9, weight_decay=5e-4),
        lambda p: torch.optim.AdamW(p, lr=0.05),
    ],
)
def test_dale_holds_after_random_steps(make_opt):
    model = _tiny_model()
    opt = make_opt(model.parameters())
    eisnn.dale.attach(opt, model)
    constrained, free = split_parameters(model)
    went_negative = False
    for _ in range(50):
        opt.zero_grad()
        for p in model.parameters():  # random, sign-indefinite gradients push weights below zero
            p.grad = torch.randn_like(p)
        with torch.no_grad():
            went_negative |= any(bool((p - 0.5 * p.grad < 0).any()) for p in constrained)
        opt.step()
        assert all(bool((p >= 0).all()) for p in constrained)
    assert went_negative
    assert any(bool((p < 0).any()) for p in free), "b_E is free and should take negative values"


def test_split_and_project():
    model = _tiny_model()
    constrained, free = split_parameters(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].rsplit(".", 1)[1] for p in constrained} == {
        "w_ee",
        "w_ie",
        "w_ei",
        "g_i",
        "g_e",
    }
    assert {names[id(p)].rsplit(".", 1)[1] for p in free} == {"b_e"}
    with torch.no_grad():
        for p in model.parameters():
            p.sub_(1.0)
    eisnn.dale.project_(model)
    assert all(bool((p >= 0).all()) for p in constrained_parameters(model))
    assert all(bool((p < 0).any()) for p in free)


def test_attach_returns_removable_handle():
    model = _tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    handle = eisnn.dale.attach(opt, model)
    handle.remove()
    x = torch.rand(2, 1, 32, 32)
    F.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    for p in model.parameters():
        if p.grad is not None:
            p.grad.fill_(10.0)
    opt.step()
    assert any(bool((p < 0).any()) for p in constrained_parameters(model))
