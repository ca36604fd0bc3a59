"""The imagefolder dataset on generated folders of JPEG, PNG and WebP files: both layouts and the
seeded split, ImageNet's flat validation folder, preprocessing, worker-count and rank
independence of the batches, training from files, and one-line errors naming the bad file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eisnn.cli import main
from eisnn.data import create_dataset, dataset_info
from eisnn.data.folders import FolderError, stratified_split
from eisnn.data.imagefolder import ImageReadError, Preprocessing, decode
from eisnn.errors import InputNotFoundError
from eisnn.train.config import ConfigError, from_dict
from eisnn.train.distributed import Ranks
from eisnn.train.factory import build_loader, build_model

FORMATS = ("JPEG", "PNG", "WEBP")
CLASSES = ("n01", "n02", "n03")
TINY_RUN_KEYS = (  # eisnn train --set ... of a tiny run on an image folder
    "name=r",
    "dataset=imagefolder",
    "model=ei_mlp",
    "hidden=[16]",
    "image_size=8",
    "T=2",
    "epochs=1",
    "batch_size=8",
    "warmup_epochs=0",
    "progress=false",
)


def write_image(path: Path, rng: np.random.Generator, fmt: str, size=(30, 40)) -> None:
    """A random RGB image of ``size`` (height, width) in ``fmt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path, fmt)


def write_classes(folder: Path, per_class: int, seed: int = 0) -> None:
    """``folder/<class>/<k>.<ext>``: each class in its own format, images of varied sizes."""
    rng = np.random.default_rng(seed)
    for c, fmt in zip(CLASSES, FORMATS):
        for k in range(per_class):
            write_image(folder / c / f"{c}_{k}.{fmt.lower()}", rng, fmt, (24 + k, 30 + 2 * k))


@pytest.fixture
def split_folder(tmp_path) -> Path:
    """``train/`` and ``val/`` with class folders."""
    write_classes(tmp_path / "train", 8)
    write_classes(tmp_path / "val", 2, seed=1)
    return tmp_path


def labels_of(dataset) -> list[int]:
    return dataset.labels.tolist()


# ------------------------------------------------------------------------------ layouts
def test_train_and_val_folders_give_sorted_classes_and_every_file(split_folder):
    train = create_dataset("imagefolder", split_folder, True, image_size=16)
    val = create_dataset("imagefolder", split_folder, False, image_size=16)
    assert (
        train.classes == list(CLASSES)
        and dataset_info("imagefolder", split_folder).num_classes == 3
    )
    assert labels_of(train) == [0] * 8 + [1] * 8 + [2] * 8
    assert labels_of(val) == [0, 0, 1, 1, 2, 2]
    x, y = val[5]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    assert y == 2


def test_one_folder_is_split_per_class_deterministically_and_disjointly(tmp_path):
    write_classes(tmp_path, 10)

    def files(train, **options):
        ds = create_dataset("imagefolder", tmp_path, train, image_size=8, **options)
        return {(f.decode(), int(y)) for f, y in zip(ds.split.files, ds.split.labels)}

    train, val = files(True), files(False)
    assert not train & val and len(train | val) == 30
    assert sorted(y for _, y in val) == [0, 1, 2]  # 10 % of each class of 10
    assert files(False) == val and files(True) == train  # the same split every time
    assert files(False, split_seed=1) != val
    held = files(False, val_fraction=0.3)
    assert sorted(y for _, y in held) == [0] * 3 + [1] * 3 + [2] * 3


def test_stratified_split_holds_out_the_share_of_each_class():
    labels = np.repeat([0, 1, 2], [100, 7, 1])
    held = stratified_split(labels, 0.1, seed=5)
    assert [int(held[labels == c].sum()) for c in range(3)] == [10, 1, 0]
    assert (stratified_split(labels, 0.1, seed=5) == held).all()
    assert (stratified_split(labels, 0.1, seed=6) != held).any()


