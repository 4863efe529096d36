"""Levenberg–Marquardt: damped Gauss–Newton for nonlinear least squares.

Each step solves, in the unconstrained parameters ``u``,

    (JᵀWJ + λ D) δ = -JᵀWr,       D = running max of diag(JᵀWJ)   (Marquardt scaling)

and accepts ``u + δ`` when the actual reduction of ``cost = ½ rᵀWr`` is a positive fraction
of the reduction the linear model predicts; the damping ``λ`` is divided by ``lambda_down``
after a success and multiplied by ``lambda_up`` after a failure. A trial point where the
model is not finite is a failed trial, never a crash; a step that moves a bounded
parameter's unconstrained coordinate by more than ``max_bounded_step`` is damped before
it is tried. The solver's state is float64 NumPy on the host whatever the problem's dtype
and device (``p``-sized algebra); it sees the problem through ``problem.evaluator()``
(:mod:`inversekit.problem.evaluators`), which answers for such points.

With ``secant=True`` the model's curvature is ``JᵀWJ + S``, ``S`` a secant estimate of
the residual curvature (Dennis, Gay & Welsch's NL2SOL), whenever that model predicted the
previous step better than Gauss–Newton's; a step it fails is retried with Gauss–Newton's.

With ``geodesic=True`` the step is corrected by geodesic acceleration (Transtrum & Sethna,
"Improvements to the Levenberg-Marquardt algorithm for nonlinear least-squares
minimization", 2012): ``a`` solves ``(JᵀWJ + λD) a = -Jᵀ r''[δ, δ]`` and the trial point
is ``u + δ + a/2``, used only when ``2‖a‖/‖δ‖ <= geodesic_ratio`` (scaled norms). The
acceleration is computed only where the plain step ``u + δ`` falls short of the linear
model's prediction (actual below ``geodesic_below`` times predicted reduction): in a
curved valley, where it pays, and not on the well-modelled steps of most iterations,
where it would cost a second-derivative pass for nothing. The better point is kept.

Stopping (MINPACK's tests, with defaults tight enough to reach every digit the data
supports in float64; each is its own :class:`~inversekit.Status`):

- ``ftol``: actual and predicted relative reductions of the cost both below ``ftol`` (off
  by default: a cost test stops large-residual problems digits short, e.g. NIST ENSO);
- ``xtol``: scaled step ``‖√D δ‖ <= xtol (‖√D u‖ + xtol)``; once the steps are below
  the cost's resolution (below), where Gauss–Newton converges linearly with a measured
  contraction ``ρ = ‖δ_k‖/‖δ_{k-1}‖``, the distance still to go, ``‖δ‖ ρ/(1 - ρ)``, is
  tested instead of the step (the step that would be needed to see it adds no digit);
- ``gtol``: largest cosine between the residual vector and a Jacobian column below ``gtol``;
- precision: the predicted reduction is below the cost's resolution (:func:`cost_resolution`:
  64 ulp of the cost, and the rounding of the residuals ``(f - y)/σ``). Such steps are
  still taken, since the step comes from the exact ``JᵀWr``, while they keep
  shrinking (at most ``MAX_FLOOR_STEPS``); the run stops when they no longer shrink or a
  trial at that level makes the cost measurably worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from torch import Tensor

from inversekit.contracts import LeastSquaresProblem, SavedState, Summary, implements
from inversekit.errors import InputError
from inversekit.linalg.damped import DampedSystem
from inversekit.optimize.levenberg_marquardt.gauss_newton import (
    MIN_DAMPING,
    StopInputs,
    cost_resolution,
    first_stop,
    initial_scale,
    is_finite,
)
from inversekit.results.status import Status

# Above this many free parameters the secant term is not kept: it is a second p x p matrix
# beside JᵀWJ, with O(p²) work per step, where NL2SOL-sized problems have tens.
SECANT_MAX_PARAMS = 500


@dataclass(frozen=True)
class LevenbergMarquardt:
    """Levenberg–Marquardt options. Immutable; pass to :func:`inversekit.fit`.

    Args:
        max_iter: accepted-or-rejected step budget (each step tries until it finds a
            reduction or ``max_rejections`` trials fail).
        max_time: wall-time budget in seconds (``None``: unlimited).
        max_evals: budget of model evaluations (trial costs; ``None``: unlimited).
        ftol, xtol, gtol: stopping tolerances (see the module docstring).
        lambda0: initial damping, relative to the scaled curvature (whose diagonal is 1).
        lambda_up, lambda_down: damping factors after a failed / successful trial.
        geodesic: add geodesic acceleration (on by default: it crosses long curved
            valleys in far fewer steps, e.g. NIST MGH17 from its first start).
        geodesic_ratio: largest accepted ``2‖a‖/‖δ‖``.
        geodesic_below: the acceleration is computed only when the plain step's actual
            reduction is below this fraction of the predicted one (the linear model is
            failing); ``math.inf`` tries it at every step.
        accept: smallest ratio of actual to predicted reduction accepted.
        max_rejections: failed trials within one step before the step gives up.
        max_bounded_step: largest change of a bounded parameter's unconstrained coordinate
            in one step (``u`` is a log-scale or logit coordinate: 10 is a factor of
            ``e^10`` in the distance to the bound). A longer step is damped before it is
            tried: a linear model that sends a bounded parameter that far has left its
            domain of validity, and a parameter pushed deep into a bound's saturation
            cannot come back (its derivative vanishes).
        secant: augment the Gauss–Newton model with a secant estimate ``S`` of the
            residual curvature ``Σ r_i ∇²r_i`` (NL2SOL's structured update), used for a
            step when it predicted the last step better (see ``secant_update``). Where the
            residuals are not small Gauss–Newton converges only linearly; measured on
            NIST: ENSO in 22 and 16 iterations instead of 77 and 70, Kirby2 and Chwirut
            a fifth to a third fewer, most others within a few iterations either way,
            MGH17 from its first start a fifth more. Not used above
            ``SECANT_MAX_PARAMS`` (500) free parameters.
    """

    max_iter: int = 1000
    max_time: float | None = None
    max_evals: int | None = None
    ftol: float = 0.0
    xtol: float = 1e-15
    gtol: float = 1e-15
    lambda0: float = 1e-3
    lambda_up: float = 11.0
    lambda_down: float = 9.0
    geodesic: bool = True
    geodesic_ratio: float = 0.75
    geodesic_below: float = 0.75
    accept: float = 1e-4
    max_rejections: int = 40
    max_bounded_step: float = 10.0
    secant: bool = True
    name: str = "LM"

    def __post_init__(self):
        if not self.max_bounded_step > 0:
            raise InputError(
                f"LM option `max_bounded_step` must be > 0, got {self.max_bounded_step}"
            )
        for field in ("ftol", "xtol", "gtol", "lambda0"):
            if not getattr(self, field) >= 0:
                raise InputError(f"LM option `{field}` must be >= 0, got {getattr(self, field)}")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise InputError(
                f"LM option `max_iter` must be a positive integer, got {self.max_iter}"
            )
        if self.lambda_up <= 1 or self.lambda_down <= 1:
            raise InputError("LM options `lambda_up` and `lambda_down` must be > 1")
        if self.max_evals is not None and not (
            isinstance(self.max_evals, int) and self.max_evals >= 1
        ):
            raise InputError(
                f"LM option `max_evals` must be a positive integer, got {self.max_evals}"
            )
        if self.max_time is not None and not self.max_time > 0:
            raise InputError(f"LM option `max_time` must be > 0 seconds, got {self.max_time}")

    # --- solver contract ------------------------------------------------------------
    def init(self, problem) -> LMState:
        evaluator = problem.evaluator()
        uh = evaluator.start()
        A, g, cost = evaluator.normal_equations(uh)
        return LMState(
            uh=uh,
            u=evaluator.point(uh),
            cost=cost,
            A=A,
            g=g,
            D=initial_scale(A),
            lam=self.lambda0,
            n_fev=1,
            reason=None if is_finite(A, g) else Status.NONFINITE,
            jacobian=problem.jacobian,
        )

    def step(self, problem, state: LMState) -> LMState:
        evaluator = problem.evaluator()
        lam, n_fev = state.lam, state.n_fev
        last_pred = math.inf
        noise = cost_resolution(state.cost, evaluator.data_norm, evaluator.eps)
        augmented = state.augmented
        H = state.A + state.S if augmented else state.A
        for _ in range(self.max_rejections):
            system = DampedSystem.build(H, state.D, lam)
            delta = None if system is None else system.solve(-state.g)
            if delta is None or not np.isfinite(delta).all():
                if augmented:  # the secant model is indefinite here: Gauss-Newton's
                    augmented, H = False, state.A
                    continue
                lam *= self.lambda_up  # not positive definite: damp harder
                continue
            if self._too_long(problem.params.bounded, delta):
                lam *= self.lambda_up
                continue
            # predicted reduction of the quadratic model: -(gᵀδ + ½ δᵀHδ)
            pred = -float(state.g @ delta + 0.5 * delta @ (H @ delta))
            last_pred = pred
            # Below its resolution the cost cannot confirm a step; the step still comes from
            # the exact JᵀWr, so take it if it does not measurably hurt.
            floor = pred <= noise
            step, uh_new, cost_new, evals = self._trial(
                evaluator, problem, state, system, delta, pred, floor
            )
            n_fev += evals
            actual = state.cost - cost_new
            good = (pred > 0 and actual >= self.accept * pred) or (floor and actual >= -noise)
            if math.isfinite(cost_new) and good:
                A, g, cost = evaluator.normal_equations(uh_new)
                if is_finite(A, g):
                    jr = evaluator.previous_jacobian_times(state.uh, uh_new)
                    new = AcceptedPoint(uh_new, evaluator.point(uh_new), cost, A, g, jr)
                    return self._accepted(state, new, step, actual, pred, lam, n_fev, floor)
            if augmented:  # the secant model failed: Gauss-Newton's at the same damping
                augmented, H = False, state.A
                continue
            if floor:
                return replace(state, lam=lam, n_fev=n_fev, reason=Status.PRECISION)
            lam *= self.lambda_up
        reason = Status.PRECISION if last_pred <= noise else Status.STALLED
        return replace(state, lam=lam, n_fev=n_fev, reason=reason)

    def terminate(self, problem, state: LMState) -> Status | None:
        if state.reason is not None:
            return state.reason
        size = math.sqrt(float(np.dot(state.D, state.uh**2)))
        return first_stop(state.stop_inputs(size), self)

    def accepts(self, problem) -> str | None:
        if not implements(problem, LeastSquaresProblem):
            return "Levenberg–Marquardt needs a least-squares problem (ik.LeastSquares)"
        others = problem.params.other_prior_names
        if others:
            return (
                f"parameters {', '.join(others)} have non-Gaussian priors, which are not "
                "least-squares rows; use solver='lbfgsb' (the default for such a problem) "
                "or Normal priors"
            )
        return None

    def cost(self, state: LMState) -> float:
        return state.cost

    def n_evals(self, state: LMState) -> int:
        return state.n_fev

    def point(self, problem, state: LMState) -> Tensor:
        return state.u

    def summary(self, problem, state: LMState) -> Summary:
        # the point as the problem's tensor, with what is known there handed over, so the
        # result's cost and covariance need no model call
        u = problem.evaluator().result_point(state.uh)
        return Summary(u=u, cost=state.cost, n_fev=state.n_fev, n_jev=state.n_jev)

    def save(self, state: LMState) -> SavedState:
        return state.save()

    def restore(self, problem, saved: SavedState) -> LMState:
        return LMState.restore(problem, saved)

    # --- maths ----------------------------------------------------------------------
    def _trial(self, evaluator, problem, state: LMState, system, delta, pred, floor):
        """Evaluate the damped step ``δ`` and, where it is needed, its accelerated version.

        The plain point ``uh + δ`` is tried first. When the linear model fails there (actual
        reduction below ``geodesic_below`` times the predicted), the geodesic acceleration
        ``a`` is computed with the same factor and ``uh + δ + a/2`` tried too; the better of
        the two is returned as ``(step, uh_new, cost_new, model evaluations)``.
        """
        uh_plain = state.uh + delta
        cost_plain = self._trial_cost(evaluator, state, uh_plain, floor)
        if (
            not self.geodesic
            or floor
            or (math.isfinite(cost_plain) and state.cost - cost_plain >= self.geodesic_below * pred)
        ):
            return delta, uh_plain, cost_plain, 1
        step = self._accelerated(evaluator, problem, state, system, delta)
        if step is None:
            return delta, uh_plain, cost_plain, 1
        uh_acc = state.uh + step
        cost_acc = evaluator.cost(uh_acc)
        if math.isfinite(cost_acc) and not cost_acc >= cost_plain:
            return step, uh_acc, cost_acc, 2
        return delta, uh_plain, cost_plain, 2

    @staticmethod
    def _trial_cost(evaluator, state: LMState, uh: np.ndarray, floor: bool) -> float:
        """The cost at a trial point, with the normal equations there when the step is
        likely to be accepted (they are needed next, and the pass that gives them gives
        the cost): always below the cost's resolution, where the step is taken unless it
        measurably hurts (for the complex step, one model call instead of two), and after
        a well-modelled step for an engine whose fused pass costs little more than the
        cost (``speculative``: no second pass over the data)."""
        if floor or (evaluator.speculative and state.actual >= 0.75 * state.pred):
            return evaluator.normal_equations(uh)[2]
        return evaluator.cost(uh)

    def _too_long(self, bounded: np.ndarray | None, delta: np.ndarray) -> bool:
        """Whether ``δ`` moves a bounded parameter by more than ``max_bounded_step``."""
        return bounded is not None and float(np.abs(delta[bounded]).max()) > self.max_bounded_step

    def _accelerated(self, evaluator, problem, state: LMState, system, delta):
        """``δ + a/2`` with ``(H + λD) a = -Jᵀ r''[δ, δ]`` (``H`` the step's model, ``A`` or
        ``A + S``), or ``None`` when the
        acceleration is not finite or too large (``2‖a‖/‖δ‖ > geodesic_ratio``, scaled),
        or when ``δ + a/2`` moves a bounded parameter too far (``max_bounded_step``)."""
        accel = system.solve(-evaluator.geodesic_rhs(state.uh, delta))
        if not np.isfinite(accel).all() or not accel.any():
            return None
        sd = np.sqrt(state.D)
        if 2 * np.linalg.norm(sd * accel) > self.geodesic_ratio * np.linalg.norm(sd * delta):
            return None
        step = delta + 0.5 * accel
        return None if self._too_long(problem.params.bounded, step) else step

    def _accepted(
        self, state, new: AcceptedPoint, delta, actual, pred, lam, n_fev, floor
    ) -> LMState:
        scaled = np.sqrt(state.D) * delta
        step_norm = math.sqrt(float(scaled @ scaled))
        S, augmented = state.S, False
        if self.secant and delta.size <= SECANT_MAX_PARAMS:
            S, augmented = secant_update(state, new, delta, actual)
        return LMState(
            S=S,
            augmented=augmented,
            uh=new.uh,
            u=new.u,
            cost=new.cost,
            A=new.A,
            g=new.g,
            D=np.maximum(state.D, np.diagonal(new.A)),
            lam=max(lam / self.lambda_down, MIN_DAMPING),
            n_fev=n_fev,
            delta=delta,
            actual=actual,
            pred=pred,
            cost_before=state.cost,
            step_norm=step_norm,
            previous_step_norm=state.step_norm,
            floor_steps=state.floor_steps + 1 if floor else 0,
            jacobian=state.jacobian,
            jev_offset=state.jev_offset,
        )


LM = LevenbergMarquardt


@dataclass
class AcceptedPoint:
    """An accepted point (host float64, and as the problem's tensor) with its normal
    equations (host float64)."""

    uh: np.ndarray
    u: Tensor
    cost: float
    A: np.ndarray
    g: np.ndarray
    jr: np.ndarray | None = None  # J(previous point)ᵀ r(uh), where the evaluator has it


@dataclass
class LMState:
    """Levenberg–Marquardt iterate: point, normal equations there, scaling and damping.

    The point ``uh``, ``A = JᵀWJ``, ``g = JᵀWr`` and the Marquardt scale ``D`` are float64
    NumPy arrays on the host, whatever the problem's dtype and device: the solver's
    ``p``-sized algebra is cheaper there, and float64 keeps it accurate for float32
    problems. ``u`` is ``uh`` as the problem's tensor (what callbacks and results see).
    """

    uh: np.ndarray
    u: Tensor
    cost: float
    A: np.ndarray
    g: np.ndarray
    D: np.ndarray
    lam: float
    n_fev: int
    delta: np.ndarray | None = None
    actual: float = math.inf
    pred: float = math.inf
    cost_before: float = math.inf
    step_norm: float = math.inf  # ‖√D δ‖ of the last accepted step
    previous_step_norm: float = math.inf
    floor_steps: int = 0  # consecutive accepted steps too small for the cost to confirm
    S: np.ndarray | None = None  # secant estimate of Σ r_i ∇²r_i (see secant_update)
    augmented: bool = False  # the next step uses JᵀWJ + S
    reason: Status | None = None
    jacobian: Any = None  # the problem's derivative engine (counts Jacobian evaluations)
    jev_offset: int = 0  # Jacobian evaluations made before a resume, in another process

    @property
    def n_jev(self) -> int:
        """Jacobian evaluations of this run (the engine's count, plus those made before a
        resume)."""
        return self.jacobian.n_jev + self.jev_offset

    def stop_inputs(self, size: float) -> StopInputs:
        return StopInputs(
            cost=self.cost,
            A=self.A,
            g=self.g,
            floor_steps=self.floor_steps,
            step_norm=self.step_norm,
            previous_step_norm=self.previous_step_norm,
            actual=self.actual,
            pred=self.pred,
            cost_before=self.cost_before,
            size=size,
        )

    def save(self) -> SavedState:
        """Arrays and scalars of a checkpoint (``u`` is ``uh`` as a tensor: not saved)."""
        out = {f: getattr(self, f) for f in _SAVED_FIELDS}
        out["reason"] = None if self.reason is None else self.reason.name
        out["n_jev"] = self.n_jev
        return out

    @classmethod
    def restore(cls, problem, saved: SavedState) -> LMState:
        """The state :meth:`save` wrote, with the problem's evaluator told where the run
        stands (the Jacobian there, which the next step's secant update reads)."""
        values = {f: saved[f] for f in _SAVED_FIELDS}
        for f in ("cost", "lam", "actual", "pred", "cost_before", "step_norm"):
            values[f] = float(values[f])
        values["previous_step_norm"] = float(values["previous_step_norm"])
        values["n_fev"], values["floor_steps"] = int(values["n_fev"]), int(values["floor_steps"])
        values["augmented"] = bool(values["augmented"])
        evaluator = problem.evaluator()
        uh = np.asarray(values["uh"], dtype=np.float64)
        values["uh"] = uh
        done_before = int(saved["n_jev"])
        evaluator.resume_at(uh, (values["A"], values["g"], values["cost"]))
        reason = saved["reason"]
        return cls(
            u=evaluator.point(uh),
            reason=None if reason is None else Status[reason],
            jacobian=problem.jacobian,
            jev_offset=done_before - problem.jacobian.n_jev,
            **values,
        )


# The fields a checkpoint holds (with the reason, and n_jev added by the solver).
_SAVED_FIELDS = (
    "uh", "cost", "A", "g", "D", "lam", "n_fev", "delta", "actual", "pred", "cost_before",
    "step_norm", "previous_step_norm", "floor_steps", "S", "augmented",
)  # fmt: skip


def secant_update(state: LMState, new: AcceptedPoint, s: np.ndarray, actual: float):
    """Update the estimate ``S`` of the residual curvature ``Σ r_i ∇²r_i`` after the step
    ``s`` and choose the model of the next step.

    The Hessian of the cost is ``JᵀWJ + S``; Gauss–Newton drops ``S`` and converges only
    linearly where the residuals are not small. ``S`` is kept by the structured secant
    update of Dennis, Gay and Welsch (NL2SOL, ACM TOMS 7, 1981): ``S⁺ s = y#`` with
    ``y# = (J⁺ - J)ᵀ r⁺ = g⁺ - Jᵀr⁺``, exact where the evaluator still holds the previous
    Jacobian (``new.jr = Jᵀr⁺``) and otherwise ``g⁺ - g - JᵀJ s`` (equal to first order in
    the step), a symmetric rank-two correction along ``y = g⁺ - g`` after sizing ``S`` by
    ``min(1, |sᵀy#| / |sᵀSs|)``. The next step uses ``JᵀWJ + S`` when that model predicted
    this step's actual reduction better than Gauss–Newton's did (NL2SOL's choice). Below
    the cost's resolution that choice compares rounding, but ``S`` is still updated from
    the gradients, which stay exact, and a step the augmented model fails is retried with
    Gauss–Newton's (measured on NIST: keeping the previous choice there instead cost
    iterations on Lanczos3 and MGH17 and gained none).
    """
    A_s = state.A.dot(s)
    y = new.g - state.g
    ys = float(y.dot(s))
    ysharp = new.g - new.jr if new.jr is not None else y - A_s
    if state.S is None:  # the first update, from S = 0
        if not ys > 0:
            return None, False
        w, S, augmented = ysharp, 0.0, False
    else:
        S_s = state.S.dot(s)
        sSs = float(s.dot(S_s))
        pred_gn = -float(state.g.dot(s) + 0.5 * s.dot(A_s))
        augmented = abs(actual - (pred_gn - 0.5 * sSs)) < abs(actual - pred_gn)
        if not ys > 0:
            return state.S, augmented
        tau = min(1.0, abs(float(s.dot(ysharp))) / abs(sSs)) if sSs != 0 else 1.0
        w, S = ysharp - tau * S_s, tau * state.S
    # S⁺ = τS + (w yᵀ + y wᵀ)/yᵀs - (wᵀs) y yᵀ/(yᵀs)², as two outer products
    v = y / ys
    return S + np.outer(w, v) + np.outer(v, w - float(w.dot(s)) * v), augmented
