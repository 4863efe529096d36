"""Derivatives by automatic differentiation, accumulated chunk by chunk.

Least squares needs the normal equations of the whitened residuals ``r(u)``::

    A = JᵀJ = Σ_chunks J_cᵀ J_c,     g = Jᵀr = Σ_chunks J_cᵀ r_c,     cost = ½ Σ r_c·r_c

(the weights are already inside the whitened residuals, so ``A`` is ``JᵀWJ`` and ``g`` is
``JᵀWr`` of the raw residuals). Each chunk's Jacobian ``J_c`` (rows x p) is computed by
forward-mode AD (``torch.func.jvp`` vmapped over the unit tangents, in blocks of columns
when p is large), folded into ``A`` and ``g`` and dropped, so memory is
``O(p² + chunk·p)`` and the full Jacobian is never held.

Solvers see only :class:`ChunkedJacobian`'s methods; a faster engine (compiled, fused)
can replace it without touching them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jvp, vjp, vmap

# Tangent directions pushed through the model at once; bounds forward-mode memory when
# there are thousands of parameters.
COLUMN_BLOCK = 256


@dataclass
class NormalEquations:
    """``A = JᵀWJ`` (p x p), ``g = JᵀWr`` (p,) and ``cost = ½ rᵀWr`` at one point."""

    A: Tensor
    g: Tensor
    cost: float

    def is_finite(self) -> bool:
        return bool(torch.isfinite(self.A).all() and torch.isfinite(self.g).all())


def jacobian(fn: Callable[[Tensor], Tensor], u: Tensor, column_block: int = COLUMN_BLOCK):
    """``(J, r)``: forward-mode Jacobian (m x p) of ``fn`` at ``u`` and ``r = fn(u)``."""
    p = u.numel()
    eye = torch.eye(p, dtype=u.dtype, device=u.device)

    def push(v: Tensor) -> Tensor:
        return jvp(fn, (u,), (v,))[1]

    with torch.no_grad():
        r = fn(u)
    jt = vmap(push, chunk_size=column_block if p > column_block else None)(eye)
    return jt.mT, r


class ChunkedJacobian:
    """Normal equations and curvature terms of a least-squares problem
    (:class:`~inversekit.LeastSquares`).

    Evaluations are counted in ``n_jev`` (Jacobian passes over all rows).
    """

    speculative = False  # a normal-equation pass costs p + 1 cost passes

    engine_name = "eager"
    reason = "forward-mode AD, chunk by chunk"

    def __init__(self, problem, column_block: int = COLUMN_BLOCK):
        self.problem = problem
        self.column_block = column_block
        self.n_jev = 0

    def normal_equations(self, u: Tensor) -> NormalEquations:
        """Accumulate ``JᵀWJ``, ``JᵀWr`` and the cost over row chunks at ``u``."""
        p = u.numel()
        A = u.new_zeros(p, p)
        g = u.new_zeros(p)
        cost = 0.0
        for rows in self.problem.chunks:
            J, r = jacobian(self.problem.residual_function(rows), u, self.column_block)
            A += J.mT @ J
            g += J.mT @ r
            cost += 0.5 * float(torch.dot(r, r))
        self.n_jev += 1
        return NormalEquations(A, g, cost)

    def full(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """The whole whitened Jacobian and residuals, stacked (only for small problems)."""
        parts = [
            jacobian(self.problem.residual_function(rows), u, self.column_block)
            for rows in self.problem.chunks
        ]
        self.n_jev += 1
        return torch.cat([J for J, _ in parts]), torch.cat([r for _, r in parts])

    def geodesic_rhs(self, u: Tensor, v: Tensor) -> Tensor:
        """``Jᵀ r''(u)[v, v]``: the right-hand side of geodesic acceleration.

        ``r''[v, v]`` is the second directional derivative of the whitened residuals along
        the velocity ``v`` (forward over forward mode); it is projected onto the columns of
        ``J`` by one reverse-mode pass per chunk (``vjp``), so ``J`` is not formed.
        """
        out = torch.zeros_like(u)
        for rows in self.problem.chunks:
            fn = self.problem.residual_function(rows)

            def directional(x: Tensor, fn=fn) -> Tensor:
                return jvp(fn, (x,), (v,))[1]

            second = jvp(directional, (u,), (v,))[1]
            _, pullback = vjp(fn, u)
            out += pullback(second.detach())[0]
        return out


def hessian_vector_product(fn: Callable[[Tensor], Tensor], u: Tensor, v: Tensor) -> Tensor:
    """``H(u) v`` for a scalar function, by forward-over-reverse AD (one extra pass)."""
    return jvp(torch.func.grad(fn), (u,), (v,))[1]
