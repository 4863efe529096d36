"""Parameter tables shipped next to each forward model.

A table is data, not code: one :class:`ParamSpec` per parameter, giving its name, unit,
default value, physical bounds and whether it is naturally fitted on a log scale. Docs,
the command line and :func:`inversekit.models.available` read these tables, so a model's
parameters are described in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a shipped forward model.

    ``bounds`` are physical limits ``(lower, upper)``, ``None`` meaning open; ``per``
    names the axis a tensor-valued parameter runs over (e.g. ``"angle"`` for one value per
    scattering angle), ``None`` for scalars.
    """

    name: str
    unit: str
    default: float
    bounds: tuple[float | None, float | None] = (None, None)
    log_scale: bool = False
    description: str = ""
    per: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """A shipped model: its dotted name, a one-line summary and its parameter table."""

    name: str
    summary: str
    parameters: tuple[ParamSpec, ...]
    doc: str = ""
