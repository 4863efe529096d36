"""The few array operations whose spelling differs between NumPy and torch.

The maths shared by a single problem (floats and NumPy arrays on the host: its fast path)
and a batch (torch tensors with a leading batch axis, on any device) is written once with
these, over the trailing axes, so one formula serves both (see
:mod:`inversekit.optimize.levenberg_marquardt.gauss_newton` and
:mod:`inversekit.results.uncertainty`). Python floats pass through where it makes sense.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def diagonal(A):
    """The diagonal of the trailing ``(p, p)`` axes."""
    if isinstance(A, torch.Tensor):
        return torch.diagonal(A, dim1=-2, dim2=-1)
    return np.diagonal(A, axis1=-2, axis2=-1)


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b`` (a Python ``if`` for a Python bool)."""
    if isinstance(condition, torch.Tensor):
        return torch.where(condition, a, b)
    if isinstance(condition, np.ndarray):
        return np.where(condition, a, b)
    return a if condition else b


def minimum(a, b):
    """Elementwise minimum."""
    if isinstance(a, torch.Tensor):
        return torch.minimum(a, b)
    return np.minimum(a, b) if isinstance(a, np.ndarray) else min(a, b)


def amax(x, axis: int = -1, keepdims: bool = False):
    """Largest element along ``axis``."""
    if isinstance(x, torch.Tensor):
        return x.amax(axis, keepdim=keepdims)
    return np.max(x, axis=axis, keepdims=keepdims)


def amin(x, axis: int = -1, keepdims: bool = False):
    """Smallest element along ``axis``."""
    if isinstance(x, torch.Tensor):
        return x.amin(axis, keepdim=keepdims)
    return np.min(x, axis=axis, keepdims=keepdims)


def sqrt(x):
    return torch.sqrt(x) if isinstance(x, torch.Tensor) else np.sqrt(x)


def isfinite(x):
    return torch.isfinite(x) if isinstance(x, torch.Tensor) else np.isfinite(x)


def transpose(A):
    """Swap the trailing two axes."""
    return A.mT if isinstance(A, torch.Tensor) else np.swapaxes(A, -1, -2)


def eps(x) -> float:
    """Machine epsilon of ``x``'s floating dtype."""
    if isinstance(x, torch.Tensor):
        return torch.finfo(x.dtype).eps
    return float(np.finfo(np.asarray(x).dtype).eps)


def copy(x):
    return x.clone() if isinstance(x, torch.Tensor) else np.array(x, copy=True)


INF = math.inf
NAN = math.nan
