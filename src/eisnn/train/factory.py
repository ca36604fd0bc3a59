"""Building a run's pieces from its config: device, model, datasets, loaders, optimizer,
schedule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from eisnn.errors import UserError
from eisnn.train.config import ConfigError, TrainConfig
from eisnn.train.distributed import Ranks, ShardBatchSampler, global_batch_size, sharded
from eisnn.train.schedule import WarmupCosine


class DatasetError(UserError, RuntimeError):
    """Data that cannot be read as the configured dataset (one line naming what is wrong)."""


def prepare_device(cfg: TrainConfig) -> torch.device:
    """The run's device (``auto`` picks CUDA when present); sets torch's
    CPU thread count when ``cpu_threads`` is given (small models run faster on one thread, and
    far faster when other processes share the cores)."""
    if cfg.cpu_threads is not None:
        torch.set_num_threads(cfg.cpu_threads)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' requested but CUDA is not available (use auto or cpu)")
    name = (
        "cuda"
        if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    return torch.device(name)


def derive_seed(seed: int, *keys: int) -> int:
    """A well-mixed 63-bit seed from the run seed and e.g. the epoch."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(2, dtype=np.uint64)[0] >> 1)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) RNGs; no determinism switches are touched."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def dataset_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The options of ``create_dataset`` and ``dataset_info``: ``image_size`` when set, and the
    config's dataset keys that the dataset takes (``TrainConfig.dataset_kwargs``)."""
    sized = {"image_size": cfg.image_size} if cfg.image_size is not None else {}
    return {**sized, **cfg.dataset_kwargs()}


def data_info(cfg: TrainConfig):
    """``dataset_info`` of the config's dataset (read from ``data_dir`` for a user's folder)."""
    from eisnn.data import dataset_info

    try:
        return dataset_info(cfg.dataset, cfg.data_dir, **dataset_kwargs(cfg))
    except ValueError as err:  # a damaged or misplaced file, named by the data module
        raise DatasetError(f"dataset {cfg.dataset} in {cfg.data_dir}: {err}") from None


def image_size(cfg: TrainConfig) -> int:
    return cfg.image_size if cfg.image_size is not None else data_info(cfg).image_size


def build_model(cfg: TrainConfig) -> nn.Module:
    """``create_model`` with the dataset's classes/channels and the config's model options; a VGG
    for an event dataset is marked ``event_frames`` (its reference layout, ``eisnn.compat``)."""
    from eisnn.models import VGG, create_model

    info = data_info(cfg)
    kwargs = {**cfg.model_kwargs(), "image_size": image_size(cfg)}
    try:
        model = create_model(
            cfg.model, num_classes=info.num_classes, in_channels=info.in_channels, T=cfg.T, **kwargs
        )
    except ValueError as err:  # an option the architecture rejects, e.g. too small an image
        raise ConfigError(f"model {cfg.model}: {err}") from None
    if isinstance(model, VGG):
        model.event_frames.fill_(info.is_event)
    _refuse_negative_inputs(cfg, model)
    return model


def _refuse_negative_inputs(cfg: TrainConfig, model: nn.Module) -> None:
    """E-I layers need non-negative inputs (SPEC: pixel intensities in [0, 1]); mean/std
    normalization makes some negative, so it is refused for a model with E-I layers."""
    from eisnn.nn import EILayer

    if cfg.mean is not None and any(isinstance(m, EILayer) for m in model.modules()):
        raise ConfigError(
            f"mean/std: model {cfg.model} has E-I layers, which need non-negative inputs; "
            "normalization makes inputs negative (set mean: null, std: null, or use a bn_ model)"
        )


def build_dataset(cfg: TrainConfig, train: bool) -> Dataset:
    """The train or test split; event datasets are integrated into ``T`` frames."""
    from eisnn.data import create_dataset

    info = data_info(cfg)
    try:
        return create_dataset(
            cfg.dataset,
            cfg.data_dir,
            train=train,
            T=cfg.T if info.is_event else None,
            augment=cfg.augment and train,
            **dataset_kwargs(cfg),
        )
    except ValueError as err:  # a damaged or misplaced file, named by the data module
        raise DatasetError(f"dataset {cfg.dataset} in {cfg.data_dir}: {err}") from None


