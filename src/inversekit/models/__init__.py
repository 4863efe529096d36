"""Forward models shipped with inversekit, each a plain torch function.

Every model follows the model contract ``model(p: dict[str, Tensor], *inputs) -> Tensor``
and carries its parameter table (:mod:`inversekit.models.table`) next to it.
"""

from __future__ import annotations

import importlib

from inversekit.models.table import ModelInfo, ParamSpec

# Modules reachable as ``inversekit.models.<name>``; those with ``MODELS: tuple[ModelInfo, ...]``
# are listed by available().
_MODULES = ("xpcs", "image", "lensing", "nist")


def available() -> dict[str, ModelInfo]:
    """Return every shipped model by dotted name, with its parameter table."""
    found: dict[str, ModelInfo] = {}
    for name in _MODULES:
        try:
            module = importlib.import_module(f"inversekit.models.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"inversekit.models.{name}":
                continue
            raise
        for info in getattr(module, "MODELS", ()):
            found[info.name] = info
    return found


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"inversekit.models.{name}")
    raise AttributeError(f"module 'inversekit.models' has no attribute {name!r}")


__all__ = ["ModelInfo", "ParamSpec", "available"]
