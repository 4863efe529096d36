"""The host float64 view of tensors: the solvers' ``p``-sized algebra runs in NumPy."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def on_host64(t: Tensor) -> bool:
    """Whether ``t`` is a float64 tensor on the host without autograd history, i.e. its
    ``.numpy()`` is a free float64 view (the small-problem paths use NumPy then)."""
    return t.dtype is torch.float64 and t.is_cpu and not t.requires_grad


def host64(t: Tensor | np.ndarray) -> np.ndarray:
    """A tensor (any device and dtype) as a float64 NumPy array on the host."""
    if isinstance(t, np.ndarray):
        return t.astype(np.float64, copy=False)
    if on_host64(t):
        return t.numpy()  # no copy, no dispatch: the solvers call this every iteration
    return t.detach().to(device="cpu", dtype=torch.float64).numpy()
