"""Training on several processes with ``torchrun``: DistributedDataParallel over NCCL (CUDA) or
gloo (CPU).

``torchrun`` starts one process per device and sets ``RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT``; :func:`connect` reads them. Without them (or with ``WORLD_SIZE=1``) a run is one
plain process and every method of :class:`Ranks` is the identity.

Why ``N`` processes compute what one process computes on the combined batch:

- Data: every rank draws the same permutation (and, for a resident split, the same batched
  augmentation) and takes its contiguous part of each global batch, so the parts in rank order are
  the single-process batch. In training every part has the same size (a last global batch is
  trimmed to a multiple of the world size: at most ``world_size - 1`` samples per epoch are left
  out), so DDP's mean of the per-rank mean gradients is the mean gradient over the global batch.
- E-I Init: rank 0 initializes from the first global batch (every rank's part gathered) and
  broadcasts all parameters and buffers, the ``initialized`` flags with them: no rank ever starts
  from different weights.
- Dale's projection runs after every optimizer step on every rank, and the ``W_EI`` gradient scaling
  is part of the forward pass, before DDP averages the gradients: identical replicas stay identical.
- Metrics: per-step sums and evaluation sums are all-reduced; only rank 0 writes files.
"""

from __future__ import annotations

import os
import pickle
import re
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler

from eisnn.errors import UserError
from eisnn.train.config import ConfigError, TrainConfig

LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_RANK_SEED_KEY = 2  # derive_seed(seed, epoch, 1) seeds the loaders; this keeps rank streams apart

R = TypeVar("R")


class DistributedError(UserError, RuntimeError):
    """A broken multi-process launch: incomplete environment, too few devices (one line)."""


@dataclass(frozen=True)
class Launch:
    rank: int
    world_size: int
    local_rank: int


def launch_from_env() -> Launch | None:
    """The process's place in a ``torchrun`` launch, or None outside one."""
    if not any(name in os.environ for name in LAUNCH_VARIABLES[:3]):
        return None
    missing = [name for name in LAUNCH_VARIABLES if name not in os.environ]
    if missing:
        raise DistributedError(
            f"incomplete distributed launch: {', '.join(missing)} not set (start with torchrun)"
        )
    try:
        launch = Launch(*(int(os.environ[name]) for name in LAUNCH_VARIABLES[:3]))
    except ValueError:
        values = ", ".join(f"{name}={os.environ[name]!r}" for name in LAUNCH_VARIABLES[:3])
        raise DistributedError(
            f"distributed launch variables must be integers, got {values}"
        ) from None
    if not 0 <= launch.rank < launch.world_size:
        raise DistributedError(
            f"RANK {launch.rank} is outside 0..WORLD_SIZE-1 (WORLD_SIZE={launch.world_size})"
        )
    return launch


def rank_prefix() -> str:
    """``"[rank 1/4] "`` inside a multi-process launch (for error lines), else ``""``."""
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    return f"[rank {rank}/{world}] " if rank is not None and world not in (None, "1") else ""


def per_rank_batch_size(cfg: TrainConfig, world_size: int) -> int:
    """Samples per rank per step: ``batch_size / world_size`` (``batch_scope: global``, which must
    divide evenly) or ``batch_size`` itself (``batch_scope: rank``)."""
    if cfg.batch_scope == "rank":
        return cfg.batch_size
    if cfg.batch_size % world_size:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is not divisible by the {world_size} processes; use a "
            f"multiple of {world_size}, or batch_scope=rank to make batch_size per process"
        )
    return cfg.batch_size // world_size


def global_batch_size(cfg: TrainConfig, world_size: int) -> int:
    return per_rank_batch_size(cfg, world_size) * world_size


