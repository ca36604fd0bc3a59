"""Static image datasets: CIFAR pickles, TinyImageNet folder (greyscale JPEGs), digits, registry."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from eisnn.data import DATASET_NAMES, create_dataset, dataset_info


def _write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _cifar10_tree(root, per_batch=4, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        _write_pickle(
            folder / name,
            {
                "batch_label": name,
                "data": data,
                "labels": labels,
                "filenames": [f"{name}_{i}.png" for i in range(per_batch)],
            },
        )
        batches[name] = (data, labels)
    _write_pickle(
        folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}
    )
    return folder, batches


def test_cifar10_pickles_round_trip(tmp_path):
    folder, batches = _cifar10_tree(tmp_path)
    train = create_dataset("cifar10", tmp_path, train=True, augment=False)
    assert len(train) == 20 and train.classes[3] == "class3"
    data, labels = batches["data_batch_2"]
    x, y = train[5]  # batch 2, row 1
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == labels[1]
    row = data[1]
    np.testing.assert_allclose(x[0, 2, 3].item(), row[2 * 32 + 3] / 255, rtol=1e-6)  # red
    np.testing.assert_allclose(x[1, 0, 31].item(), row[1024 + 31] / 255, rtol=1e-6)  # green
    np.testing.assert_allclose(x[2, 31, 0].item(), row[2048 + 31 * 32] / 255, rtol=1e-6)  # blue
    test = create_dataset(
        "cifar10", folder, train=False
    )  # the folder itself also works; test is never augmented
    x, y = test[0]
    np.testing.assert_allclose(x.numpy().reshape(-1), batches["test_batch"][0][0] / 255, rtol=1e-6)


def test_cifar100_pickles_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.arange(6 * 3072, dtype=np.int64).astype(np.uint8).reshape(6, 3072)
    for split in ("train", "test"):
        _write_pickle(
            folder / split,
            {"data": data, "fine_labels": [0, 99, 5, 6, 7, 8], "coarse_labels": [0] * 6},
        )
    _write_pickle(
        folder / "meta",
        {"fine_label_names": [f"f{i}" for i in range(100)], "coarse_label_names": []},
    )
    ds = create_dataset("cifar100", tmp_path, train=True, augment=True)
    assert len(ds) == 6 and ds[1][1] == 99 and ds[1][0].shape == (3, 32, 32)


def test_cifar_missing_and_corrupted(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        create_dataset("cifar10", tmp_path / "nowhere", train=True)
    message = str(err.value)
    assert (
        "cifar10" in message
        and "nowhere" in message
        and "data_batch_1" in message
        and "\n" not in message
    )
    folder, _ = _cifar10_tree(tmp_path)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="data_batch_3"):
        create_dataset("cifar10", tmp_path, train=True)
    _write_pickle(folder / "data_batch_3", {"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]})
    with pytest.raises(ValueError, match="data_batch_3.*3072"):
        create_dataset("cifar10", tmp_path, train=True)


def _jpeg(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=95)


def _smooth_rgb(seed):
    yy, xx = np.mgrid[0:64, 0:64]
    phase = seed * 0.7
    return np.stack(
        [
            128 + 100 * np.sin(xx / 9 + phase),
            128 + 100 * np.cos(yy / 11 + phase),
            128 + 60 * np.sin((xx + yy) / 13),
        ],
        axis=-1,
    ).astype(np.uint8)


def _tiny_tree(root):
    folder = root / "tiny-imagenet-200"
    wnids = ["n03", "n01", "n02"]
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").parent.mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for i, w in enumerate(wnids):
        _jpeg(folder / "train" / w / "images" / f"{w}_0.JPEG", _smooth_rgb(i))
        _jpeg(
            folder / "train" / w / "images" / f"{w}_1.JPEG", _smooth_rgb(i + 5)[:, :, 0]
        )  # greyscale
        (folder / "train" / w / f"{w}_boxes.txt").write_text(f"{w}_0.JPEG\t0\t0\t10\t10\n")
    lines = []
    for k, w in enumerate(["n02", "n03", "n01"]):
        _jpeg(folder / "val" / "images" / f"val_{k}.JPEG", _smooth_rgb(10 + k))
        lines.append(f"val_{k}.JPEG\t{w}\t1\t2\t30\t40")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_tinyimagenet_folder_greyscale_and_labels(tmp_path):
    folder = _tiny_tree(tmp_path)
    train = create_dataset("tinyimagenet", tmp_path, train=True, augment=False)
    assert train.classes == ["n01", "n02", "n03"] and len(train) == 6
    assert [label for _, label in train.samples] == [0, 0, 1, 1, 2, 2]
    from eisnn.data.tinyimagenet import read_image

    grey = read_image(folder / "train" / "n01" / "images" / "n01_1.JPEG")
    assert (
        grey.shape == (3, 64, 64)
        and torch.equal(grey[0], grey[1])
        and torch.equal(grey[1], grey[2])
    )
    colour = read_image(folder / "train" / "n01" / "images" / "n01_0.JPEG").float()
    assert (
        colour - torch.from_numpy(_smooth_rgb(1)).permute(2, 0, 1).float()
    ).abs().mean() < 3  # JPEG q95
    x, y = train[0]
    assert x.shape == (3, 32, 32) and x.min() >= 0 and x.max() <= 1
    val = create_dataset("tinyimagenet", folder, train=False)
    assert [val[k][1] for k in range(3)] == [1, 2, 0]
    aug = create_dataset("tinyimagenet", tmp_path, train=True, augment=True)
    for k in range(6):
        x, _ = aug[k]
        assert x.shape == (3, 32, 32) and x.min() >= 0 and x.max() <= 1


def test_tinyimagenet_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="tinyimagenet.*wnids.txt"):
        create_dataset("tinyimagenet", tmp_path, train=True)
    folder = _tiny_tree(tmp_path)
    bad = folder / "train" / "n02" / "images" / "n02_0.JPEG"
    bad.write_bytes(bad.read_bytes()[:50])
    ds = create_dataset("tinyimagenet", tmp_path, train=True, augment=False)
    with pytest.raises(ValueError, match="n02_0.JPEG"):
        ds[2]
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\t1\t2\t3\t4\n")
    with pytest.raises(ValueError, match="val_annotations.txt: line 1"):
        create_dataset("tinyimagenet", tmp_path, train=False)


def test_digits_split_is_fixed_stratified_and_scaled():
    train = create_dataset("digits", None, train=True, augment=False)
    test = create_dataset("digits", None, train=False)
    assert (len(train), len(test)) == (1437, 360)
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    again = create_dataset("digits", None, train=False, image_size=8)
    torch.manual_seed(123)
    assert torch.equal(again.labels, test.labels)
    x, _ = again[0]
    assert x.shape == (1, 8, 8) and x.max() <= 1 and x.min() >= 0
    assert torch.allclose(x * 16, torch.round(x * 16))  # values k/16
    assert train[0][0].shape == (1, 16, 16)
    shifted = create_dataset("digits", None, train=True, augment=True)
    assert shifted[0][0].shape == (1, 16, 16)


def test_registry_names_info_and_errors():
    assert set(DATASET_NAMES) == {
        "digits",
        "digits_dvs",
        "cifar10",
        "cifar100",
        "tinyimagenet",
        "dvs128_gesture",
        "cifar10_dvs",
        "digits_seq",
        "eventfolder",
        "imagefolder",
    }
    assert dataset_info("cifar100").num_classes == 100
    assert dataset_info("dvs128_gesture").input_shape() == (16, 2, 48, 48)
    assert dataset_info("cifar10_dvs").input_shape(T=4) == (4, 2, 48, 48)
    assert dataset_info("tinyimagenet").input_shape() == (3, 32, 32)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*cifar10"):
        create_dataset("mnist", None, True)
    with pytest.raises(ValueError, match="does not take option.*colour"):
        create_dataset("digits", None, True, colour=True)
