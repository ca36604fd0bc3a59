"""AEDAT 3.1 / 2.0 reading and writing: hand-built files, round trips, corrupted files."""

import struct

import numpy as np
import pytest

from eisnn.data import read_events, write_aedat2, write_aedat31
from eisnn.data.aedat import make_events

PACKET = struct.Struct("<hhiiiiii")


def _packet(etype, events_bytes, n, overflow=0, size=8):
    return PACKET.pack(etype, 1, size, 4, overflow, n, n, n) + events_bytes


def _polarity_bytes(x, y, p, ts):
    words = np.empty((len(x), 2), dtype="<u4")
    words[:, 0] = (
        (np.asarray(x, np.uint32) << 17)
        | (np.asarray(y, np.uint32) << 2)
        | (np.asarray(p, np.uint32) << 1)
        | 1
    )
    words[:, 1] = ts
    return words.tobytes()


def _header31(*extra):
    return b"".join(
        line + b"\r\n" for line in (b"#!AER-DAT3.1", b"#Format: RAW", *extra, b"#!END-HEADER")
    )


def _read_packet_headers(path):
    raw = path.read_bytes()
    offset = raw.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    headers = []
    while offset < len(raw):
        h = PACKET.unpack_from(raw, offset)
        headers.append(h)
        offset += 28 + h[5] * h[2]
    return headers


def test_aedat31_hand_built_file_with_special_packet_and_overflow(tmp_path):
    path = tmp_path / "rec.aedat"
    special = _packet(0, np.arange(6, dtype="<u4").tobytes(), 3)  # 3 special events, skipped
    first = _packet(1, _polarity_bytes([1, 2], [3, 4], [0, 1], [10, 20]), 2, overflow=0)
    second = _packet(
        1, _polarity_bytes([127, 0, 5], [0, 127, 6], [1, 0, 1], [5, 6, 7]), 3, overflow=1
    )
    path.write_bytes(_header31(b"#Source 1: DVS128") + special + first + second)
    ev = read_events(path)
    assert ev["t"].dtype == np.int64 and ev["p"].dtype == np.uint8
    np.testing.assert_array_equal(ev["x"], [1, 2, 127, 0, 5])
    np.testing.assert_array_equal(ev["y"], [3, 4, 0, 127, 6])
    np.testing.assert_array_equal(ev["p"], [0, 1, 1, 0, 1])
    np.testing.assert_array_equal(ev["t"], [10, 20, (1 << 31) + 5, (1 << 31) + 6, (1 << 31) + 7])


def test_aedat31_writer_round_trip_several_packets_and_overflow(tmp_path):
    rng = np.random.default_rng(0)
    n = 2500
    t = np.sort(
        np.concatenate(
            [rng.integers(0, 1 << 31, n - 700), rng.integers(1 << 31, (1 << 31) + 10**6, 700)]
        )
    )
    events = make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))
    path = tmp_path / "w.aedat"
    write_aedat31(path, events, packet_size=1000)
    headers = _read_packet_headers(path)
    assert [h[6] for h in headers] == [1000, 800, 700]  # never straddles the overflow
    assert [h[4] for h in headers] == [0, 0, 1]
    back = read_events(path)
    for key in "txyp":
        np.testing.assert_array_equal(back[key], events[key])


def test_aedat31_truncated_and_corrupted_files_name_the_file(tmp_path):
    good = _header31() + _packet(1, _polarity_bytes([1], [2], [1], [3]), 1)
    cases = {
        "cut_body.aedat": (good[:-3], "truncated packet"),
        "cut_header.aedat": (good + b"\x01\x00\x01", "truncated packet header"),
        "no_end.aedat": (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "END-HEADER"),
        "bad_number.aedat": (
            _header31() + PACKET.pack(1, 1, 8, 4, 0, 1, 5, 1) + b"\0" * 8,
            "corrupted packet header",
        ),
        "bad_size.aedat": (_header31() + _packet(1, b"\0" * 12, 1, size=12), "eventSize 12"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=message) as err:
            read_events(path)
        assert name in str(err.value)


def test_aedat2_hand_built_file_paper_orientation(tmp_path):
    header = (
        b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n"
        b"# created for a test\r\n#  more comments\r\n"
    )
    x_raw, y_raw, p_raw = np.array([5, 0, 127]), np.array([10, 127, 0]), np.array([1, 0, 1])
    words = np.empty((3, 2), dtype=">u4")
    words[:, 0] = (y_raw << 8) | (x_raw << 1) | p_raw
    words[:, 1] = [100, 4_000_000_000, 4_000_000_001]
    path = tmp_path / "cifar10_cat_0.aedat"
    path.write_bytes(header + words.tobytes())
    ev = read_events(path)
    np.testing.assert_array_equal(ev["x"], 127 - y_raw)
    np.testing.assert_array_equal(ev["y"], 127 - x_raw)
    np.testing.assert_array_equal(ev["p"], 1 - p_raw)
    np.testing.assert_array_equal(ev["t"], [100, 4_000_000_000, 4_000_000_001])


def test_aedat2_writer_round_trip_and_headerless(tmp_path):
    rng = np.random.default_rng(1)
    n = 1000
    events = make_events(
        np.sort(rng.integers(0, 1 << 32, n)),
        rng.integers(0, 128, n),
        rng.integers(0, 128, n),
        rng.integers(0, 2, n),
    )
    for lines in (("#!AER-DAT2.0", "# line two", "# line three"), ()):
        path = tmp_path / f"h{len(lines)}.aedat"
        write_aedat2(path, events, header_lines=lines)
        back = read_events(path)
        for key in "txyp":
            np.testing.assert_array_equal(back[key], events[key])


def test_aedat2_truncated_and_unsupported_versions(tmp_path):
    path = tmp_path / "cut.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n" + b"\0" * 13)
    with pytest.raises(ValueError, match="cut.aedat.*truncated"):
        read_events(path)
    path = tmp_path / "v4.aedat"
    path.write_bytes(b"#!AER-DAT4.0\r\n")
    with pytest.raises(ValueError, match="v4.aedat.*unsupported"):
        read_events(path)
    path = tmp_path / "empty.aedat"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.aedat.*empty"):
        read_events(path)


def test_writers_reject_bad_events(tmp_path):
    bad = make_events([0, 1], [0, 200], [0, 0], [0, 1])
    with pytest.raises(ValueError, match="x outside"):
        write_aedat2(tmp_path / "a.aedat", bad)
    unsorted = make_events([5, 1], [0, 1], [0, 0], [0, 1])
    with pytest.raises(ValueError, match="non-decreasing"):
        write_aedat31(tmp_path / "b.aedat", unsorted)
