"""The training loop: one epoch after another, a checkpoint at every epoch end, resumable.

Per iteration: forward (bf16 autocast optional, on CUDA or the CPU; ``compile``: through
``torch.compile``, the first step compiling), cross-entropy on the time-averaged logits,
backward, optional gradient clipping, a finiteness check, the optimizer step (Dale projection
as its post-hook for E-I models) and the per-iteration schedule step. The E-I init runs on the
first training batch of a fresh run (a resumed model carries its init state).

Reproducibility: every epoch re-seeds the global RNGs and the loader's shuffling generator from
``(seed, epoch)``, so a run resumed at an epoch boundary is bit-identical on the CPU.

Under ``torchrun`` the same loop runs in every process with DistributedDataParallel; the rules
(shared E-I Init, data parts, reduced metrics, rank 0 writes) live in
:mod:`eisnn.train.distributed`.

Run directory layout (``metrics.csv`` and ``tensorboard/`` as ``loggers`` asks; a resume reads
its history from the checkpoint, not from them)::

    config.yaml  metrics.csv  tensorboard/  checkpoints/{last,best}.pt  plots/*.png

Callbacks (:mod:`eisnn.train.callbacks`) add to the loop without it knowing them: the
diagnostics of ``diagnostics: true`` are one (built by :mod:`eisnn.run`; they add
``diagnostics/histograms_epoch<N>.npz`` and their columns and plots).
"""

from __future__ import annotations

import contextlib
import itertools
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from eisnn import dale
from eisnn.errors import UserError
from eisnn.init import NarrowInhibitionWarning, ei_init, is_initialized
from eisnn.losses import get_loss
from eisnn.train.callbacks import Callback, CallbackFactory, check_config_keys, no_callbacks
from eisnn.train.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from eisnn.train.config import ConfigError, TrainConfig, from_dict, save_config
from eisnn.train.distributed import NullLog, Ranks, connect, unwrap
from eisnn.train.evaluate import EvalResult, autocast, evaluate, topk_correct
from eisnn.train.factory import (
    build_loaders,
    build_model,
    build_optimizer,
    build_scheduler,
    derive_seed,
    prepare_device,
    seed_everything,
)
from eisnn.train.metrics import TensorBoardLog, write_metrics_csv
from eisnn.train.monitor import FiringRateMonitor
from eisnn.train.plots import RATE_PREFIX, plot_run


class NonFiniteError(UserError, RuntimeError):
    """A NaN/inf loss or gradient stopped the run (message names epoch, step and checkpoint)."""


class RunExistsError(UserError, FileExistsError):
    """A named run directory that already holds a run (resume it or choose another name)."""


@dataclass
class RunResult:
    run_dir: Path
    epochs_done: int
    history: list[dict[str, Any]]
    best_top1: float | None
    wall_s: float

    @property
    def last_eval(self) -> dict[str, Any] | None:
        rows = [r for r in self.history if r.get("test_top1") is not None]
        return rows[-1] if rows else None


def new_run_dir(cfg: TrainConfig) -> Path:
    """``out_dir/name``; the default name ``<model>-<dataset>-<time>`` gets a suffix if taken.
    An explicitly named directory that already holds a checkpoint is refused (resume it instead)."""
    base = Path(cfg.out_dir)
    if cfg.name is not None:
        run_dir = base / cfg.name
        if (run_dir / "checkpoints" / "last.pt").exists():
            raise RunExistsError(
                f"{run_dir} already holds a run; continue it with "
                f"`eisnn train --resume {run_dir}` or choose another name"
            )
        return run_dir
    stem = f"{cfg.model}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    for i in itertools.count():
        run_dir = base / (stem if i == 0 else f"{stem}-{i}")
        if not run_dir.exists():
            return run_dir
    raise AssertionError("unreachable")


