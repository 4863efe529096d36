"""Batched evaluation in broadcast form: one model call for a whole chunk of problems.

The general batched path maps the one-problem model over the batch with ``torch.vmap``.
When every parameter is a scalar per problem, most models also work unchanged when each
parameter is a ``(k, 1, ..., 1)`` tensor (``k`` problems; the ones broadcast against the
data axes) and per-problem inputs keep their leading ``(k, ...)`` axis: ``a * exp(-x / t)``
then evaluates all ``k`` problems at once with plain tensor operations, without vmap's
per-operator batching rules (several times faster for elementwise models).

For the normal equations the Jacobian of every problem comes from ``p`` forward-mode
directions pushed together (``jvp`` vmapped over the unit tangents, each tangent moving
parameter ``j`` of every problem at once, which is exact because the problems do not
interact): ``J`` has shape ``(p, k, n)`` and

    A_b = Σ_i J[:, b, i] J[:, b, i]ᵀ,     g_b = Σ_i J[:, b, i] r[b, i],     cost_b = ½ Σ_i r[b, i]²

The same function can be ``torch.compile``'d: fused, a chunk's Jacobian lives only in
registers and cache, about ten times faster than eager on CPU for a Gaussian peak (the
first call pays a compilation of a few seconds; kernels are cached in-process and on disk
like the single-problem ones, see :mod:`inversekit.derivatives.compiled`).

Whether the broadcast form is right for a model is checked once, at construction, against
the vmap form on a few problems; if it raises or disagrees, the vmap path is used and the
reason recorded.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.func import jvp, vmap

from inversekit.derivatives.compiled import relative_mismatch
from inversekit.errors import describe

# Problems compared between the broadcast and vmap forms at construction.
CHECK_PROBLEMS = 8
CHECK_RTOL = 1e-12

_KERNELS: dict[tuple, tuple[Callable, Callable, object]] = {}


class _Functions:
    """The broadcast-form functions of one chunk of problems. They hold only the model, the
    parameter layout and the per-problem data shape (every array is an argument), so a
    compiled copy cached for the process keeps no problem's data alive."""

    def __init__(self, model: Callable, params, data_shape: tuple):
        self.model, self.params, self.data_shape = model, params, data_shape

    def residual(self, u: Tensor, fixed: dict, y: Tensor, sw: Tensor, *inputs) -> Tensor:
        """``(k, n)`` whitened residuals of ``k`` problems at ``u`` (``(k, p)``); ``inputs``
        are the model's inputs with the per-problem ones cut to the chunk."""
        ones = [1] * len(self.data_shape)
        values = {}
        for n in self.params:
            if n in fixed:
                values[n] = fixed[n].reshape(-1, *ones)
            else:
                piece = u[:, self.params.slices[n]]
                values[n] = self.params.bijections[n].forward(piece).reshape(-1, *ones)
        f = self.model(values, *inputs)
        k = u.shape[0]
        if tuple(f.shape) != (k, *self.data_shape):
            raise ValueError(f"broadcast output has shape {tuple(f.shape)}")
        return sw * (f.reshape(k, -1) - y.reshape(k, -1))

    def jacobian(self, u: Tensor, fixed: dict, y: Tensor, sw: Tensor, *inputs):
        """``(J (p, k, n), r (k, n))`` of ``k`` problems: ``p`` tangents pushed at once."""
        p = u.shape[1]
        eye = torch.eye(p, dtype=u.dtype, device=u.device)

        def push(v: Tensor) -> tuple[Tensor, Tensor]:
            return jvp(lambda w: self.residual(w, fixed, y, sw, *inputs), (u,), (v.expand_as(u),))

        r, J = vmap(push, out_dims=(None, 0))(eye)
        return J, r

    def normal(self, u: Tensor, fixed: dict, y: Tensor, sw: Tensor, *inputs):
        """``(A (k,p,p), g (k,p), cost (k,))`` of ``k`` problems."""
        J, r = self.jacobian(u, fixed, y, sw, *inputs)
        A = torch.einsum("pbn,qbn->bpq", J, J)
        g = torch.einsum("pbn,bn->bp", J, r)
        return A, g, 0.5 * (r * r).sum(1)

    def cost(self, u: Tensor, fixed: dict, y: Tensor, sw: Tensor, *inputs) -> Tensor:
        """``(k,)`` ``½ chi2`` of ``k`` problems."""
        r = self.residual(u, fixed, y, sw, *inputs)
        return 0.5 * (r * r).sum(1)


