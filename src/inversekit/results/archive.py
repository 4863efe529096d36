"""Result files without pickle: tensors in a NumPy ``.npz`` archive, the rest as JSON.

Every tensor is stored as a NumPy array under its field name (``params/<name>`` for the
entries of a dict of tensors); every scalar, string and list goes into one JSON document
(Python's ``json`` writes floats by their shortest round-tripping ``repr``, so they come
back bit-identical). Loading uses ``allow_pickle=False``: a file from anywhere cannot
execute code.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inversekit.errors import InputError
from inversekit.results.status import Status


def to_archive(result: Any, path, fmt: str) -> None:
    """Write the dataclass ``result`` to ``path`` under the format tag ``fmt``."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"format": fmt, "tensors": [], "groups": {}}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if isinstance(value, torch.Tensor):
            arrays[f.name] = _array(value)
            meta["tensors"].append(f.name)
        elif isinstance(value, dict) and all(isinstance(v, torch.Tensor) for v in value.values()):
            for key, v in value.items():
                arrays[f"{f.name}/{key}"] = _array(v)
            meta["groups"][f.name] = list(value)
        elif isinstance(value, Status):
            meta[f.name] = {"status": value.name}
        elif isinstance(value, list) and value and all(isinstance(v, Status) for v in value):
            meta[f.name] = {"statuses": [v.name for v in value]}
        else:
            meta[f.name] = value
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as fh:  # np.savez would append ".npz" to a path without it
        np.savez(fh, **arrays)


def from_archive(path) -> tuple[str, dict[str, Any]]:
    """``(format tag, fields)`` read from a file written by :func:`to_archive`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such result file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                raise InputError(f"{path} is not an inversekit result file (no 'meta' entry)")
            meta = json.loads(str(data["meta"]))
            fields = {name: torch.from_numpy(data[name].copy()) for name in meta.pop("tensors")}
            for group, keys in meta.pop("groups").items():
                fields[group] = {k: torch.from_numpy(data[f"{group}/{k}"].copy()) for k in keys}
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path} is not a readable inversekit result file: {exc}") from None
    fmt = meta.pop("format", None)
    for name, value in meta.items():
        if isinstance(value, dict) and set(value) == {"status"}:
            value = Status[value["status"]]
        elif isinstance(value, dict) and set(value) == {"statuses"}:
            value = [Status[v] for v in value["statuses"]]
        fields[name] = value
    return fmt, fields


def identical(a: Any, b: Any) -> bool:
    """True when every field of the dataclasses ``a`` and ``b`` is bit-for-bit the same
    (NaN equals NaN)."""
    return type(a) is type(b) and all(
        _same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
    )


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


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
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b