@pytest.mark.parametrize(
    "name, text",
    [
        (
            "LOC_val_solution.csv",
            "ImageId,PredictionString\n"
            "ILSVRC2012_val_00000002,n03 1 2 3 4 n03 5 6 7 8\n"
            "ILSVRC2012_val_00000001,n02 1 2 3 4\n"
            "ILSVRC2012_val_00000003,n01 0 0 9 9\n",
        ),
        (
            "val.txt",
            "ILSVRC2012_val_00000001.JPEG 1\nILSVRC2012_val_00000002.JPEG 2\n"
            "ILSVRC2012_val_00000003.JPEG n01\n",
        ),
    ],
)
def test_flat_imagenet_val_takes_its_labels_from_a_ground_truth_file(tmp_path, name, text):
    write_classes(tmp_path / "train", 2)
    rng = np.random.default_rng(2)
    for k in (1, 2, 3):
        write_image(tmp_path / "val" / f"ILSVRC2012_val_{k:08d}.JPEG", rng, "JPEG")
    (tmp_path / name).write_text(text)
    val = create_dataset("imagefolder", tmp_path, False, image_size=8)
    assert labels_of(val) == [1, 2, 0]
    assert val[0][0].shape == (3, 8, 8)


# ------------------------------------------------------------------------------ preprocessing
def test_evaluation_resizes_and_takes_the_central_square(tmp_path):
    """A 40 x 120 image, red | green | blue in thirds of 40 columns: eval_crop 0.875 keeps the
    central 35 x 35 of the green third (output pure green, the filter reaching 2.2 px further);
    eval_crop 1 takes the whole green square, and the filter brings red and blue in at the sides."""
    pixels = np.zeros((40, 120, 3), dtype=np.uint8)
    for channel in range(3):
        pixels[:, 40 * channel : 40 * (channel + 1), channel] = 255
    Image.fromarray(pixels).save(tmp_path / "a.png")
    centre = decode(tmp_path / "a.png", Preprocessing(8, augment=False), None)
    assert centre.shape == (3, 8, 8)
    assert centre[1].min() == 1 and centre[0].max() == 0 and centre[2].max() == 0
    whole = decode(tmp_path / "a.png", Preprocessing(8, augment=False, eval_crop=1.0), None)
    assert whole[0, :, 0].min() > 0 and whole[2, :, -1].min() > 0 and whole[0, :, 1:].max() == 0


def test_jpeg_draft_decoding_stays_close_to_the_full_decode(tmp_path):
    """A smooth 480 x 640 JPEG read at 32 px: decoding at a reduced DCT scale changes pixels by a
    few levels at most (on average)."""
    yy, xx = np.mgrid[0:480, 0:640]
    pixels = np.stack([xx * 255 // 640, yy * 255 // 480, (xx + yy) * 255 // 1120], -1)
    Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "a.jpg", quality=95)
    for augment in (False, True):
        full, fast = (
            decode(
                tmp_path / "a.jpg",
                Preprocessing(32, augment=augment, draft=draft),
                torch.Generator().manual_seed(0),
            )
            for draft in (False, True)
        )
        assert (full - fast).abs().mean() < 3 / 255


def test_training_augmentation_is_a_function_of_seed_and_index(split_folder):
    train = create_dataset("imagefolder", split_folder, True, image_size=16)
    assert torch.equal(train[(4, 11)][0], train[(4, 11)][0])
    assert not torch.equal(train[(4, 11)][0], train[(4, 12)][0])


# ------------------------------------------------------------------------------ loaders
def loader_batches(folder: Path, ranks: Ranks | None = None, **keys) -> list:
    cfg = from_dict(
        dict(dataset="imagefolder", data_dir=str(folder), image_size=16, batch_size=6, **keys)
    )
    loader, generator = build_loader(cfg, True, torch.device("cpu"), ranks)
    generator.manual_seed(123)
    return [(x.clone(), y.clone()) for x, y in loader]


def test_zero_and_two_workers_give_the_same_batches(split_folder):
    alone = loader_batches(split_folder, num_workers=0)
    workers = loader_batches(split_folder, num_workers=2, persistent_workers=True)
    assert len(alone) == 4 and len(workers) == 4
    for (xa, ya), (xb, yb) in zip(alone, workers):
        assert torch.equal(ya, yb) and torch.equal(xa, xb)
    shuffled = sorted(torch.cat([y for _, y in alone]).tolist())
    assert shuffled == [0] * 8 + [1] * 8 + [2] * 8


def test_two_ranks_read_disjoint_parts_that_make_the_one_process_batch(split_folder):
    """Each rank's batches, built as under torchrun (no process group is needed to build them):
    the parts are disjoint and, side by side, are the one-process batch, augmentation included."""
    cpu = torch.device("cpu")
    whole = loader_batches(split_folder)
    parts = [loader_batches(split_folder, Ranks(r, 2, r, cpu)) for r in range(2)]
    for (x, y), (x0, y0), (x1, y1) in zip(whole, *parts):
        assert len(y0) == len(y1) == len(y) // 2
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)


