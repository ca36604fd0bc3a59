"""Images per second that the imagefolder dataset decodes and augments at 224 px, by worker count.

Generates an ImageNet-like folder (JPEGs of 256-500 px per side by default, ``--sides``;
photo-like smooth content with fine noise, quality 90, 10 classes) unless ``--folder`` already
holds one. Then reads its training split with the training transforms (random resized crop to
224, flip) through a DataLoader of batches of 64, with 0 workers (decoding in the main process),
1 and 2 workers, with and without JPEG draft decoding. Every sample is read once per
measurement, so the figure includes worker start-up.

    PYTHONPATH=src python benchmarks/image_throughput.py [--images 3000] [--workers 0 1 2] \
        [--sides 256 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from eisnn.data.imagefolder import ImageFolder, Preprocessing
from eisnn.data.seeded import SeededBatchSampler

CLASSES = 10


def photo_like(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """Smooth colour fields (bicubic-upsampled 8 x 8 noise) plus mild pixel noise: JPEG sizes and
    decode times close to photographs', unlike pure noise."""
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    noisy = smooth + rng.integers(-12, 13, smooth.shape, dtype=np.int16)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def generate(folder: Path, images: int, sides: tuple[int, int], seed: int = 0) -> None:
    """``folder/<class>/<k>.JPEG``: ``images`` files over 10 classes, height and width uniform in
    ``sides`` (both included)."""
    rng = np.random.default_rng(seed)
    for k in range(images):
        path = folder / f"class{k % CLASSES:02d}" / f"{k:06d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        height, width = rng.integers(sides[0], sides[1] + 1, 2)
        photo_like(rng, int(height), int(width)).save(path, "JPEG", quality=90)


def images_per_second(
    dataset: ImageFolder, workers: int, batch_size: int = 64
) -> tuple[float, float]:
    """One pass over ``dataset`` as the trainer reads it (seeded sampler, shuffled): images per
    second of wall time, and per second of this process's CPU time (the decoding cost itself
    when ``workers == 0``, whatever else shares the cores)."""
    generator = torch.Generator().manual_seed(0)
    batches = BatchSampler(RandomSampler(dataset, generator=generator), batch_size, False)
    loader = DataLoader(
        dataset, batch_sampler=SeededBatchSampler(batches, generator), num_workers=workers
    )
    start, cpu, seen = time.perf_counter(), time.process_time(), 0
    for x, _ in loader:
        seen += len(x)
    return seen / (time.perf_counter() - start), seen / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000, help="images to generate")
    parser.add_argument("--folder", type=Path, help="reuse (or create) the folder here")
    parser.add_argument("--size", type=int, default=224, help="training crop side")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--sides", type=int, nargs=2, default=(256, 500), help="image side range (px)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # one decoding thread per process, as in DataLoader workers
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        if not any(folder.glob("class*/*.JPEG")):
            start = time.perf_counter()
            generate(folder, args.images, tuple(args.sides))
            print(f"generated {args.images} JPEGs in {time.perf_counter() - start:.1f} s")
        sizes = [p.stat().st_size for p in folder.glob("class*/*.JPEG")]
        print(f"{len(sizes)} JPEGs, mean {np.mean(sizes) / 1024:.0f} KiB, crop {args.size} px")
        for draft in (True, False):
            prep = Preprocessing(args.size, augment=True, draft=draft)
            dataset = ImageFolder.from_folder(folder, True, prep, val_fraction=0.01)
            for workers in args.workers:
                rate, per_cpu = images_per_second(dataset, workers)
                line = f"draft={str(draft):5s} workers={workers}: {rate:7.0f} images/s"
                if workers == 0:
                    line += f" ({per_cpu:.0f} per CPU-second)"
                print(line)


if __name__ == "__main__":
    main()
