"""Checkpoints of the paper's reference implementation (SPEC section 8), in both directions.

The reference keeps each E-I layer as two modules: ``<conv>`` with ``conv_ee/conv_ie`` (or a
linear ``weight_ee/weight_ie``) and the next ``<norm>`` with ``weight_ei, gain_i, gain_e, bias``
(shaped ``[n,1,1]`` after a conv, ``[1,n]`` after the readout linear). VGG modules are indexed in
one flat sequential that starts with a time-dim module (two for static input) and counts 6
modules per conv unit, 1 per pooling and 1 for the flatten; which start a VGG has is its
``event_frames`` buffer.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from ..errors import UserError
from ..init import ei_layers
from ..models import VGG, ResNet, create_model
from ..models.resnet import RESNET_PLANS
from ..models.vgg import POOL, VGG_PLANS
from ..nn.ei import EILayer
from .hub import resolve_hub

_VGG_MODULES_PER_UNIT = 6  # conv, norm, split-time, LIF, dropout, merge-time


class ReferenceFormatError(UserError, ValueError):
    """A reference checkpoint that does not match any supported architecture."""


def _layer_keys(layer: EILayer, conv: str, norm: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Our parameter name -> (reference key, reference shape) for one E-I layer."""
    if layer.readout or not hasattr(layer, "kernel_size"):
        ee, ie = f"{conv}.weight_ee", f"{conv}.weight_ie"
        vec = lambda n: (1, n)
    else:
        ee, ie = f"{conv}.conv_ee.weight", f"{conv}.conv_ie.weight"
        vec = lambda n: (n, 1, 1)
    n_e, n_i = layer.n_excitatory, layer.n_inhibitory
    return {
        "w_ee": (ee, tuple(layer.w_ee.shape)),
        "w_ie": (ie, tuple(layer.w_ie.shape)),
        "w_ei": (f"{norm}.weight_ei", (n_e, n_i)),
        "g_i": (f"{norm}.gain_i", vec(n_i)),
        "g_e": (f"{norm}.gain_e", vec(n_e)),
        "b_e": (f"{norm}.bias", vec(n_e)),
    }


def _vgg_prefixes(model: VGG) -> list[tuple[str, str]]:
    """``(conv, norm)`` reference prefixes of each E-I layer; event frames need one module fewer."""
    index = 1 if bool(model.event_frames) else 2
    prefixes = []
    for item in model.plan:
        if item == POOL:
            index += 1
        else:
            prefixes.append((f"layers.{index}", f"layers.{index + 1}"))
            index += _VGG_MODULES_PER_UNIT
    index += 1  # flatten
    prefixes.append((f"layers.{index}", f"layers.{index + 1}"))
    return prefixes


def _resnet_prefixes(model: ResNet) -> list[tuple[str, str]]:
    prefixes = [("conv1", "norm1")]
    for k, stage in enumerate(model.body, start=1):
        for j, block in enumerate(stage):
            for m in range(1, len(block.units) + 1):
                prefixes.append((f"layer{k}.{j}.conv{m}", f"layer{k}.{j}.norm{m}"))
            if not isinstance(block.shortcut, nn.Identity):
                prefixes.append((f"layer{k}.{j}.downsample.0", f"layer{k}.{j}.downsample.1"))
    prefixes.append(("fc", "final_ei_norm"))
    return prefixes


