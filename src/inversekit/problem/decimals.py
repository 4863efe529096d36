"""float32 numbers in a float64 description, read as the decimals the user wrote.

``torch.tensor([1.5, 0.3])`` is float32 by default, and ``0.3`` there is
``0.30000001192...``: converted to float64 as it stands, a starting value, a fixed value or
a bound would be off by float32 rounding (1e-8 relative), far above the precision of a
float64 fit. Each float32 number is read instead as the shortest decimal (at most 9
significant digits) that rounds to it, which is the number typed whenever one was.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def shortest_decimals(t: Tensor) -> Tensor:
    """A float32 tensor as float64, each element the shortest decimal rounding to it
    (other dtypes are returned unchanged)."""
    if t.dtype != torch.float32:
        return t
    v = t.detach().cpu().numpy()
    out = v.astype(np.float64)
    finite = np.isfinite(v) & (v != 0)
    x = out[finite]
    exponent = np.floor(np.log10(np.abs(x)))
    best = x.copy()
    todo = np.ones(x.shape, dtype=bool)
    for digits in range(1, 10):
        shift = digits - 1 - exponent  # decimal places kept: x rounded to `digits` digits
        up = np.where(shift >= 0, 10.0 ** np.abs(shift), 1.0)
        down = np.where(shift < 0, 10.0 ** np.abs(shift), 1.0)
        # divide integers by exact powers of ten: the result is the correctly rounded decimal
        candidate = np.round(x * up / down) * down / up
        hit = todo & (candidate.astype(np.float32) == x.astype(np.float32))
        best[hit] = candidate[hit]
        todo &= ~hit
        if not todo.any():
            break
    out[finite] = best
    return torch.from_numpy(out).to(t.device)
