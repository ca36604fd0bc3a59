"""Reading and writing DVS event files: AEDAT 3.1 (DVS128 Gesture) and AEDAT 2.0 (CIFAR10-DVS).

An event stream is a dict of equal-length numpy arrays:
``t`` int64 microseconds, ``x`` and ``y`` int16 pixel coordinates, ``p`` uint8 polarity 0/1.

AEDAT 3.1: ``#``-lines ending ``\\r\\n`` from ``#!AER-DAT3.1`` to ``#!END-HEADER``, then packets,
each a 28-byte little-endian header ``<hhiiiiii`` (type, source, size, ts-offset, ts-overflow,
capacity, number, valid) and ``capacity * size`` bytes. Type 1 packets hold polarity events
(``<u4 data, <i4 timestamp``): ``p = data>>1 & 1``, ``y = data>>2 & 0x7FFF``,
``x = data>>17 & 0x7FFF``, ``t = timestamp | overflow << 31``. Other packet types are skipped.

AEDAT 2.0: optional ``#`` header lines, then big-endian ``>u4 address, >u4 timestamp`` pairs.
DVS128 address bits: 0 polarity, 1-7 ``x_raw``, 8-14 ``y_raw``; the paper's orientation is
``x = 127 - y_raw``, ``y = 127 - x_raw``, ``p = 1 - p_raw``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from eisnn.files import atomic_write

__all__ = ["read_events", "read_aedat31", "read_aedat2", "write_aedat31", "write_aedat2"]

Events = dict[str, np.ndarray]

POLARITY_EVENT = 1
PACKET_HEADER = struct.Struct("<hhiiiiii")
AEDAT31_HEADER = ("#!AER-DAT3.1", "#Format: RAW", "#Source 1: DVS128")
AEDAT2_HEADER = (
    "#!AER-DAT2.0",
    "# This is a raw AE data file - do not edit",
    "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event",
)
DVS128_SIZE = 128


def make_events(t, x, y, p) -> Events:
    """Bundle arrays into an event dict with the canonical dtypes."""
    return {
        "t": np.asarray(t, dtype=np.int64),
        "x": np.asarray(x, dtype=np.int16),
        "y": np.asarray(y, dtype=np.int16),
        "p": np.asarray(p, dtype=np.uint8),
    }


def read_events(path: str | os.PathLike) -> Events:
    """Read an AEDAT 3.1 or 2.0 file, detected from its first header line."""
    path = Path(path)
    raw = path.read_bytes()
    if not raw:
        raise ValueError(f"{path}: empty event file")
    first = raw.split(b"\n", 1)[0].rstrip(b"\r")
    if first.startswith(b"#!AER-DAT3."):
        return _parse_aedat31(raw, path)
    if first.startswith(b"#!AER-DAT") and not first.startswith(b"#!AER-DAT2."):
        raise ValueError(
            f"{path}: unsupported AEDAT version {first.decode('ascii', 'replace')!r} "
            "(3.1 and 2.0 are read)"
        )
    return _parse_aedat2(raw, path)


def read_aedat31(path: str | os.PathLike) -> Events:
    """Read an AEDAT 3.1 file (polarity packets only)."""
    path = Path(path)
    return _parse_aedat31(path.read_bytes(), path)


def read_aedat2(path: str | os.PathLike) -> Events:
    """Read an AEDAT 2.0 DVS128 file in the paper's orientation."""
    path = Path(path)
    return _parse_aedat2(path.read_bytes(), path)


def _aedat31_data_start(raw: bytes, path: Path) -> int:
    """Byte offset just after the ``#!END-HEADER`` line."""
    offset = 0
    while True:
        end = raw.find(b"\n", offset)
        if end < 0 or not raw.startswith(b"#", offset):
            raise ValueError(f"{path}: AEDAT 3.1 header has no '#!END-HEADER' line")
        if raw[offset:end].rstrip(b"\r") == b"#!END-HEADER":
            return end + 1
        offset = end + 1


def _parse_aedat31(raw: bytes, path: Path) -> Events:
    offset = _aedat31_data_start(raw, path)
    size = len(raw)
    starts, counts, overflows = [], [], []
    while offset < size:
        if size - offset < PACKET_HEADER.size:
            raise ValueError(
                f"{path}: truncated packet header at byte {offset} ({size - offset} of 28 bytes)"
            )
        etype, _source, esize, _tsoff, overflow, capacity, number, _valid = (
            PACKET_HEADER.unpack_from(raw, offset)
        )
        if esize <= 0 or capacity < 0 or not 0 <= number <= capacity:
            raise ValueError(
                f"{path}: corrupted packet header at byte {offset} "
                f"(eventSize={esize}, eventCapacity={capacity}, eventNumber={number})"
            )
        body = offset + PACKET_HEADER.size
        end = body + capacity * esize
        if end > size:
            raise ValueError(
                f"{path}: truncated packet at byte {offset}: needs {end - body} bytes, "
                f"file has {size - body}"
            )
        if etype == POLARITY_EVENT:
            if esize != 8:
                raise ValueError(
                    f"{path}: polarity packet at byte {offset} has eventSize {esize}, expected 8"
                )
            starts.append(body)
            counts.append(number)
            overflows.append(overflow)
        offset = end
    if not starts:
        return make_events([], [], [], [])
    words = np.concatenate(
        [np.frombuffer(raw, dtype="<u4", count=2 * n, offset=s) for s, n in zip(starts, counts)]
    )
    data, stamp = words[0::2], words[1::2]
    high = np.repeat(np.asarray(overflows, dtype=np.int64) << 31, counts)
    return make_events(
        t=(stamp & 0x7FFFFFFF).astype(np.int64) | high,
        x=(data >> 17) & 0x7FFF,
        y=(data >> 2) & 0x7FFF,
        p=(data >> 1) & 1,
    )