@dataclass
class Loaders:
    train: Iterable
    test: Iterable
    generator: torch.Generator  # re-seeded at every epoch: shuffling, augmentation, worker seeds


def build_loader(
    cfg: TrainConfig, train: bool, device: torch.device, ranks: Ranks | None = None
) -> tuple[Iterable, torch.Generator]:
    """The split's loader (shuffled for training) and the generator it draws from: a resident loader
    (split held on ``device``, batched augmentation) when the dataset offers its tensors, else a
    ``DataLoader``. In a distributed run each rank gets its part of every global batch (see
    :mod:`eisnn.train.distributed`)."""
    ranks = ranks if ranks is not None else Ranks.single(device)
    dataset, shuffle = build_dataset(cfg, train), train
    batch_size = global_batch_size(cfg, ranks.world_size)
    resident = cfg.loader == "resident" or (cfg.loader == "auto" and cfg.num_workers == 0)
    if resident and hasattr(dataset, "as_tensors"):
        from eisnn.data import ResidentLoader

        generator = torch.Generator(device=device)
        loader = ResidentLoader.from_dataset(
            dataset, batch_size, shuffle=shuffle, device=device, generator=generator
        )
        return sharded(loader, len(dataset), batch_size, ranks, equal=train), generator
    if cfg.loader == "resident":
        raise ConfigError(
            f"loader: 'resident' needs an in-memory dataset; {cfg.dataset} is not one "
            "(use auto or dataloader)"
        )
    generator = torch.Generator()  # the sampler shuffles on the CPU
    pin = device.type == "cuda"
    if getattr(dataset, "per_sample_seeds", False):
        return _seeded_loader(cfg, dataset, shuffle, batch_size, ranks, generator, pin), generator
    if not ranks.distributed:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            num_workers=cfg.num_workers,
            pin_memory=pin,
        ), generator
    sampler = ShardBatchSampler(
        len(dataset), batch_size, ranks.sharding(equal=train), shuffle, generator
    )
    # worker seeds come from the rank's own global RNG (see Ranks.seed_keys), not the shared
    # generator
    return DataLoader(
        dataset, batch_sampler=sampler, num_workers=cfg.num_workers, pin_memory=pin
    ), generator


def _seeded_loader(
    cfg: TrainConfig,
    dataset: Dataset,
    shuffle: bool,
    batch_size: int,
    ranks: Ranks,
    generator: torch.Generator,
    pin: bool,
) -> DataLoader:
    """A streaming dataset's loader: this rank's part of every global batch, each index paired with
    the epoch's draw (``SeededBatchSampler``), so that a sample's augmentation depends on
    ``(seed, epoch, index)`` only, not on the worker count or the rank; workers decode in
    parallel (kept between epochs with ``persistent_workers``)."""
    from eisnn.data.seeded import SeededBatchSampler

    batches = ShardBatchSampler(
        len(dataset), batch_size, ranks.sharding(equal=shuffle), shuffle, generator
    )
    workers = cfg.num_workers
    return DataLoader(
        dataset,
        batch_sampler=SeededBatchSampler(batches, generator),
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=cfg.persistent_workers and workers > 0,
        prefetch_factor=cfg.prefetch_factor if workers > 0 else None,
    )  # worker seeds: torch's global RNG (re-seeded every epoch); ``generator`` is the sampler's


def build_loaders(cfg: TrainConfig, device: torch.device, ranks: Ranks | None = None) -> Loaders:
    train, generator = build_loader(cfg, True, device, ranks)
    test, _ = build_loader(cfg, False, device, ranks)
    return Loaders(train, test, generator)


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum and L2 decay on every parameter (SPEC section 4), or AdamW."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer, iters_per_epoch: int
) -> WarmupCosine:
    total = cfg.epochs * iters_per_epoch
    warmup = min(round(cfg.warmup_epochs * iters_per_epoch), total)
    return WarmupCosine(
        optimizer,
        total_iters=total,
        warmup_iters=warmup,
        warmup_start_lr=cfg.warmup_start_lr,
        min_lr=cfg.min_lr,
    )