# ------------------------------------------------------------------------------ training
def test_eisnn_train_runs_from_files_to_a_trained_step(split_folder, tmp_path, capsys):
    code = main(
        [
            "train",
            "--data-dir",
            str(split_folder),
            "--out",
            str(tmp_path / "runs"),
            *(
                f"--set={kv}"
                for kv in (
                    *TINY_RUN_KEYS,
                    "num_workers=2",
                    "color_jitter=[0.4, 0.4, 0.4, 0.1]",
                    "crop_scale=[0.5, 1]",
                )
            ),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "test accuracy: top-1 " in out
    assert (tmp_path / "runs" / "r" / "checkpoints" / "last.pt").is_file()


def test_normalization_is_refused_for_e_i_models_and_options_for_other_datasets(split_folder):
    keys = dict(dataset="imagefolder", data_dir=str(split_folder), image_size=8, hidden=[8])
    normalized = dict(mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    with pytest.raises(ConfigError, match="E-I layers, which need non-negative inputs"):
        build_model(from_dict({**keys, **normalized, "model": "ei_mlp"}))
    assert build_model(from_dict({**keys, **normalized, "model": "bn_mlp"})) is not None
    with pytest.raises(ConfigError, match="val_fraction: dataset digits does not take"):
        from_dict(dict(dataset="digits", val_fraction=0.2))


# ------------------------------------------------------------------------------ bad input
def one_line(err: BaseException) -> str:
    message = str(err)
    assert "\n" not in message
    return message


def test_an_empty_class_folder_is_named(split_folder):
    (split_folder / "train" / "n04").mkdir()
    with pytest.raises(FolderError) as info:
        create_dataset("imagefolder", split_folder, True)
    assert one_line(info.value).startswith(f"{split_folder / 'train' / 'n04'}: empty class folder")


def test_a_val_class_absent_from_train_is_named(split_folder):
    write_image(split_folder / "val" / "n09" / "a.png", np.random.default_rng(0), "PNG")
    with pytest.raises(FolderError, match="class 'n09' is not a class folder of train/") as info:
        create_dataset("imagefolder", split_folder, False)
    assert one_line(info.value).startswith(str(split_folder / "val" / "n09"))


def test_missing_val_folder_or_ground_truth_is_named(split_folder, tmp_path):
    write_classes(tmp_path / "only" / "train", 2)
    with pytest.raises(InputNotFoundError, match="has train/ but no val/"):
        create_dataset("imagefolder", tmp_path / "only", True)
    (tmp_path / "only" / "val").mkdir()
    write_image(tmp_path / "only" / "val" / "x.jpg", np.random.default_rng(0), "JPEG")
    with pytest.raises(InputNotFoundError, match="no ground-truth file"):
        create_dataset("imagefolder", tmp_path / "only", False)


def test_non_image_files_are_skipped_with_a_count(split_folder):
    (split_folder / "train" / "n01" / "notes.txt").write_text("not an image")
    (split_folder / "train" / "n02" / ".DS_Store").write_bytes(b"\0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = create_dataset("imagefolder", split_folder, True)
    assert len(train) == 24
    (warning,) = caught
    assert "skipped 2 file(s)" in str(warning.message) and "notes.txt" in str(warning.message)


@pytest.mark.parametrize("damage", ["truncated", "not an image"])
def test_an_unreadable_image_is_named_even_from_a_worker(split_folder, damage):
    path = split_folder / "val" / "n02" / "n02_0.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"hello")
    val = create_dataset("imagefolder", split_folder, False)
    with pytest.raises(ImageReadError) as info:
        val[2]
    assert one_line(info.value).startswith(f"{path}: unreadable image (")
    loader = torch.utils.data.DataLoader(val, batch_size=6, num_workers=1)
    with pytest.raises(ImageReadError) as info:
        next(iter(loader))
    assert one_line(info.value).startswith(f"{path}: unreadable image (")


def test_a_two_process_run_trains_on_an_image_folder(split_folder, tmp_path):
    from test_distributed import torchrun

    done = torchrun(
        "--data-dir",
        str(split_folder),
        "--out",
        str(tmp_path / "runs"),
        *(
            f"--set={kv}"
            for kv in (
                *TINY_RUN_KEYS,
                "device=cpu",
                "cpu_threads=1",
            )
        ),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes" in done.stdout and done.stdout.count("test accuracy: top-1") == 1
