"""Levenberg–Marquardt: damped Gauss–Newton for nonlinear least squares.

Each step solves, in the unconstrained parameters ``u``,

    (JᵀWJ + λ D) δ = -JᵀWr,       D = running max of diag(JᵀWJ)   (Marquardt scaling)

and accepts ``u + δ`` when the actual reduction of ``cost = ½ rᵀWr`` is a positive fraction
of the reduction the linear model predicts; the damping ``λ`` is divided by ``lambda_down``
after a success and multiplied by ``lambda_up`` after a failure. A trial point where the
model is not finite is a failed trial, never a crash.

With ``geodesic=True`` the step is corrected by geodesic acceleration (Transtrum & Sethna,
"Improvements to the Levenberg-Marquardt algorithm for nonlinear least-squares
minimization", 2012): ``a`` solves ``(JᵀWJ + λD) a = -Jᵀ r''[δ, δ]`` and the trial point
is ``u + δ + a/2``, accepted only when ``2‖a‖/‖δ‖ <= geodesic_ratio`` (scaled norms).

Stopping (MINPACK's tests, with defaults tight enough to reach every digit the data
supports in float64; each is its own :class:`~inversekit.Status`):

- ``ftol``: actual and predicted relative reductions of the cost both below ``ftol`` (off
  by default: a cost test stops large-residual problems digits short, e.g. NIST ENSO);
- ``xtol``: scaled step ``‖√D δ‖ <= xtol (‖√D u‖ + xtol)``;
- ``gtol``: largest cosine between the residual vector and a Jacobian column below ``gtol``;
- precision: the predicted reduction is below the cost's rounding (64 ulp). Such steps are
  still taken, since the Gauss–Newton step comes from the exact ``JᵀWr``, while they keep
  shrinking (at most ``_MAX_FLOOR_STEPS``); the run stops when they no longer shrink or a
  trial at that level makes the cost measurably worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from inversekit.derivatives import NormalEquations
from inversekit.errors import InputError
from inversekit.linalg import damped_solve
from inversekit.optimize.status import Status

# Relative cost changes below this many units in the last place are rounding noise.
_ROUNDING = 64 * 2.220446049250313e-16
# Steps taken below that resolution, while they keep shrinking, polish the last digits.
_MAX_FLOOR_STEPS = 50
_MIN_DAMPING = 1e-15


@dataclass(frozen=True)
class LevenbergMarquardt:
    """Levenberg–Marquardt options. Immutable; pass to :func:`inversekit.fit`.

    Args:
        max_iter: accepted-or-rejected step budget (each step tries until it finds a
            reduction or ``max_rejections`` trials fail).
        max_time: wall-time budget in seconds (``None``: unlimited).
        ftol, xtol, gtol: stopping tolerances (see the module docstring).
        lambda0: initial damping, relative to the scaled curvature (whose diagonal is 1).
        lambda_up, lambda_down: damping factors after a failed / successful trial.
        geodesic: add geodesic acceleration (on by default: it crosses long curved
            valleys in far fewer steps, e.g. NIST MGH17 from its first start).
        geodesic_ratio: largest accepted ``2‖a‖/‖δ‖``.
        accept: smallest ratio of actual to predicted reduction accepted.
        max_rejections: failed trials within one step before the step gives up.
    """

    max_iter: int = 1000
    max_time: float | None = None
    ftol: float = 0.0
    xtol: float = 1e-15
    gtol: float = 1e-15
    lambda0: float = 1e-3
    lambda_up: float = 11.0
    lambda_down: float = 9.0
    geodesic: bool = True
    geodesic_ratio: float = 0.75
    accept: float = 1e-4
    max_rejections: int = 40
    name: str = "LM"

    def __post_init__(self):
        for field in ("ftol", "xtol", "gtol", "lambda0"):
            if not getattr(self, field) >= 0:
                raise InputError(f"LM option `{field}` must be >= 0, got {getattr(self, field)}")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise InputError(
                f"LM option `max_iter` must be a positive integer, got {self.max_iter}"
            )
        if self.lambda_up <= 1 or self.lambda_down <= 1:
            raise InputError("LM options `lambda_up` and `lambda_down` must be > 1")
        if self.max_time is not None and not self.max_time > 0:
            raise InputError(f"LM option `max_time` must be > 0 seconds, got {self.max_time}")

    # --- solver contract ------------------------------------------------------------
    def init(self, problem) -> LMState:
        if not hasattr(problem, "normal_equations"):
            raise InputError(
                f"LM solves least-squares problems (ik.LeastSquares); got {type(problem).__name__}"
            )
        u = problem.u0.clone()
        ne = problem.normal_equations(u)
        D = _initial_scale(ne.A)
        return LMState(
            u=u,
            cost=ne.cost,
            ne=ne,
            D=D,
            lam=self.lambda0,
            n_fev=1,
            reason=None if ne.is_finite() else Status.NONFINITE,
        )

    def step(self, problem, state: LMState) -> LMState:
        lam, n_fev = state.lam, state.n_fev
        last_pred = math.inf
        for _ in range(self.max_rejections):
            trial = self._trial(problem, state, lam)
            if trial is None:  # matrix not positive definite: damp harder
                lam *= self.lambda_up
                continue
            u_new, delta, pred = trial
            last_pred = pred
            cost_new = problem.cost(u_new)
            n_fev += 1
            actual = state.cost - cost_new
            # Below rounding the cost cannot confirm a step; the Gauss-Newton step is still
            # exact (it comes from JᵀWr), so take it if it does not measurably hurt.
            floor = pred <= _ROUNDING * state.cost
            good = (pred > 0 and actual >= self.accept * pred) or (
                floor and actual >= -_ROUNDING * state.cost
            )
            if math.isfinite(cost_new) and good:
                ne = problem.normal_equations(u_new)
                if ne.is_finite():
                    return self._accepted(state, u_new, delta, ne, actual, pred, lam, n_fev, floor)
            if floor:
                return replace(state, lam=lam, n_fev=n_fev, reason=Status.PRECISION)
            lam *= self.lambda_up
        reason = Status.PRECISION if last_pred <= _ROUNDING * state.cost else Status.STALLED
        return replace(state, lam=lam, n_fev=n_fev, reason=reason)

    def terminate(self, problem, state: LMState) -> Status | None:
        if state.reason is not None:
            return state.reason
        if state.cost == 0.0:
            return Status.ZERO_RESIDUAL
        if state.floor_steps and (
            state.floor_steps >= _MAX_FLOOR_STEPS
            or state.step_norm > 0.9 * state.previous_step_norm
        ):
            return Status.PRECISION  # Gauss-Newton steps stopped shrinking: rounding noise
        rel_actual = state.actual / state.cost_before
        rel_pred = state.pred / state.cost_before
        if (
            self.ftol > 0
            and rel_actual <= self.ftol
            and rel_pred <= self.ftol
            and rel_actual <= 2 * rel_pred
        ):
            return Status.FTOL
        size = float(torch.linalg.vector_norm(torch.sqrt(state.D) * state.u))
        if state.step_norm <= self.xtol * (size + self.xtol):
            return Status.XTOL
        if _gradient_cosine(state.ne) <= self.gtol:
            return Status.GTOL
        return None

    def postprocess(self, problem, state: LMState, run):
        from inversekit.optimize.results import least_squares_result

        return least_squares_result(problem, state.u, run, solver=self.name, n_fev=state.n_fev)

    # --- maths ----------------------------------------------------------------------
    def _trial(self, problem, state: LMState, lam: float):
        """Damped (and optionally accelerated) step; ``None`` if the solve failed."""
        A, g = state.ne.A, state.ne.g
        delta = damped_solve(A, -g, state.D, lam)
        if delta is None or not bool(torch.isfinite(delta).all()):
            return None
        # predicted reduction of the quadratic model: -(gᵀδ + ½ δᵀAδ)
        pred = -float(g @ delta + 0.5 * delta @ (A @ delta))
        if self.geodesic:
            rhs = problem.jacobian.geodesic_rhs(state.u, delta)
            accel = damped_solve(A, -rhs, state.D, lam)
            if accel is None or not bool(torch.isfinite(accel).all()):
                return None
            sd = torch.sqrt(state.D)
            ratio = 2 * torch.linalg.vector_norm(sd * accel) / torch.linalg.vector_norm(sd * delta)
            if float(ratio) > self.geodesic_ratio:
                return None
            delta = delta + 0.5 * accel
        return state.u + delta, delta, pred

    def _accepted(self, state, u_new, delta, ne, actual, pred, lam, n_fev, floor) -> LMState:
        step_norm = float(torch.linalg.vector_norm(torch.sqrt(state.D) * delta))
        D = torch.maximum(state.D, torch.diagonal(ne.A))
        lam = max(lam / self.lambda_down, _MIN_DAMPING)
        return LMState(
            u=u_new,
            cost=ne.cost,
            ne=ne,
            D=D,
            lam=lam,
            n_fev=n_fev,
            delta=delta,
            actual=actual,
            pred=pred,
            cost_before=state.cost,
            step_norm=step_norm,
            previous_step_norm=state.step_norm,
            floor_steps=state.floor_steps + 1 if floor else 0,
        )


LM = LevenbergMarquardt


@dataclass
class LMState:
    """Levenberg–Marquardt iterate: point, normal equations there, scaling and damping."""

    u: Tensor
    cost: float
    ne: NormalEquations
    D: Tensor
    lam: float
    n_fev: int
    delta: Tensor | None = None
    actual: float = math.inf
    pred: float = math.inf
    cost_before: float = math.inf
    step_norm: float = math.inf  # ‖√D δ‖ of the last accepted step
    previous_step_norm: float = math.inf
    floor_steps: int = 0  # consecutive accepted steps too small for the cost to confirm
    reason: Status | None = None


def _initial_scale(A: Tensor) -> Tensor:
    """Marquardt's diagonal scale; a parameter with no effect gets the mean scale."""
    d = torch.diagonal(A).clone()
    positive = d[d > 0]
    fill = float(positive.mean()) if positive.numel() else 1.0
    return torch.where(d > 0, d, torch.full_like(d, fill))


def _gradient_cosine(ne: NormalEquations) -> float:
    """``max_i |(Jᵀr)_i| / (‖J_i‖ ‖r‖)``: zero exactly at a stationary point."""
    norm_r = math.sqrt(2.0 * ne.cost)
    col = torch.sqrt(torch.diagonal(ne.A))
    ok = col > 0
    if norm_r == 0 or not bool(ok.any()):
        return 0.0
    return float((ne.g[ok].abs() / col[ok]).max()) / norm_r
