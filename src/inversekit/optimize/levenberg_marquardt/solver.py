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
  shrinking (at most ``_MAX_FLOOR_STEPS``); the run stops when they no longer shrink or a
  trial at that level makes the cost measurably worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from torch import Tensor

from inversekit.errors import InputError
from inversekit.linalg.damped import DampedSystem
from inversekit.results.status import Status

# Relative cost changes below this many units in the last place are rounding noise.
_COST_ULPS = 64
# Units in the last place of y/σ taken as the rounding error of each whitened residual.
_RESIDUAL_ULPS = 8
# Steps taken below that resolution, while they keep shrinking, polish the last digits.
_MAX_FLOOR_STEPS = 50
_MIN_DAMPING = 1e-15
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
            step when it predicted the last step better (see ``_secant``). Where the
            residuals are not small Gauss–Newton converges only linearly; measured on
            NIST: ENSO in 22 and 16 iterations instead of 77 and 70, Kirby2 and Chwirut
            a fifth to a third fewer, most others within a few iterations either way,
            MGH17 from its first start a fifth more. Not used above
            ``SECANT_MAX_PARAMS`` (500) free parameters.
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
        if self.max_time is not None and not self.max_time > 0:
            raise InputError(f"LM option `max_time` must be > 0 seconds, got {self.max_time}")

    # --- solver contract ------------------------------------------------------------
    def init(self, problem) -> LMState:
        if not hasattr(problem, "evaluator"):
            raise InputError(
                f"LM solves least-squares problems (ik.LeastSquares); got {type(problem).__name__}"
            )
        evaluator = problem.evaluator()
        x = evaluator.start()
        A, g, cost = evaluator.normal_equations(x)
        return LMState(
            x=x,
            u=evaluator.point(x),
            cost=cost,
            A=A,
            g=g,
            D=_initial_scale(A),
            lam=self.lambda0,
            n_fev=1,
            reason=None if _finite(A, g) else Status.NONFINITE,
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
            step, x_new, cost_new, evals = self._trial(
                evaluator, problem, state, system, delta, pred, floor
            )
            n_fev += evals
            actual = state.cost - cost_new
            good = (pred > 0 and actual >= self.accept * pred) or (floor and actual >= -noise)
            if math.isfinite(cost_new) and good:
                A, g, cost = evaluator.normal_equations(x_new)
                if _finite(A, g):
                    jr = evaluator.previous_jacobian_times(state.x, x_new)
                    new = _Point(x_new, evaluator.point(x_new), cost, A, g, jr)
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
        size = math.sqrt(float(np.dot(state.D, state.x**2)))
        if _distance_left(state) <= self.xtol * (size + self.xtol):
            return Status.XTOL
        if _gradient_cosine(state.A, state.g, state.cost) <= self.gtol:
            return Status.GTOL
        return None

    def postprocess(self, problem, state: LMState, run):
        from inversekit.results.least_squares import least_squares_result

        u = problem.evaluator().result_point(state.x)
        return least_squares_result(problem, u, run, solver=self.name, n_fev=state.n_fev)

    # --- maths ----------------------------------------------------------------------
    def _trial(self, evaluator, problem, state: LMState, system, delta, pred, floor):
        """Evaluate the damped step ``δ`` and, where it is needed, its accelerated version.

        The plain point ``x + δ`` is tried first. When the linear model fails there (actual
        reduction below ``geodesic_below`` times the predicted), the geodesic acceleration
        ``a`` is computed with the same factor and ``x + δ + a/2`` tried too; the better of
        the two is returned as ``(step, x_new, cost_new, model evaluations)``.
        """
        x_plain = state.x + delta
        cost_plain = self._trial_cost(evaluator, state, x_plain, floor)
        if (
            not self.geodesic
            or floor
            or (math.isfinite(cost_plain) and state.cost - cost_plain >= self.geodesic_below * pred)
        ):
            return delta, x_plain, cost_plain, 1
        step = self._accelerated(evaluator, problem, state, system, delta)
        if step is None:
            return delta, x_plain, cost_plain, 1
        x_acc = state.x + step
        cost_acc = evaluator.cost(x_acc)
        if math.isfinite(cost_acc) and not cost_acc >= cost_plain:
            return step, x_acc, cost_acc, 2
        return delta, x_plain, cost_plain, 2

    @staticmethod
    def _trial_cost(evaluator, state: LMState, x: np.ndarray, floor: bool) -> float:
        """The cost at a trial point, with the normal equations there when the step is
        likely to be accepted (they are needed next, and the pass that gives them gives
        the cost): always below the cost's resolution, where the step is taken unless it
        measurably hurts (for the complex step, one model call instead of two), and after
        a well-modelled step for an engine whose fused pass costs little more than the
        cost (``speculative``: no second pass over the data)."""
        if floor or (evaluator.speculative and state.actual >= 0.75 * state.pred):
            return evaluator.normal_equations(x)[2]
        return evaluator.cost(x)

    def _too_long(self, bounded: np.ndarray | None, delta: np.ndarray) -> bool:
        """Whether ``δ`` moves a bounded parameter by more than ``max_bounded_step``."""
        return bounded is not None and float(np.abs(delta[bounded]).max()) > self.max_bounded_step

    def _accelerated(self, evaluator, problem, state: LMState, system, delta):
        """``δ + a/2`` with ``(H + λD) a = -Jᵀ r''[δ, δ]`` (``H`` the step's model, ``A`` or
        ``A + S``), or ``None`` when the
        acceleration is not finite or too large (``2‖a‖/‖δ‖ > geodesic_ratio``, scaled),
        or when ``δ + a/2`` moves a bounded parameter too far (``max_bounded_step``)."""
        accel = system.solve(-evaluator.geodesic_rhs(state.x, delta))
        if not np.isfinite(accel).all() or not accel.any():
            return None
        sd = np.sqrt(state.D)
        if 2 * np.linalg.norm(sd * accel) > self.geodesic_ratio * np.linalg.norm(sd * delta):
            return None
        step = delta + 0.5 * accel
        return None if self._too_long(problem.params.bounded, step) else step

    def _accepted(self, state, new: _Point, delta, actual, pred, lam, n_fev, floor) -> LMState:
        scaled = np.sqrt(state.D) * delta
        step_norm = math.sqrt(float(scaled @ scaled))
        S, augmented = state.S, False
        if self.secant and delta.size <= SECANT_MAX_PARAMS:
            S, augmented = _secant(state, new, delta, actual)
        return LMState(
            S=S,
            augmented=augmented,
            x=new.x,
            u=new.u,
            cost=new.cost,
            A=new.A,
            g=new.g,
            D=np.maximum(state.D, np.diagonal(new.A)),
            lam=max(lam / self.lambda_down, _MIN_DAMPING),
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
class _Point:
    """An accepted point (host float64, and as the problem's tensor) with its normal
    equations (host float64)."""

    x: np.ndarray
    u: Tensor
    cost: float
    A: np.ndarray
    g: np.ndarray
    jr: np.ndarray | None = None  # J(previous point)ᵀ r(x), where the evaluator has it


@dataclass
class LMState:
    """Levenberg–Marquardt iterate: point, normal equations there, scaling and damping.

    The point ``x``, ``A = JᵀWJ``, ``g = JᵀWr`` and the Marquardt scale ``D`` are float64
    NumPy arrays on the host, whatever the problem's dtype and device: the solver's
    ``p``-sized algebra is cheaper there, and float64 keeps it accurate for float32
    problems. ``u`` is ``x`` as the problem's tensor (what callbacks and results see).
    """

    x: np.ndarray
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
    S: np.ndarray | None = None  # secant estimate of Σ r_i ∇²r_i (see _secant)
    augmented: bool = False  # the next step uses JᵀWJ + S
    reason: Status | None = None


def cost_resolution(cost, data_norm, eps: float):
    """The smallest change of ``cost = ½ r·r`` that is not rounding.

    Two parts: ``_COST_ULPS`` units in the last place of the cost itself, and the
    cancellation in ``r = (f - y)/σ``: each residual carries an error of a few ulp of
    ``y/σ`` (``_RESIDUAL_ULPS``), which moves the cost by up to ``ε ‖r‖ ‖y/σ‖`` times
    that many (Cauchy–Schwarz). The second dominates for small residuals (a fit to
    about 1e-6 of the data, such as NIST Lanczos), where the cost cannot resolve what
    its gradient still can. ``eps`` is the machine epsilon of the problem's dtype (its
    residuals and cost are computed in it). Floats, or tensors of one value per problem of
    a batch.
    """
    return eps * (_COST_ULPS * cost + _RESIDUAL_ULPS * data_norm * (2.0 * cost) ** 0.5)


def _distance_left(state: LMState) -> float:
    """The scaled distance to the solution the xtol test compares: the last step, or,
    after two steps below the cost's resolution (where the steps contract by a measured
    ``ρ < 0.9``: linearly for Gauss–Newton, faster with the secant term), the rest of
    their geometric series."""
    sn = state.step_norm
    if state.floor_steps < 2:
        return sn
    rho = sn / state.previous_step_norm
    return min(sn, sn * rho / (1.0 - rho))


def _secant(state: LMState, new: _Point, s: np.ndarray, actual: float):
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


def _finite(A: np.ndarray, g: np.ndarray) -> bool:
    return bool(np.isfinite(A).all() and np.isfinite(g).all())


def _initial_scale(A: np.ndarray) -> np.ndarray:
    """Marquardt's diagonal scale; a parameter with no effect gets the mean scale."""
    d = np.diagonal(A).copy()
    if d.min() > 0:
        return d
    positive = d[d > 0]
    d[~(d > 0)] = positive.mean() if positive.size else 1.0
    return d


def _gradient_cosine(A: np.ndarray, g: np.ndarray, cost: float) -> float:
    """``max_i |(Jᵀr)_i| / (‖J_i‖ ‖r‖)``: zero exactly at a stationary point."""
    norm_r = math.sqrt(2.0 * cost)
    col = np.sqrt(np.diagonal(A))
    if norm_r == 0:
        return 0.0
    if col.min() > 0:  # the usual case: no column without effect
        return float((np.abs(g) / col).max()) / norm_r
    ok = col > 0
    if not ok.any():
        return 0.0
    return float((np.abs(g[ok]) / col[ok]).max()) / norm_r
