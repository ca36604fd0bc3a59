"""The measured distance to the reference recording in float64: logits, every gradient, the
stepped parameters and the logits after the step (what tests/test_parity.py bounds).

    EISNN_FIXTURES=<folder> OMP_NUM_THREADS=1 python benchmarks/parity_figures.py
    EISNN_FIXTURES=<folder> OMP_NUM_THREADS=2 python benchmarks/parity_figures.py

The last line is the exact float64 sum of the logits in hex: equal lines mean bit-identical runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

import eisnn
from eisnn.compat import load_reference
from eisnn.compat.reference import _key_map


def main() -> None:
    path = Path(os.environ["EISNN_FIXTURES"]) / "reference-vgg8-cifar10.pt"
    fx = torch.load(path, weights_only=False)
    model = load_reference(fx["state_dict"], fx["config"], dtype=torch.float64).train()
    logits = model(fx["X1"])
    F.cross_entropy(logits, fx["y1"]).backward()
    params = dict(model.named_parameters())
    ours = {ref: params[name] for name, (ref, _) in _key_map(model).items()}
    print(f"threads {torch.get_num_threads()}")
    print(f"logits max |diff| {float((logits.detach() - fx['logits']).abs().max()):.2e}")
    for name, rec in fx["grads"].items():
        grad = ours[name].grad.reshape(-1)
        cos = float(F.cosine_similarity(grad[rec["idx"]], rec["val"].reshape(-1), dim=0))
        total, abssum = float(rec["sum"]), float(rec["abssum"])
        diff = abs(float(grad.sum()) - total)
        print(
            f"  {name:26s} 1-cos {1 - cos:8.1e}  sum diff / |sum| {diff / abs(total):8.1e}"
            f"  / abssum {diff / abssum:8.1e}"
        )
    opt = torch.optim.SGD(model.parameters(), **fx["optimizer"])
    eisnn.dale.attach(opt, model)
    opt.step()
    stepped = max(
        float((ours[n].detach().reshape(-1)[r["idx"]] - r["val"].reshape(-1)).abs().max())
        for n, r in fx["after_step"].items()
    )
    with torch.no_grad():
        after = model(fx["X1"])
    print(f"stepped parameters max |diff| {stepped:.2e}")
    print(
        f"logits after step max |diff| {float((after - fx['logits_after_step']).abs().max()):.2e}"
    )
    print(f"logits sum {float(logits.detach().sum()).hex()}")


if __name__ == "__main__":
    main()
