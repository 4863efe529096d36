"""Small dense linear algebra for the solvers: damped solves and curvature inverses.

Everything here works on ``p x p`` matrices (``p`` free parameters) or, for the most
accurate covariances of small problems, on the ``m x p`` whitened Jacobian itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def damped_solve(A: Tensor, rhs: Tensor, D: Tensor, lam: float) -> Tensor | None:
    """Solve ``(A + λ diag(D)) δ = rhs`` by Cholesky, in the scaled variables ``√D δ``.

    Scaling by ``S = diag(1/√D)`` gives ``(S A S + λ I)(√D δ) = S rhs``, whose diagonal is
    about one: this is Marquardt's scaling, which makes the step independent of the units
    of each parameter. Returns ``None`` when the matrix is not numerically positive
    definite (the caller then raises the damping).
    """
    s = torch.rsqrt(D)
    M = A * s[:, None] * s[None, :]
    M.diagonal().add_(lam)
    L, info = torch.linalg.cholesky_ex(M)
    if int(info) != 0:
        return None
    scaled = torch.cholesky_solve((rhs * s)[:, None], L)[:, 0]
    return scaled * s


@dataclass
class InverseCurvature:
    """``(JᵀWJ)⁻¹`` with its conditioning.

    ``condition`` is the condition number of ``JᵀWJ`` after scaling every parameter to unit
    curvature (so it does not depend on the parameters' units); ``null_directions`` are the
    unit eigenvectors (columns) whose eigenvalue is below ``near_null_ratio`` times the
    largest; ``singular`` marks parameters taking part in numerically singular directions,
    whose variances are infinite.
    """

    inverse: Tensor
    condition: float
    null_directions: Tensor
    null_eigenvalues: Tensor
    singular: Tensor


def inverse_curvature(
    A: Tensor | None = None,
    J: Tensor | None = None,
    near_null_ratio: float = 1e-10,
) -> InverseCurvature:
    """Invert ``JᵀWJ`` from the Jacobian ``J`` (more accurate) or from ``A = JᵀWJ``.

    With ``J`` the SVD of the column-scaled ``J`` is used, so the error grows with
    ``cond(J)`` rather than ``cond(J)²``. Directions whose eigenvalue is below
    ``p · eps`` times the largest are numerically singular: they are left out of the
    inverse and the parameters in them are flagged in ``singular``.
    """
    if J is not None:
        norms = torch.linalg.vector_norm(J, dim=0)
        s = torch.where(norms > 0, 1.0 / norms, torch.ones_like(norms))
        _, sv, Vh = torch.linalg.svd(J * s, full_matrices=False)
        eig, V = sv**2, Vh.mT
    else:
        d = torch.diagonal(A)
        s = torch.where(d > 0, torch.rsqrt(d), torch.ones_like(d))
        eig, V = torch.linalg.eigh(A * s[:, None] * s[None, :])
    p = eig.numel()
    top = float(eig.max()) if p else 0.0
    eps = torch.finfo(eig.dtype).eps
    keep = eig > p * eps * top
    inv_eig = torch.where(keep, 1.0 / torch.where(keep, eig, torch.ones_like(eig)), 0.0)
    inverse = (V * inv_eig) @ V.mT
    inverse = inverse * s[:, None] * s[None, :]
    low = float(eig.min()) if p else 0.0
    condition = top / low if low > 0 else float("inf")
    near = eig < near_null_ratio * top
    singular = (V[:, ~keep].abs() > 1e-3).any(dim=1) if bool((~keep).any()) else (
        torch.zeros(p, dtype=torch.bool, device=eig.device)
    )
    return InverseCurvature(inverse, condition, V[:, near], eig[near] / top, singular)
