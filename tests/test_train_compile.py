"""The trainer's ``compile`` and ``channels_last`` keys and bf16 autocast on the CPU: one training
step of a small E-I network compiled with inductor matches eager mode; checkpoints keep the
module's own keys."""

from __future__ import annotations

import pytest
import torch

from eisnn.train.config import ConfigError, TrainConfig, from_dict
from eisnn.train.trainer import Trainer, start_run


@pytest.fixture(autouse=True)
def _fresh_state():
    threads = torch.get_num_threads()
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()
    torch.set_num_threads(threads)


def one_step(tmp_path, name: str, **changes) -> tuple[Trainer, list[str]]:
    """A trainer of a tiny E-I MLP on the digits, after one training step (no evaluation)."""
    model = {"model": "ei_mlp", "hidden": [32, 32], "image_size": 8}
    if changes.get("model") == "ei_vgg8":
        model = {"width": 0.125, "image_size": 32}
    cfg: TrainConfig = from_dict(
        dict(
            **model,
            dataset="digits",
            T=2,
            epochs=2,
            eval_every=2,
            batch_size=32,
            limit_batches=1,
            lr=0.05,
            warmup_epochs=0.0,
            progress=False,
            histograms=False,
            plots=False,
            out_dir=str(tmp_path),
            name=name,
            device="cpu",
            cpu_threads=1,
            **changes,
        )
    )
    lines: list[str] = []
    trainer = start_run(cfg, echo=lines.append)
    trainer.fit(max_epochs=1)
    trainer.close()
    return trainer, lines


def test_compiled_training_step_matches_eager(tmp_path) -> None:
    eager, _ = one_step(tmp_path, "eager")
    compiled, lines = one_step(tmp_path, "compiled", compile="default")
    assert compiled.net is not compiled.model  # the step ran through torch.compile
    assert lines[0].startswith("compiling the model (torch.compile, mode default)")
    assert lines[1].startswith("compiled: first step took")
    loss_eager, loss_compiled = (t.history[0]["train_loss"] for t in (eager, compiled))
    assert loss_compiled == pytest.approx(loss_eager, rel=1e-5)
    want, got = eager.model.state_dict(), compiled.model.state_dict()
    assert list(got) == list(want)  # checkpoints hold the module's keys, no compile prefix
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6)
    assert eager.step == compiled.step == 1
    # hidden layers' b_E: 0 after the E-I Init (the readout does not use its b_E)
    biases = [key for key in want if key.endswith("b_e") and not key.startswith("head")]
    assert biases and all(float(want[key].abs().max()) > 0 for key in biases)  # the step moved them


def test_channels_last_and_cpu_bf16_train(tmp_path) -> None:
    trainer, _ = one_step(tmp_path, "bf16", amp="bf16", channels_last=True, model="ei_vgg8")
    assert trainer.step == 1
    conv = trainer.model.stem.current.w_ee
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert torch.isfinite(torch.tensor(trainer.history[0]["train_loss"]))


def test_compile_key_names_the_modes() -> None:
    with pytest.raises(ConfigError, match="compile: 'fast' is not one of off, default"):
        from_dict({"compile": "fast"})