@dataclass(frozen=True)
class Sharding:
    """Which contiguous part of every global batch a rank takes. ``equal`` (training): every rank
    ``n // world_size`` samples, the remainder left out; otherwise (evaluation) every sample once,
    part sizes differing by at most one (possibly empty)."""

    rank: int
    world_size: int
    equal: bool

    def bounds(self, n: int) -> tuple[int, int]:
        if self.equal:
            size = n // self.world_size
            return self.rank * size, (self.rank + 1) * size
        q, r = divmod(n, self.world_size)
        start = self.rank * q + min(self.rank, r)
        return start, start + q + (self.rank < r)

    def count(self, n_samples: int, batch_size: int) -> int:
        """Non-empty parts this rank receives in one pass over ``n_samples``."""
        full, last = divmod(n_samples, batch_size)
        sizes = [batch_size] * full + ([last] if last else [])
        return sum(1 for n in sizes if self.bounds(n)[1] > self.bounds(n)[0])


class ShardedBatches:
    """A loader of global batches ``(x, y)`` (the same on every rank) reduced to this rank's
    part."""

    def __init__(self, loader: Any, n_samples: int, batch_size: int, sharding: Sharding) -> None:
        self.loader, self.sharding = loader, sharding
        self._len = sharding.count(n_samples, batch_size)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            lo, hi = self.sharding.bounds(len(y))
            if hi > lo:
                yield x[lo:hi], y[lo:hi]


