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
give a wrong imaginary part; the engine is therefore validated at construction by
comparing ``wᵀJ`` with one reverse-mode product of the real model, and falls back to
forward mode otherwise, recording why. A model object that passed is not checked again for
problems of the same layout (parameter names, bounds, fixed values, input shapes).
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from inversekit.derivatives.compiled import param_signature, tensor_signature
from inversekit.derivatives.forward import ChunkedJacobian, NormalEquations
from inversekit.derivatives.param_slots import ParamSlots
from inversekit.derivatives.point_memo import PointMemo
from inversekit.errors import describe
from inversekit.linalg.host import on_host64

STEP = 1e-20
# Agreement with a reverse-mode product required at construction, per dtype (both are
# exact to rounding, which in float32 alone reaches 1e-7 and more; a non-holomorphic
# model errs by order one).
CHECK_RTOL = {torch.float64: 1e-8, torch.float32: 1e-3}
# A second difference below this multiple of eps·max|r| is rounding, not curvature.
_UNRESOLVED = 1e3
_COMPLEX = {torch.float64: torch.complex128, torch.float32: torch.complex64}


class ComplexStepJacobian:
    """Complex-step engine with the interface of
    :class:`~inversekit.derivatives.forward.ChunkedJacobian`.

    Attributes:
        engine_name: ``"complex-step"`` when validated, ``"eager"`` after a fall-back.
        reason: why (e.g. the validation mismatch or the error the model raised).
        batching: how the perturbed points are evaluated: ``"broadcast-complex"`` (the
            parameters broadcast against complex copies of the inputs), ``"broadcast"``
            (against the real inputs) or ``"vmap"``.
    """

    speculative = False  # its batch of p complex calls costs more than one cost pass

    def __init__(self, problem, step: float = STEP):
        self.problem = problem
        self.step = step
        self.eager = ChunkedJacobian(problem)
        self.n_jev = 0
        self.batching: str | None = None
        self.engine_name = "eager"
        self.reason = ""
        self.last = PointMemo()  # (J, r) at the last point asked
        self._steps: Tensor | None = None  # h I: the imaginary parts of the p points
        self._cinputs: tuple | None = None
        self._slots: ParamSlots | None = None  # complex parameter slots, broadcast modes
        self._sigma_np: np.ndarray | None = None
        self._validate()

    # --- set-up ---------------------------------------------------------------------
    def _validate(self) -> None:
        pr = self.problem
        if pr.dtype not in _COMPLEX:
            self.reason = f"complex step needs float32/float64, got {pr.dtype}"
            return
        # the batch's outputs are whitened here by (f - y)/σ: anything else (a full inverse
        # covariance, whose p x n x n work does not suit a small-problem engine; prior
        # rows; another likelihood) stays on forward mode
        obstacle = pr.plain_gaussian_obstacle
        if obstacle is not None:
            self.reason = obstacle
            return
        u = pr.u0
        failures = []
        # Broadcasting a batch through the model is only sound when every free parameter
        # is a scalar: a tensor parameter's leading axis would be mistaken for its own.
        scalars = all(pr.params.values[n].dim() == 0 for n in pr.params.free_names)
        # Complex copies of the data arrays first: mixed real/complex arithmetic takes a slow
        # casting path in torch (the Gauss models of NIST run twice as fast without it),
        # but a model may compare or index with its inputs, so real inputs are tried next.
        modes = ("broadcast-complex", "broadcast", "vmap") if scalars else ("vmap",)
        if self._use_verdict(u):
            return
        for batching in modes:
            try:
                J, r = self._evaluate(u, batching)
            except Exception as exc:  # noqa: BLE001 - any failure means: not complex-safe
                failures.append(f"{batching}: {describe(exc)}")
                continue
            try:
                mismatch = _reverse_mode_mismatch(pr.residual_function(), u, J)
            except Exception as exc:  # noqa: BLE001 - no reference, so no complex step
                failures.append(f"reverse mode: {describe(exc)}")
                break
            if mismatch <= CHECK_RTOL[pr.dtype]:
                self._accept(u, J, r, batching, "validated against reverse mode")
                _remember(pr, batching)
                return
            failures.append(f"{batching}: Jacobian differs from reverse mode by {mismatch:.2g}")
        self.reason = (
            "model is not complex-step safe; eager forward mode (" + "; ".join(failures) + ")"
        )

    def _use_verdict(self, u: Tensor) -> bool:
        """Take the verdict of an earlier problem on the same model object and layout (the
        reverse-mode check costs about two model calls, as much as a few iterations of a
        small fit that a user may run thousands of times)."""
        batching = _known(self.problem)
        if batching is None:
            return False
        try:
            J, r = self._evaluate(u, batching)
        except Exception:  # noqa: BLE001 - check again from scratch
            return False
        self._accept(u, J, r, batching, "validated against reverse mode for this model")
        return True

    def _accept(self, u: Tensor, J: Tensor, r: Tensor, batching: str, how: str) -> None:
        self.batching = batching
        self.engine_name = "complex-step"
        self.reason = f"complex step {how} ({batching})"
        self.last.put(u, (J, r))  # the solver starts here

    # --- evaluation -----------------------------------------------------------------
    def _complex_outputs(self, u: Tensor, batching: str) -> Tensor:
        """Model outputs ``(p, n)`` (flat, not whitened) at the ``p`` complex points
        ``u + i h e_k``: only their imaginary parts are used, so ``y`` is never subtracted."""
        pr = self.problem
        p = u.numel()
        if batching != "vmap" and pr.params.all_scalar:
            # each parameter a (p, 1, ...) view of one buffer whose imaginary part is h I:
            # one copy per call instead of building the points and their views
            slots = self._slots_for(p)
            values = slots.fill(u.reshape(p, *([1] * (slots.buffer.dim() - 1))))
        else:
            if self._steps is None or self._steps.shape[0] != p:
                self._steps = self.step * torch.eye(p, dtype=u.dtype, device=u.device)
            C = torch.complex(u[:, None].expand(p, p), self._steps)  # column k: u + i h e_k
            if batching == "vmap":

                def one(point: Tensor) -> Tensor:
                    return pr.model(pr.params.unpack(point), *pr.inputs).reshape(-1)

                return torch.vmap(one)(C.mT)
            values = _batched_unpack(pr.params, C, pr.y.dim())
        return self._call_batch(values, batching, p).reshape(p, -1)

    def _call_batch(self, values: dict[str, Tensor], batching: str, p: int) -> Tensor:
        """The model on the ``p`` broadcast points ``values``, its output checked."""
        pr = self.problem
        inputs = self._complex_inputs() if batching == "broadcast-complex" else pr.inputs
        f = pr.model(values, *inputs)
        if f.shape != (p, *pr.y.shape):
            raise ValueError(f"batched output has shape {tuple(f.shape)}")
        return f

    def _slots_for(self, p: int) -> ParamSlots:
        """Complex parameter slots ``(p, p, 1, ...)`` with imaginary part ``h I`` (made once)."""
        if self._slots is None:
            pr = self.problem
            shape = (p, p, *([1] * pr.y.dim()))
            template = _step_template(shape, pr.dtype, str(pr.device), self.step)
            with torch.inference_mode(False):  # writable in and out of inference mode
                buffer = template.clone()
            self._slots = ParamSlots(self.problem.params, buffer, buffer.real)
        return self._slots

    def _complex_inputs(self) -> tuple:
        """The problem's inputs with floating tensors made complex (made once)."""
        if self._cinputs is None:
            cdtype = _COMPLEX[self.problem.dtype]
            self._cinputs = tuple(
                v.to(cdtype) if isinstance(v, Tensor) and v.is_floating_point() else v
                for v in self.problem.inputs
            )
        return self._cinputs

    def _evaluate(self, u: Tensor, batching: str | None = None) -> tuple[Tensor, Tensor]:
        """``(J, r)`` at ``u`` from one batched complex evaluation."""
        batching = batching or self.batching
        # r from the real model, not Re R: complex exp, division... round differently,
        # and g = Jᵀr should be the gradient of the very cost the solver compares
        if self.serves_host(batching) and not u.requires_grad:
            Jt = self._host_transposed(u.numpy(), batching)
            return torch.from_numpy(Jt).mT, self.problem.residuals_view(u)
        with torch.inference_mode():  # R is only read, by one division
            R = self._complex_outputs(u, batching)
        r = self.problem.residuals_view(u)
        sigma = self.problem.noise.sigma
        J = R.imag.mT / self.step
        return (J if sigma is None else J / sigma[:, None]), r

    def serves_host(self, batching: str) -> bool:
        """Whether the batch can be filled and read through NumPy: float64 on the host,
        every free parameter a scalar (the broadcast modes)."""
        pr = self.problem
        return (
            batching != "vmap"
            and pr.dtype is torch.float64
            and pr.device.type == "cpu"
            and pr.params.all_scalar
        )

    def host_jacobian(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Jᵀ, f)`` at the host point ``x`` (float64 NumPy): the whitened Jacobian,
        transposed (p x n), and the model's output there (flat, the real part of the
        batch's first point, equal to the real model's to rounding), from one batched
        complex call whose parameters are written and whose output is read through NumPy:
        no torch operation outside the model. For a validated engine whose problem passes
        :meth:`serves_host` (the solvers' small-problem path)."""
        R = self._host_outputs(x, self.batching)
        return self._whitened_imag(R), R[0].real

    def _host_transposed(self, x: np.ndarray, batching: str) -> np.ndarray:
        return self._whitened_imag(self._host_outputs(x, batching))

    def _host_outputs(self, x: np.ndarray, batching: str) -> np.ndarray:
        """The batch's outputs ``f(x + i h e_k)`` as a complex ``(p, n)`` NumPy view."""
        p = x.size
        values = self._slots_for(p).fill_host(x)
        with torch.inference_mode():
            f = self._call_batch(values, batching, p)
        return f.numpy().reshape(p, -1)

    def _whitened_imag(self, R: np.ndarray) -> np.ndarray:
        # quietly, like torch: a non-finite Jacobian is the solver's to reject
        with np.errstate(all="ignore"):
            Jt = R.imag / self.step  # (p, n), contiguous
            if self.problem.noise.sigma is not None:
                Jt /= self._host_sigma()
        return Jt

    def _host_sigma(self) -> np.ndarray:
        if self._sigma_np is None:
            self._sigma_np = self.problem.noise.sigma.numpy()
        return self._sigma_np

    def _jacobian(self, u: Tensor) -> tuple[Tensor, Tensor]:
        last = self.last.get(u)
        if last is not None:
            return last
        J, r = self._evaluate(u)
        self.last.put(u, (J, r))
        return J, r

    # --- the ChunkedJacobian interface ----------------------------------------------
    def normal_equations(self, u: Tensor) -> NormalEquations:
        """``JᵀJ``, ``Jᵀr`` and ``½ r·r`` of the whitened residuals by complex step."""
        if self.engine_name != "complex-step":
            return self._eager("normal_equations", u)
        try:
            J, r = self._jacobian(u)
        except Exception as exc:  # noqa: BLE001 - validated at the start, failed here
            self.fall_back(exc)
            return self._eager("normal_equations", u)
        self.n_jev += 1
        cost = 0.5 * float(torch.dot(r, r))  # as LeastSquares.cost, to the last bit
        if on_host64(J):
            # NumPy's Jt Jtᵀ is a symmetric rank-k update: exactly symmetric, and cheaper
            Jt, rn = J.mT.numpy(), r.numpy()
            with np.errstate(all="ignore"):
                A, g = Jt @ Jt.T, Jt @ rn
            return NormalEquations(torch.from_numpy(A), torch.from_numpy(g), cost)
        return NormalEquations(J.mT @ J, J.mT @ r, cost)

    def full(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """The whitened Jacobian and residuals."""
        if self.engine_name != "complex-step":
            return self._eager("full", u)
        self.n_jev += 1
        return self._jacobian(u)

    def geodesic_rhs(self, u: Tensor, v: Tensor) -> Tensor:
        """``Jᵀ r''(u)[v, v]`` from the residuals at ``u + v``, by finite difference.

        ``r(u + v) = r + J v + ½ r''[v, v] + O(|v|³)``, so ``2 (r(u + v) - r - J v)`` is
        ``r''[v, v]`` to first order in the step: enough for an acceleration that only
        corrects the step (Transtrum & Sethna use the same difference with ``h = 0.1``).
        The solver has just evaluated ``u + v`` (the plain step), so this costs no model
        call. Where the difference is at the level of the residuals' rounding the
        curvature is unresolved and zero is returned (no acceleration).
        """
        if self.engine_name != "complex-step":
            return self.eager.geodesic_rhs(u, v)
        J, r0 = self._jacobian(u)
        r1 = self.problem.residuals_view(u + v)
        second = 2.0 * ((r1 - r0) - J @ v)
        scale = float(torch.maximum(r0.abs().max(), r1.abs().max()))
        if unresolved_curvature(float(second.abs().max()), scale, r0.dtype):
            return torch.zeros_like(u)
        return J.mT @ second

    def fall_back(self, exc: Exception) -> None:
        self.engine_name = "eager"
        self.reason = (
            f"complex step failed during the fit ({describe(exc)}); eager forward mode from then on"
        )

    def _eager(self, method: str, u: Tensor):
        out = getattr(self.eager, method)(u)
        self.n_jev += 1
        return out


def unresolved_curvature(second: float, scale: float, dtype) -> bool:
    """Whether a second difference of largest magnitude ``second`` is rounding, not
    curvature, for residuals of largest magnitude ``scale`` (below ``_UNRESOLVED`` units
    of rounding; NaN counts as unresolved)."""
    eps = torch.finfo(dtype).eps if isinstance(dtype, torch.dtype) else np.finfo(dtype).eps
    return not second > _UNRESOLVED * eps * scale


@functools.lru_cache(maxsize=64)
def _step_template(shape: tuple, dtype: torch.dtype, device: str, step: float) -> Tensor:
    """Zeros with imaginary part ``h I`` shaped ``(p, p, 1, ...)``: the complex-step slots
    of one layout (never written; every problem fills a clone of its own)."""
    with torch.inference_mode(False):
        template = torch.zeros(shape, dtype=_COMPLEX[dtype], device=device)
        eye = torch.eye(shape[0], dtype=dtype, device=device)
        template.imag.copy_(step * eye.view(shape))
    return template


# Batching modes that passed the reverse-mode check, per model object (held weakly) and
# problem layout: the check is made once per model and layout in a process.
_VERDICTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _layout_key(pr) -> tuple:
    inputs = tuple(tensor_signature(v) for v in pr.inputs)
    return (param_signature(pr.params), inputs, tuple(pr.y.shape), pr.dtype, str(pr.device))


def _known(pr) -> str | None:
    try:
        return _VERDICTS.get(pr.model, {}).get(_layout_key(pr))
    except TypeError:  # a model that cannot be referenced weakly is checked every time
        return None


def _remember(pr, batching: str) -> None:
    try:
        _VERDICTS.setdefault(pr.model, {})[_layout_key(pr)] = batching
    except TypeError:
        pass


def _batched_unpack(params, C: Tensor, data_dims: int) -> dict[str, Tensor]:
    """``params.unpack`` of the ``b`` points that are the columns of ``C`` (p x b), each
    value shaped ``(b, *shape, 1...)``.

    The trailing ones let a batched scalar parameter broadcast against the data arrays.
    """
    if params.all_scalar:  # one view and one unbind for all parameters
        return params.from_scalars(C.reshape(*C.shape, *([1] * data_dims)).unbind(0))
    values = params.unpack(C.mT)
    out = {}
    for name, value in values.items():
        if name in params.slices:
            value = value.reshape(*value.shape, *([1] * data_dims))
        out[name] = value
    return out


def _reverse_mode_mismatch(fn: Callable[[Tensor], Tensor], u: Tensor, J: Tensor) -> float:
    """Largest disagreement of ``wᵀJ`` with one reverse-mode product ``wᵀ ∂r/∂u``.

    ``w`` is Gaussian, so each entry ``wᵀJ_k`` is a random combination of column ``k`` that
    vanishes only if the column does: a column with the wrong value, or zeroed by a
    non-holomorphic operation such as ``abs``, shows up in its own entry, compared with
    the larger of the two sides' sizes (``‖J_k‖`` and ``|wᵀJ_k|`` of the reference). One
    reverse pass costs about as much as two model calls, against ``p`` forward-mode passes
    for a full reference Jacobian.
    """
    gen = torch.Generator(device="cpu").manual_seed(0)
    w = torch.randn(J.shape[0], generator=gen, dtype=torch.float64).to(J)
    with torch.enable_grad():
        x = u.detach().requires_grad_(True)
        (ref,) = torch.autograd.grad(fn(x), x, w)
    got = w @ J
    diff = (got - ref).abs()
    scale = torch.maximum(torch.linalg.vector_norm(J, dim=0), ref.abs())
    ratio = torch.where(diff > 0, diff / torch.where(scale > 0, scale, 1.0), 0.0)
    worst = float(ratio.max())
    return worst if math.isfinite(worst) else math.inf


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
