"""Augmentation ops and the paper's pipelines; per-sample and batched paths give the same
distributions."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from eisnn.data import ResidentLoader
from eisnn.data import augment as A
from eisnn.data import transforms as tf
from eisnn.data.color import color_jitter, hsv_to_rgb, rgb_to_hsv
from eisnn.data.images import ImageTensorDataset


def _coded_image():
    """Red = 1; green = blue = position code (1 + i*32 + j) / 2048, so a crop/flip can be
    decoded."""
    code = (1 + torch.arange(32 * 32, dtype=torch.float32).view(32, 32)) / 2048
    return torch.stack([torch.ones(32, 32), code, code])


def _decode(x):
    """Per-sample crop offset (dy, dx in -4..4, nan if not recoverable), flip flag, cutout area and
    applied flag."""
    n = x.shape[0]
    green = x[:, 1]
    code = torch.round(green * 2048).long() - 1
    valid = code >= 0
    i = torch.arange(32).view(1, 32, 1).expand(n, 32, 32)
    j = torch.arange(32).view(1, 1, 32).expand(n, 32, 32)
    src_i, src_j = code // 32, code % 32

    def spread(v):  # (min, max) over the valid pixels of each sample
        return torch.where(valid, v, 99).amin(dim=(1, 2)), torch.where(valid, v, -99).amax(
            dim=(1, 2)
        )

    dy, dy_max = spread(src_i - i)
    plain, plain_max = spread(src_j - j)  # constant when not flipped: dx
    mirrored, mirrored_max = spread(src_j + j)  # constant when flipped: dx + 31
    flipped = plain != plain_max
    assert torch.equal(dy, dy_max) and torch.equal(
        torch.where(flipped, mirrored, 0), torch.where(flipped, mirrored_max, 0)
    )
    dx = torch.where(flipped, mirrored - 31, plain)
    cut = (x[:, 0] > 0) & (green == 0)  # cutout: red = c/255 > 0, green = 0 (padding: all 0)
    return (
        dy.float(),
        dx.float(),
        flipped.float(),
        cut.sum(dim=(1, 2)).float(),
        cut.any(dim=(1, 2)).float(),
    )


def _cutout_area_expectation(draws=400_000):
    rng = np.random.default_rng(0)
    s = rng.uniform(0.02, 0.4, draws) * 1024
    r = rng.uniform(0.4, 2.5, draws)
    return float(np.mean(np.floor(np.sqrt(s * r)) * np.floor(np.sqrt(s / r))))


def test_cifar_per_sample_and_batched_paths_same_distributions():
    n = 2000
    image = _coded_image()
    torch.manual_seed(0)
    dataset = ImageTensorDataset(image[None], torch.zeros(1), tf.cifar_train, True, ["only"])
    per_sample = torch.stack([dataset[0][0] for _ in range(n)])
    gen = torch.Generator().manual_seed(1)
    loader = ResidentLoader(
        image[None].expand(n, -1, -1, -1),
        torch.zeros(n),
        500,
        shuffle=True,
        augment=True,
        generator=gen,
    )
    batched = torch.cat([x for x, _ in loader])
    assert batched.shape == per_sample.shape == (n, 3, 32, 32)
    expected_area = _cutout_area_expectation()
    stats = []
    for x in (per_sample, batched):
        dy, dx, flip, area, applied = _decode(x)
        assert dy.min() >= -4 and dy.max() <= 4 and dx.min() >= -4 and dx.max() <= 4
        # crop offsets uniform on -4..4: mean 0, variance 20/3; flip and cutout each with p = 1/2
        assert abs(dy.mean()) < 0.25 and abs(dx.mean()) < 0.25
        assert abs(dy.var() - 20 / 3) < 0.8 and abs(dx.var() - 20 / 3) < 0.8
        assert abs(flip.mean() - 0.5) < 0.05
        assert abs(applied.mean() - 0.5 * 255 / 256) < 0.05
        # cutout area (visible part may be clipped by nothing: the box lies inside the crop)
        mean_area = area[applied > 0].mean().item()
        assert abs(mean_area - expected_area) < 0.08 * expected_area
        assert torch.all(
            x[:, 1:][(x[:, 0] > 0).unsqueeze(1).expand(-1, 2, -1, -1) & (x[:, 1:] == 0)] == 0
        )
        stats.append(
            torch.tensor([dy.mean(), dx.var(), flip.mean(), applied.mean(), mean_area / 100])
        )
    assert torch.allclose(stats[0], stats[1], atol=0.6)


def test_paper_cutout_fills_red_only_inside_one_box():
    x = torch.full((500, 3, 32, 32), 0.5)
    out = A.paper_cutout(x, p=1.0, generator=torch.Generator().manual_seed(0))
    changed = (out != x).any(dim=1)
    for k in range(0, 500, 50):
        rows = changed[k].any(dim=1).nonzero()
        cols = changed[k].any(dim=0).nonzero()
        if len(rows) == 0:
            continue
        box = changed[k, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all() and box.sum() == changed[k].sum()  # one solid rectangle
    inside = changed.unsqueeze(1).expand(-1, 3, -1, -1)
    assert torch.all(out[:, 1:][inside[:, 1:]] == 0)
    red = out[:, 0][changed]
    assert torch.allclose(red * 255, torch.round(red * 255), atol=1e-4)


def test_resized_crop_nearest_matches_interpolate_and_params_in_range():
    x = torch.arange(2 * 3 * 20 * 30, dtype=torch.float32).view(2, 3, 20, 30)
    box = (
        torch.tensor([2, 0]),
        torch.tensor([5, 3]),
        torch.tensor([13, 20]),
        torch.tensor([17, 27]),
    )
    out = A.resized_crop_nearest(x, box, (20, 30))
    for b in range(2):
        top, left, h, w = (int(v[b]) for v in box)
        ref = F.interpolate(
            x[b : b + 1, :, top : top + h, left : left + w], size=(20, 30), mode="nearest"
        )
        assert torch.equal(out[b : b + 1], ref)
    big = torch.zeros(4000, 1, 128, 128)
    top, left, h, w = A.resized_crop_params(
        big, (0.5, 1.0), generator=torch.Generator().manual_seed(0)
    )
    area = (h * w).float() / 128**2
    assert area.min() > 0.48 and area.max() <= 1.0
    assert torch.all(top >= 0) and torch.all(top + h <= 128) and torch.all(left + w <= 128)
    aspect = w.float() / h.float()
    assert aspect.min() > 0.74 and aspect.max() < 1.35


def test_roll_rotate_square_cutout():
    x = torch.rand(64, 2, 48, 48)
    gen = torch.Generator().manual_seed(0)
    rolled = A.random_roll(x, 5, gen)
    for b in range(0, 64, 8):
        matches = [
            (dy, dx)
            for dy in range(-5, 6)
            for dx in range(-5, 6)
            if torch.equal(rolled[b], torch.roll(x[b], (dy, dx), dims=(1, 2)))
        ]
        assert len(matches) == 1
    assert torch.equal(A.random_rotate(x, 0.0, gen), x)
    square = torch.ones(1, 1, 9, 9)
    square[..., 4, :] = 2
    turned = A.random_rotate(square.expand(200, -1, -1, -1).contiguous(), 30.0, gen)
    assert turned[:, 0, 4, 4].eq(2).all()  # the centre stays
    cut = A.square_cutout(torch.ones(500, 1, 48, 48), 16, gen)
    zeros = (cut == 0).sum(dim=(1, 2, 3))
    assert (
        zeros.max() == 256
        and zeros.min() > 0
        and (cut[:, 0] == 0).any(dim=1).sum(dim=1).max() <= 16
    )


def test_event_pipelines_share_parameters_across_frames_and_polarities():
    torch.manual_seed(0)
    frame = torch.poisson(torch.full((128, 128), 0.5))
    x = frame.expand(1, 6, 2, 128, 128).contiguous()
    for pipeline in (tf.gesture_train, tf.cifar10_dvs_train):
        for _ in range(5):
            out = pipeline(x)[0]
            assert out.shape == (6, 2, 48, 48)
            assert torch.equal(out, out[:1, :1].expand_as(out))
    evaluated = tf.event_eval(x)[0]
    ref = F.interpolate(x[0], size=(48, 48), mode="bilinear", align_corners=False, antialias=True)
    assert torch.allclose(evaluated, ref)
    assert abs(evaluated.sum() / x[0].sum() - (48 / 128) ** 2) < 0.01  # averaged counts


def test_event_pipeline_batched_equals_per_sample_with_same_generator():
    x = torch.poisson(torch.full((3, 4, 2, 128, 128), 0.3))
    batched = tf.cifar10_dvs_train(x, torch.Generator().manual_seed(5))
    assert batched.shape == (3, 4, 2, 48, 48)
    single = tf.cifar10_dvs_train(x[:1], torch.Generator().manual_seed(5))
    assert single.shape == (1, 4, 2, 48, 48)


def test_hsv_round_trip_and_colour_jitter():
    x = torch.rand(16, 3, 8, 8)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5)
    assert torch.allclose(color_jitter(x, 0, 0, 0, 0), x, atol=1e-5)
    grey = torch.rand(4, 1, 8, 8).expand(-1, 3, -1, -1)
    assert torch.allclose(
        color_jitter(grey, 0, 0, 0, 0.5), grey, atol=1e-5
    )  # hue leaves greys alone
    out = color_jitter(x, 0.4, 0.4, 0.4, 0.1, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, x)
    bright = color_jitter(
        torch.full((2000, 3, 1, 1), 0.5), 0.4, 0, 0, 0, torch.Generator().manual_seed(0)
    )
    assert abs(bright.mean() - 0.5) < 0.01 and abs(bright.std() - 0.5 * 0.8 / math.sqrt(12)) < 0.01


def test_tinyimagenet_pipeline_shapes():
    x = torch.rand(3, 3, 64, 64)
    assert tf.tinyimagenet_train(x).shape == (3, 3, 32, 32)
    assert torch.allclose(
        tf.tinyimagenet_eval(x), F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True)
    )
