"""Exceptions raised by inversekit.

Every error raised on bad input names the parameter or array at fault and says what is
wrong with it, and is raised before any fitting work starts.
"""

from __future__ import annotations


class InputError(ValueError):
    """A parameter, array or option given to inversekit is invalid."""


class ModelError(InputError):
    """The user's forward model raised, or returned something unusable, when first called."""


def describe(exc: BaseException) -> str:
    """``"TypeName: first line of the message"`` (at most 200 characters of it), for the
    reasons an engine records when it falls back."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"
