"""Diagnostics in a training run: CSV and TensorBoard columns, histogram data, `eisnn plot`, config
keys."""

from __future__ import annotations

import csv
import dataclasses
import importlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from eisnn.cli import main
from eisnn.diagnostics import DiagnosticsCallback
from eisnn.run import start_run
from eisnn.train.config import ConfigError, from_dict
from tiny_runs import TINY_RUN

ROOT = Path(__file__).resolve().parents[1]


def tiny(tmp_path, **changes):
    base = dict(
        TINY_RUN,
        limit_batches=2,
        lr=0.01,
        histograms=False,
        plots=False,
        out_dir=str(tmp_path),
        name="run",
        hidden=[16, 16, 16],
    )
    return from_dict({**base, **changes})


def train(cfg):
    t = start_run(cfg, echo=lambda _: None)
    t.fit()
    t.close()
    return t


def test_diagnostics_reach_csv_tensorboard_histograms_and_plots(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny(tmp_path, diagnostics=True, histogram_epochs=[2]))
    run = tmp_path / "run"
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    layers = ["stem", "body.0", "body.1", "head.module"]
    for row in rows:
        for layer in layers[:3]:
            assert 0 < float(row[f"diag/{layer}/e_rate"]) < 1
            assert float(row[f"diag/{layer}/e_rate"]) == pytest.approx(
                float(row[f"rate/{layer}.lif"])
            )
            assert 0 <= float(row[f"diag/{layer}/silent"]) <= 1
        for layer in layers:
            assert (
                0 <= float(row[f"diag/{layer}/div_zero"]) <= 1
                and float(row[f"diag/{layer}/balance"]) > 0
            )
        for kind in ("w_ee", "w_ie", "w_ei", "g_i", "g_e", "b_e"):
            assert float(row[f"grad/{kind}"]) > 0
    assert "diag/head.module/e_rate" not in rows[0]  # the readout has no neurons
    assert sorted(p.name for p in (run / "diagnostics").iterdir()) == ["histograms_epoch2.npz"]
    data = np.load(run / "diagnostics" / "histograms_epoch2.npz")
    assert {"weight/stem/w_ee", "current/body.1/div", "current/head.module/i_int"} <= set(
        data.files
    )
    tags = EventAccumulator(str(run / "tensorboard")).Reload().Tags()["scalars"]
    assert {"diag/stem/balance", "grad/w_ei"} <= set(tags)
    assert not (run / "plots").exists()  # plots: false
    assert main(["plot", str(run)]) == 0
    for png in ("learning_curves", "firing_rates", "diagnostics", "histograms_epoch2"):
        assert (run / "plots" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"


def test_diagnostics_off_adds_nothing(tmp_path):
    t = train(tiny(tmp_path))
    assert not any(isinstance(c, DiagnosticsCallback) for c in t.callbacks)
    with open(tmp_path / "run" / "metrics.csv") as f:
        header = next(csv.reader(f))
    assert not [c for c in header if c.startswith(("diag/", "grad/"))]
    assert not (tmp_path / "run" / "diagnostics").exists()


def test_plot_command_needs_a_run_directory(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "no metrics.csv" in capsys.readouterr().err


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"histogram_epochs": [0]}, "histogram_epochs: must be >= 1"),
        ({"histogram_epochs": ["1"]}, "histogram_epochs: expected list"),
        ({"diagnostics_every": 0}, "diagnostics_every: must be >= 1"),
        ({"hidden": [8, 0]}, "hidden: must be >= 1"),
    ],
)
def test_bad_diagnostics_keys_are_named(changes, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(changes)


def test_study_command_trains_a_small_grid_and_writes_the_report(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    study, report, command = (
        importlib.import_module(name) for name in ("study_grid", "study_report", "study")
    )
    monkeypatch.setattr(study, "BASE", {**study.BASE, "limit_batches": 2, "T": 2})
    small = dataclasses.replace(
        study.STUDIES["mlp"],
        datasets={"digits": {"dataset": "digits", "image_size": 8, "epochs": 2}},
        networks={"deep (2 weight layers)": study.Network("mlp", {"hidden": [8]})},
        diagnosed=("deep (2 weight layers)",),
    )
    monkeypatch.setitem(study.STUDIES, "mlp", small)
    variants = {k: study.VARIANTS[k] for k in ("E-I (full method)", "no E-I Init (standard init)")}
    monkeypatch.setattr(study, "VARIANTS", variants)
    monkeypatch.setattr(report, "VARIANTS", variants)
    out, md = tmp_path / "study", tmp_path / "docs" / "results.md"
    md.parent.mkdir()
    shutil.copy(ROOT / "docs" / "results.md", md)  # the document: prose by hand, measured blocks
    args = [
        "--out",
        str(out),
        "--data-dir",
        str(tmp_path),
        "--datasets",
        "digits",
        "--seeds",
        "2",
        "--workers",
        "1",
        "--report",
        str(md),
    ]
    assert command.main(args) == 0
    text = md.read_text()
    assert "4 finished runs of a grid of 1 datasets x 1 networks x 2 variants x 2 seeds" in text
    runs_block = text.split("<!-- results:runs -->")[1].split("<!-- /results:runs -->")[0]
    assert runs_block.strip().startswith("4 finished runs")  # the MLP blocks are replaced ...
    assert "| shallow (3 weight layers) |" not in text
    assert "<!-- conv:accuracy -->" in text  # ... and the conv study's are left alone
    row = next(
        line
        for line in text.splitlines()
        if line.startswith("| deep (2 weight layers) | no E-I Init")
    )
    assert (
        "| 0/2 | 0/2 | 2/2 | 0.000 | 0.000 |" in row
    )  # not diverged, not exploded, collapsed, silent
    assert "collapsed 2/2" in text and "## Discussion" in text
    assert (md.parent / "figures" / "study_digits.png").read_bytes()[:4] == b"\x89PNG"
    md.write_text(text.replace("## Discussion\n", "## Discussion\n\nkept by hand\n", 1))
    # finished runs are reused
    assert command.main(args[:-2] + ["--report", str(md), "--report-only"]) == 0
    assert "kept by hand" in md.read_text()
