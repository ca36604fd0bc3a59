"""Event datasets: Gesture segmentation, CIFAR10-DVS split, the frame cache, and the emulator end
to end."""

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import eisnn
from eisnn.data import create_dataset, dataset_info, events_to_frames, read_events, write_aedat31
from eisnn.data import gesture as gesture_module
from eisnn.data.aedat import make_events
from eisnn.data.cifar10_dvs import CLASSES, split_files
from eisnn.data.emulator import emulate_events, write_class_tree
from eisnn.models import create_model


def _random_events(rng, n, t_end, hot_pixel=None, hot_count=0):
    t = np.sort(rng.integers(0, t_end, n))
    x, y = rng.integers(0, 128, n), rng.integers(0, 128, n)
    if hot_pixel is not None:
        x[:hot_count], y[:hot_count] = hot_pixel
    return make_events(t, x, y, rng.integers(0, 2, n))


def _gesture_tree(root, rng):
    """Three trials (two train, one test); overlapping and repeated rows; a hot pixel in the test
    trial."""
    folder = root / "DvsGesture"
    folder.mkdir(parents=True)
    trials = {
        "user01_fluorescent": (
            [(1, 100_000, 300_000), (11, 250_000, 500_000), (1, 600_000, 700_000)],
            {},
        ),
        "user02_led": ([(5, 0, 400_000), (5, 0, 400_000)], {}),
        "user03_natural": (
            [(3, 1000, 1_200), (7, 500_000, 900_000)],
            {"hot_pixel": (9, 4), "hot_count": 1200},
        ),
    }
    recordings = {}
    for name, (rows, hot) in trials.items():
        if (
            hot
        ):  # 1200 events at one pixel inside row 1's window: 300 per frame at T=4, beyond uint8
            ev = _random_events(rng, 5000, 1_000_000)
            burst = make_events(
                np.full(1200, 1100), np.full(1200, 9), np.full(1200, 4), np.ones(1200)
            )
            ev = {k: np.concatenate([burst[k], ev[k]]) for k in ev}
            order = np.argsort(ev["t"], kind="stable")
            ev = {k: v[order] for k, v in ev.items()}
        else:
            ev = _random_events(rng, 5000, 1_000_000)
        write_aedat31(folder / f"{name}.aedat", ev, packet_size=700)
        (folder / f"{name}_labels.csv").write_text(
            "class,startTime_usec,endTime_usec\n" + "".join(f"{c},{s},{e}\n" for c, s, e in rows)
        )
        recordings[name] = (ev, rows)
    (folder / "trials_to_train.txt").write_text("user01_fluorescent.aedat\nuser02_led.aedat\n")
    (folder / "trials_to_test.txt").write_text("user03_natural.aedat\n")
    return folder, recordings


def test_gesture_segmentation_frames_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    folder, recordings = _gesture_tree(tmp_path, rng)
    cache = tmp_path / "cache"
    train = create_dataset(
        "dvs128_gesture", tmp_path, train=True, T=4, augment=False, cache_dir=cache
    )
    assert len(train) == 5 and train.labels.tolist() == [0, 10, 0, 4, 4]
    x, label = train[1]
    assert x.shape == (4, 2, 48, 48) and x.dtype == torch.float32 and label == 10
    ev, rows = recordings["user01_fluorescent"]
    inside = (ev["t"] >= 250_000) & (ev["t"] < 500_000)
    expected = events_to_frames({k: v[inside] for k, v in ev.items()}, T=4)
    np.testing.assert_array_equal(train.store[1], expected)
    assert train.store[1].dtype == np.uint8
    test = create_dataset(
        "dvs128_gesture", folder, train=False, T=4, augment=False, cache_dir=cache
    )
    assert len(test) == 2 and test.store[0].dtype == np.uint16 and test.store[0].max() >= 300
    paper = create_dataset(
        "dvs128_gesture", tmp_path, train=True, T=4, cache_dir=cache, label_order="paper"
    )
    assert paper.labels.tolist() == [0, 2, 0, 5, 5]  # "10" sorts third among "0".."10"
    x, _ = paper[0]
    assert x.shape == (4, 2, 48, 48)


