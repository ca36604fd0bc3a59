"""Checkpoints written atomically (:func:`eisnn.files.atomic_write`: temporary file, fsync, rename).

A crash at any moment leaves either the previous file or the new one, never a torn file; a failed
write (a full disk) removes the temporary file and leaves the previous checkpoint as it was.
Reading verifies the CRC-32 of every record of the zip archive that ``torch.save`` writes, which
``torch.load`` does not check, so a flipped bit in the weights is an error, not other weights.
"""

from __future__ import annotations

import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eisnn.errors import UserError
from eisnn.files import atomic_write

FORMAT = "eisnn-checkpoint"
VERSION = 1


ZIP_MAGIC = b"PK\x03\x04"  # the first bytes of a zip archive (torch.save's format since 1.6)


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be read or written, or is no eisnn checkpoint; names the path."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` with :func:`eisnn.files.atomic_write` (temporary file, fsync,
    rename); on failure the previous file is left as it was and an ``OSError`` becomes a
    :class:`CheckpointError` naming ``path`` and the reason."""
    path = Path(path)
    try:
        atomic_write(path, lambda f: torch.save(obj, f))
    except OSError as exc:
        kept = f"the previous {path.name} is unchanged" if path.exists() else "nothing was written"
        reason = exc.strerror or _reason(exc)
        raise CheckpointError(f"cannot write checkpoint {path}: {reason}; {kept}") from exc


def rng_state() -> dict[str, Any]:
    """The state of every global RNG (python, numpy, torch CPU and CUDA), in types that
    ``torch.load(weights_only=True)`` accepts."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | Path, *, model: torch.nn.Module, config: dict[str, Any], epoch: int, **extra: Any
) -> None:
    """An eisnn checkpoint: model weights, config, completed epochs, RNG states, ``extra``
    (optimizer, scheduler, step, metrics, ...)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.state_dict(),
        "config": config,
        "epoch": epoch,
        "rng": rng_state(),
        **extra,
    }
    atomic_save(payload, path)


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message, or its type where the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _verify_zip(path: Path) -> None:
    """Read every record of a zip-format torch file once, so that :mod:`zipfile` checks its
    CRC-32; a truncated or damaged archive raises :class:`CheckpointError`. A file that does not
    start as a zip (torch's legacy format, or no torch file at all) is left to ``torch.load``;
    records stored without a CRC (``compute_crc32=False`` in torch's save config) are skipped."""
    try:
        with open(path, "rb") as f:
            if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
                return
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.CRC == 0:
                    continue
                with archive.open(info) as record:
                    while record.read(1 << 20):
                        pass
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # zipfile raises BadZipFile, EOFError, UnicodeDecodeError, ...
        reason = _reason(exc)
        raise CheckpointError(f"cannot read {path}: truncated or damaged ({reason})") from None


def read_torch_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` (tensors and plain containers only) of a file whose zip records were
    verified first; a damaged or foreign file raises :class:`CheckpointError` naming it."""
    path = Path(path)
    _verify_zip(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except EOFError:
        raise CheckpointError(f"cannot read {path}: the file ends early (truncated)") from None
    except Exception as exc:  # torch raises many kinds for damaged or foreign files
        raise CheckpointError(f"cannot read {path}: {_reason(exc)}") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read an eisnn checkpoint; any other or damaged file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    payload = read_torch_file(path, map_location)
    if not is_checkpoint(payload):
        raise CheckpointError(f"{path} is not an eisnn checkpoint (no '{FORMAT}' format tag)")
    return payload


def is_checkpoint(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("format") == FORMAT
