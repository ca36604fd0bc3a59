"""The training configuration: one typed schema, YAML loading, ``--set`` overrides, validation.

Every key is one field of :class:`TrainConfig`; its type, default and allowed values live on
that one line (``_key(default, ...)``), so adding a key is a one-line change. A config is
validated completely before anything runs; the first problem raises :class:`ConfigError`
with one line naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from eisnn.dale import POLICIES as DALE_POLICIES
from eisnn.data.folders import DEFAULT_VAL_FRACTION
from eisnn.errors import UserError
from eisnn.functional import STABILIZATIONS, SURROGATES
from eisnn.losses import LOSSES
from eisnn.nn import INHIBITORY_KINDS
from eisnn.nn.ei_options import INIT_MODES

#: ``compile`` values: eager, or an inductor mode of ``torch.compile``
COMPILE_MODES: tuple[str, ...] = ("off", "default", "reduce-overhead", "max-autotune")


class ConfigError(UserError, ValueError):
    """A bad configuration: unknown key, wrong type or impossible value (one line)."""


#: Where a run's epoch metrics can go (``loggers``).
LOGGERS = ("tensorboard", "csv", "wandb")


def _model_names() -> list[str]:
    from eisnn.models import list_models

    return list(list_models())


def _model_options(model: str) -> frozenset[str]:
    from eisnn.models import model_options

    return model_options(model)


def _dataset_names() -> list[str]:
    from eisnn.data import DATASET_NAMES

    return list(DATASET_NAMES)


def _dataset_options(dataset: str) -> frozenset[str]:
    from eisnn.data.registry import dataset_options

    return dataset_options(dataset)


def _key(
    default: Any,
    *,
    choices: Iterable[str] | Callable[[], Iterable[str]] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    model_kwarg: bool = False,
    dataset_kwarg: bool = False,
    help: str = "",
) -> Any:
    """One config key: its default, allowed values, and whether it is passed to ``create_model``
    (``model_kwarg``) or to ``create_dataset`` (``dataset_kwarg``)."""
    meta = {
        "choices": choices,
        "ge": ge,
        "gt": gt,
        "lt": lt,
        "le": le,
        "model_kwarg": model_kwarg,
        "dataset_kwarg": dataset_kwarg,
        "help": help,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything one run needs. Defaults follow the paper's E-I setting (SPEC section 6)."""

    # what to train, on what
    model: str = _key("ei_vgg8", choices=_model_names, help="model registry name")
    dataset: str = _key("digits", choices=_dataset_names, help="dataset name")
    data_dir: str = _key("data", help="root folder of the datasets")
    out_dir: str = _key("runs", help="folder that receives the run directory")
    name: str | None = _key(None, help="run directory name (default: <model>-<dataset>-<time>)")
    image_size: int | None = _key(None, ge=1, help="input size (default: the dataset's)")
    augment: bool = _key(True, help="training augmentation of the dataset")
    split_by: str | None = _key(
        None,
        choices=("number", "time"),
        dataset_kwarg=True,
        help="event frames: equal event counts or equal times",
    )
    sensor_size: list[int] | None = _key(
        None,
        ge=1,
        dataset_kwarg=True,
        help="eventfolder: the sensor's [H, W] (null: max y, x + 1 of the data)",
    )
    # folder datasets (imagefolder, eventfolder; passed to create_dataset)
    val_fraction: float = _key(
        DEFAULT_VAL_FRACTION,
        gt=0.0,
        lt=1.0,
        dataset_kwarg=True,
        help="held-out share of each class (no val/)",
    )
    split_seed: int = _key(0, ge=0, dataset_kwarg=True, help="seed of the held-out split")
    crop_scale: list[float] | None = _key(
        None, gt=0.0, le=1.0, dataset_kwarg=True, help="random resized crop area (null: 0.08, 1)"
    )
    eval_crop: float = _key(
        0.875, gt=0.0, le=1.0, dataset_kwarg=True, help="center crop / resized shorter side"
    )
    color_jitter: list[float] | None = _key(
        None, ge=0.0, dataset_kwarg=True, help="brightness, contrast, saturation, hue (null: off)"
    )
    mean: list[float] | None = _key(
        None, dataset_kwarg=True, help="per-channel mean to subtract (null: raw [0, 1] pixels)"
    )
    std: list[float] | None = _key(None, gt=0.0, dataset_kwarg=True, help="per-channel std")
    # time and optimisation
    T: int = _key(4, ge=1, help="number of time steps")
    epochs: int = _key(300, ge=1)
    batch_size: int = _key(128, ge=1)
    optimizer: str = _key("sgd", choices=("sgd", "adamw"))
    lr: float = _key(1e-3, ge=0.0, help="peak learning rate")
    warmup_epochs: float = _key(10.0, ge=0.0, help="linear warm-up length, then cosine decay")
    warmup_start_lr: float = _key(1e-7, ge=0.0, help="learning rate at the first iteration")
    min_lr: float = _key(0.0, ge=0.0, help="learning rate at the end of the cosine decay")
    momentum: float = _key(0.9, ge=0.0, lt=1.0)
    weight_decay: float = _key(5e-4, ge=0.0, help="L2 decay (SGD) / decoupled decay (AdamW)")
    grad_clip: float | None = _key(None, gt=0.0, help="max global gradient norm (none: off)")
    nonfinite: str = _key("stop", choices=("stop", "skip"), help="on a NaN/inf loss or gradient")
    amp: str = _key(
        "none",
        choices=("none", "bf16"),
        help="bf16 autocast, CUDA or CPU (E-I nodes and LIF membranes stay float32)",
    )
    compile: str = _key(
        "off",
        choices=COMPILE_MODES,
        help="torch.compile the trained model with this inductor mode (off: eager)",
    )
    channels_last: bool = _key(False, help="channels-last memory format for model and images")
    seed: int = _key(0, ge=0)
    loss: str = _key(
        "cross_entropy",
        choices=tuple(LOSSES),
        help="training loss on the model output (mse_rates: BackEISNN's MSE on firing rates)",
    )
    # model options (passed to create_model)
    dropout: float = _key(0.0, ge=0.0, lt=1.0, model_kwarg=True)
    width: float | None = _key(
        None, gt=0.0, model_kwarg=True, help="channel multiplier of VGG/ResNet (null: 1)"
    )
    ei_ratio: float = _key(
        4.0,
        ge=1,
        model_kwarg=True,
        help="excitatory / inhibitory units: n_I = max(1, floor(n_E / ratio))",
    )
    n_inhibitory: int | None = _key(
        None,
        ge=1,
        model_kwarg=True,
        help="I units per hidden E-I layer, given directly (null: from ei_ratio)",
    )
    inhibitory: str = _key(
        "relu",
        choices=INHIBITORY_KINDS,
        model_kwarg=True,
        help="I units: the paper's ReLU, or spiking LIF",
    )
    tau_i: float = _key(
        2.0, ge=1.0, model_kwarg=True, help="spiking I units: membrane time constant"
    )
    v_threshold_i: float = _key(1.0, gt=0.0, model_kwarg=True, help="spiking I units: threshold")
    surrogate_i: str = _key(
        "sigmoid", choices=tuple(SURROGATES), model_kwarg=True, help="spiking I units: surrogate"
    )
    alpha_i: float = _key(
        4.0, gt=0.0, model_kwarg=True, help="spiking I units: surrogate sharpness"
    )
    dale: str = _key(
        "clamp",
        choices=DALE_POLICIES,
        model_kwarg=True,
        help="Dale's law: clamp after each step, or softplus reparametrization",
    )
    tau: float = _key(2.0, ge=1.0, model_kwarg=True, help="LIF membrane time constant")
    surrogate: str = _key("sigmoid", choices=tuple(SURROGATES), model_kwarg=True)
    alpha: float = _key(4.0, gt=0.0, model_kwarg=True, help="surrogate sharpness")
    stabilization: str = _key("adaptive", choices=STABILIZATIONS, model_kwarg=True)
    epsilon: float = _key(1e-8, gt=0.0, model_kwarg=True, help="for stabilization: epsilon")
    ste: bool = _key(True, model_kwarg=True, help="straight-through stabilization gradient")
    scale_w_ei_grad: bool = _key(True, model_kwarg=True, help="divide W_EI's gradient by fan-in")
    init: str = _key("ei", choices=INIT_MODES, model_kwarg=True)
    hidden: list[int] | None = _key(
        None, ge=1, model_kwarg=True, help="MLP hidden layer sizes (null: 256, 256)"
    )
    # machinery
    device: str = _key("auto", choices=("auto", "cpu", "cuda"))
    loader: str = _key(
        "auto",
        choices=("auto", "resident", "dataloader"),
        help="resident: whole split on the device, batched augmentation (auto: when possible)",
    )
    num_workers: int = _key(0, ge=0, help="DataLoader worker processes")
    persistent_workers: bool = _key(
        False, help="keep DataLoader workers between epochs (num_workers > 0)"
    )
    prefetch_factor: int | None = _key(
        None, ge=1, help="batches each worker loads ahead (null: torch's 2)"
    )
    cpu_threads: int | None = _key(None, ge=1, help="torch CPU threads (null: torch's default)")
    eval_every: int = _key(1, ge=1, help="evaluate on the test set every N epochs (and the last)")
    progress: bool = _key(True, help="show a progress bar per epoch")
    loggers: list[str] = _key(
        ["tensorboard", "csv"],
        choices=LOGGERS,
        help="where epoch metrics go: tensorboard/, metrics.csv, Weights & Biases (wandb)",
    )
    wandb_project: str = _key("eisnn", help="loggers with wandb: the W&B project")
    histograms: bool = _key(True, help="TensorBoard firing-rate and weight histograms")
    plots: bool = _key(
        True, help="redraw the PNG plots every epoch (`eisnn plot RUN_DIR` draws them later)"
    )
    diagnostics: bool = _key(
        False, help="record per-layer E/I statistics and gradient norms (eisnn.diagnostics)"
    )
    diagnostics_every: int = _key(
        1, ge=1, help="diagnostics on the test evaluation every N epochs (and the last)"
    )
    histogram_epochs: list[int] | None = _key(
        None,
        ge=1,
        help="epochs whose weights and currents are kept for histograms (null: first and last)",
    )
    limit_batches: int | None = _key(
        None, ge=1, help="at most N batches per epoch, train and test (smoke runs)"
    )
    batch_scope: str = _key(
        "global",
        choices=("global", "rank"),
        help="under torchrun: batch_size is the global "
        "batch, split over the processes (global), or each process's batch (rank)",
    )
    dist_timeout_s: float = _key(
        600.0,
        gt=0.0,
        help="under torchrun: seconds a process waits for the others before it stops with an error",
    )

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_kwargs(self) -> dict[str, Any]:
        """The keys marked ``model_kwarg`` that the model uses and that are not null, passed on to
        ``create_model``."""
        used = _model_options(self.model)
        return {
            f.name: getattr(self, f.name)
            for f in fields()
            if f.metadata["model_kwarg"] and f.name in used and getattr(self, f.name) is not None
        }

    def dataset_kwargs(self) -> dict[str, Any]:
        """The keys marked ``dataset_kwarg`` that the dataset takes and that are not null, passed
        on to ``create_dataset``."""
        used = _dataset_options(self.dataset)
        return {
            f.name: getattr(self, f.name)
            for f in fields()
            if f.metadata["dataset_kwarg"] and f.name in used and getattr(self, f.name) is not None
        }

    def replace(self, **changes: Any) -> TrainConfig:
        return from_dict({**self.to_dict(), **changes})


def fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(TrainConfig)


_HINTS = typing.get_type_hints(TrainConfig)


def _allowed_types(name: str) -> tuple[type, ...]:
    hint = _HINTS[name]
    if typing.get_origin(hint) in (Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _coerce(name: str, value: Any) -> Any:
    """Check ``value`` against the key's type; ints are accepted for floats, as are
    numeric strings (YAML 1.1 reads ``1e-3`` as a string)."""
    allowed = _allowed_types(name)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and not isinstance(value, bool):
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    for kind in allowed:
        if kind is not type(None) and type(value) is kind:
            return value
        if typing.get_origin(kind) is list and isinstance(value, list):
            (item,) = typing.get_args(kind)
            if all(type(v) is item for v in value):
                return value
            if item is float and all(type(v) in (int, float) for v in value):
                return [float(v) for v in value]
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise ConfigError(f"{name}: expected {names}, got {value!r} ({type(value).__name__})")


def _check_range(f: dataclasses.Field, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _check_range(f, item)
        return
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{f.name}: must be a finite number, got {value!r}")
    m = f.metadata
    for bound, ok, word in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        if m[bound] is not None and not ok(value, m[bound]):
            raise ConfigError(f"{f.name}: must be {word} {m[bound]:g}, got {value!r}")


def _check_choice(f: dataclasses.Field, value: Any) -> None:
    choices = f.metadata["choices"]
    if choices is None or value is None:
        return
    allowed = list(choices() if callable(choices) else choices)
    for item in value if isinstance(value, list) else [value]:
        if item not in allowed:
            raise ConfigError(f"{f.name}: {item!r} is not one of {', '.join(allowed)}")


def _check_model_options(cfg: TrainConfig) -> None:
    """A model option the chosen model does not use must keep its default (else it would be
    silently ignored)."""
    used = _model_options(cfg.model)
    options = [f for f in fields() if f.metadata["model_kwarg"]]
    for f in options:
        value = getattr(cfg, f.name)
        if f.name not in used and value != f.default:
            own = ", ".join(g.name for g in options if g.name in used)
            raise ConfigError(
                f"{f.name}: model {cfg.model} does not use this option (got {value!r}, "
                f"default {f.default!r}); its options: {own}"
            )


def _check_dataset_options(cfg: TrainConfig) -> None:
    """A dataset option the chosen dataset does not take must keep its default."""
    used = _dataset_options(cfg.dataset)
    for f in fields():
        value = getattr(cfg, f.name)
        if f.metadata["dataset_kwarg"] and f.name not in used and value != f.default:
            raise ConfigError(
                f"{f.name}: dataset {cfg.dataset} does not take this option (got {value!r})"
            )


def validate(cfg: TrainConfig) -> None:
    """Type, range and choice checks of every key, in schema order (first problem raises), then
    that every model or dataset option set away from its default is one the model or dataset
    uses."""
    for f in fields():
        value = _coerce(f.name, getattr(cfg, f.name))
        object.__setattr__(cfg, f.name, value)
        _check_range(f, value)
        _check_choice(f, value)
    _check_model_options(cfg)
    _check_dataset_options(cfg)


def from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Build a validated config; unknown keys are rejected with the list of known ones."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping of key: value, got {type(data).__name__}")
    known = [f.name for f in fields()]
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown key {key!r}; known keys: {', '.join(known)}")
    return TrainConfig(**data)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``T=8`` -> 8, ``grad_clip=null`` -> None)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {key.strip()}: cannot read value {raw!r} ({exc.problem})"
        ) from None
    return key.strip(), value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping stored in a YAML file (an empty file is an empty mapping)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of key: value")
    return data


def load_config(
    path: str | Path | None = None, overrides: Iterable[str] = (), **changes: Any
) -> TrainConfig:
    """YAML file (or the defaults) + ``key=value`` overrides + keyword changes, validated."""
    data = read_yaml(path) if path is not None else {}
    for text in overrides:
        key, value = parse_override(text)
        data[key] = value
    data.update(changes)
    return from_dict(data)


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (keys in schema order)."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def describe() -> str:
    """One line per key: name, type, default, allowed values, help."""
    lines = []
    for f in fields():
        m = f.metadata
        choices = m["choices"]
        allowed = ""
        if choices is not None and not callable(choices):
            allowed = f" [{'|'.join(choices)}]"
        type_name = (
            str(_HINTS[f.name]).replace("typing.", "").replace("<class '", "").replace("'>", "")
        )
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        lines.append(f"{f.name}: {type_name} = {default!r}{allowed}  {m['help']}".rstrip())
    return "\n".join(lines)
