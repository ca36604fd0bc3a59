"""Throughput of CIFAR-style augmentation: per-sample DataLoader path vs the on-device
ResidentLoader.

Usage: PYTHONPATH=src python benchmarks/resident_loader.py [--device cuda] [--images 50000]
[--workers 2]
Uses random uint8 images of CIFAR's shape (no dataset needed) and one epoch of each path.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from eisnn.data import ResidentLoader
from eisnn.data.images import ImageTensorDataset
from eisnn.data.transforms import cifar_train


def _epoch(loader, device: torch.device) -> float:
    start = time.perf_counter()
    for x, _ in loader:
        x = x.to(device, non_blocking=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.images,))
    dataset = ImageTensorDataset(images, labels, cifar_train, True, [str(i) for i in range(10)])
    per_sample = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
    )
    resident = ResidentLoader.from_dataset(dataset, args.batch_size, device=device)
    _epoch(resident, device)  # warm-up (allocations, kernels)
    for name, loader in (
        ("ResidentLoader (on " + str(device) + ")", resident),
        (f"DataLoader per-sample ({args.workers} workers)", per_sample),
    ):
        seconds = _epoch(loader, device)
        print(
            f"{name}: {args.images / seconds:,.0f} images/s "
            f"({seconds:.2f} s per epoch of {args.images})"
        )


if __name__ == "__main__":
    main()
