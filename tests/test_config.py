"""Config schema: every kind of bad input stops with one line naming the key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from eisnn.train.config import (
    ConfigError,
    TrainConfig,
    fields,
    from_dict,
    load_config,
    parse_override,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "src" / "eisnn" / "configs"


def error_of(**data) -> str:
    with pytest.raises(ConfigError) as info:
        from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("T", 0, "T: must be >= 1, got 0"),
        ("ei_ratio", 0, "ei_ratio: must be >= 1, got 0"),
        ("lr", -0.1, "lr: must be >= 0, got -0.1"),
        ("momentum", 1.0, "momentum: must be < 1"),
        ("dropout", -0.5, "dropout: must be >= 0"),
        ("grad_clip", 0, "grad_clip: must be > 0"),
        ("tau", float("nan"), "tau: must be a finite number"),
    ],
)
def test_impossible_values_name_the_key_and_the_bound(key, value, expected):
    assert error_of(**{key: value}).startswith(expected)


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("T", "four", "T: expected int, got 'four' (str)"),
        ("T", 2.5, "T: expected int, got 2.5 (float)"),
        ("epochs", True, "epochs: expected int, got True (bool)"),
        ("lr", "fast", "lr: expected float, got 'fast' (str)"),
        ("ste", "yes", "ste: expected bool, got 'yes' (str)"),
        ("model", 8, "model: expected str, got 8 (int)"),
        ("image_size", [16], "image_size: expected int or null"),
    ],
)
def test_wrong_types_name_the_key_and_the_type(key, value, expected):
    assert error_of(**{key: value}).startswith(expected)


@pytest.mark.parametrize(
    "key, value",
    [
        ("optimizer", "adam"),
        ("amp", "fp16"),
        ("nonfinite", "ignore"),
        ("surrogate", "relu"),
        ("stabilization", "clip"),
        ("init", "kaiming"),
        ("device", "tpu"),
    ],
)
def test_values_outside_the_choices_list_the_choices(key, value):
    message = error_of(**{key: value})
    assert message.startswith(f"{key}: {value!r} is not one of ")
    allowed = message.split(" is not one of ")[1].split(", ")
    assert len(allowed) >= 2 and value not in allowed


def test_unknown_model_and_dataset_list_the_registries():
    from eisnn.data import DATASET_NAMES
    from eisnn.models import list_models

    message = error_of(model="ei_vgg7")
    assert message.startswith("model: 'ei_vgg7' is not one of ") and all(
        n in message for n in list_models()
    )
    message = error_of(dataset="mnist")
    assert message.startswith("dataset: 'mnist' is not one of ") and all(
        n in message for n in DATASET_NAMES
    )


def test_unknown_key_is_rejected_with_the_known_keys():
    message = error_of(learning_rate=0.1)
    assert message.startswith("unknown key 'learning_rate'; known keys: model, dataset")
    assert all(f.name in message for f in fields())


def test_yaml_scientific_notation_and_ints_become_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nweight_decay: 0\nT: 8\n")  # PyYAML reads 1e-3 as a string
    cfg = load_config(path)
    assert cfg.lr == 1e-3 and isinstance(cfg.weight_decay, float) and cfg.T == 8


def test_overrides_are_read_as_yaml_and_win_over_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("T: 8\nlr: 0.1\n")
    cfg = load_config(path, ["T=2", "grad_clip=1.5", "ste=false", "name=x", "image_size=null"])
    assert (cfg.T, cfg.lr, cfg.grad_clip, cfg.ste, cfg.name, cfg.image_size) == (
        2,
        0.1,
        1.5,
        False,
        "x",
        None,
    )
    assert parse_override("dataset=cifar10") == ("dataset", "cifar10")
    for bad in ("T", "=3", "T=[1"):
        with pytest.raises(ConfigError, match="--set"):
            parse_override(bad)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config .*missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: a config must be a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("T: [1\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(tmp_path / "broken.yaml")


def test_model_kwargs_are_the_marked_keys_without_nulls():
    kwargs = TrainConfig(tau=3.0, width=None).model_kwargs()
    assert kwargs["tau"] == 3.0 and "width" not in kwargs and "lr" not in kwargs
    assert TrainConfig(width=0.5).model_kwargs()["width"] == 0.5


@pytest.mark.parametrize(
    "model, key, value",
    [
        ("bn_vgg16", "ei_ratio", 2),
        ("bn_vgg16", "inhibitory", "lif"),
        ("plain_mlp", "stabilization", "none"),
        ("dann_vgg16", "tau", 3.0),
        ("backeisnn_cnn5", "surrogate", "arctan"),
        ("ei_vgg8", "hidden", [64]),
    ],
)
def test_a_model_option_the_model_does_not_use_is_refused_unless_at_its_default(model, key, value):
    message = error_of(model=model, **{key: value})
    assert message.startswith(f"{key}: model {model} does not use this option")
    assert key not in TrainConfig(model=model).model_kwargs()


def test_a_saved_full_config_of_a_bn_model_loads_with_every_key_at_its_default(tmp_path):
    saved = TrainConfig(model="bn_vgg16", dataset="cifar10", tau=3.0)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved.to_dict()))
    loaded = load_config(tmp_path / "config.yaml")
    assert loaded == saved and "ei_ratio" in saved.to_dict()
    assert loaded.model_kwargs() == {
        "dropout": 0.0,
        "tau": 3.0,
        "surrogate": "sigmoid",
        "alpha": 4.0,
    }


# SPEC section 6: file -> (model, dataset, T, batch, lr, warm-up epochs, warm-up start)
PAPER_ROWS = {
    "cifar10_resnet18": ("ei_resnet18", "cifar10", 4, 128, 1e-3, 30, 1e-7),
    "cifar10_vgg8": ("ei_vgg8", "cifar10", 4, 128, 2e-3, 10, 1e-7),
    "cifar10_vgg11": ("ei_vgg11", "cifar10", 4, 128, 2e-3, 10, 1e-7),
    "cifar10_vgg16": ("ei_vgg16", "cifar10", 4, 128, 1e-3, 30, 1e-7),
    "cifar10_vgg19": ("ei_vgg19", "cifar10", 4, 128, 1e-3, 30, 1e-7),
    "cifar100_vgg16": ("ei_vgg16", "cifar100", 4, 128, 1e-3, 30, 1e-7),
    "cifar100_vgg19": ("ei_vgg19", "cifar100", 4, 128, 1e-3, 30, 1e-7),
    "tinyimagenet_resnet18": ("ei_resnet18", "tinyimagenet", 4, 128, 3e-3, 10, 1e-3),
    "dvs128_gesture_vgg8": ("ei_vgg8", "dvs128_gesture", 16, 32, 1e-3, 10, 1e-7),
    "cifar10_dvs_vgg8": ("ei_vgg8", "cifar10_dvs", 10, 32, 1e-3, 10, 1e-7),
    "cifar10_dvs_vgg11": ("ei_vgg11", "cifar10_dvs", 10, 32, 1e-3, 10, 1e-7),
    "cifar10_bn_resnet18": ("bn_resnet18", "cifar10", 4, 128, 0.1, 0, None),
    "cifar10_bn_vgg16": ("bn_vgg16", "cifar10", 4, 128, 0.1, 0, None),
}


@pytest.mark.parametrize("name", sorted(PAPER_ROWS))
def test_paper_configs_hold_the_papers_hyper_parameters(name):
    cfg = load_config(CONFIG_DIR / f"{name}.yaml")
    model, dataset, T, batch, lr, warmup, start = PAPER_ROWS[name]
    assert (cfg.model, cfg.dataset, cfg.T, cfg.batch_size, cfg.warmup_epochs) == (
        model,
        dataset,
        T,
        batch,
        warmup,
    )
    assert (
        cfg.lr == pytest.approx(lr)
        and cfg.epochs == 300
        and cfg.optimizer == "sgd"
        and cfg.momentum == 0.9
    )
    if start is not None:
        assert cfg.warmup_start_lr == pytest.approx(start)
    expected_decay = 1e-4 if model.startswith("bn_") else 5e-4
    assert cfg.weight_decay == pytest.approx(expected_decay) and cfg.dropout == 0.0


def test_every_shipped_config_is_valid_and_covered():
    names = {p.stem for p in CONFIG_DIR.glob("*.yaml")}
    assert (
        set(PAPER_ROWS) | {"digits"} <= names
    )  # every paper row is shipped; baselines/ablations may add more
    for name in names:
        data = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
        load_config(CONFIG_DIR / f"{name}.yaml")
        assert {"model", "dataset", "T", "epochs", "batch_size", "optimizer", "lr"} <= set(data)
