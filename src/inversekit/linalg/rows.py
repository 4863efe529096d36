"""Row utilities for batches: row ``b`` of every tensor belongs to problem ``b``."""

from __future__ import annotations

import torch
from torch import Tensor


def contiguous_rows(idx: Tensor) -> Tensor | slice:
    """``idx`` as a slice when it is a run of consecutive increasing indices (indexing by
    it then gives views and slice assignments, not gathers and scatters), else ``idx``."""
    k = idx.numel()
    if k and int(idx[-1]) - int(idx[0]) == k - 1 and bool((idx[1:] > idx[:-1]).all()):
        return slice(int(idx[0]), int(idx[0]) + k)
    return idx


def finite_rows(*tensors: Tensor) -> Tensor:
    """``(k,)``: whether every element of row ``b`` of every tensor is finite.

    A row's sum is finite when all its terms are (NaN and ±inf propagate), so one finite
    sum per row answers for most rows in one pass; only rows whose sum is not finite, which
    may also be an overflow of finite terms, are checked element by element."""
    total = sum(t.flatten(1).sum(1) for t in tensors)
    ok = torch.isfinite(total)
    if not bool(ok.all()):
        bad = ~ok
        ok[bad] = torch.stack(
            [torch.isfinite(t[bad]).flatten(1).all(1) for t in tensors], dim=1
        ).all(1)
    return ok


def select_rows(mask: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
    """The rows of each tensor where ``mask`` holds; the tensors themselves (no copies)
    when it holds everywhere, the usual case: most problems take most trial steps."""
    if bool(mask.all()):
        return tensors
    return tuple(t[mask] for t in tensors)
