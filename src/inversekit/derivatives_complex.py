"""Complex-step Jacobians: every column from one batched model call.

For a model that is holomorphic in its parameters (built from +, -, *, /, powers, exp, log,
trigonometric functions...), the complex step

    J[:, k] = Im r(u + i h e_k) / h

is exact to rounding for any small ``h`` (no subtraction, so no cancellation; the
truncation error is ``O(h²)``, nil at ``h = 1e-20``). All ``p`` perturbed points are
evaluated in one call of the model on a batch of complex parameters, so a Jacobian costs
one (wider) forward evaluation instead of ``p`` forward-mode passes through
``torch.func``'s dispatch: for tiny problems that per-call overhead is most of the time.

The batch is formed by broadcasting when the model allows it (each free scalar parameter
becomes a ``(p, 1, ..., 1)`` tensor) and by ``torch.vmap`` otherwise. Models that are not
holomorphic (``abs``, ``clamp``, comparisons, ``real``...) either raise on complex input or
give a wrong imaginary part; the engine is therefore validated once, at construction,
against the forward-mode Jacobian, and falls back to it otherwise, recording why.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from inversekit.derivatives import ChunkedJacobian, NormalEquations, jacobian

STEP = 1e-20
# Agreement with forward mode required at construction.
CHECK_RTOL = 1e-10
# Step, in units of the velocity, of the eighth-turn complex steps for second directional
# derivatives: with the t⁴ error extrapolated away, truncation is O(t⁸) and rounding eps/t.
GEODESIC_STEP = 5e-4
_COMPLEX = {torch.float64: torch.complex128, torch.float32: torch.complex64}


class ComplexStepJacobian:
    """Complex-step engine with the :class:`~inversekit.derivatives.ChunkedJacobian` interface.

    Attributes:
        engine_name: ``"complex-step"`` when validated, ``"eager"`` after a fall-back.
        reason: why (e.g. the validation mismatch or the error the model raised).
        batching: ``"broadcast"`` or ``"vmap"``: how the perturbed points are evaluated.
    """

    def __init__(self, problem, step: float = STEP):
        self.problem = problem
        self.step = step
        self.eager = ChunkedJacobian(problem)
        self.n_jev = 0
        self.batching: str | None = None
        self.engine_name = "eager"
        self.reason = ""
        self._last: tuple[Tensor, Tensor, Tensor] | None = None  # (u, J, r)
        self._validate()

    # --- set-up ---------------------------------------------------------------------
    def _validate(self) -> None:
        pr = self.problem
        if pr.dtype not in _COMPLEX:
            self.reason = f"complex step needs float32/float64, got {pr.dtype}"
            return
        if not pr.noise.diagonal:
            # whitening by a Cholesky factor is linear, so it would work, but the memory is
            # p x n x n-sized work for what is a small-problem engine
            self.reason = "a full inverse covariance is not supported by the complex step"
            return
        u = pr.u0
        J_ref, r_ref = jacobian(pr.residual_function(), u)
        failures = []
        # Broadcasting a batch through the model is only sound when every free parameter
        # is a scalar: a tensor parameter's leading axis would be mistaken for its own.
        scalars = all(pr.params.values[n].dim() == 0 for n in pr.params.free_names)
        for batching in ("broadcast", "vmap") if scalars else ("vmap",):
            try:
                J, r = self._evaluate(u, batching)
            except Exception as exc:  # noqa: BLE001 - any failure means: not complex-safe
                failures.append(f"{batching}: {type(exc).__name__}: {_first_line(exc)}")
                continue
            mismatch = _relative(J, J_ref)
            if mismatch <= CHECK_RTOL and _relative(r, r_ref) <= CHECK_RTOL:
                self.batching = batching
                self.engine_name = "complex-step"
                self.reason = f"complex step validated against forward mode ({batching})"
                return
            failures.append(f"{batching}: Jacobian differs from forward mode by {mismatch:.2g}")
        self.reason = (
            "model is not complex-step safe; eager forward mode (" + "; ".join(failures) + ")"
        )

    # --- evaluation -----------------------------------------------------------------
    def _complex_residuals(self, U: Tensor, batching: str) -> Tensor:
        """Whitened residuals ``(b, n)`` at a batch ``U`` (b x p) of complex points."""
        pr = self.problem
        sw = pr.noise.sqrt_weights
        y = pr.y.reshape(-1)

        def one(u: Tensor) -> Tensor:
            return pr.model(pr.params.unpack(u), *pr.inputs).reshape(-1)

        if batching == "vmap":
            f = torch.vmap(one)(U)
        else:
            f = pr.model(_batched_unpack(pr.params, U, pr.y.dim()), *pr.inputs)
            if f.shape != (U.shape[0], *pr.y.shape):
                raise ValueError(f"batched output has shape {tuple(f.shape)}")
            f = f.reshape(U.shape[0], -1)
        raw = f - y
        return raw if sw is None else sw * raw

    def _real_residuals(self, u: Tensor) -> Tensor:
        return self.problem.residual_function()(u)

    def _evaluate(self, u: Tensor, batching: str | None = None) -> tuple[Tensor, Tensor]:
        """``(J, r)`` at ``u`` from one batched complex evaluation."""
        p = u.numel()
        U = u.to(_COMPLEX[u.dtype]).expand(p, p).clone()
        U.diagonal().imag.fill_(self.step)  # e_k perturbations, one per row
        with torch.no_grad():
            R = self._complex_residuals(U, batching or self.batching)
            # r from the real model, not Re R: complex exp, division... round differently,
            # and g = Jᵀr must match the real cost the solver compares steps with, or the
            # last digits of the minimum are lost (MGH17: 8.5 instead of 11.5 digits)
            r = self._real_residuals(u)
        return (R.imag / self.step).mT, r

    def _jacobian(self, u: Tensor) -> tuple[Tensor, Tensor]:
        last = self._last
        if last is not None and torch.equal(last[0], u):
            return last[1], last[2]
        J, r = self._evaluate(u)
        self._last = (u.detach().clone(), J, r)
        return J, r

    # --- the ChunkedJacobian interface ----------------------------------------------
    def normal_equations(self, u: Tensor) -> NormalEquations:
        """``JᵀJ``, ``Jᵀr`` and ``½ r·r`` of the whitened residuals by complex step."""
        if self.engine_name != "complex-step":
            return self._eager("normal_equations", u)
        try:
            J, r = self._jacobian(u)
        except Exception as exc:  # noqa: BLE001 - validated at the start, failed here
            self._fall_back(exc)
            return self._eager("normal_equations", u)
        self.n_jev += 1
        return NormalEquations(J.mT @ J, J.mT @ r, 0.5 * float(r @ r))

    def full(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """The whitened Jacobian and residuals."""
        if self.engine_name != "complex-step":
            return self._eager("full", u)
        self.n_jev += 1
        return self._jacobian(u)

    def geodesic_rhs(self, u: Tensor, v: Tensor) -> Tensor:
        """``Jᵀ r''(u)[v, v]``, ``r''`` by complex steps along an eighth-turn.

        With ``ω = e^{iπ/4}`` (so ``ω² = i``, ``ω⁴ = -1``), Taylor expansion of the
        real-on-reals ``r`` gives ``S(t) = Im(r(u + ωtv) + r(u - ωtv)) / t² = r''[v, v]
        - t⁴ r⁽⁶⁾[v…] / 360 + O(t⁸)`` (the ``t²`` term is real and drops out), with no
        subtraction of ``r(u)``. Richardson's ``(16 S(t) - S(2t)) / 15`` removes the
        ``t⁴`` term, so ``t`` can be large enough that rounding (``eps/t`` relative to
        ``r'[v]``) stays near 1e-12. The four points are one batched model call.
        """
        if self.engine_name != "complex-step":
            return self.eager.geodesic_rhs(u, v)
        J, _ = self._jacobian(u)
        t = GEODESIC_STEP
        omega = complex(2**-0.5, 2**-0.5)
        cdtype = _COMPLEX[u.dtype]
        uc, vc = u.to(cdtype), v.to(cdtype)
        steps = torch.tensor([t, -t, 2 * t, -2 * t], dtype=cdtype, device=u.device)
        U = uc + (omega * steps)[:, None] * vc
        try:
            with torch.no_grad():
                R = self._complex_residuals(U, self.batching).imag
        except Exception as exc:  # noqa: BLE001 - validated at the start, failed here
            self._fall_back(exc)
            return self.eager.geodesic_rhs(u, v)
        s1 = (R[0] + R[1]) / (t * t)
        s2 = (R[2] + R[3]) / (4 * t * t)
        return J.mT @ ((16 * s1 - s2) / 15)

    def _fall_back(self, exc: Exception) -> None:
        self.engine_name = "eager"
        self.reason = (
            f"complex step failed during the fit ({type(exc).__name__}: {_first_line(exc)}); "
            "eager forward mode from then on"
        )

    def _eager(self, method: str, u: Tensor):
        out = getattr(self.eager, method)(u)
        self.n_jev += 1
        return out


def _batched_unpack(params, U: Tensor, data_dims: int) -> dict[str, Tensor]:
    """``params.unpack`` of a batch ``U`` (b x p), each value shaped ``(b, *shape, 1...)``.

    The trailing ones let a batched scalar parameter broadcast against the data arrays.
    """
    values = params.unpack(U)
    out = {}
    for name, value in values.items():
        if name in params.slices:
            value = value.reshape(*value.shape, *([1] * data_dims))
        out[name] = value
    return out


def _relative(a: Tensor, b: Tensor) -> float:
    scale = float(b.abs().max())
    diff = float((a - b).abs().max())
    return diff / scale if scale > 0 else diff


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def complex_step_jacobian(fn: Callable[[Tensor], Tensor], u: Tensor, step: float = STEP):
    """``(J, r)`` of ``fn`` at ``u`` by complex step, ``fn`` evaluated once per column.

    A plain helper for tests and for functions that cannot be batched.
    """
    cols, r = [], None
    for k in range(u.numel()):
        w = u.to(_COMPLEX[u.dtype]).clone()
        w[k] += 1j * step
        out = fn(w)
        cols.append(out.imag / step)
        r = out.real if r is None else r
    return torch.stack(cols, dim=1), r
