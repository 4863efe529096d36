"""Exceptions raised by inversekit.

Every error raised on bad input names the parameter or array at fault and says what is
wrong with it, and is raised before any fitting work starts.
"""

from __future__ import annotations


class InputError(ValueError):
    """A parameter, array or option given to inversekit is invalid."""


class ModelError(InputError):
    """The user's forward model raised, or returned something unusable, when first called."""
