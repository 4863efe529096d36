"""The Gauss–Newton pieces of Levenberg–Marquardt, written once over a leading batch axis.

Every function takes the quantities of one problem (Python floats, NumPy arrays ``(p,)``
and ``(p, p)``: the single-problem solver's host state) or of a batch (torch tensors
``(B,)``, ``(B, p)``, ``(B, p, p)``: the batched solver's state) and computes the same
formula either way, so the two solvers cannot drift apart:

- :func:`cost_resolution`: the smallest change of the cost that is not rounding;
- :func:`initial_scale`: Marquardt's diagonal scale;
- :func:`gradient_cosine`: the gtol measure;
- :func:`distance_left`: the distance the xtol test compares;
- :data:`STOPPING_TESTS` with :func:`first_stop`: MINPACK's tests in the order that decides
  a problem's status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from inversekit.linalg.arrays import INF, diagonal, minimum, where
from inversekit.results.status import Status

# Relative cost changes below this many units in the last place are rounding noise.
COST_ULPS = 64
# Units in the last place of y/σ taken as the rounding error of each whitened residual.
RESIDUAL_ULPS = 8
# Steps taken below that resolution, while they keep shrinking, polish the last digits.
MAX_FLOOR_STEPS = 50
MIN_DAMPING = 1e-15


def cost_resolution(cost, data_norm, eps: float):
    """The smallest change of ``cost = ½ r·r`` that is not rounding.

    Two parts: ``COST_ULPS`` units in the last place of the cost itself, and the
    cancellation in ``r = (f - y)/σ``: each residual carries an error of a few ulp of
    ``y/σ`` (``RESIDUAL_ULPS``), which moves the cost by up to ``ε ‖r‖ ‖y/σ‖`` times
    that many (Cauchy–Schwarz). The second dominates for small residuals (a fit to
    about 1e-6 of the data, such as NIST Lanczos), where the cost cannot resolve what
    its gradient still can. ``eps`` is the machine epsilon of the problem's dtype (its
    residuals and cost are computed in it). Floats, or tensors of one value per problem.
    """
    return eps * (COST_ULPS * cost + RESIDUAL_ULPS * data_norm * (2.0 * cost) ** 0.5)


def initial_scale(A):
    """Marquardt's diagonal scale ``diag(A)``; a parameter with no effect (zero column)
    gets the mean of the others (1 when none has an effect)."""
    d = diagonal(A)
    positive = d > 0
    if bool(positive.all()):  # the usual case
        return d.copy() if isinstance(d, np.ndarray) else d.clone()
    count = positive.sum(-1)
    total = where(positive, d, 0.0).sum(-1)
    if not isinstance(d, torch.Tensor):  # one problem: a scalar fill
        fill = total / count if count > 0 else 1.0
        return np.where(positive, d, fill)
    fill = torch.where(count > 0, total / count.clamp(min=1), 1.0)
    return torch.where(positive, d, fill[..., None])


def gradient_cosine(A, g, cost):
    """``max_i |(Jᵀr)_i| / (‖J_i‖ ‖r‖)``: zero exactly at a stationary point. ``A = JᵀJ``,
    ``g = Jᵀr``, ``cost = ½ r·r``; columns without effect are left out."""
    norm_r = (2.0 * cost) ** 0.5
    col = diagonal(A) ** 0.5
    if isinstance(col, np.ndarray) and norm_r > 0 and col.min() > 0:
        # one problem, no column without effect: the usual case, in three NumPy calls
        return float((np.abs(g) / col).max()) / norm_r
    ok = col > 0
    ratio = where(ok, abs(g) / where(ok, col, 1.0), 0.0)
    ratio = ratio.amax(-1) if isinstance(ratio, torch.Tensor) else ratio.max(-1)
    zero = (norm_r == 0) | ~ok.any(-1)
    return where(zero, 0.0, ratio / where(zero, 1.0, norm_r))


def distance_left(step_norm, previous_step_norm, floor_steps):
    """The scaled distance to the solution the xtol test compares: the last step, or,
    after two steps below the cost's resolution (where the steps contract by a measured
    ``ρ < 0.9``: linearly for Gauss–Newton, faster with the secant term), the rest of
    their geometric series, ``‖δ‖ ρ/(1 - ρ)``."""
    if not isinstance(floor_steps, torch.Tensor) and floor_steps < 2:
        return step_norm
    rho = step_norm / where(previous_step_norm > 0, previous_step_norm, INF)
    rest = minimum(step_norm, step_norm * rho / (1.0 - rho))
    return where(floor_steps >= 2, rest, step_norm)


@dataclass
class StopInputs:
    """What the stopping tests read, for one problem (floats) or a batch (tensors)."""

    cost: Any
    A: Any
    g: Any
    floor_steps: Any
    step_norm: Any
    previous_step_norm: Any
    actual: Any
    pred: Any
    cost_before: Any
    size: Any  # ‖√D u‖, the scaled size of the point


def _ftol(s: StopInputs, opts) -> Any:
    if not opts.ftol > 0:
        return False
    rel_actual, rel_pred = s.actual / s.cost_before, s.pred / s.cost_before
    return (rel_actual <= opts.ftol) & (rel_pred <= opts.ftol) & (rel_actual <= 2 * rel_pred)


# MINPACK's tests in the order that decides a problem's status: the first one met wins.
STOPPING_TESTS: list[tuple[Status, Callable[[StopInputs, Any], Any]]] = [
    (Status.ZERO_RESIDUAL, lambda s, o: s.cost == 0),
    # Gauss–Newton steps below the cost's resolution stopped shrinking: rounding noise
    (
        Status.PRECISION,
        lambda s, o: (
            (s.floor_steps > 0)
            & ((s.floor_steps >= MAX_FLOOR_STEPS) | (s.step_norm > 0.9 * s.previous_step_norm))
        ),
    ),
    (Status.FTOL, _ftol),
    (
        Status.XTOL,
        lambda s, o: (
            distance_left(s.step_norm, s.previous_step_norm, s.floor_steps)
            <= o.xtol * (s.size + o.xtol)
        ),
    ),
    (Status.GTOL, lambda s, o: gradient_cosine(s.A, s.g, s.cost) <= o.gtol),
]


def first_stop(s: StopInputs, opts) -> Status | None:
    """The status of one problem (float inputs): the first stopping test it meets."""
    for status, test in STOPPING_TESTS:
        if test(s, opts):
            return status
    return None


def batch_stops(s: StopInputs, opts) -> list[tuple[Any, Status]]:
    """For a batch (tensor inputs): ``(mask of problems first meeting it, status)`` for
    every test, in order."""
    undecided = torch.ones_like(s.cost, dtype=torch.bool)
    out = []
    for status, test in STOPPING_TESTS:
        met = test(s, opts)
        met = torch.as_tensor(met, device=s.cost.device).expand_as(undecided) & undecided
        undecided = undecided & ~met
        out.append((met, status))
    return out


def is_finite(A: np.ndarray, g: np.ndarray) -> bool:
    """Whether the normal equations ``A``, ``g`` of one problem are finite."""
    return bool(np.isfinite(A).all() and np.isfinite(g).all())
