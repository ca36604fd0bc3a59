"""Parse time of a generated AEDAT 3.1 (and 2.0) file of N events (default 5 million).

Usage: PYTHONPATH=src python benchmarks/parse_events.py [--events 5000000] [--packet-size 4096]
Writes the files to a temporary folder, reads each with eisnn.data.read_events (best of
--repeats), integrates the stream into T=16 frames, and prints the timings.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from eisnn.data import events_to_frames, read_events, write_aedat2, write_aedat31
from eisnn.data.aedat import make_events


def _best_of(repeats: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--packet-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.events
    t = np.sort(rng.integers(0, 6_000_000, n))  # a 6 s recording, like a Gesture trial
    events = make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, write, kwargs in (
            ("AEDAT 3.1", write_aedat31, {"packet_size": args.packet_size}),
            ("AEDAT 2.0", write_aedat2, {}),
        ):
            path = Path(tmp) / f"bench_{fmt[-3:]}.aedat"
            write(path, events, **kwargs)
            seconds, back = _best_of(args.repeats, lambda path=path: read_events(path))
            assert np.array_equal(back["t"], events["t"]) and np.array_equal(back["x"], events["x"])
            size_mb = path.stat().st_size / 2**20
            print(
                f"{fmt}: {n:,} events, {size_mb:.1f} MiB, parse {seconds:.3f} s "
                f"({n / seconds / 1e6:.1f} M events/s, best of {args.repeats})"
            )
        seconds, _ = _best_of(args.repeats, lambda: events_to_frames(back, 16))
        print(f"events_to_frames T=16 by number: {seconds:.3f} s")


if __name__ == "__main__":
    main()
