"""Published weights by name: ``hf://<org>/<name>[@<revision>]`` through ``huggingface_hub``.

The name resolves to the local snapshot folder holding ``model.safetensors`` and
``config.json`` (the published layout, :func:`eisnn.compat.load_reference`), downloaded into
huggingface_hub's cache on first use. Its own settings apply: ``HF_HOME`` / ``HF_HUB_CACHE``
place the cache, ``HF_HUB_OFFLINE=1`` reads it without touching the network, ``HF_TOKEN`` for
private repositories. ``huggingface_hub`` is an optional extra: ``pip install eisnn[hf]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["HF_PREFIX", "HubError", "is_hub_name", "resolve_hub"]

HF_PREFIX = "hf://"
PUBLISHED_FILES = ("model.safetensors", "config.json")


class HubError(UserError, OSError):
    """A published model that cannot be resolved (one line: the name and the reason)."""


def is_hub_name(source: Any) -> bool:
    """Whether ``source`` is an ``hf://`` name."""
    return isinstance(source, str) and source.startswith(HF_PREFIX)


def resolve_hub(source: str | os.PathLike) -> Path:
    """The local folder of an ``hf://<repo>[@<revision>]`` name (any other source unchanged)."""
    if not is_hub_name(source):
        return Path(source)
    repo, _, revision = source[len(HF_PREFIX) :].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise HubError(f"{source}: expected hf://<org>/<name> or hf://<org>/<name>@<revision>")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise HubError(
            f"{source}: loading published weights by name needs huggingface_hub: "
            "pip install eisnn[hf] (or pip install huggingface_hub)"
        ) from None
    try:
        folder = snapshot_download(
            repo_id=repo, revision=revision or None, allow_patterns=list(PUBLISHED_FILES)
        )
    except Exception as err:  # huggingface_hub's offline, missing-repo and network errors
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise HubError(f"{source}: cannot resolve ({type(err).__name__}: {reason})") from None
    return Path(folder)
