"""Roofline of least squares: an iteration's cost in units of one forward pass.

One Levenberg–Marquardt iteration needs at least one Jacobian; forward-mode differentiation
(or finite differences) costs about ``p + 1`` forward passes for ``p`` parameters. Reporting
the time per iteration as a multiple of one forward pass and of ``p + 1`` forward passes
says how far a solver is from that floor: a multiple of ``(p + 1)`` near 1 means the time
goes into the model itself, a large one means overhead (Python, linear algebra, copies).
Standard library only: the children time their own forward pass with :func:`time_forward`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def time_forward(fn: Callable[[], Any], batches: int = 5, min_batch_s: float = 2e-3) -> float:
    """Seconds per call of ``fn``: the fastest of ``batches`` batches, each long enough
    (``min_batch_s``) for the clock, after one untimed warm-up call. The minimum, not the
    median: the floor is what the model costs when nothing else competes for the core."""
    fn()
    calls = 1
    while True:
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - t
        if elapsed >= min_batch_s or calls >= 1 << 16:
            break
        calls *= 4
    per_call = [elapsed / calls]
    for _ in range(batches - 1):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        per_call.append((time.perf_counter() - t) / calls)
    return min(per_call)


def multiples(
    fit_s: float | None, n_iter: int | None, forward_s: float | None, n_params: int
) -> dict[str, float | None]:
    """Time per iteration, and that time over one forward pass and over ``p + 1`` passes."""
    if not fit_s or not n_iter or not forward_s:
        return {"iter_s": None, "per_forward": None, "per_jacobian": None}
    iter_s = fit_s / n_iter
    return {
        "iter_s": iter_s,
        "per_forward": iter_s / forward_s,
        "per_jacobian": iter_s / ((n_params + 1) * forward_s),
    }
