"""One row per parameter element of a result: what the report and the table show.

Free elements are the result's ``labels`` (their values ``x`` and standard errors
``stderr``); the other elements of ``params`` are fixed (standard error 0) or belong to a
tied parameter (standard error by the delta method, ``stderr_all``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Row:
    """One parameter element: ``kind`` is ``"free"``, ``"fixed"`` or ``"tied"``; ``note``
    says why its standard error is not to be read as usual (at a bound, not identifiable,
    not constrained by the data), ``""`` otherwise."""

    label: str
    name: str
    value: float
    stderr: float
    kind: str
    tie: str = ""
    lower: float = -math.inf
    upper: float = math.inf
    prior: bool = False
    note: str = ""


def element_labels(name: str, shape: tuple) -> list[str]:
    """``"b1"`` for a scalar, ``"c[0, 2]"`` for the elements of a tensor (the labels of
    :meth:`inversekit.Params.labels`)."""
    if len(shape) == 0:
        return [name]
    return [f"{name}[{', '.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


def parameter_rows(result) -> list[Row]:
    """Every element of every parameter of ``result``, in parameter order."""
    free = {label: i for i, label in enumerate(result.labels)}
    sd = _flat_stderr(result)
    rows = []
    for name, value in result.params.items():
        flat = value.reshape(-1).tolist()
        tied_sd = result.stderr_all.get(name) if name in result.ties else None
        lower = _flat_bound(result.lower.get(name), len(flat), -math.inf)
        upper = _flat_bound(result.upper.get(name), len(flat), math.inf)
        for e, label in enumerate(element_labels(name, tuple(value.shape))):
            row = Row(label, name, float(flat[e]), 0.0, "fixed", lower=lower[e], upper=upper[e])
            row.prior = name in result.priors
            if label in free:
                row.kind, row.stderr = "free", sd[free[label]]
                row.value = float(result.x[free[label]])
                row.note = _note(result, label)
            elif name in result.ties:
                row.kind, row.tie = "tied", result.ties[name]
                row.stderr = math.nan if tied_sd is None else float(tied_sd.reshape(-1)[e])
                row.lower, row.upper = -math.inf, math.inf
            rows.append(row)
    return rows


def _flat_stderr(result) -> list[float]:
    if not result.stderr:  # a scalar objective: no uncertainties
        return [math.nan] * len(result.labels)
    free = set(result.labels)
    out = []
    for name, t in result.stderr.items():
        flat = t.reshape(-1).tolist()
        labels = element_labels(name, tuple(t.shape))
        out += [v for v, label in zip(flat, labels, strict=True) if label in free]
    return out


def _flat_bound(t, n: int, fill: float) -> list[float]:
    if t is None:
        return [fill] * n
    return [float(v) for v in t.reshape(-1).tolist()] if t.numel() == n else [fill] * n


def _note(result, label: str) -> str:
    if label in result.unidentified:
        return "not identifiable"
    if label in result.unconstrained:
        return "not constrained by the data"
    if label in result.at_bounds:
        return "at bound: stderr unreliable"
    return ""
