"""Errors that are the user's to fix: bad configuration, a missing or damaged input, a bad launch.

The ``eisnn`` command reports a :class:`UserError` in one line, without a traceback; any other
exception keeps its traceback, so that a bug is never mistaken for bad input. A class that
replaces a builtin error derives from it as well (``except FileNotFoundError`` still catches
:class:`InputNotFoundError`). This module imports nothing, so every layer can use it.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem in what the user gave or set up; the message names it in one line."""


class InputNotFoundError(UserError, FileNotFoundError):
    """A file or folder named by the user (or expected inside a named folder) does not exist."""
