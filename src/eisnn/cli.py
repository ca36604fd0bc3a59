"""The ``eisnn`` command: ``train``, ``eval``, ``convert`` (and more via :func:`register`).

A subcommand is a :class:`Command`: a name, a one-line help, a function adding its arguments
to an ``argparse`` parser, and a function running it (returning the exit status). Adding one
is one :func:`register` call, or :func:`register_lazy` for functions that live in another module
(``bench``, ``plot``), imported only when the parser is built; heavy imports happen inside
``run`` so that ``eisnn --help`` stays fast. A :class:`~eisnn.errors.UserError` (bad config,
missing data or checkpoint, non-finite loss, ...) ends with one ``eisnn: error: ...`` line and a
non-zero status; any other exception keeps its traceback, so that a bug is never masked.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module, resources
from pathlib import Path

from eisnn.errors import UserError


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> Command:
    """Add a subcommand to ``eisnn`` (names are unique)."""
    if command.name in COMMANDS:
        raise ValueError(f"eisnn subcommand {command.name!r} is already registered")
    COMMANDS[command.name] = command
    return command


def register_lazy(name: str, help: str, module: str, configure: str, run: str) -> Command:
    """Register a subcommand whose ``configure`` and ``run`` functions are attributes of
    ``module`` (imported on first use)."""

    def attribute(attr: str) -> Callable:
        return getattr(import_module(module), attr)

    return register(
        Command(name, help, lambda p: attribute(configure)(p), lambda a: attribute(run)(a))
    )


def packaged_config(name: str) -> Path:
    """A config shipped in ``eisnn/configs`` (``digits`` -> ``.../configs/digits.yaml``)."""
    return Path(str(resources.files("eisnn") / "configs" / f"{name}.yaml"))


def resolve_config_path(text: str | None) -> Path:
    """A YAML path, or the name of a packaged config; none given: the offline default."""
    if text is None:
        return packaged_config("digits")
    path = Path(text)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    packaged = packaged_config(text)
    if packaged.is_file():
        return packaged
    from eisnn.train.config import ConfigError

    names = sorted(p.stem for p in packaged.parent.glob("*.yaml"))
    raise ConfigError(
        f"no config file {text!r} and no packaged config of that name; packaged: {', '.join(names)}"
    )


def _add_overrides(p: argparse.ArgumentParser, help: str) -> None:
    """The repeatable ``--set KEY=VALUE`` option (values read as YAML)."""
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


# ------------------------------------------------------------------- train
def _configure_train(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "config",
        nargs="?",
        help="YAML config or packaged config name (default: the offline digits run)",
    )
    p.add_argument("--data-dir", help="dataset root (overrides data_dir)")
    p.add_argument("--out", help="folder receiving the run directory (overrides out_dir)")
    _add_overrides(p, "override a config key (value read as YAML); repeatable")
    p.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint"
    )
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="N",
        help="stop after N epochs in this call (resume later)",
    )
    p.add_argument(
        "--keys",
        action="store_true",
        help="list every config key with its type and default, and exit",
    )


def _run_train(args: argparse.Namespace) -> int:
    from eisnn.run import resume_run, start_run
    from eisnn.train import config as C

    if args.keys:
        print(C.describe())
        return 0
    if args.stop_after is not None and args.stop_after < 1:
        raise C.ConfigError(f"--stop-after: must be >= 1, got {args.stop_after}")
    if args.resume is not None:
        if args.config is not None or args.overrides or args.out is not None:
            raise C.ConfigError("--resume takes the run's own config: drop CONFIG, --set and --out")
        trainer = resume_run(args.resume, data_dir=args.data_dir)
        trainer.echo(f"resuming {trainer.run_dir} after epoch {trainer.epoch}/{trainer.cfg.epochs}")
    else:
        changes = {
            k: v for k, v in (("data_dir", args.data_dir), ("out_dir", args.out)) if v is not None
        }
        cfg = C.load_config(resolve_config_path(args.config), args.overrides, **changes)
        trainer = start_run(cfg)
        processes = f" x {trainer.ranks.world_size} processes" if trainer.ranks.distributed else ""
        trainer.echo(
            f"run directory: {trainer.run_dir}  ({cfg.model} on {cfg.dataset}, T={cfg.T}, "
            f"{cfg.epochs} epochs, device {trainer.device}{processes})"
        )
    try:
        result = trainer.fit(max_epochs=args.stop_after)
    finally:
        trainer.close()
    last = result.last_eval
    if last is not None:
        trainer.echo(
            f"test accuracy: top-1 {last['test_top1']:.2f}%  top-5 {last['test_top5']:.2f}%  "
            f"(best top-1 {result.best_top1:.2f}%)  after epoch {last['epoch']}"
        )
    trainer.echo(
        f"trained {result.epochs_done}/{trainer.cfg.epochs} epochs in {result.wall_s:.1f} s; "
        f"run directory: {result.run_dir}"
    )
    return 0


# -------------------------------------------------------------------- eval
def _configure_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        help="eisnn checkpoint, reference checkpoint (.pth/.pt/.safetensors), "
        "a folder with the published model.safetensors + config.json, or its name "
        "hf://<org>/<name>[@<revision>] on the Hugging Face Hub (pip install eisnn[hf])",
    )
    p.add_argument("--data-dir", help="dataset root (default: the checkpoint's data_dir)")
    _add_overrides(p, "override a config key of the evaluation (batch_size, device, dataset, ...)")


def _run_eval(args: argparse.Namespace) -> int:
    from eisnn.train.evaluate import evaluate_source

    report = evaluate_source(args.source, data_dir=args.data_dir, overrides=args.overrides)
    print(report.text())
    return 0


# ----------------------------------------------------------------- convert
def _configure_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "reference", help="reference checkpoint (.pth/.pt/.safetensors) or published-weights folder"
    )
    p.add_argument("out", help="eisnn checkpoint to write (.pt)")
    _add_overrides(p, "config keys the reference does not state (e.g. dataset=cifar10)")


def _run_convert(args: argparse.Namespace) -> int:
    from eisnn.train.convert import convert_reference

    cfg = convert_reference(args.reference, args.out, overrides=args.overrides)
    print(f"wrote {args.out}: {cfg.model} for {cfg.dataset}, T={cfg.T}")
    return 0


register(
    Command(
        "train",
        "train a model from a config (default: the offline digits run)",
        _configure_train,
        _run_train,
    )
)
register(
    Command(
        "eval",
        "top-1/top-5 and firing rates of a checkpoint on its test set",
        _configure_eval,
        _run_eval,
    )
)
register(
    Command(
        "convert",
        "write an eisnn checkpoint from a reference checkpoint",
        _configure_convert,
        _run_convert,
    )
)


register_lazy(
    "bench",
    "time training steps of the E-I networks against their BN twins",
    "eisnn.benchmark",
    "add_arguments",
    "run",
)
register_lazy(
    "plot",
    "redraw the PNG plots of a run directory (learning curves, rates, diagnostics)",
    "eisnn.diagnostics.commands",
    "configure_plot",
    "run_plot",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eisnn",
        description="Deep normalization-free spiking networks with excitatory-inhibitory circuits.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS.values():
        command.configure(sub.add_parser(command.name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from eisnn.allocator import retain_freed_memory

    args = build_parser().parse_args(argv)
    retain_freed_memory()
    try:
        return COMMANDS[args.command].run(args)
    except UserError as exc:  # the user's to fix: one line, no traceback
        from eisnn.train.distributed import rank_prefix

        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"eisnn: error: {rank_prefix()}{message}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a failed collective: another process died or stopped answering
        from eisnn.train.distributed import lost_peer, rank_prefix

        message = lost_peer(exc)
        if message is None:
            raise
        print(f"eisnn: error: {rank_prefix()}{message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eisnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
