"""Learning-rate schedule of the paper: linear warm-up, then cosine decay, stepped per iteration.

For iteration ``i`` (0-based), ``W`` warm-up iterations and ``N`` iterations in total::

    i <  W:  lr(i) = start + (base - start) * i / W
    i >= W:  lr(i) = min_lr + (base - min_lr) * (1 + cos(pi * (i - W) / (N - W))) / 2
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler


def warmup_cosine_lr(
    i: int, base: float, start: float, min_lr: float, warmup_iters: int, total_iters: int
) -> float:
    """The learning rate at iteration ``i`` (formula in the module docstring)."""
    if i < warmup_iters:
        return start + (base - start) * i / warmup_iters
    decay = max(total_iters - warmup_iters, 1)
    progress = min((i - warmup_iters) / decay, 1.0)
    return min_lr + (base - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosine(LRScheduler):
    """Per-iteration warm-up + cosine schedule; call ``step()`` after every optimizer step and
    ``skip()`` for an iteration whose step was skipped, so that the lr of iteration ``i`` is
    always ``lr(i)``.

    ``warmup_start_lr`` is absolute (the paper starts every run at 1e-7, TinyImageNet at
    1e-3); each parameter group decays from its own initial lr.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_iters: int,
        warmup_iters: int,
        warmup_start_lr: float,
        min_lr: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if total_iters < 1 or not 0 <= warmup_iters <= total_iters:
            raise ValueError(
                f"need 0 <= warmup_iters ({warmup_iters}) <= total_iters ({total_iters})"
            )
        self.total_iters = total_iters
        self.warmup_iters = warmup_iters
        self.warmup_start_lr = warmup_start_lr
        self.min_lr = min_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [
            warmup_cosine_lr(
                self.last_epoch,
                base,
                self.warmup_start_lr,
                self.min_lr,
                self.warmup_iters,
                self.total_iters,
            )
            for base in self.base_lrs
        ]

    def skip(self) -> None:
        """Advance one iteration without an optimizer step (``step()`` would warn that the
        optimizer did not step)."""
        self.last_epoch += 1
        self._apply_lr()

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the position in the schedule and put its current lr into the optimizer."""
        super().load_state_dict(state_dict)
        self._apply_lr()

    def _apply_lr(self) -> None:
        """Put the lr of the current iteration (``last_epoch``) into the optimizer."""
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr
