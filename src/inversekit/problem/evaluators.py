"""A least-squares problem as Levenberg–Marquardt sees it: a function of float64 host points.

LM's own algebra is ``p``-sized (the point, the step, ``A = JᵀWJ``, ``g = JᵀWr``, the
scale), so it runs in float64 NumPy on the host whatever the problem's dtype and device.
An evaluator answers its questions about a point ``uh`` (the unconstrained point ``u`` as
a float64 NumPy vector on the host; ``x`` is kept for physical values everywhere): the
cost ``½ r·r``, the normal equations ``(A, g, cost)`` and the right-hand side of geodesic
acceleration.

- :class:`TensorEvaluator` serves any :class:`~inversekit.LeastSquares`: ``uh`` becomes a
  tensor of the problem's dtype on its device (a view, for float64 on the host) and the
  problem's own methods and derivative engine do the work.
- :class:`HostEvaluator` serves the small problems where per-operation overhead is the
  cost of a fit: float64 on the host, scalar parameters, one chunk, diagonal noise and the
  complex-step engine. Around its two model calls (the real one for a cost, the complex
  batch for a Jacobian) everything is NumPy: the point is written into the parameter
  tensors' storage, the output read through a view, the residuals whitened and the normal
  equations formed by NumPy, about a microsecond per operation against several for a torch
  operation on tiny tensors (a NIST fit needs some sixty per iteration).

Both remember the last point asked: the solver asks for the cost at a trial point and
then, once the step is accepted, for the normal equations there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from inversekit.derivatives.complex_step import ComplexStepJacobian, unresolved_curvature
from inversekit.linalg.host import host64

# (A, g, cost): JᵀWJ (p x p), JᵀWr (p,) as float64 NumPy arrays, and ½ rᵀWr
HostNormalEquations = tuple[np.ndarray, np.ndarray, float]


def make_evaluator(problem) -> TensorEvaluator | HostEvaluator:
    """The fastest evaluator that serves ``problem`` (the two agree to rounding)."""
    return HostEvaluator(problem) if HostEvaluator.serves(problem) else TensorEvaluator(problem)


class TensorEvaluator:
    """Any least-squares problem, through its own tensor methods.

    Attributes:
        speculative: the engine's fused pass gives the normal equations for little more
            than the cost (the solver may then ask for them at a trial point).
    """

    def __init__(self, problem):
        self.problem = problem
        self.data_norm = problem.data_norm
        self.eps = torch.finfo(problem.dtype).eps  # the rounding of residuals and cost
        self.speculative = problem.jacobian.speculative
        self._uh: np.ndarray | None = None
        self._u: Tensor | None = None

    def start(self) -> np.ndarray:
        """The problem's starting point as a new float64 host array."""
        return host64(self.problem.u0).copy()

    def point(self, uh: np.ndarray) -> Tensor:
        """``uh`` as the problem's tensor (the same tensor for the same array, so that the
        problem's one-point memos hit by identity)."""
        if uh is not self._uh:
            self._uh = uh
            self._u = torch.from_numpy(uh).to(dtype=self.problem.dtype, device=self.problem.device)
        return self._u

    def result_point(self, uh: np.ndarray) -> Tensor:
        """The point handed to the result (what the problem knows there is already in it)."""
        return self.point(uh)

    def cost(self, uh: np.ndarray) -> float:
        return self.problem.cost(self.point(uh))

    def normal_equations(self, uh: np.ndarray) -> HostNormalEquations:
        ne = self.problem.normal_equations(self.point(uh))
        return host64(ne.A), host64(ne.g), ne.cost

    def geodesic_rhs(self, uh: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``Jᵀ r''(uh)[v, v]`` (see the engines' ``geodesic_rhs``)."""
        u = self.point(uh)
        return host64(self.problem.jacobian.geodesic_rhs(u, torch.from_numpy(v).to(u)))

    def previous_jacobian_times(self, uh_old: np.ndarray, uh_new: np.ndarray) -> None:
        """``J(uh_old)ᵀ r(uh_new)``: not kept here (the engines hold no Jacobian)."""
        return None

    def resume_at(self, uh: np.ndarray, normal_equations: HostNormalEquations) -> None:
        """A run resumes at ``uh`` with these normal equations: nothing is kept here."""


class HostEvaluator:
    """A small float64 problem on the host with the complex-step engine, in NumPy.

    The results are those of :class:`TensorEvaluator` to rounding: the same operations
    but for the order of summation in ``r·r``, and, at a point whose normal equations are
    asked before its cost (a trial below the cost's resolution), residuals taken from the
    complex batch's real part. Should the complex step fail during a fit, or its engine
    have fallen back to forward mode by another route, every question goes to a
    :class:`TensorEvaluator`.
    """

    speculative = False

    @staticmethod
    def serves(problem) -> bool:
        engine = problem.jacobian
        return (
            isinstance(engine, ComplexStepJacobian)
            and engine.engine_name == "complex-step"
            and engine.serves_host(engine.batching)
            and problem.chunks == [None]
            and problem.plain_gaussian
        )

    def __init__(self, problem):
        self.problem = problem
        self.data_norm = problem.data_norm
        self.eps = float(np.finfo(np.float64).eps)
        self.engine: ComplexStepJacobian = problem.jacobian
        self._slots = problem.host_slots()
        self._y = problem.y.reshape(-1).numpy()
        sigma = problem.noise.sigma
        self._sigma = None if sigma is None else sigma.numpy()
        self._fallback: TensorEvaluator | None = None
        self._r_at = _LastPoint()  # residuals and cost at the last point evaluated
        self._ne_at = _LastPoint()  # (normal equations, Jᵀ, r) at the last Jacobian
        self._ne_before = _LastPoint()  # ... and at the one before (for the secant term)

    def start(self) -> np.ndarray:
        """The starting point; the Jacobian the engine computed there when it validated
        itself is taken over, so the solver's first normal equations cost no model call."""
        pr = self.problem
        uh = pr.u0.numpy().copy()
        known = self.engine.last.get(pr.u0)
        if known is not None:
            J, r = known
            self._keep_jacobian(uh, J.mT.numpy(), r.numpy())
        return uh

    def point(self, uh: np.ndarray) -> Tensor:
        return torch.from_numpy(uh)

    def result_point(self, uh: np.ndarray) -> Tensor:
        """``uh`` as a tensor, with the residuals and Jacobian known there handed to the
        problem: the result's cost and covariance then need no model call."""
        u = torch.from_numpy(uh)
        known = self._ne_at.get(uh)
        if known is not None and self._fallback is None:
            _, Jt, r = known
            r_t = torch.from_numpy(r)
            self.problem.remember_residuals(u, r_t)
            self.engine.last.put(u, (torch.from_numpy(Jt).mT, r_t))
        return u

    def resume_at(self, uh: np.ndarray, normal_equations: HostNormalEquations) -> None:
        """A run resumes at ``uh`` whose normal equations (from the checkpoint) are known:
        the Jacobian there is formed again, as the uninterrupted run still held it (the
        secant update of the next accepted step reads ``J(uh)ᵀ r(uh_new)``)."""
        if self._fallback is not None or self.engine.engine_name != "complex-step":
            return
        Jt, f = self.engine.host_jacobian(uh)
        r, _ = self._whitened(f, uh)
        self.engine.n_jev += 1
        self._ne_at.put(uh, (normal_equations, Jt, r))
        self._r_at.put(uh, (r, normal_equations[2]))

    # --- what the solver asks -------------------------------------------------------
    def residuals(self, uh: np.ndarray) -> np.ndarray:
        """Whitened residuals at ``uh`` (read only: the evaluator keeps them)."""
        return self._residuals_and_cost(uh)[0]

    def cost(self, uh: np.ndarray) -> float:
        if self._fallback is not None:
            return self._fallback.cost(uh)
        return self._residuals_and_cost(uh)[1]

    def normal_equations(self, uh: np.ndarray) -> HostNormalEquations:
        if self._fallback is None and self.engine.engine_name != "complex-step":
            self._fallback = TensorEvaluator(self.problem)  # fell back by another route
        if self._fallback is not None:
            return self._fallback.normal_equations(uh)
        known = self._ne_at.get(uh)
        if known is not None:
            return known[0]
        try:
            Jt, f = self.engine.host_jacobian(uh)
        except Exception as exc:  # noqa: BLE001 - validated at the start, failed here
            self.engine.fall_back(exc)
            self._fallback = TensorEvaluator(self.problem)
            return self._fallback.normal_equations(uh)
        # The residuals of the real model when the solver asked for the cost here first
        # (g = Jᵀr is then the gradient of the very cost it compared); otherwise (a trial
        # taken below the cost's resolution) from the batch's real part, equal to rounding:
        # one model call instead of two.
        r, cost = self._r_at.get(uh) or self._whitened(f, uh)
        return self._keep_jacobian(uh, Jt, r, cost)

    def geodesic_rhs(self, uh: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``Jᵀ r''[v, v]`` by the finite difference of
        :meth:`ComplexStepJacobian.geodesic_rhs`, from the residuals at ``uh + v`` (the
        plain step, just evaluated: no model call)."""
        self.normal_equations(uh)
        if self._fallback is not None:  # set before, or by that call
            return self._fallback.geodesic_rhs(uh, v)
        _, Jt, r0 = self._ne_at.get(uh)
        r1 = self.residuals(uh + v)
        with np.errstate(all="ignore"):
            second = 2.0 * ((r1 - r0) - Jt.T @ v)
            scale = max(float(np.abs(r0).max()), float(np.abs(r1).max()))
            if unresolved_curvature(float(np.abs(second).max()), scale, r0.dtype):
                return np.zeros_like(uh)
            return Jt @ second

    def previous_jacobian_times(self, uh_old: np.ndarray, uh_new: np.ndarray):
        """``J(uh_old)ᵀ r(uh_new)`` when both are at hand (the Jacobian at one of the last two
        points whose normal equations were formed, the residuals at the last point
        evaluated), else ``None``: the secant term's exact target needs it."""
        known = self._ne_at.get(uh_old) or self._ne_before.get(uh_old)
        residuals = self._r_at.get(uh_new)
        if known is None or residuals is None or self._fallback is not None:
            return None
        return known[1].dot(residuals[0])

    # --- evaluation -----------------------------------------------------------------
    def _residuals_and_cost(self, uh: np.ndarray) -> tuple[np.ndarray, float]:
        known = self._r_at.get(uh)
        if known is not None:
            return known
        pr = self.problem
        values = self._slots.fill_host(uh)
        with torch.inference_mode():
            f = pr.model(values, *pr.inputs)
        if f.requires_grad:  # a constant the model returned, not computed here
            f = f.detach()
        return self._whitened(f.numpy().reshape(-1), uh)

    def _whitened(self, f: np.ndarray, uh: np.ndarray) -> tuple[np.ndarray, float]:
        """Residuals ``(f - y)/σ`` and cost from the model output ``f`` (flat) at ``uh``,
        remembered for ``uh``."""
        # quietly, like torch: a non-finite cost is the solver's to reject
        with np.errstate(all="ignore"):
            r = f - self._y
            if self._sigma is not None:
                r /= self._sigma
            out = (r, 0.5 * float(r.dot(r)))  # ndarray.dot: the cheapest call into BLAS
        self._r_at.put(uh, out)
        return out

    def _keep_jacobian(self, uh: np.ndarray, Jt: np.ndarray, r: np.ndarray, cost=None):
        """Form and remember the normal equations from ``Jᵀ`` and ``r`` at ``uh``."""
        if cost is None:
            cost = 0.5 * float(r.dot(r))
            self._r_at.put(uh, (r, cost))
        # Jt Jtᵀ is a symmetric rank-k update in NumPy (syrk): exactly symmetric
        with np.errstate(all="ignore"):
            ne = (Jt.dot(Jt.T), Jt.dot(r), cost)
        self.engine.n_jev += 1
        self._ne_before.put_from(self._ne_at)
        self._ne_at.put(uh, (ne, Jt, r))
        return ne


class _LastPoint:
    """The value computed at the last point (a float64 array) asked, found again for any
    array holding the same bytes (the solver's points are new arrays, ``uh + δ``, and a
    byte comparison of a few numbers costs less than a NumPy call)."""

    __slots__ = ("key", "value")

    def __init__(self) -> None:
        self.key: bytes | None = None
        self.value = None

    def get(self, uh: np.ndarray):
        return self.value if uh.tobytes() == self.key else None

    def put(self, uh: np.ndarray, value) -> None:
        self.key, self.value = uh.tobytes(), value

    def put_from(self, other: _LastPoint) -> None:
        """Take over what ``other`` holds."""
        self.key, self.value = other.key, other.value
