"""Diagnostics: each statistic on hand-built layers with known answers; hooks leave no trace."""

from __future__ import annotations

import copy
import importlib
import math
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from eisnn.diagnostics import (
    GradientNorms,
    Recorder,
    dale_pinned,
    diagnosed_layers,
    firing_stats,
    spike_counts,
)
from eisnn.models import create_model
from eisnn.nn import LIF, EILinear


def hand_built_layer() -> EILinear:
    """2 inputs, 4 E units, 1 I unit: W_EE = 1, W_IE = [1, 0], W_EI = 0.5, g_I = 2."""
    layer = EILinear(2, 4, ei_ratio=4, init="standard")
    with torch.no_grad():
        layer.w_ee.fill_(1.0)
        layer.w_ie.copy_(torch.tensor([[1.0, 0.0]]))
        layer.w_ei.fill_(0.5)
        layer.g_i.fill_(2.0)
    return layer


def test_ei_statistics_of_a_hand_built_layer():
    # rows: I_EE = 1, 1, 0, 3 (each of 4 units); I_I = 1, 0, 0, 2; sub = I_I / 2;
    # div = W_EI g_I I_I = I_I
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [2.0, 1.0]])
    model = nn.Sequential(hand_built_layer())
    with Recorder(model) as rec:
        model(x[:2])
        model(x[2:])  # statistics accumulate over calls
    s = rec.summary()["0"]
    assert s["balance"] == pytest.approx(0.375 / 1.25)  # mean sub / mean I_EE
    assert s["i_active"] == pytest.approx(0.5) and s["i_mean"] == pytest.approx(0.75)
    assert s["div_mean"] == pytest.approx(0.75)
    assert s["div_std"] == pytest.approx(math.sqrt(1.25 - 0.75**2))
    assert s["div_zero"] == pytest.approx(
        0.5
    )  # two rows of four zeros: replaced by the stabilization
    assert s["div_empty"] == pytest.approx(0.5)  # ... and those rows have no positive entry at all
    assert s["dale_pinned"] == pytest.approx(1 / 19)  # the one zero of W_IE among 8+2+4+1+4 values


def test_firing_statistics_of_a_known_spike_pattern():
    # LIF (tau 2, threshold 1, T=4): current 2 fires every step, 0 never, 0.6 once (at step 3)
    current = torch.tensor([2.0, 0.0, 0.6]).expand(4, 2, 3).contiguous()
    model = nn.Sequential(LIF())
    with Recorder(model) as rec:
        spikes = model(current)
    assert spikes.sum(dim=(0, 1)).tolist() == [8.0, 0.0, 2.0]
    s = rec.summary()["0"]
    assert s["e_rate"] == pytest.approx(10 / 24)
    assert s["silent"] == pytest.approx(1 / 3) and s["saturated"] == pytest.approx(1 / 3)
    counts = spike_counts(spikes)
    assert firing_stats(counts, 8) == pytest.approx(
        {"e_rate": 10 / 24, "silent": 1 / 3, "saturated": 1 / 3}
    )


def test_dale_pinned_counts_zero_constrained_values_only():
    layer = hand_built_layer()
    with torch.no_grad():
        layer.w_ee[0].zero_()  # 2 zeros
        layer.g_e[:3].zero_()  # 3 zeros
        layer.b_e.zero_()  # free parameter: not counted
    assert dale_pinned(layer) == pytest.approx(6 / 19)


def test_gradient_norms_per_parameter_kind():
    model = nn.Sequential(hand_built_layer(), nn.Linear(4, 2, bias=True))
    norms = GradientNorms(model)
    assert list(norms) == [
        "w_ei",
        "g_i",
        "g_e",
        "b_e",
        "w_ee",
        "w_ie",
        "linear.weight",
        "linear.bias",
    ]
    for scale in (1.0, 3.0):
        for p in model.parameters():
            p.grad = torch.full_like(p, scale)
        norms.accumulate()
    means = norms.means()
    assert means["w_ee"] == pytest.approx(2.0 * math.sqrt(8))  # mean of 1*sqrt(8) and 3*sqrt(8)
    assert means["linear.weight"] == pytest.approx(2.0 * math.sqrt(8))
    assert means["g_i"] == pytest.approx(2.0)
    norms.reset()
    assert norms.means() == {}