class BroadcastForm:
    """Residuals and normal equations of a :class:`BatchedLeastSquares` in broadcast form.

    Args:
        problem: the batched problem (its params must all be scalars per problem).
        compiled: use ``torch.compile``'d kernels over fixed-size padded chunks.
    """

    def __init__(self, problem, compiled: bool = False):
        self.problem = problem
        self.compiled = compiled
        self.chunk = problem.chunk_problems
        self.fns = _Functions(problem.model, problem.params, tuple(problem.y.shape[1:]))
        self.residual, self.jacobian = self.fns.residual, self.fns.jacobian
        self.normal, self.cost = self.fns.normal, self.fns.cost
        self._kernels: tuple[Callable, Callable] | None = None

    # --- chunked evaluation over a subset of problems --------------------------------
    def residuals(self, u: Tensor, idx: Tensor) -> Tensor:
        """``(k, n)`` residuals of problems ``idx`` at ``u`` (``(k, p)``; eager)."""
        return self._chunked(self.residual, u, idx, pad=False)[0]

    def costs(self, u: Tensor, idx: Tensor) -> Tensor:
        """``(k,)`` ``½ chi2`` of problems ``idx`` at ``u``."""
        fn = self._kernel(1) if self.compiled else self.cost
        return self._chunked(fn, u, idx)[0]

    def normal_equations(self, u: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(A, g, cost)`` of problems ``idx`` at ``u``."""
        fn = self._kernel(0) if self.compiled else self.normal
        return tuple(self._chunked(fn, u, idx))

    def jacobians(self, u: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """``(J (k, n, p), r (k, n))`` of problems ``idx`` at ``u`` (eager: used for the
        few problems that need a geodesic acceleration and once for the covariances)."""

        def fn(*args):
            J, r = self.jacobian(*args)
            return J.permute(1, 2, 0), r

        return tuple(self._chunked(fn, u, idx, pad=False))

    def _chunked(self, fn: Callable, u: Tensor, idx: Tensor, pad: bool = True) -> list[Tensor]:
        """``fn`` over chunks of the problems ``idx``. Compiled chunks are padded to one
        fixed size (by repeating the first problem) so the kernel is compiled once."""
        parts: list[list[Tensor]] = []
        with torch.no_grad():
            for start in range(0, idx.numel(), self.chunk):
                sub = idx[start : start + self.chunk]
                us = u[start : start + self.chunk]
                k = sub.numel()
                if pad and self.compiled and k < self.chunk:
                    fill = self.chunk - k
                    sub = torch.cat([sub, sub[:1].expand(fill)])
                    us = torch.cat([us, us[:1].expand(fill, -1)])
                out = fn(us, *self.args(sub))
                out = out if isinstance(out, tuple) else (out,)
                parts = parts or [[] for _ in out]
                for store, t in zip(parts, out, strict=True):
                    store.append(t[:k])
        return [store[0] if len(store) == 1 else torch.cat(store) for store in parts]

    def args(self, idx: Tensor) -> tuple:
        """``(fixed, y, √w, *model inputs)`` of problems ``idx``."""
        fixed, y, sw, *batched = self.problem.batch_args(idx)
        return (fixed, y, sw, *self.problem.model_args(tuple(batched)))

    def _kernel(self, which: int) -> Callable:
        if self._kernels is None:
            self._kernels = _compiled_kernels(self)
        return self._kernels[which]

    # --- checks ----------------------------------------------------------------------
    def check(self, idx: Tensor, reference: Callable[[Tensor, Tensor], Tensor]) -> str | None:
        """Why the broadcast form cannot serve this problem, or ``None`` when it can.

        ``reference(u, idx)`` gives the vmap form's residuals. Compared on the first
        ``CHECK_PROBLEMS`` valid problems (the normal equations too when compiled, which
        is also when compilation happens).
        """
        pr = self.problem
        if any(pr.params.values[n].dim() != 0 for n in pr.params):
            return "vector parameters need vmap"
        sub = idx[:CHECK_PROBLEMS]
        if sub.numel() == 0:
            return "no valid problem to check the broadcast form on"
        u = pr.u0[sub]
        try:
            with torch.no_grad():
                got = self.residual(u, *self.args(sub))
        except Exception as exc:  # noqa: BLE001 - a model that cannot broadcast needs vmap
            return f"model does not broadcast over problems ({describe(exc)})"
        mismatch = relative_mismatch((got,), (reference(u, sub),))
        if not mismatch <= CHECK_RTOL:
            return f"broadcast and vmap forms differ by {mismatch:.2g}"
        if self.compiled:
            try:
                fast = self.normal_equations(u, sub)
            except Exception as exc:  # noqa: BLE001 - compilation failed: stay eager
                self.compiled = False
                return f"compilation failed ({describe(exc)})"
            with torch.no_grad():
                slow = self.normal(u, *self.args(sub))
            mismatch = relative_mismatch(fast, slow)
            if not mismatch <= 1e-10:
                self.compiled = False
                return f"compiled kernel disagrees with eager AD (relative {mismatch:.2g})"
        return None


def _compiled_kernels(form: BroadcastForm) -> tuple[Callable, Callable]:
    """``(normal, cost)`` compiled for the form's problem, cached per model and shapes."""
    from inversekit.derivatives.compiled import _enable_disk_cache, param_signature

    pr = form.problem
    args = form.args(pr.valid_indices()[:1])
    key = (
        id(pr.model),
        param_signature(pr.params),
        form.chunk,
        tuple(pr.y.shape[1:]),
        tuple(tuple(a.shape) if isinstance(a, Tensor) else repr(a) for a in args[3:]),
        tuple(sorted(args[0])),
        pr.dtype,
        str(pr.device),
    )
    hit = _KERNELS.get(key)
    if hit is not None and hit[2] is pr.model:
        return hit[0], hit[1]
    _enable_disk_cache()
    names = tuple(sorted(args[0]))
    kernels = (_FlatKernel(form.fns.normal, names), _FlatKernel(form.fns.cost, names))
    _KERNELS[key] = (*kernels, pr.model)
    return kernels


class _FlatKernel:
    """A broadcast-form function ``fn(u, fixed, y, sw, *inputs)`` traced and compiled by
    :class:`~inversekit.derivatives.compiled._Pretraced` (directly by inductor: a fit calls
    it on a few hundred chunks), which takes tensor arguments only: the dict of fixed
    values is passed as tensors in the order of ``names``."""

    def __init__(self, fn: Callable, names: tuple[str, ...]):
        from inversekit.derivatives.compiled import _Pretraced

        self.names = names
        m = len(names)

        def flat(u: Tensor, *rest: Tensor):
            return fn(u, dict(zip(names, rest[:m], strict=True)), *rest[m:])

        self.kernel = _Pretraced(flat, {}, direct=True)

    def __call__(self, u: Tensor, fixed: dict, *rest):
        return self.kernel(u, *(fixed[n] for n in self.names), *rest)
