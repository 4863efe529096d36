"""One-point memos: the value computed at the last point asked, and that point.

Solvers ask again for what they have just computed (the cost at a trial point, then the
Jacobian there once the step is accepted; the normal equations at the solution for the
uncertainties). For small problems a tensor operation costs microseconds, a good share of
an iteration, so the usual hit costs none: the point is held by reference together with
its version counter, which PyTorch bumps at every in-place change. The same tensor object,
unchanged, is a hit; another tensor with equal values is a hit after one comparison.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class PointMemo:
    """``get(u)`` returns the value stored for a point equal to ``u``, else ``None``."""

    __slots__ = ("point", "version", "value")

    def __init__(self) -> None:
        self.point: Tensor | None = None
        self.version: int | None = -1
        self.value: Any = None

    def get(self, u: Tensor) -> Any:
        point = self.point
        if point is None:
            return None
        if self.version is not None:  # None: an inference tensor, compared by value only
            if point._version != self.version:
                return None  # the stored point was changed in place since
            if point is u:
                return self.value
        if point.shape == u.shape and point.device == u.device and torch.equal(point, u):
            return self.value
        return None

    def put(self, u: Tensor, value: Any) -> None:
        """Remember ``value`` for ``u`` (held by reference: no copy is made; a copy for
        tensors made under ``torch.inference_mode``, which have no version counter)."""
        if u.is_inference():
            self.point, self.version = u.clone(), None
        else:
            self.point = u.detach() if u.requires_grad else u
            self.version = self.point._version
        self.value = value

    def clear(self) -> None:
        self.point, self.value = None, None
