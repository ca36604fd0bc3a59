"""Compatibility with the paper's reference implementation: its checkpoints in and out."""

from .reference import ReferenceFormatError, load_reference, to_reference
from .safetensors_io import load_safetensors

__all__ = ["ReferenceFormatError", "load_reference", "load_safetensors", "to_reference"]