def test_frame_cache_reused_per_T_and_split_mode_never_for_another_T(tmp_path, monkeypatch):
    folder, _ = _gesture_tree(tmp_path, np.random.default_rng(1))
    cache = tmp_path / "cache"
    first = create_dataset("dvs128_gesture", tmp_path, train=True, T=4, cache_dir=cache)
    meta = json.loads((first.store.directory / "meta.json").read_text())
    assert meta["key"]["T"] == 4 and meta["key"]["split_by"] == "number"

    def no_parsing(path):
        raise AssertionError(f"parsed {path} although a cache exists")

    monkeypatch.setattr(gesture_module, "read_events", no_parsing)
    again = create_dataset("dvs128_gesture", tmp_path, train=True, T=4, cache_dir=cache)
    assert np.array_equal(again.store[2], first.store[2])
    for other in ({"T": 5}, {"T": 4, "split_by": "time"}):
        with pytest.raises(AssertionError, match="parsed"):
            create_dataset("dvs128_gesture", tmp_path, train=True, cache_dir=cache, **other)
    monkeypatch.undo()
    five = create_dataset("dvs128_gesture", tmp_path, train=True, T=5, cache_dir=cache)
    assert five.store.directory != first.store.directory and five.store[0].shape == (5, 2, 128, 128)
    assert five[0][0].shape == (5, 2, 48, 48)
    # a cache folder whose key says another T (e.g. renamed by hand) is rebuilt, not reused
    (first.store.directory / "meta.json").write_text(
        json.dumps({**meta, "key": {**meta["key"], "T": 7}})
    )
    rebuilt = create_dataset("dvs128_gesture", tmp_path, train=True, T=4, cache_dir=cache)
    assert rebuilt.store.key["T"] == 4 and np.array_equal(rebuilt.store[2], first.store[2])
    assert not list(cache.rglob(".*building*"))


