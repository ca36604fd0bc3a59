"""Compatibility with the paper's reference implementation: its checkpoints in and out."""

from .reference import ReferenceFormatError, load_reference, to_reference

__all__ = ["ReferenceFormatError", "load_reference", "to_reference"]
