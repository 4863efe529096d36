"""Forward models shipped with inversekit, each a plain torch function.

Every model follows the model contract ``model(p: dict[str, Tensor], *inputs) -> Tensor``
and carries its parameter table (:mod:`inversekit.models.table`) next to it;
:func:`make_params` builds a ready :class:`~inversekit.Params` from a table by name.
Models with their own parameters combine into one with :mod:`.composite`.
"""

from __future__ import annotations

import importlib

from inversekit.errors import InputError
from inversekit.models.table import ModelInfo, ParamSpec
from inversekit.problem.params import Params

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


def make_params(name: str, **overrides) -> Params:
    """The :class:`~inversekit.Params` of shipped model ``name`` (``"xpcs.static"``) from
    its table; ``overrides`` as in :meth:`ModelInfo.params` (``n_angle=3``, ``D0=1e4``)."""
    models = available()
    if name not in models:
        raise InputError(f"unknown model {name!r}; known: {', '.join(sorted(models))}")
    return models[name].params(**overrides)


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"inversekit.models.{name}")
    raise AttributeError(f"module 'inversekit.models' has no attribute {name!r}")


__all__ = ["ModelInfo", "ParamSpec", "available", "make_params"]