def _key_map(model: nn.Module) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Our state-dict key -> (reference key, reference shape) for every E-I parameter."""
    if isinstance(model, VGG):
        prefixes = _vgg_prefixes(model)
    elif isinstance(model, ResNet):
        prefixes = _resnet_prefixes(model)
    else:
        raise ReferenceFormatError(
            f"the reference has no layout for {type(model).__name__}; only E-I VGG and ResNet"
        )
    layers = list(ei_layers(model))
    if len(layers) != len(prefixes):
        raise ReferenceFormatError(
            f"expected {len(prefixes)} E-I layers for the reference layout, found {len(layers)}"
        )
    mapping = {}
    for (name, layer), (conv, norm) in zip(layers, prefixes):
        for param, target in _layer_keys(layer, conv, norm).items():
            mapping[f"{name}.{param}"] = target
    return mapping


def to_reference(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """The model's E-I parameters under the reference's key names and shapes (a pure re-keying).

    A VGG whose ``event_frames`` buffer is set (built for event frames, E-I-initialized from
    frames, or loaded from an event-frame reference) gets the reference's event-frame layout.
    """
    ours = model.state_dict()
    return OrderedDict(
        (ref, ours[key].detach().reshape(shape)) for key, (ref, shape) in _key_map(model).items()
    )


# ---------------------------------------------------------------- reading a reference checkpoint


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a ``.safetensors`` file, read one by one through ``safe_open``.

    ``safe_open`` memory-maps the file and validates the whole header first (length within the
    file, JSON, known dtypes, each tensor's offsets inside the data and ``end - begin`` equal to
    its element count times its dtype size), so memory holds at most the tensors themselves,
    never an extra copy of the file. A damaged file raises :class:`ReferenceFormatError`.
    """
    try:
        with safe_open(str(path), framework="pt") as file:
            return {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except SafetensorError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ReferenceFormatError(f"{path}: not a readable safetensors file ({reason})") from None


def _read_source(source: Any) -> tuple[Mapping[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, config)`` from a state dict, a training checkpoint, or a path to either / a
    folder."""
    if isinstance(source, (str, Path)):
        path = resolve_hub(source)
        if path.is_dir():
            weights, config_file = path / "model.safetensors", path / "config.json"
            if not weights.is_file():
                raise FileNotFoundError(
                    f"{path}: expected a folder with model.safetensors and config.json"
                )
            config = json.loads(config_file.read_text()) if config_file.is_file() else {}
            return _read_safetensors(weights), config
        if not path.is_file():
            raise FileNotFoundError(f"reference checkpoint not found: {path}")
        if path.suffix == ".safetensors":
            return _read_safetensors(path), {}
        source = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(source, Mapping):
        raise ReferenceFormatError(
            f"cannot read a reference checkpoint from a {type(source).__name__}"
        )
    if "model_state_dict" in source:
        return source["model_state_dict"], dict(source.get("config") or {})
    return source, {}


def _infer_vgg(state: Mapping[str, torch.Tensor]) -> tuple[int, bool]:
    """VGG depth (from the conv widths) and whether it was built for event frames."""
    convs = sorted(
        (int(m.group(1)), state[key].shape[0])
        for key in state
        if (m := re.fullmatch(r"layers\.(\d+)\.conv_ee\.weight", key))
    )
    if not convs:
        raise ReferenceFormatError("no 'layers.<i>.conv_ee.weight' keys: not a reference E-I VGG")
    widths = tuple(w for _, w in convs)
    for depth, plan in VGG_PLANS.items():
        if tuple(c for c in plan if c != POOL) == widths:
            return depth, convs[0][0] == 1
    raise ReferenceFormatError(f"conv widths {widths} match no VGG of {sorted(VGG_PLANS)}")


def _infer_resnet(state: Mapping[str, torch.Tensor]) -> int:
    """ResNet depth from the number of blocks per stage and the block style."""
    blocks = {
        tuple(map(int, m.groups())) for key in state if (m := re.match(r"layer(\d)\.(\d+)\.", key))
    }
    counts = tuple(sum(1 for k, _ in blocks if k == stage) for stage in (1, 2, 3, 4))
    style = "bottleneck" if any(".conv3." in key for key in state) else "basic"
    for depth, plan in RESNET_PLANS.items():
        if plan == (style, counts):
            return depth
    raise ReferenceFormatError(
        f"{style} blocks per stage {counts} match no ResNet of {sorted(RESNET_PLANS)}"
    )


def _build(
    state: Mapping[str, torch.Tensor], config: dict[str, Any], dtype: torch.dtype
) -> nn.Module:
    """An eisnn model of the architecture the reference state dict describes, its parameters in
    ``dtype``."""
    if config.get("light_classifier") is False:
        raise ReferenceFormatError("only the light classifier (one E-I readout layer) is supported")
    options = {
        "ei_ratio": config.get("ei_ratio", 4),
        "tau": float((config.get("neuron") or {}).get("tau", 2.0)),
        "dropout": float(config.get("dropout", 0.0) or 0.0),
    }
    T = int(config.get("T", 4))
    if any(k.startswith("layers.") for k in state):
        depth, options["event_frames"] = _infer_vgg(state)
        first = next(
            k
            for k in sorted(state, key=lambda k: int(k.split(".")[1]))
            if k.endswith("conv_ee.weight")
        )
        readout = max(
            (k for k in state if k.endswith(".weight_ee")), key=lambda k: int(k.split(".")[1])
        )
        last_width = [c for c in VGG_PLANS[depth] if c != POOL][-1]
        spatial = int(round((state[readout].shape[1] / last_width) ** 0.5))
        options["image_size"] = max(1, spatial) * 2 ** VGG_PLANS[depth].count(POOL)
        name = f"ei_vgg{depth}"
    elif "conv1.conv_ee.weight" in state:
        depth = _infer_resnet(state)
        first, readout = "conv1.conv_ee.weight", "fc.weight_ee"
        name = f"ei_resnet{depth}"
    else:
        raise ReferenceFormatError(
            "unrecognized reference checkpoint: neither 'layers.<i>.*' (VGG) "
            "nor 'conv1.*' (ResNet) keys"
        )
    with _default_dtype(dtype):
        return create_model(name, state[readout].shape[0], state[first].shape[1], T, **options)


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Build modules with ``dtype`` as torch's default floating-point type, then restore it."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def load_reference(
    source: Any, config: dict[str, Any] | None = None, *, dtype: torch.dtype | None = None
) -> nn.Module:
    """Build the eisnn model matching a reference checkpoint, load its weights, mark it initialized.

    ``source``: a reference state dict, a training checkpoint dict (``model_state_dict`` +
    ``config``), a path to a ``.pth``/``.pt``/``.safetensors`` file or to a folder holding
    ``model.safetensors`` and ``config.json``, or the name ``hf://<org>/<name>[@<revision>]`` of
    such a folder published on the Hugging Face Hub (:mod:`eisnn.compat.hub`). ``config``
    overrides the stored config (``T``, ``ei_ratio``, ``neuron.tau``, ``dropout``); architecture
    and sizes are read from the weights.
    ``dtype``: the floating-point type of the parameters (default: torch's default dtype); the
    weights are converted to it. The reference's own recordings are float64 (see the parity tests).
    """
    state, stored = _read_source(source)
    merged = {**stored, **(config or {})}
    model = _build(state, merged, dtype or torch.get_default_dtype())
    mapping = _key_map(model)
    expected = {ref for ref, _ in mapping.values()}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ReferenceFormatError(
            f"reference keys do not match {type(model).__name__}: "
            f"missing {missing}, unexpected {unexpected}"
        )
    ours = model.state_dict()
    for key, (ref, _) in mapping.items():
        if state[ref].numel() != ours[key].numel():
            raise ReferenceFormatError(
                f"{ref}: shape {tuple(state[ref].shape)} "
                f"does not fit {key} {tuple(ours[key].shape)}"
            )
        ours[key] = state[ref].reshape(ours[key].shape).to(ours[key].dtype)
    model.load_state_dict(ours)
    for _, layer in ei_layers(model):
        layer._set_initialized(True)
    return model