def test_layers_are_named_after_their_spiking_units():
    ei = create_model("ei_mlp", 10, 1, 2, image_size=4, hidden=(8, 8))
    probes = diagnosed_layers(ei)
    assert list(probes) == ["stem", "body.0", "head.module"]
    assert probes["stem"].ei is ei.stem.current[1] and probes["stem"].lif is ei.stem.lif
    assert probes["head.module"].lif is None  # the readout has no neurons
    bn = diagnosed_layers(create_model("bn_mlp", 10, 1, 2, image_size=4, hidden=(8, 8)))
    assert list(bn) == ["stem", "body.0"] and all(
        p.ei is None and p.lif is not None for p in bn.values()
    )


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_recording_leaves_outputs_and_speed_unchanged():
    torch.manual_seed(0)
    model = create_model("ei_mlp", 10, 1, 4, image_size=8, hidden=(64, 64))
    x = torch.rand(32, 1, 8, 8)
    from eisnn import ei_init

    ei_init(model, x)
    model.eval()

    def timed(m: nn.Module) -> float:
        t = time.perf_counter()
        m(x)
        return time.perf_counter() - t

    untouched = copy.deepcopy(model)
    with torch.no_grad():
        before = model(x)
        with Recorder(model, samples=64) as rec:
            assert _hooks(model) == 5  # 3 E-I layers + 2 LIF
            during = model(x)
        after = model(x)
        # speed: interleaved against an identical copy that was never recorded
        # (the CPU may be shared)
        pairs = [(timed(untouched), timed(model)) for _ in range(20)]
    assert _hooks(model) == 0
    assert torch.equal(before, during) and torch.equal(before, after)
    assert rec.summary()["stem"]["e_rate"] > 0
    assert min(p[1] for p in pairs) < 1.5 * min(p[0] for p in pairs) + 1e-3


EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def experiment(name: str, monkeypatch: pytest.MonkeyPatch):
    """A module of experiments/ (scripts run on the installed package), imported."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    return importlib.import_module(name)


def test_verdict_needs_the_claimed_failure(monkeypatch):
    verdict = experiment("study_report", monkeypatch).verdict
    full = {"n": 3, "acc": 90.0, "std": 1.0, "diverged": 0, "exploded": 0, "collapsed": 0}
    collapsed = {"n": 3, "acc": 10.0, "std": 0.0, "diverged": 0, "exploded": 0, "collapsed": 3}
    assert verdict("collapse", full, collapsed).startswith("**reproduced**")
    assert verdict("explode", full, collapsed).startswith("partly")
    exploded = {"n": 3, "acc": 10.0, "std": 0.0, "diverged": 1, "exploded": 2, "collapsed": 0}
    assert verdict("explode", full, exploded).startswith("**reproduced**")
    same = {"n": 3, "acc": 89.0, "std": 1.5, "diverged": 0, "exploded": 0, "collapsed": 0}
    assert verdict("accuracy", full, same).startswith("**not reproduced**")


def test_the_report_fills_only_its_marked_blocks(monkeypatch):
    report = experiment("study_report", monkeypatch)
    text = "prose\n<!-- results:a -->\nold\n<!-- /results:a -->\nmore prose\n"
    filled = report.fill_blocks(text, {"a": "new\nlines\n"}, Path("doc.md"))
    assert filled == "prose\n<!-- results:a -->\nnew\nlines\n<!-- /results:a -->\nmore prose\n"
    with pytest.raises(report.ReportError, match="blocks missing: b; unknown blocks: none"):
        report.fill_blocks(text, {"a": "x", "b": "y"}, Path("doc.md"))
    with pytest.raises(report.ReportError, match="blocks missing: none; unknown blocks: a"):
        report.fill_blocks(text, {}, Path("doc.md"))
    with pytest.raises(report.ReportError, match="block a has no closing"):
        report.fill_blocks("<!-- results:a -->\nold\n", {"a": "x"}, Path("doc.md"))


def test_study_grids_cover_every_variant_on_each_network(tmp_path, monkeypatch):
    grid = experiment("study_grid", monkeypatch)
    from eisnn.nn import EIConv2d
    from eisnn.train.config import from_dict
    from eisnn.train.factory import build_model

    weight_layers = (nn.Linear, EILinear, nn.Conv2d, EIConv2d)
    for key, expected in (
        ("mlp", {"shallow": 3, "deep": 11}),
        ("conv", {"vgg_8": 6, "resnet_18": 21}),
    ):
        study = grid.STUDIES[key]
        specs = grid.plan(key, ["digits", "digits_dvs"], seeds=3)
        assert len(specs) == 2 * len(study.networks) * len(grid.VARIANTS) * 3
        assert len({s.folder(tmp_path) for s in specs}) == len(specs)
        counts, models = {}, set()
        for spec in specs:
            if spec.seed == 0 and spec.dataset == "digits":
                cfg = from_dict(spec.config(str(tmp_path)))
                models.add(cfg.model)
                counts[(grid.slug(spec.network), cfg.model)] = sum(
                    isinstance(m, weight_layers) for m in build_model(cfg).modules()
                )
        for network, n in expected.items():
            assert {c for (net, _), c in counts.items() if net == network} == {n}, network
        archs = {network.arch for network in study.networks.values()}
        assert models == {f"{kind}_{a}" for kind in ("ei", "bn", "plain") for a in archs}


def test_recorded_currents_are_the_ones_the_convolution_integrates():
    from eisnn import ei_init
    from eisnn.functional.ei import stabilize
    from eisnn.nn import EIConv2d

    torch.manual_seed(0)
    layer = EIConv2d(3, 8, 3, padding=1)
    x = (torch.rand(6, 3, 5, 5) < 0.3).float()
    x[0] = 0  # a silent sample: its div row is all zero
    ei_init(layer, x)
    c = layer.lateral_currents(x)
    per = lambda p: p.view(1, -1, 1, 1)
    expected = per(layer.g_e) * (c["i_ee"] - c["sub"]) / stabilize(c["div"]) + per(layer.b_e)
    with Recorder(nn.Sequential(layer)) as rec:
        out = layer(x)
    torch.testing.assert_close(out, expected)
    s = rec.summary()["0"]
    assert s["div_empty"] == pytest.approx(1 / 6)
    assert s["div_zero"] >= s["div_empty"]


def test_recorder_covers_every_unit_of_a_resnet():
    from eisnn import ei_init

    model = create_model("ei_resnet18", 10, 2, 2, width=1 / 16)
    x = torch.rand(4, 2, 2, 8, 8).round()
    ei_init(model, x)
    with torch.no_grad(), Recorder(model) as rec:
        model(x)
    summary = rec.summary()
    assert len(summary) == 17 + 3 + 1  # convs, projection shortcuts, readout
    assert {"body.1.0.shortcut", "head.2.module"} <= set(summary)
    for name, s in summary.items():
        assert 0 <= s["div_zero"] <= 1 and 0 <= s["dale_pinned"] <= 1
        if name != "head.2.module":
            assert 0 <= s["silent"] <= 1 and 0 <= s["e_rate"] <= 1


def test_spiking_inhibitory_units_and_reparametrized_dale_are_diagnosed():
    from eisnn import ei_init

    layer = EILinear(16, 8, inhibitory="lif", time_steps=2, dale="reparam")
    model = nn.Sequential(layer)
    x = (torch.rand(2 * 5, 16) < 0.5).float()  # [T*B, d] with T=2
    ei_init(model, x)
    with torch.no_grad(), Recorder(model) as rec:
        out = model(x)
        s_i = layer.i_population(layer.currents(x)[1])
    s = rec.summary()["0"]
    assert set(s_i.unique().tolist()) == {0.0, 1.0}  # the I units spike, not all of them
    assert s["i_mean"] == pytest.approx(float(s_i.mean())) and s["i_active"] == pytest.approx(
        float(s_i.mean())
    )
    assert torch.isfinite(out).all() and s["dale_pinned"] == 0.0  # softplus is never exactly 0
    assert set(GradientNorms(model)) == {"w_ee", "w_ie", "w_ei", "g_i", "g_e", "b_e"}