class Trainer:
    """Owns the model, data, optimizer, schedule and run directory of one run."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        checkpoint: dict[str, Any] | None = None,
        echo: Callable[[str], None] = print,
        ranks: Ranks | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        check_config_keys(cfg, callbacks)
        self.cfg = cfg
        self.callbacks = list(callbacks)
        self.run_dir = Path(run_dir)
        self.ranks = ranks if ranks is not None else Ranks.single(prepare_device(cfg))
        self.echo = echo if self.ranks.is_main else _silent
        self.device = self.ranks.device
        seed_everything(cfg.seed)
        model = build_model(cfg).to(self.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        wrapped = self.ranks.wrap(model)  # DDP when distributed
        self.model = unwrap(wrapped)  # the module itself: checkpoints, E-I Init, evaluation
        self.net = compile_model(wrapped, cfg.compile)  # the model as trained
        self._compile_pending = cfg.compile != "off"  # the first step compiles
        self.loaders = build_loaders(cfg, self.device, self.ranks)
        self.iters_per_epoch = self._batches(len(self.loaders.train))
        self.loss_fn = get_loss(cfg.loss)
        self.optimizer = build_optimizer(cfg, self.model)
        dale.attach(self.optimizer, self.model)
        self.scheduler = build_scheduler(cfg, self.optimizer, self.iters_per_epoch)
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimizer steps
        self.skipped = 0  # non-finite steps skipped (nonfinite: skip)
        self.history: list[dict[str, Any]] = []
        self.best_top1: float | None = None
        if checkpoint is not None:
            self._restore(checkpoint)
        self.ckpt_dir = self.run_dir / "checkpoints"
        if self.ranks.is_main:  # only rank 0 writes
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.yaml")
        self.tb = (
            TensorBoardLog(
                self.run_dir / "tensorboard",
                purge_step=self.epoch + 1 if checkpoint is not None else None,
            )
            if self.ranks.is_main and "tensorboard" in cfg.loggers
            else NullLog()
        )
        for callback in self.callbacks:
            callback.on_setup(self)
        if self.history:
            self._write_tables()

    # ----------------------------------------------------------------- state
    def _batches(self, n: int) -> int:
        return n if self.cfg.limit_batches is None else min(n, self.cfg.limit_batches)

    def state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "skipped": self.skipped,
            "history": self.history,
            "best_top1": self.best_top1,
            "world_size": self.ranks.world_size,
        }

    def _restore(self, ckpt: dict[str, Any]) -> None:
        saved_world = ckpt.get("world_size", 1)
        if self.cfg.batch_scope == "rank" and saved_world != self.ranks.world_size:
            raise ConfigError(
                f"this run trained on {saved_world} process(es) with batch_scope=rank "
                f"(batch_size per process); resume it on {saved_world}, "
                f"not {self.ranks.world_size}"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch, self.step, self.skipped = ckpt["epoch"], ckpt["step"], ckpt["skipped"]
        self.history = list(ckpt["history"])
        self.best_top1 = ckpt["best_top1"]
        set_rng_state(ckpt["rng"])

    def save(self, path: Path) -> None:
        if not self.ranks.is_main:
            return
        save_checkpoint(
            path, model=self.model, config=self.cfg.to_dict(), epoch=self.epoch, **self.state()
        )

    # ------------------------------------------------------------------ loop
    def fit(self, max_epochs: int | None = None) -> RunResult:
        """Train until ``cfg.epochs`` (or ``max_epochs`` more epochs in this call)."""
        start = time.perf_counter()
        stop_at = (
            self.cfg.epochs if max_epochs is None else min(self.cfg.epochs, self.epoch + max_epochs)
        )
        try:
            while self.epoch < stop_at:
                self._run_epoch(self.epoch)
        finally:
            self.tb.flush()
        return RunResult(
            self.run_dir, self.epoch, self.history, self.best_top1, time.perf_counter() - start
        )

    def close(self) -> None:
        self.tb.close()
        for callback in self.callbacks:
            callback.on_close(self)
        self.ranks.close()

    def _run_epoch(self, epoch: int) -> None:
        cfg = self.cfg
        seed_everything(derive_seed(cfg.seed, epoch, *self.ranks.seed_keys))
        self.loaders.generator.manual_seed(derive_seed(cfg.seed, epoch, 1))
        t0 = time.perf_counter()
        train = self._train_epoch(epoch)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": train["loss"],
            "train_top1": train["top1"],
            "train_rate": train["rate"],
            "skipped_steps": self.skipped,
        }
        for callback in self.callbacks:
            callback.on_train_epoch_end(self, epoch + 1, row)
        result: EvalResult | None = None
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            with contextlib.ExitStack() as stack:
                for callback in self.callbacks:
                    stack.enter_context(callback.evaluating(self, epoch + 1, row))
                result = evaluate(
                    self.model,
                    self._limited(self.loaders.test),
                    self.device,
                    cfg.amp,
                    per_neuron=cfg.histograms,
                    loss=cfg.loss,
                    sum_over_ranks=self.ranks.sum if self.ranks.distributed else None,
                )
                row.update(test_loss=result.loss, test_top1=result.top1, test_top5=result.top5)
                row.update({RATE_PREFIX + name: rate for name, rate in result.firing_rates.items()})
        row["epoch_s"] = time.perf_counter() - t0
        self.history.append(row)
        self.epoch = epoch + 1
        is_best = result is not None and (self.best_top1 is None or result.top1 > self.best_top1)
        if is_best:
            self.best_top1 = result.top1
        self.save(self.ckpt_dir / "last.pt")
        if is_best:
            self.save(self.ckpt_dir / "best.pt")
        self._write_tables()
        self.tb.scalars(row, self.epoch)
        if result is not None and cfg.histograms:
            self.tb.histograms(self.model, result.neuron_rates, self.epoch)
        self.echo(summary_line(row, cfg.epochs))

    def _limited(self, loader):
        return (
            loader
            if self.cfg.limit_batches is None
            else itertools.islice(loader, self.cfg.limit_batches)
        )

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, model, device = self.cfg, self.model, self.device
        model.train()
        loss_sum, correct_sum, samples, rate_sum = 0.0, 0.0, 0, 0.0
        no_rate = torch.zeros((), device=device)
        bar = tqdm(
            self._limited(self.loaders.train),
            total=self.iters_per_epoch,
            leave=False,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not (cfg.progress and self.ranks.is_main),
            dynamic_ncols=True,
        )
        with FiringRateMonitor(model) as monitor:
            for i, (x, y) in enumerate(bar):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if cfg.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                if not is_initialized(model):
                    self._ei_init(x)
                compile_start = self._compile_notice()
                with autocast(device, cfg.amp):
                    logits = self.net(x)
                loss = self.loss_fn(logits.float(), y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = self._grad_norm()
                correct = topk_correct(logits.detach(), y, (1,))[0]
                rate = monitor.last_mean()
                stats = torch.stack(
                    [
                        torch.isfinite(loss),
                        torch.isfinite(grad_norm),
                        loss.detach(),
                        correct,
                        no_rate if rate is None else rate,
                    ]
                ).double()
                # one sync; the mean over ranks of equal-sized parts is the global batch's mean
                loss_ok, grad_ok, loss_v, correct_v, rate_v = self.ranks.mean(stats).tolist()
                correct_v *= self.ranks.world_size
                if loss_ok < 1 or grad_ok < 1:  # a non-finite value on any rank
                    self._non_finite(epoch, i, "loss" if not loss_ok else "gradient")
                    continue
                for callback in self.callbacks:
                    callback.on_step(self)
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                if compile_start is not None:
                    self.echo(
                        f"compiled: first step took {time.perf_counter() - compile_start:.1f}s"
                    )
                n = y.shape[0] * self.ranks.world_size
                loss_sum, correct_sum = loss_sum + loss_v * n, correct_sum + correct_v
                samples, rate_sum = samples + n, rate_sum + rate_v * n
                bar.set_postfix(
                    loss=f"{loss_sum / samples:.4f}",
                    acc=f"{100 * correct_sum / samples:.2f}",
                    lr=f"{self.optimizer.param_groups[0]['lr']:.2e}",
                    rate=f"{rate_v:.3f}",
                    refresh=False,
                )
        bar.close()
        n = max(samples, 1)
        return {"loss": loss_sum / n, "top1": 100 * correct_sum / n, "rate": rate_sum / n}

    def _compile_notice(self) -> float | None:
        """Before the first step of a compiled model: say that it compiles (it takes a while) and
        return the time it started; else ``None``."""
        if not self._compile_pending:
            return None
        self._compile_pending = False
        self.echo(
            f"compiling the model (torch.compile, mode {self.cfg.compile}) in the first step..."
        )
        return time.perf_counter()

    def _ei_init(self, x: torch.Tensor) -> None:
        """E-I Init from the first global batch: in a distributed run rank 0 initializes from every
        rank's part and sends all parameters and buffers to the others."""
        batch = self.ranks.gather(x)

        def init() -> None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", NarrowInhibitionWarning)
                ei_init(self.model, batch)
            for w in caught:  # one line in the run's log, not a source excerpt
                if issubclass(w.category, NarrowInhibitionWarning):
                    self.echo(f"warning: {w.message}")
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

        self.ranks.on_main(init)
        self.ranks.broadcast_state(self.model)

    def _grad_norm(self) -> torch.Tensor:
        """Global L2 norm of the gradients (clipped to ``grad_clip`` when set), as a tensor."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.cfg.grad_clip is not None:
            return torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        if not params:
            return torch.zeros((), device=self.device)
        return torch.linalg.vector_norm(
            torch.stack([p.grad.detach().float().norm() for p in params])
        )

    def _non_finite(self, epoch: int, i: int, what: str) -> None:
        """Skip the step (``nonfinite: skip``; the schedule still advances, so the lr follows the
        iteration count) or stop without touching what is written."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.cfg.nonfinite == "skip":
            self.skipped += 1
            self.scheduler.skip()
            return
        last = self.ckpt_dir / "last.pt"
        pointer = (
            f"last good checkpoint: {last} (epoch {self.epoch}); resume with `eisnn train --resume "
            f"{self.run_dir}`"
            if last.exists()
            else "no checkpoint was written yet"
        )
        raise NonFiniteError(
            f"non-finite {what} at epoch {epoch + 1}, step {i + 1} of {self.iters_per_epoch} "
            f"(iteration {self.step + 1}); run stopped, {pointer}. Lower lr, set grad_clip, "
            f"or set nonfinite=skip to skip such steps"
        )

    def _write_tables(self) -> None:
        if not self.ranks.is_main:
            return
        if "csv" in self.cfg.loggers:
            write_metrics_csv(self.history, self.run_dir / "metrics.csv")
        if self.cfg.plots:
            plot_run(self.history, self.run_dir / "plots")
        for callback in self.callbacks:
            callback.on_metrics_written(self)


