"""Per-sample random draws that do not depend on the worker count or the rank.

A streaming dataset (``per_sample_seeds = True``) is indexed with ``(index, base)`` pairs from
:class:`SeededBatchSampler`, which draws ``base`` once per epoch from the loader's generator; the
sample's random draws come from :func:`sample_generator` ``(base, index)``. So the batches are the
same with 0 or 8 workers, with persistent workers or not, and under ``torchrun`` a sample is
augmented the same way whichever rank reads it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["SeededBatchSampler", "sample_generator"]


def sample_generator(base: int, index: int) -> torch.Generator:
    """A CPU generator for sample ``index`` in the epoch whose draw is ``base``: seeded with a
    well-mixed 63-bit function of both (``numpy.random.SeedSequence``)."""
    state = np.random.SeedSequence([base, index]).generate_state(2, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state >> 1))


class SeededBatchSampler(Sampler[list[tuple[int, int]]]):
    """Wraps a sampler of index batches: every index ``i`` becomes ``(i, base)``, with ``base``
    drawn from ``generator`` once per pass (before the wrapped sampler's own draws), so that a
    sample's augmentation depends on the epoch's seed and its index only."""

    def __init__(self, batches: Sampler[list[int]], generator: torch.Generator) -> None:
        self.batches, self.generator = batches, generator

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        base = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        for batch in self.batches:
            yield [(int(i), base) for i in batch]
