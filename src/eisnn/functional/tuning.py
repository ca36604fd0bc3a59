"""Tuning constants of the fused CPU paths: the only values here that were chosen by measuring.

They change speed, never results. Each was measured on the development machine (2 cores of an
x86-64 server, torch 2.13 CPU build, 2 threads, float32); on another machine other values may
be faster. ``benchmarks/lif.py`` and ``eisnn bench`` measure the effect of a change.
"""

from __future__ import annotations

FLAT_POSITIONS = 4
"""Up to this many positions per sample, the lateral product ``W [rows, n_I] @ x [N, n_I, P]`` runs
as one flat product over all (sample, position) pairs instead of N batched products only P
columns wide: VGG-8's last layer (2x2 maps, ``[512, 128] x [128, 128 * 4]``) went from 9.4 to
2.3 ms per step; from 16 positions up the batched product is faster (1.16 vs 1.41 ms on
``[128, 512, 128] x [128, 128, 16]``)."""

KERNEL_BLOCK = 256
"""Elements the C kernels process together (vectorized), their membrane history kept on the
stack; a multiple of every vector width. Passed to the compiler as ``-DEISNN_BLOCK``."""

KERNEL_MIN_PARALLEL = 65536
"""Work items below which a C kernel runs on one thread (the OpenMP start-up costs more than it
saves). Passed to the compiler as ``-DEISNN_MIN_PARALLEL``."""