def test_gesture_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        create_dataset("dvs128_gesture", tmp_path, train=True)
    assert "dvs128_gesture" in str(err.value) and "trials_to_train.txt" in str(err.value)
    folder, _ = _gesture_tree(tmp_path, np.random.default_rng(2))
    (folder / "user02_led_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n5,0,400000\n6,2000000,2100000\n"
    )
    with pytest.raises(
        ValueError, match=r"user02_led_labels.csv: row 2 .*outside the recording user02_led.aedat"
    ):
        create_dataset("dvs128_gesture", tmp_path, train=True, cache_dir=tmp_path / "c")
    (folder / "user02_led_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n12,0,400000\n"
    )
    with pytest.raises(ValueError, match="row 1 invalid"):
        create_dataset("dvs128_gesture", tmp_path, train=True, cache_dir=tmp_path / "c")
    (folder / "user02_led.aedat").unlink()
    with pytest.raises(FileNotFoundError, match="user02_led.aedat.*trials_to_train.txt"):
        create_dataset("dvs128_gesture", tmp_path, train=True, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c" / "dvs128_gesture" / "train_T16_number").exists()


def test_cifar10_dvs_split_twenty_files_per_class(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "CIFAR10-DVS"
    streams = [_random_events(rng, 40, 10_000) for _ in range(200)]
    labels = np.repeat(np.arange(10), 20)
    write_class_tree(folder, streams, labels, CLASSES)
    test_files = split_files(folder, train=False)
    assert len(test_files) == 20 and len(split_files(folder, train=True)) == 180
    assert sorted({p.stem.rsplit("_", 1)[1] for p, _ in test_files}) == ["8", "9"]
    assert [label for _, label in test_files] == list(np.repeat(np.arange(10), 2))
    back = read_events(folder / "cat" / "cifar10_cat_7.aedat")
    for key in "txyp":
        np.testing.assert_array_equal(back[key], streams[3 * 20 + 7][key])
    test = create_dataset("cifar10_dvs", tmp_path, train=False, T=3, augment=False)
    assert len(test) == 20 and test.labels.tolist() == list(np.repeat(np.arange(10), 2))
    assert test.store[3].sum() == 40
    train = create_dataset("cifar10_dvs", folder, train=True, T=3)
    x, y = train[17]
    assert len(train) == 180 and x.shape == (3, 2, 48, 48) and y == 0
    with pytest.raises(FileNotFoundError, match="cifar10_dvs.*airplane"):
        create_dataset("cifar10_dvs", tmp_path / "empty", train=True)


@pytest.fixture(scope="module")
def digits_dvs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits_dvs")
    create_dataset("digits_dvs", root, train=True, T=4)
    create_dataset("digits_dvs", root, train=False, T=4, augment=False)
    return root


def test_emulator_files_parse_segment_integrate(digits_dvs_root):
    folder = digits_dvs_root / "digits_dvs"
    train = create_dataset("digits_dvs", digits_dvs_root, train=True, T=4, augment=False)
    test = create_dataset("digits_dvs", digits_dvs_root, train=False, T=4, augment=False)
    assert (len(train), len(test)) == (1437, 360)
    assert torch.bincount(test.labels, minlength=10).min() >= 35
    ev = read_events(folder / "train000_emulated.aedat")
    rows = gesture_module.read_label_rows(folder / "train000_emulated_labels.csv", 10)
    assert len(rows) == 20
    cls, start, end = rows[3]
    inside = (ev["t"] >= start) & (ev["t"] < end)
    assert inside.sum() > 1000 and set(np.unique(ev["p"][inside])) == {0, 1}
    x, label = train[3]
    assert label == cls - 1 and x.shape == (4, 2, 32, 32) and x.sum() == inside.sum()
    np.testing.assert_array_equal(
        x.numpy(), events_to_frames({k: v[inside] for k, v in ev.items()}, 4, size=(32, 32))
    )
    augmented = create_dataset("digits_dvs", digits_dvs_root, train=True, T=4)
    assert augmented[3][0].shape == (4, 2, 32, 32) and not torch.equal(augmented[3][0], x)


def test_emulator_is_deterministic_and_polar():
    images = np.zeros((2, 8, 8), np.float32)
    images[:, 2:6, 3:5] = 1.0
    a, b = emulate_events(images, seed=7), emulate_events(images, seed=7)
    assert all(np.array_equal(a[i][k], b[i][k]) for i in range(2) for k in "txyp")
    assert np.all(np.diff(a[0]["t"]) >= 0) and 0.3 < a[0]["p"].mean() < 0.7
    assert dataset_info("digits_dvs").input_shape(4) == (4, 2, 32, 32)


def test_tiny_ei_snn_learns_emulated_digits(digits_dvs_root):
    torch.manual_seed(0)
    T, info = 4, dataset_info("digits_dvs")
    train = create_dataset("digits_dvs", digits_dvs_root, train=True, T=T)
    test = create_dataset("digits_dvs", digits_dvs_root, train=False, T=T, augment=False)
    model = create_model(
        "ei_mlp", info.num_classes, info.in_channels, T, image_size=info.image_size, hidden=(64,)
    )
    loader = DataLoader(train, batch_size=32, shuffle=True, drop_last=True)
    eisnn.ei_init(model, next(iter(loader))[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    eisnn.dale.attach(optimizer, model)
    steps = 0
    while steps < 150:
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps == 150:
                break
    model.eval()
    with torch.no_grad():
        x, y = next(iter(DataLoader(test, batch_size=len(test))))
        accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
    assert accuracy > 0.35, f"test accuracy {accuracy:.3f} after 150 steps (chance 0.10)"
