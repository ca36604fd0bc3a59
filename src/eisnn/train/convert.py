"""Models from checkpoints: eisnn checkpoints, and the paper's reference checkpoints.

A reference checkpoint (``.pth`` training checkpoint, ``.safetensors``, or a published folder
with ``model.safetensors`` + ``config.json``) is loaded by :func:`eisnn.compat.load_reference`;
its config (``arch``, ``num_layers``, ``dataset``, ``T``, ``ei_ratio``, ``neuron.tau``,
``dropout``) becomes an eisnn :class:`TrainConfig`, so a converted checkpoint can be evaluated
or fine-tuned like any run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from eisnn.errors import InputNotFoundError
from eisnn.train.checkpoint import is_checkpoint, read_torch_file, save_checkpoint
from eisnn.train.config import ConfigError, TrainConfig, from_dict, parse_override

# reference dataset names, lower-cased with non-alphanumerics removed -> eisnn dataset names
REFERENCE_DATASETS = {
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "tinyimagenet": "tinyimagenet",
    "tinyimagenet200": "tinyimagenet",
    "dvsgesture": "dvs128_gesture",
    "dvs128gesture": "dvs128_gesture",
    "gesture": "dvs128_gesture",
    "cifar10dvs": "cifar10_dvs",
}


def reference_config(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """The config stored with a reference checkpoint ({} when there is none)."""
    if isinstance(source, dict):
        return dict(source.get("config") or {})
    path = Path(source)
    if path.is_dir():
        config_file = path / "config.json"
        return json.loads(config_file.read_text()) if config_file.is_file() else {}
    if path.suffix == ".safetensors":
        return {}
    payload = read_torch_file(path)
    return dict(payload.get("config") or {}) if isinstance(payload, dict) else {}


def config_from_reference(ref: dict[str, Any], overrides: Iterable[str] = ()) -> TrainConfig:
    """An eisnn config for a reference model; ``key=value`` overrides fill what it lacks."""
    data: dict[str, Any] = {}
    if ref.get("arch") and ref.get("num_layers"):
        data["model"] = f"ei_{str(ref['arch']).lower()}{int(ref['num_layers'])}"
    if ref.get("dataset"):
        key = re.sub(r"[^a-z0-9]", "", str(ref["dataset"]).lower())
        if key not in REFERENCE_DATASETS:
            raise ConfigError(
                f"reference dataset {ref['dataset']!r} is not one of "
                f"{', '.join(sorted(REFERENCE_DATASETS))}; pass --set dataset=NAME"
            )
        data["dataset"] = REFERENCE_DATASETS[key]
    for ours, value in (
        ("T", ref.get("T")),
        ("ei_ratio", ref.get("ei_ratio")),
        ("tau", (ref.get("neuron") or {}).get("tau")),
        ("dropout", ref.get("dropout")),
    ):
        if value is not None:
            data[ours] = value
    data.update(parse_override(text) for text in overrides)
    for key in ("model", "dataset"):
        if key not in data:
            raise ConfigError(
                f"the reference checkpoint does not state its {key}; pass --set {key}=NAME"
            )
    return from_dict(data)


def load_model(
    source: str | Path, overrides: Iterable[str] = (), data_dir: str | None = None
) -> tuple[nn.Module, TrainConfig]:
    """``(model, config)`` from an eisnn checkpoint or any reference checkpoint form (a published
    folder also by its ``hf://`` name)."""
    from eisnn.compat import load_reference, resolve_hub
    from eisnn.train.factory import build_model

    path = resolve_hub(source)
    if not path.exists():
        raise InputNotFoundError(f"no checkpoint or reference folder at {path}")
    if path.is_dir() and not (path / "model.safetensors").is_file():
        raise InputNotFoundError(
            f"{path} is a folder without model.safetensors: give a checkpoint "
            "file (RUN_DIR/checkpoints/best.pt) or a published-weights folder"
        )
    payload = read_torch_file(path) if path.is_file() and path.suffix != ".safetensors" else None
    changes = {} if data_dir is None else {"data_dir": data_dir}
    if is_checkpoint(payload):
        data = dict(payload["config"])
        data.update(parse_override(text) for text in overrides)
        cfg = from_dict({**data, **changes})
        model = build_model(cfg)
        model.load_state_dict(payload["model"])
        return model, cfg
    cfg = config_from_reference(
        reference_config(payload if payload is not None else path), overrides
    )
    cfg = cfg.replace(**changes)
    model = load_reference(
        path,
        config={
            "T": cfg.T,
            "ei_ratio": cfg.ei_ratio,
            "dropout": cfg.dropout,
            "neuron": {"tau": cfg.tau},
        },
    )
    return model, cfg


def convert_reference(
    source: str | Path, out: str | Path, overrides: Iterable[str] = ()
) -> TrainConfig:
    """Write an eisnn checkpoint (weights + config) of a reference checkpoint; returns its config.
    The weights are checked to load strictly into the model the config builds."""
    from eisnn.train.factory import build_model

    model, cfg = load_model(source, overrides)
    build_model(cfg).load_state_dict(model.state_dict())
    save_checkpoint(out, model=model, config=cfg.to_dict(), epoch=0, source=str(source))
    return cfg
