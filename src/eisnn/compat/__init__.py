"""Compatibility with the paper's reference implementation: its checkpoints in and out."""

from .hub import HubError, resolve_hub
from .reference import ReferenceFormatError, load_reference, to_reference

__all__ = ["ReferenceFormatError", "HubError", "load_reference", "resolve_hub", "to_reference"]
