"""A problem's identity for checkpoints: what must match for a saved run to continue.

A checkpoint stores the fingerprint of the problem it was written for; resuming on a
problem with another fingerprint (other data, another parameter layout, another model)
is refused. The data enter through a digest of their bytes, never the data themselves.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import Tensor

_DIGEST_CHUNK = 1 << 22  # elements hashed per step: a bounded host copy of device data


def digest(*tensors: Tensor | None) -> str:
    """BLAKE2b digest of the tensors' shapes, dtypes and bytes (``None`` entries count)."""
    h = hashlib.blake2b(digest_size=16)
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        flat = t.detach().reshape(-1)
        for start in range(0, flat.numel(), _DIGEST_CHUNK):
            part = flat[start : start + _DIGEST_CHUNK].cpu().contiguous()
            h.update(part.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def fingerprint(kind: str, params, model, *data: Tensor | None) -> dict[str, Any]:
    """The JSON-able identity of a problem of type ``kind``: its parameter layout (names,
    shapes, which elements are free, ties), the model's qualified name and a digest of
    ``data``."""
    return {
        "kind": kind,
        "model": getattr(model, "__qualname__", type(model).__name__),
        "params": [_layout(params, n) for n in params],
        "n_free": params.n_free,
        "dtype": str(params.values[next(iter(params))].dtype) if len(params) else "",
        "data": digest(*data),
    }


def _layout(params, name: str) -> list:
    """``[name, shape, free, tie]``: ``free`` is whether the parameter is fitted, or the
    flat indices of its free elements when only some are; ``tie`` its tie's text."""
    free: bool | list[int] = name in params.free_names
    if name in params.partly_fixed:
        free = torch.nonzero(~params.fixed[name].reshape(-1)).reshape(-1).tolist()
    tie = params.tie_text(name) if name in params.tied_names else None
    return [name, list(params.values[name].shape), free, tie]
