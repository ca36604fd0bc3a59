"""Frame integration on hand-built events, against the rules of DATA.md."""

import numpy as np
import pytest

from eisnn.data import events_to_frames
from eisnn.data.aedat import make_events


def _events(t, x=None, y=None, p=None):
    n = len(t)
    return make_events(
        t,
        x if x is not None else np.zeros(n),
        y if y is not None else np.zeros(n),
        p if p is not None else np.zeros(n),
    )


def test_channel_and_axis_order():
    ev = _events([0, 1, 2], x=[2, 5, 7], y=[1, 3, 0], p=[1, 0, 1])
    f = events_to_frames(ev, T=1, size=(4, 8))
    assert f.shape == (1, 2, 4, 8) and f.dtype == np.float32
    assert f[0, 1, 1, 2] == 1 and f[0, 0, 3, 5] == 1 and f[0, 1, 0, 7] == 1
    assert f.sum() == 3


def test_by_number_remainder_in_last_frame():
    ev = _events(np.arange(10), x=np.arange(10))
    f = events_to_frames(ev, T=3, split_by="number", size=(1, 10))
    np.testing.assert_array_equal(f.sum(axis=(1, 2, 3)), [3, 3, 4])
    np.testing.assert_array_equal(np.nonzero(f[0, 0, 0])[0], [0, 1, 2])
    np.testing.assert_array_equal(np.nonzero(f[2, 0, 0])[0], [6, 7, 8, 9])


def test_by_number_fewer_events_than_frames():
    f = events_to_frames(_events([3, 4]), T=5, split_by="number", size=(2, 2))
    np.testing.assert_array_equal(f.sum(axis=(1, 2, 3)), [0, 0, 0, 0, 2])


def test_by_time_windows_and_empty_window():
    f = events_to_frames(_events([100, 101, 102, 110, 111, 130]), T=3, split_by="time", size=(1, 1))
    np.testing.assert_array_equal(
        f[:, 0, 0, 0], [3, 2, 1]
    )  # dt = 10: [100,110) [110,120) [120, ...)
    f = events_to_frames(_events([0, 1, 2, 30]), T=3, split_by="time", size=(1, 1))
    np.testing.assert_array_equal(f[:, 0, 0, 0], [3, 0, 1])  # the middle window is empty
    f = events_to_frames(_events([7, 7, 7]), T=4, split_by="time", size=(1, 1))
    np.testing.assert_array_equal(
        f[:, 0, 0, 0], [0, 0, 0, 3]
    )  # dt = 0: everything in the last frame
    f = events_to_frames(_events([0, 5, 10, 15, 20, 21, 22]), T=4, split_by="time", size=(1, 1))
    np.testing.assert_array_equal(f[:, 0, 0, 0], [1, 1, 1, 4])  # dt = 5, last frame from t0 + 15 on


def test_counts_accumulate_and_events_are_time_sorted():
    ev = _events([5, 0, 1, 9], x=[1, 0, 0, 1], p=[1, 0, 0, 1])
    f = events_to_frames(ev, T=2, split_by="number", size=(1, 2))
    assert f[0, 0, 0, 0] == 2 and f[1, 1, 0, 1] == 2 and f.sum() == 4


def test_empty_stream_and_bad_input():
    assert events_to_frames(_events([]), T=3, size=(2, 2)).sum() == 0
    with pytest.raises(ValueError, match="outside the 2x2 sensor"):
        events_to_frames(_events([0], x=[2]), T=1, size=(2, 2))
    with pytest.raises(ValueError, match="split_by"):
        events_to_frames(_events([0]), T=1, split_by="bins", size=(2, 2))
