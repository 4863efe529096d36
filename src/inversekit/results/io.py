"""Saving and loading results without pickle.

A :class:`~inversekit.results.fit_result.FitResult` is written as a NumPy ``.npz`` archive: every tensor
as a float64 array (``params/<name>``, ``stderr/<name>``, ``x``, ``covariance``, ...) and
all scalars, strings and lists in one JSON document (Python's ``json`` writes floats by
their shortest round-tripping ``repr``, so they come back bit-identical). Loading uses
``allow_pickle=False``, so a file from anywhere cannot execute code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from inversekit.errors import InputError
from inversekit.results.fit_result import FitResult
from inversekit.results.status import Status

_TENSORS = ("x", "covariance", "correlation")
_SCALARS = (
    "cost",
    "chi2",
    "reduced_chi2",
    "ndf",
    "n_data",
    "n_iter",
    "n_fev",
    "n_jev",
    "time",
    "history",
    "covariance_scaled",
    "condition_number",
    "near_null",
    "at_bounds",
    "unidentified",
    "log_likelihood",
    "solver",
    "jacobian",
    "labels",
)
_FORMAT = "inversekit.FitResult"


def save_result(result: FitResult, path) -> None:
    """Write ``result`` to ``path`` (an ``.npz`` file)."""
    arrays = {name: _array(getattr(result, name)) for name in _TENSORS}
    for group in ("params", "stderr"):
        for key, value in getattr(result, group).items():
            arrays[f"{group}/{key}"] = _array(value)
    meta = {name: getattr(result, name) for name in _SCALARS}
    meta["status"] = result.status.name
    meta["format"] = _FORMAT
    meta["params_order"] = list(result.params)
    meta["stderr_order"] = list(result.stderr)
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as fh:  # np.savez would append ".npz" to a path without it
        np.savez(fh, **arrays)


def load(path) -> FitResult:
    """Read a result written by :meth:`FitResult.save` (never unpickles)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such result file: {path}")
    with np.load(path, allow_pickle=False) as data:
        if "meta" not in data.files:
            raise InputError(f"{path} is not an inversekit result file (no 'meta' entry)")
        meta = json.loads(str(data["meta"]))
        if meta.pop("format", None) != _FORMAT:
            raise InputError(f"{path} is not an inversekit FitResult file")
        tensors = {name: torch.from_numpy(data[name].copy()) for name in _TENSORS}
        groups = {
            group: {
                key: torch.from_numpy(data[f"{group}/{key}"].copy())
                for key in meta.pop(f"{group}_order")
            }
            for group in ("params", "stderr")
        }
    status = Status[meta.pop("status")]
    return FitResult(status=status, **tensors, **groups, **meta)


def _array(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and _array(a).tobytes() == _array(b).tobytes()
        )
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def results_identical(a: FitResult, b: FitResult) -> bool:
    """True when every field of ``a`` and ``b`` is bit-for-bit the same (NaN equals NaN)."""
    return all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