class ShardBatchSampler(Sampler[list[int]]):
    """Index batches for a ``DataLoader``: this rank's part of each global batch of a permutation
    drawn from ``generator`` (the same on every rank), so no rank loads another rank's samples."""

    def __init__(
        self,
        n_samples: int,
        batch_size: int,
        sharding: Sharding,
        shuffle: bool,
        generator: torch.Generator,
    ) -> None:
        self.n, self.batch_size, self.sharding = n_samples, batch_size, sharding
        self.shuffle, self.generator = shuffle, generator

    def __len__(self) -> int:
        return self.sharding.count(self.n, self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = (
            torch.randperm(self.n, generator=self.generator)
            if self.shuffle
            else torch.arange(self.n)
        )
        for start in range(0, self.n, self.batch_size):
            batch = order[start : start + self.batch_size]
            lo, hi = self.sharding.bounds(len(batch))
            if hi > lo:
                yield batch[lo:hi].tolist()


class NullLog:
    """Stands in for a log writer on ranks other than 0: every method call does nothing."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


@dataclass(frozen=True)
class Ranks:
    """This process's rank, the world size and its device; the collective operations the trainer
    needs. With ``world_size == 1`` every operation is the identity (no process group)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @classmethod
    def single(cls, device: torch.device) -> Ranks:
        return cls(0, 1, 0, device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def sharding(self, equal: bool) -> Sharding:
        return Sharding(self.rank, self.world_size, equal)

    @property
    def seed_keys(self) -> tuple[int, ...]:
        """Extra keys of the epoch seed of the global RNGs (dropout, per-sample augmentation, worker
        seeds): none on rank 0, which keeps the single-process stream; the others get their own."""
        return () if self.rank == 0 else (_RANK_SEED_KEY, self.rank)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over all ranks (in place)."""
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` averaged over all ranks (in place)."""
        if self.distributed:
            dist.all_reduce(tensor)
            tensor /= self.world_size
        return tensor

    def on_main(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` on rank 0 only; every rank returns its result, or raises the exception it
        raised (so that no rank waits for a rank that gave up)."""
        if not self.distributed:
            return fn(*args)
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = (True, fn(*args))
            except Exception as exc:
                box[0] = (False, _portable(exc))
                dist.broadcast_object_list(box, src=0)
                raise
        dist.broadcast_object_list(box, src=0)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def gather(self, x: torch.Tensor) -> torch.Tensor | None:
        """The global batch on rank 0 (every rank's equal-sized part in rank order), None
        elsewhere."""
        if not self.distributed:
            return x
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(self.world_size)] if self.is_main else None
        dist.gather(x, parts, dst=0)
        return torch.cat(parts) if parts is not None else None

    def broadcast_state(self, model: nn.Module) -> None:
        """Every parameter and buffer of ``model`` from rank 0, in place; reloading the state dict
        then refreshes what layers derive from it (the E-I layers' host copy of ``initialized``)."""
        if not self.distributed:
            return
        state = model.state_dict()
        for tensor in state.values():
            dist.broadcast(tensor, src=0)
        model.load_state_dict(state)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``DistributedDataParallel(model)`` (BatchNorm synchronized across GPUs), or ``model``
        itself. The graph is static: a readout layer's unused parameters stay without gradient, as
        in one process."""
        if not self.distributed:
            return model
        if self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, static_graph=True)

    def close(self) -> None:
        """Leave the process group once every rank is done with its last collective (a rank that
        tore its connections down while a peer still waited on them would leave that peer
        hanging)."""
        if self.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def unwrap(net: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (or ``net`` itself)."""
    return net.module if isinstance(net, DistributedDataParallel) else net


def connect(cfg: TrainConfig, device: torch.device) -> Ranks:
    """Join the ``torchrun`` launch this process belongs to (NCCL on CUDA, each rank on GPU
    ``LOCAL_RANK``; gloo on the CPU; collectives give up after ``dist_timeout_s``), or a single
    process."""
    launch = launch_from_env()
    if launch is None or launch.world_size == 1:
        return Ranks.single(device)
    per_rank_batch_size(cfg, launch.world_size)  # a bad batch size fails before any process waits
    if device.type == "cuda":
        visible = torch.cuda.device_count()
        if launch.local_rank >= visible:
            raise DistributedError(
                f"LOCAL_RANK {launch.local_rank} but {visible} CUDA device(s) visible: start "
                f"at most {visible} processes per machine (--nproc_per_node)"
            )
        device = torch.device("cuda", launch.local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=cfg.dist_timeout_s)
    )
    return Ranks(launch.rank, launch.world_size, launch.local_rank, device)


# what gloo and NCCL say when a peer process died or did not answer in time (lower case)
_LOST_PEER_SIGNS = (
    "timed out",
    "timeout",
    "connection closed",
    "connection reset",
    "broken pipe",
    "pair closure",
    "remote process",
)
# where torch raises a failed collective: its distributed package, or DDP's forward and backward
_COLLECTIVE_CODE = ("torch/distributed/", "torch/nn/parallel/")


def lost_peer(exc: BaseException) -> str | None:
    """A one-line explanation when ``exc`` is a collective that failed because another process of
    the launch died or stopped answering (within ``dist_timeout_s``): raised by torch's distributed
    code (or a ``DistError``) and saying so. None for any other error, which keeps its
    traceback."""
    if not rank_prefix():  # not in a multi-process launch
        return None
    text = str(exc).strip()
    frames = traceback.extract_tb(exc.__traceback__)
    where = frames[-1].filename.replace("\\", "/") if frames else ""
    in_collective = isinstance(exc, dist.DistError) or any(c in where for c in _COLLECTIVE_CODE)
    if not (in_collective and any(sign in text.lower() for sign in _LOST_PEER_SIGNS)):
        return None
    detail = re.sub(r"^\[[^\]]*\]\s*", "", text.splitlines()[0] if text else type(exc).__name__)
    return (
        f"lost contact with another process, which stopped or did not answer within dist_timeout_s "
        f"({detail.split('. ')[0].rstrip('.')}); stopping"
    )


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling (to reach the other ranks), else a RuntimeError with its
    message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def sharded(
    loader: Iterable, n_samples: int, batch_size: int, ranks: Ranks, equal: bool
) -> Iterable:
    """``loader`` of global batches reduced to this rank's parts (``loader`` itself in one
    process)."""
    return (
        loader
        if not ranks.distributed
        else ShardedBatches(loader, n_samples, batch_size, ranks.sharding(equal))
    )
