"""Integrating an event stream into ``T`` count frames ``[T, 2, H, W]`` (the paper's rule).

Channel 0 counts events with ``p == 0``, channel 1 those with ``p == 1``, at ``[y, x]``; no
clipping, normalization or binarization. Events are taken in time order (stable sort).

- ``split_by="number"``: ``k = N // T``; frame ``j < T-1`` holds events ``[j*k, (j+1)*k)``, the
  last frame ``[(T-1)*k, N)`` (the remainder, and everything when ``N < T``).
- ``split_by="time"``: ``dt = (t_last - t_first) // T``; frame ``j < T-1`` holds
  ``t_first + j*dt <= t < t_first + (j+1)*dt``, the last frame everything from
  ``t_first + (T-1)*dt`` on. An empty window gives an empty frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SPLIT_MODES", "events_to_counts", "events_to_frames"]

SPLIT_MODES = ("number", "time")


def _frame_index(t: np.ndarray, T: int, split_by: str) -> np.ndarray:
    """Frame index in ``[0, T)`` of each event of a time-sorted stream."""
    n = len(t)
    if split_by == "number":
        k = n // T
        if k == 0:
            return np.full(n, T - 1, dtype=np.int64)
        return np.minimum(np.arange(n, dtype=np.int64) // k, T - 1)
    dt = (int(t[-1]) - int(t[0])) // T
    if dt == 0:
        return np.full(n, T - 1, dtype=np.int64)
    return np.minimum((t - t[0]) // dt, T - 1)


def events_to_counts(
    events: dict[str, np.ndarray],
    T: int,
    split_by: str = "number",
    size: tuple[int, int] = (128, 128),
) -> np.ndarray:
    """Integer event counts ``[T, 2, H, W]`` (int64) of one sample, by the rules above."""
    if split_by not in SPLIT_MODES:
        raise ValueError(f"split_by must be one of {SPLIT_MODES}, got {split_by!r}")
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    H, W = size
    t, x, y, p = (np.asarray(events[k]) for k in ("t", "x", "y", "p"))
    if len(t) == 0:
        return np.zeros((T, 2, H, W), dtype=np.int64)
    if np.any(t[1:] < t[:-1]):
        order = np.argsort(t, kind="stable")
        t, x, y, p = t[order], x[order], y[order], p[order]
    x, y, p = x.astype(np.int64), y.astype(np.int64), p.astype(np.int64)
    if x.min() < 0 or x.max() >= W or y.min() < 0 or y.max() >= H:
        raise ValueError(
            f"event coordinates outside the {H}x{W} sensor "
            f"(x in [{x.min()}, {x.max()}], y in [{y.min()}, {y.max()}])"
        )
    if p.min() < 0 or p.max() > 1:
        raise ValueError("event polarity must be 0 or 1")
    j = _frame_index(t.astype(np.int64), T, split_by)
    flat = ((j * 2 + p) * H + y) * W + x
    return np.bincount(flat, minlength=T * 2 * H * W).reshape(T, 2, H, W)


def events_to_frames(
    events: dict[str, np.ndarray],
    T: int,
    split_by: str = "number",
    size: tuple[int, int] = (128, 128),
) -> np.ndarray:
    """Count frames ``[T, 2, H, W]`` float32 of one sample (see the module docstring)."""
    return events_to_counts(events, T, split_by, size).astype(np.float32)
