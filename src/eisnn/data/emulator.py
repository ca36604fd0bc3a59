"""A small DVS emulator: real images moved along saccades become ON/OFF event streams.

For each image, a camera "looks" at it along three saccades (a triangle of amplitude
``amplitude`` px, like the N-MNIST recordings), rendered at ``steps`` sub-frames per saccade
(bilinear resampling, ``frame_us`` apart). Each pixel keeps a reference log-intensity
``L_ref``; at sub-frame ``k`` with ``L_k = log(I_k + eps)`` it emits
``floor((L_k - L_ref) / theta)`` ON events or ``floor((L_ref - L_k) / theta)`` OFF events and
moves ``L_ref`` by as many thresholds. ``theta`` varies per pixel (sensor mismatch); event times
are spread over the sub-frame interval with jitter, and a few uniform noise events are added.

The streams are written in the real file layouts: a Gesture-style folder of AEDAT 3.1
recordings with label CSVs and trial lists (:func:`write_segmented_recordings`), or a
CIFAR10-DVS-style tree of AEDAT 2.0 files per class (:func:`write_class_tree`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .aedat import Events, make_events, write_aedat2, write_aedat31

__all__ = ["EmulatorConfig", "emulate_events", "write_segmented_recordings", "write_class_tree"]


@dataclass(frozen=True)
class EmulatorConfig:
    sensor_size: int = 32  # square sensor, pixels
    image_extent: float = 0.8  # fraction of the sensor the image spans
    amplitude: float = 3.0  # saccade amplitude, sensor pixels
    steps: int = 8  # sub-frames per saccade
    frame_us: int = 5000  # time between sub-frames
    eps: float = 0.1  # log(I + eps)
    theta: float = 0.25  # mean contrast threshold
    theta_sigma: float = 0.03  # per-pixel threshold mismatch
    noise_rate: float = 0.005  # noise events per pixel per sample


def _saccade_path(cfg: EmulatorConfig) -> np.ndarray:
    """``[3 * steps + 1, 2]`` (dx, dy) offsets along the triangle
    (0,0) -> (a/2, a) -> (a, 0) -> (0,0)."""
    a = cfg.amplitude
    corners = np.array([[0, 0], [a / 2, a], [a, 0], [0, 0]], dtype=np.float64)
    s = np.linspace(0, 1, cfg.steps, endpoint=False)[:, None]
    legs = [corners[i] + s * (corners[i + 1] - corners[i]) for i in range(3)]
    return np.concatenate([*legs, corners[-1:]]) - a / 2


def _render(images: np.ndarray, path: np.ndarray, cfg: EmulatorConfig) -> np.ndarray:
    """Images ``[N, h, w]`` seen at every path offset: ``[N, K, S, S]`` intensities (bilinear)."""
    k, size = len(path), cfg.sensor_size
    src = torch.from_numpy(images.astype(np.float32))[None].expand(
        k, -1, -1, -1
    )  # offsets as batch
    theta = torch.zeros(k, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / cfg.image_extent
    theta[:, :, 2] = (
        -torch.from_numpy(path).float() * (2.0 / size) / cfg.image_extent
    )  # pixels -> grid units
    grid = F.affine_grid(theta, [k, 1, size, size], align_corners=False)
    frames = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return frames.transpose(0, 1).numpy()


def _events_of(
    intensity: np.ndarray, rng: np.random.Generator, cfg: EmulatorConfig
) -> list[Events]:
    """Event streams of a chunk of rendered images ``[N, K, S, S]`` (sub-frames along the path)."""
    n_img, n_frames, size = intensity.shape[0], intensity.shape[1], cfg.sensor_size
    log_i = np.log(intensity + cfg.eps)
    theta = np.clip(rng.normal(cfg.theta, cfg.theta_sigma, (n_img, size, size)), 0.05, None)
    ref = log_i[:, 0].copy()
    cols: dict[str, list[np.ndarray]] = {"i": [], "t": [], "x": [], "y": [], "p": []}
    for k in range(1, n_frames):
        diff = log_i[:, k] - ref
        count = np.floor(np.abs(diff) / theta).astype(np.int64)
        ref += np.sign(diff) * count * theta
        i, y, x = np.nonzero(count)
        n = count[i, y, x]
        rank = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)  # 0..n-1 within a pixel
        frac = (rank + 1 + rng.uniform(-0.25, 0.25, len(rank))) / np.repeat(n + 1, n)
        cols["t"].append(((k - 1 + frac) * cfg.frame_us).astype(np.int64))
        for key, v in (("i", i), ("x", x), ("y", y), ("p", diff[i, y, x] > 0)):
            cols[key].append(np.repeat(v, n))
    duration = (n_frames - 1) * cfg.frame_us
    n_noise = rng.poisson(cfg.noise_rate * size * size * n_img)
    for key, v in (
        ("i", rng.integers(0, n_img, n_noise)),
        ("t", rng.integers(0, duration, n_noise)),
        ("x", rng.integers(0, size, n_noise)),
        ("y", rng.integers(0, size, n_noise)),
        ("p", rng.integers(0, 2, n_noise)),
    ):
        cols[key].append(v)
    flat = {key: np.concatenate(v) for key, v in cols.items()}
    order = np.argsort(flat["i"] * (duration + 1) + flat["t"], kind="stable")
    flat = {key: v[order] for key, v in flat.items()}
    bounds = np.searchsorted(flat["i"], np.arange(n_img + 1))
    return [
        make_events(*(flat[key][lo:hi] for key in ("t", "x", "y", "p")))
        for lo, hi in zip(bounds[:-1], bounds[1:])
    ]


def emulate_events(
    images: np.ndarray, seed: int = 0, config: EmulatorConfig = EmulatorConfig(), chunk: int = 256
) -> list[Events]:
    """Event streams (times from 0) of greyscale images ``[N, h, w]`` in [0, 1]."""
    rng = np.random.default_rng(seed)
    path = _saccade_path(config)
    streams = []
    for lo in range(0, len(images), chunk):
        streams += _events_of(_render(images[lo : lo + chunk], path, config), rng, config)
    return streams


def _shifted(events: Events, offset: int) -> Events:
    return {**events, "t": events["t"] + offset}


def write_segmented_recordings(
    folder: str | os.PathLike,
    splits: dict[str, tuple[list[Events], np.ndarray]],
    per_recording: int = 20,
    gap_us: int = 20000,
    packet_size: int = 4096,
) -> None:
    """Gesture-style folder: recordings of ``per_recording`` consecutive samples (AEDAT 3.1),
    a ``_labels.csv`` per recording (class = label + 1) and ``trials_to_<split>.txt``.

    ``splits`` maps ``"train"``/``"test"`` to ``(event streams, labels)``. Written into a
    temporary folder and renamed into place when complete.
    """
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for split, (streams, labels) in splits.items():
        trials = []
        for r, lo in enumerate(range(0, len(streams), per_recording)):
            name = f"{split}{r:03d}_emulated"
            parts, rows, start = [], [], gap_us
            for ev, label in zip(streams[lo : lo + per_recording], labels[lo : lo + per_recording]):
                duration = int(ev["t"][-1]) + 1 if len(ev["t"]) else 1
                parts.append(_shifted(ev, start))
                rows.append(f"{int(label) + 1},{start},{start + duration}")
                start += duration + gap_us
            merged = {k: np.concatenate([p[k] for p in parts]) for k in ("t", "x", "y", "p")}
            write_aedat31(tmp / f"{name}.aedat", merged, packet_size=packet_size)
            (tmp / f"{name}_labels.csv").write_text(
                "class,startTime_usec,endTime_usec\n" + "\n".join(rows) + "\n"
            )
            trials.append(f"{name}.aedat")
        (tmp / f"trials_to_{split}.txt").write_text("\n".join(trials) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def write_class_tree(
    folder: str | os.PathLike,
    streams: list[Events],
    labels: np.ndarray,
    class_names: list[str],
    offset: tuple[int, int] = (0, 0),
) -> None:
    """CIFAR10-DVS-style tree: ``<class>/cifar10_<class>_<i>.aedat`` (AEDAT 2.0, 128x128 sensor),
    ``i`` counting per class; events placed at ``offset`` (x, y) on the sensor."""
    folder = Path(folder)
    counters = {name: 0 for name in class_names}
    for ev, label in zip(streams, labels):
        name = class_names[int(label)]
        (folder / name).mkdir(parents=True, exist_ok=True)
        placed = {**ev, "x": ev["x"] + offset[0], "y": ev["y"] + offset[1]}
        write_aedat2(folder / name / f"cifar10_{name}_{counters[name]}.aedat", placed)
        counters[name] += 1
