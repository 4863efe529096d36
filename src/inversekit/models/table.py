"""Parameter tables shipped next to each forward model.

A table is data, not code: one :class:`ParamSpec` per parameter, giving its name, unit,
default value, physical bounds and whether it is naturally fitted on a log scale. Docs,
the command line and :func:`inversekit.models.available` read these tables, so a model's
parameters are described in exactly one place, and :meth:`ModelInfo.params` turns one
into a ready :class:`~inversekit.Params`::

    from inversekit.models import xpcs
    params = xpcs.STATIC.params(n_angle=3, D0=1e4)   # contrast, offset: shape (3,)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inversekit.errors import InputError
from inversekit.problem.params import Param, Params


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a shipped forward model.

    ``bounds`` are physical limits ``(lower, upper)``, ``None`` meaning open; ``per``
    names the axis a tensor-valued parameter runs over (e.g. ``"angle"`` for one value per
    scattering angle), ``None`` for scalars; ``fixed`` marks a parameter passed to the
    model at its default unless the user frees it (e.g. a core radius of 0).
    """

    name: str
    unit: str
    default: float
    bounds: tuple[float | None, float | None] = (None, None)
    log_scale: bool = False
    description: str = ""
    per: str | None = None
    fixed: bool = False

    @property
    def size_keyword(self) -> str | None:
        """The keyword of :meth:`ModelInfo.params` giving the length of the ``per`` axis:
        ``"n_angle"`` for ``per="angle"``, ``"n_source_pixel"`` for ``"source pixel"``."""
        return None if self.per is None else "n_" + "_".join(self.per.split())

    def param(self, value=None, size=None) -> Param:
        """This parameter as a :class:`~inversekit.Param`: ``value`` (default: the table's)
        with the table's bounds, log scale, fixed flag, unit and description.

        A ``per``-axis parameter given a single number is filled to the shape ``size``
        (an int for a 1-D axis, or a tuple); a value with elements is taken as it is.
        """
        value = self.default if value is None else value
        scalar = isinstance(value, int | float) or torch.as_tensor(value).dim() == 0
        if self.per is not None and scalar:
            if size is None:
                raise InputError(
                    f"parameter {self.name!r} has one value per {self.per}: give "
                    f"{self.size_keyword}= (the number of {self.per}s, or a shape)"
                )
            value = torch.full(_shape(self.size_keyword, size), float(value), dtype=torch.float64)
        elif self.per is not None and size is not None:
            shape = tuple(torch.as_tensor(value).shape)
            if shape != _shape(self.size_keyword, size):
                raise InputError(
                    f"parameter {self.name!r}: the value has shape {shape} but "
                    f"{self.size_keyword}={size!r}"
                )
        return Param(
            value,
            bounds=self.bounds,
            fixed=self.fixed,
            log_scale=self.log_scale,
            unit=self.unit,
            description=self.description,
        )


def _shape(keyword: str | None, size) -> tuple[int, ...]:
    shape = (size,) if isinstance(size, int) else size
    if (
        not isinstance(shape, tuple | list)
        or not shape
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    ):
        raise InputError(f"{keyword} must be a positive int or a tuple of them, got {size!r}")
    return tuple(shape)


@dataclass(frozen=True)
class ModelInfo:
    """A shipped model: its dotted name, a one-line summary and its parameter table."""

    name: str
    summary: str
    parameters: tuple[ParamSpec, ...]
    doc: str = ""

    def params(self, **overrides) -> Params:
        """A ready :class:`~inversekit.Params` from the table.

        Each parameter gets its default, bounds, log scale, fixed flag, unit and
        description. Keywords:

        - ``n_<axis>`` (``n_angle=3``): the length (or shape) of each ``per`` axis, needed
          by the parameters that run over it unless their value is given with elements;
        - ``<name>=value``: a number or array replacing the default (the table's bounds
          and scale are kept);
        - ``<name>=Param(...)``: the whole parameter replaced.

        Unknown keywords and missing axis lengths raise :class:`~inversekit.InputError`.
        """
        axes = {s.size_keyword for s in self.parameters if s.per is not None}
        sizes = {k: overrides.pop(k) for k in list(overrides) if k in axes}
        names = [s.name for s in self.parameters]
        unknown = [k for k in overrides if k not in names]
        if unknown:
            extra = f"; axis lengths: {', '.join(sorted(axes))}" if axes else ""
            raise InputError(
                f"{self.name}: unknown parameter(s) {', '.join(map(repr, unknown))} (known: "
                f"{', '.join(names)}{extra})"
            )
        items = {}
        for spec in self.parameters:
            given = overrides.get(spec.name)
            if isinstance(given, Param):
                items[spec.name] = given
            else:
                size = sizes.get(spec.size_keyword) if spec.per is not None else None
                items[spec.name] = spec.param(given, size)
        return Params(items)

    def describe(self) -> str:
        """The table as aligned text columns: name, unit, default, lower, upper, log scale,
        fixed, per-axis and description (what ``inversekit models`` prints)."""
        header = (
            "name",
            "unit",
            "default",
            "lower",
            "upper",
            "log scale",
            "fixed",
            "per",
            "description",
        )
        rows = [header]
        for s in self.parameters:
            lo, hi = s.bounds
            rows.append(
                (
                    s.name,
                    s.unit or "-",
                    _number(s.default),
                    "-inf" if lo is None else _number(lo),
                    "inf" if hi is None else _number(hi),
                    "yes" if s.log_scale else "",
                    "yes" if s.fixed else "",
                    s.per or "",
                    s.description,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = [f"{self.name}: {self.summary}"]
        for row in rows:
            cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)]
            lines.append(("  " + "  ".join([*cells, row[-1]])).rstrip())
        if self.doc:
            lines.append(f"  see {self.doc}")
        return "\n".join(lines)


def _number(x: float) -> str:
    return f"{x:g}" if math.isfinite(x) else str(x)