def _parse_aedat2(raw: bytes, path: Path) -> Events:
    offset = 0
    while raw.startswith(b"#", offset):
        end = raw.find(b"\n", offset)
        if end < 0:
            raise ValueError(f"{path}: AEDAT 2.0 header line at byte {offset} is not terminated")
        offset = end + 1
    remainder = (len(raw) - offset) % 8
    if remainder:
        raise ValueError(
            f"{path}: truncated AEDAT 2.0 event data "
            f"({len(raw) - offset} bytes is not a multiple of 8)"
        )
    words = np.frombuffer(raw, dtype=">u4", offset=offset).reshape(-1, 2)
    address, stamp = words[:, 0], words[:, 1]
    x_raw = (address >> 1) & 0x7F
    y_raw = (address >> 8) & 0x7F
    return make_events(
        t=stamp, x=127 - y_raw.astype(np.int16), y=127 - x_raw.astype(np.int16), p=1 - (address & 1)
    )


def _checked(events: Events, limit: int) -> Events:
    ev = make_events(events["t"], events["x"], events["y"], events["p"])
    if not (len(ev["t"]) == len(ev["x"]) == len(ev["y"]) == len(ev["p"])):
        raise ValueError("event arrays t, x, y, p differ in length")
    for key in ("x", "y"):
        if len(ev[key]) and (ev[key].min() < 0 or ev[key].max() >= limit):
            raise ValueError(f"event {key} outside [0, {limit})")
    if len(ev["t"]) and (ev["t"].min() < 0 or np.any(np.diff(ev["t"]) < 0)):
        raise ValueError("event timestamps must be non-negative and non-decreasing")
    if np.any(ev["p"] > 1):
        raise ValueError("event polarity must be 0 or 1")
    return ev


def write_aedat31(
    path: str | os.PathLike,
    events: Events,
    packet_size: int = 4096,
    header_lines: Iterable[str] = AEDAT31_HEADER,
) -> None:
    """Write polarity events as AEDAT 3.1 packets of at most ``packet_size`` events.

    A packet never straddles a timestamp overflow (``t >> 31`` changes), as in real recordings.
    """
    ev = _checked(events, 1 << 15)
    data = (
        (ev["x"].astype(np.uint32) << 17)
        | (ev["y"].astype(np.uint32) << 2)
        | (ev["p"].astype(np.uint32) << 1)
        | 1
    )
    stamp = (ev["t"] & 0x7FFFFFFF).astype(np.uint32)
    overflow = ev["t"] >> 31
    words = np.empty((len(data), 2), dtype="<u4")
    words[:, 0], words[:, 1] = data, stamp
    breaks = np.flatnonzero(np.diff(overflow)) + 1
    packets = []
    for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(data)]):
        for s in range(lo, hi, packet_size):
            e = min(s + packet_size, hi)
            n = e - s
            packets.append(
                PACKET_HEADER.pack(POLARITY_EVENT, 1, 8, 4, int(overflow[s]), n, n, n)
                + words[s:e].tobytes()
            )
    header = "".join(line + "\r\n" for line in (*header_lines, "#!END-HEADER")).encode("ascii")
    atomic_write(path, lambda f: f.writelines([header, *packets]))


def write_aedat2(
    path: str | os.PathLike, events: Events, header_lines: Iterable[str] = AEDAT2_HEADER
) -> None:
    """Write DVS128 events as AEDAT 2.0, inverting the paper's orientation mapping of
    ``read_aedat2``."""
    ev = _checked(events, DVS128_SIZE)
    if len(ev["t"]) and ev["t"].max() >= 1 << 32:
        raise ValueError("AEDAT 2.0 timestamps must fit in 32 bits")
    x_raw = 127 - ev["y"].astype(np.uint32)
    y_raw = 127 - ev["x"].astype(np.uint32)
    words = np.empty((len(x_raw), 2), dtype=">u4")
    words[:, 0] = (y_raw << 8) | (x_raw << 1) | (1 - ev["p"].astype(np.uint32))
    words[:, 1] = ev["t"]
    header = "".join(line + "\r\n" for line in header_lines).encode("ascii")
    atomic_write(path, lambda f: f.writelines([header, words.tobytes()]))
