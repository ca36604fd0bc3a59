"""Warm-up + cosine learning-rate schedule, stepped per iteration (SPEC section 6)."""

from __future__ import annotations

import math

import pytest
import torch

from eisnn.train.schedule import WarmupCosine


def lrs(scheduler: WarmupCosine, optimizer: torch.optim.Optimizer, n: int) -> list[float]:
    out = []
    for _ in range(n):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def make(total=100, warmup=10, start=1e-7, base=1e-3, min_lr=0.0):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base, momentum=0.9)
    return opt, WarmupCosine(
        opt, total_iters=total, warmup_iters=warmup, warmup_start_lr=start, min_lr=min_lr
    )


def test_linear_warmup_then_cosine_to_min_lr():
    opt, sched = make()
    seen = lrs(sched, opt, 100)
    assert seen[0] == pytest.approx(1e-7)
    assert seen[5] == pytest.approx(1e-7 + (1e-3 - 1e-7) * 5 / 10)
    assert seen[10] == pytest.approx(1e-3)
    assert seen[55] == pytest.approx(0.5e-3 * (1 + math.cos(math.pi * 45 / 90)))
    assert all(a >= b for a, b in zip(seen[10:], seen[11:]))  # monotone decay after warm-up
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # end of the schedule


def test_no_warmup_starts_at_the_peak_and_respects_min_lr():
    opt, sched = make(total=20, warmup=0, min_lr=1e-5)
    seen = lrs(sched, opt, 20)
    assert seen[0] == pytest.approx(1e-3) and min(seen) > 1e-5


def test_state_dict_resumes_the_same_sequence():
    opt, sched = make()
    lrs(sched, opt, 37)
    state = sched.state_dict()
    expected = lrs(sched, opt, 20)
    opt2, sched2 = make()
    sched2.load_state_dict(state)
    assert lrs(sched2, opt2, 20) == expected


def test_a_skipped_iteration_advances_the_schedule_like_a_step():
    opt, sched = make()
    stepped = lrs(sched, opt, 8)
    opt2, sched2 = make()
    skipped = []
    for i in range(8):
        skipped.append(opt2.param_groups[0]["lr"])
        if i in (0, 3):  # no optimizer step in these iterations
            sched2.skip()
        else:
            opt2.step()
            sched2.step()
    assert skipped == stepped and sched2.get_last_lr() == sched.get_last_lr()


def test_impossible_lengths_are_refused():
    with pytest.raises(ValueError, match="warmup_iters"):
        make(total=10, warmup=11)