def compile_model(net: torch.nn.Module, mode: str) -> torch.nn.Module:
    """``net`` compiled by ``torch.compile`` with the inductor ``mode``, or ``net`` itself for
    ``"off"``. A ``DistributedDataParallel`` wrapper is compiled as a whole (dynamo then splits
    the graph at its gradient buckets); the compiled module shares ``net``'s parameters."""
    if mode == "off":
        return net
    return torch.compile(net, mode=mode)


def summary_line(row: dict[str, Any], epochs: int) -> str:
    """One line per epoch: train/test loss and top-1/top-5, lr, mean firing rate, time."""
    text = (
        f"epoch {row['epoch']:>3}/{epochs}  train loss {row['train_loss']:.4f} "
        f"top1 {row['train_top1']:6.2f}%"
    )
    if row.get("test_top1") is not None:
        text += (
            f"  test loss {row['test_loss']:.4f} top1 {row['test_top1']:6.2f}% "
            f"top5 {row['test_top5']:6.2f}%"
        )
    text += f"  lr {row['lr']:.3e}  rate {row['train_rate']:.3f}  {row['epoch_s']:.1f}s"
    if row.get("skipped_steps"):
        text += f"  skipped {row['skipped_steps']}"
    return text


def _silent(_: str) -> None:
    pass


