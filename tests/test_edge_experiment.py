"""experiments/edge.py: the map's runs, remedies and document blocks on a tiny grid."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_edge_map_trains_a_tiny_grid_and_fills_its_blocks(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    edge = importlib.import_module("edge")
    monkeypatch.setattr(
        edge, "TRAINING", {**edge.TRAINING, "limit_batches": 1, "epochs": 1, "eval_every": 1}
    )
    monkeypatch.setattr(edge, "SEEDS", {("resnet18", 8, 0.125): 2})
    monkeypatch.setattr(edge, "LRS", (1e-2,))
    cell = edge.Cell("resnet18", 8, 0.125, 1e-2)
    monkeypatch.setattr(edge, "REMEDY_CELLS", (cell,))
    monkeypatch.setattr(edge, "REMEDY_SEEDS", 1)
    runs = edge.plan()
    assert len(runs) == 2 * 2 + len(edge.REMEDIES)  # E-I and BN per seed, then the remedies
    assert len({r.folder(tmp_path) for r in runs}) == len(runs)
    assert {r.config("d")["model"] for r in runs} == {"ei_resnet18", "bn_resnet18"}
    assert [r.config("d").get("ei_ratio") for r in runs if r.remedy == "ei_ratio=2"] == [2.0]

    doc = tmp_path / "docs" / "edge.md"
    doc.parent.mkdir()
    shutil.copy(ROOT / "docs" / "edge.md", doc)
    args = ["--out", str(tmp_path / "edge"), "--data-dir", str(tmp_path), "--workers", "1"]
    assert edge.main([*args, "--doc", str(doc)]) == 0
    text = doc.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| ResNet-18 8x8 width 1/8"))
    assert "| 0.01 | 2 | 1x1 |" in row  # 2 I units in the stem; ResNet-18's last stage at 1x1
    assert text.count("| ResNet-18 8x8 width 1/8 | 0.01 |") == 2  # the map and the remedies
    assert (doc.parent / "figures" / "edge_map.png").read_bytes()[:4] == b"\x89PNG"
    assert "What ran and what did not" in text  # the prose around the blocks is kept
