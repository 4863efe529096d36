"""Damped linear solves ``(A + λ diag(D)) δ = rhs`` for Levenberg–Marquardt steps.

:class:`DampedSystem` serves one problem in float64 NumPy on the host (LAPACK called
directly: about a microsecond for a ``p x p`` system); :func:`batched_damped_solve` solves
one system per problem of a batch with torch, on the batch's device.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import lapack
from torch import Tensor

from inversekit.linalg.rows import finite_rows


class DampedSystem:
    """Cholesky factor of ``A + λ diag(D)``, in Marquardt's scaled variables ``√D δ``.

    Scaling by ``S = diag(1/√D)`` gives ``(S A S + λ I)(√D δ) = S rhs``, whose diagonal is
    about one: this makes the step independent of the units of each parameter. One factor
    serves every right-hand side at the same damping (the step and its geodesic
    acceleration). Everything is float64 NumPy on the host: for ``p x p`` systems LAPACK
    called directly costs about a microsecond, against tens for a chain of torch ops.
    """

    def __init__(self, factor: np.ndarray, s: np.ndarray):
        self.factor = factor
        self.s = s

    @classmethod
    def build(cls, A: np.ndarray, D: np.ndarray, lam: float) -> DampedSystem | None:
        """Factor ``A + λ diag(D)``; ``None`` if it is not numerically positive definite
        (the caller then raises the damping)."""
        s = 1.0 / np.sqrt(D)
        M = (A * s).T * s
        M.flat[:: M.shape[0] + 1] += lam
        factor, info = lapack.dpotrf(M, lower=False, clean=False, overwrite_a=True)
        if info != 0:
            return None
        return cls(factor, s)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``δ`` with ``(A + λ diag(D)) δ = rhs``."""
        scaled, info = lapack.dpotrs(self.factor, rhs * self.s, lower=False)
        if info != 0:
            raise ValueError(f"dpotrs failed with info={info}")
        return scaled * self.s


def damped_solve(A: np.ndarray, rhs: np.ndarray, D: np.ndarray, lam: float) -> np.ndarray | None:
    """Solve ``(A + λ diag(D)) δ = rhs`` (see :class:`DampedSystem`); ``None`` if the
    matrix is not numerically positive definite."""
    system = DampedSystem.build(A, D, lam)
    return None if system is None else system.solve(rhs)


def batched_damped_solve(A: Tensor, rhs: Tensor, D: Tensor, lam: Tensor) -> tuple[Tensor, Tensor]:
    """Solve ``(A_b + λ_b diag(D_b)) δ_b = rhs_b`` for every ``b`` (Marquardt-scaled Cholesky).

    As :func:`inversekit.linalg.curvature.damped_solve`, in the scaled variables ``√D δ``; returns
    ``(δ, ok)`` with ``ok[b]`` false where the matrix is not numerically positive
    definite or ``δ_b`` is not finite (that row of ``δ`` is then zero).
    """
    s = torch.rsqrt(D)
    M = A * s[:, :, None] * s[:, None, :]
    M.diagonal(dim1=1, dim2=2).add_(lam[:, None])
    if A.shape[1] <= UNROLLED_MAX_PARAMS:
        scaled, ok = _unrolled_cholesky_solve(M, rhs * s)
    else:
        # No batch split needed here, unlike eigh (EIGH_BATCH_LIMIT in
        # inversekit.linalg.curvature): on an H200 (torch 2.11, CUDA 13.0) the batched
        # cholesky_ex (cuSOLVER potrfBatched) and cholesky_solve of 8 x 8 float64 systems ran
        # without error at 65,536, 100,000 and 1,000,000 systems; tests/test_cuda.py checks
        # 100,000 against the CPU.
        L, info = torch.linalg.cholesky_ex(M)
        ok = info == 0
        eye = torch.eye(A.shape[1], dtype=A.dtype, device=A.device)
        L = torch.where(ok[:, None, None], L, eye)  # keep failed rows harmless
        scaled = torch.cholesky_solve((rhs * s)[..., None], L)[..., 0]
    delta = scaled * s
    ok &= finite_rows(delta)
    return torch.where(ok[:, None], delta, 0.0), ok


# Up to this many parameters the batched Cholesky solve runs as elementwise operations over
# the batch (about p³/3 of them), which for 10,000 4 x 4 systems takes half the time of
# LAPACK's per-matrix factorisation and solve.
UNROLLED_MAX_PARAMS = 6


def _unrolled_cholesky_solve(M: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """``(x, ok)`` with ``M_b x_b = b_b`` by Cholesky, ``M = L Lᵀ``, written out entry by
    entry over the batch: ``L_jj = √(M_jj - Σ_m L_jm²)``, ``L_ij = (M_ij - Σ_m L_im L_jm) /
    L_jj``, then forward and back substitution. ``ok[b]`` is false where a pivot is not
    positive (``M_b`` not numerically positive definite; ``x_b`` is then meaningless)."""
    p = M.shape[1]
    rows = M.unbind(1)  # rows[i][:, j] = M[:, i, j]
    L: list[list[Tensor | None]] = [[None] * p for _ in range(p)]
    ok = torch.ones(M.shape[0], dtype=torch.bool, device=M.device)
    for j in range(p):
        pivot = rows[j][:, j]
        for m in range(j):
            pivot = pivot - L[j][m] * L[j][m]
        ok &= pivot > 0
        L[j][j] = torch.sqrt(torch.where(pivot > 0, pivot, 1.0))
        for i in range(j + 1, p):
            t = rows[i][:, j]
            for m in range(j):
                t = t - L[i][m] * L[j][m]
            L[i][j] = t / L[j][j]
    z: list[Tensor] = []
    for i, bi in enumerate(b.unbind(1)):  # L z = b
        for m in range(i):
            bi = bi - L[i][m] * z[m]
        z.append(bi / L[i][i])
    x: list[Tensor | None] = [None] * p
    for i in reversed(range(p)):  # Lᵀ x = z
        t = z[i]
        for m in range(i + 1, p):
            t = t - L[m][i] * x[m]
        x[i] = t / L[i][i]
    return torch.stack(x, dim=1), ok