def _trainer(
    cfg: TrainConfig,
    run_dir: Callable[[], Path],
    checkpoint: dict[str, Any] | None,
    echo: Callable[[str], None],
    callbacks: CallbackFactory,
) -> Trainer:
    """A Trainer in this process's place of the launch (rank 0 names the run directory)."""
    ranks = connect(cfg, prepare_device(cfg))
    try:
        return Trainer(
            cfg,
            ranks.on_main(run_dir),
            checkpoint=checkpoint,
            echo=echo,
            ranks=ranks,
            callbacks=callbacks(cfg),
        )
    except BaseException:
        ranks.close()
        raise


def start_run(
    cfg: TrainConfig, echo: Callable[[str], None] = print, callbacks: CallbackFactory = no_callbacks
) -> Trainer:
    """A fresh run in a new run directory, with the callbacks ``callbacks(cfg)``
    (:func:`eisnn.run.start_run` adds the ones that config keys ask for)."""
    return _trainer(cfg, lambda: new_run_dir(cfg), None, echo, callbacks)


def resume_run(
    run_dir: str | Path,
    data_dir: str | None = None,
    echo: Callable[[str], None] = print,
    callbacks: CallbackFactory = no_callbacks,
) -> Trainer:
    """Continue the run in ``run_dir`` from ``checkpoints/last.pt`` (``data_dir`` may move), with
    the callbacks ``callbacks(cfg)`` of its config; under ``torchrun`` every process reads it, so
    the run directory must be visible from every machine."""
    run_dir = Path(run_dir)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    cfg = from_dict(ckpt["config"])
    if data_dir is not None:
        cfg = cfg.replace(data_dir=data_dir)
    return _trainer(cfg, lambda: run_dir, ckpt, echo, callbacks)
