"""Inverse curvature ``(JᵀWJ)⁻¹`` with its conditioning, for covariances.

Everything here works on ``p x p`` matrices (``p`` free parameters) or, for the most
accurate covariances of small problems, on the ``m x p`` whitened Jacobian itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from inversekit.linalg.arrays import INF, amax, amin, eps, transpose, where
from inversekit.linalg.host import host64


@dataclass
class InverseCurvature:
    """``(JᵀWJ)⁻¹`` with its conditioning, as float64 NumPy arrays on the host.

    ``condition`` is the condition number of ``JᵀWJ`` after scaling every parameter to unit
    curvature (so it does not depend on the parameters' units); ``null_directions`` are the
    unit eigenvectors (columns) whose eigenvalue is below ``near_null_ratio`` times the
    largest; ``singular`` marks parameters taking part in numerically singular directions,
    whose variances are infinite.
    """

    inverse: np.ndarray
    condition: float
    null_directions: np.ndarray
    null_eigenvalues: np.ndarray
    singular: np.ndarray


# Most matrices one batched ``torch.linalg.eigh`` call on CUDA is given. For batches of small
# matrices torch calls cuSOLVER's batched solver (``cusolverDnXsyevBatched`` in torch 2.11),
# which fails from 65,536 matrices on (65,535 is CUDA's grid dimension limit): on an H200
# (torch 2.11, CUDA 13.0), float64 3x3, 4x4 and 5x5 batches of 65,535 ran and batches of
# 65,536 raised ``CUSOLVER_STATUS_INTERNAL_ERROR``, the error a batched fit of 100,000
# problems was reported to crash with. Half of 65,536 keeps clear of the limit and still
# fills the device: each piece of 32,768 5x5 matrices took about 1 ms there.
EIGH_BATCH_LIMIT = 32768


def batched_eigh(A: Tensor, *, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """``torch.linalg.eigh`` of a batch ``A`` (``(..., n, n)``), in pieces of at most
    ``limit`` (default :data:`EIGH_BATCH_LIMIT`) matrices (all leading dimensions together).

    On CUDA the batched solver fails for large batches (see :data:`EIGH_BATCH_LIMIT`), so
    the batch is split there; on the CPU LAPACK has no such limit and the batch goes in one
    call, unless ``limit`` is given (the tests use that to check the split path on the CPU).
    Each matrix's decomposition does not depend on the others, so the pieces give the same
    result up to rounding (the solvers' kernels may round differently for another batch
    size or memory alignment, and flip an eigenvector's sign).
    """
    if limit is None:
        if A.device.type != "cuda":
            return torch.linalg.eigh(A)
        limit = EIGH_BATCH_LIMIT
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    if A.shape[:-2].numel() <= limit:  # every leading dimension counts towards the batch
        return torch.linalg.eigh(A)
    n = A.shape[-1]
    flat = A.reshape(-1, n, n)
    pieces = [torch.linalg.eigh(part) for part in flat.split(limit)]
    eig = torch.cat([e for e, _ in pieces]).reshape(A.shape[:-1])
    V = torch.cat([v for _, v in pieces]).reshape(A.shape)
    return eig, V


# Above this many parameters a full eigendecomposition (about 9p³ flops) is replaced by a
# Cholesky inverse (p³/3 ... p³) and power iterations for the extreme eigenvalues.
EIGH_MAX_PARAMS = 1000


def inverse_curvature(
    A: Tensor | None = None,
    J: Tensor | None = None,
    near_null_ratio: float = 1e-10,
) -> InverseCurvature:
    """Invert ``JᵀWJ`` from the Jacobian ``J`` (more accurate) or from ``A = JᵀWJ``.

    With ``J`` the SVD of the column-scaled ``J`` is used, so the error grows with
    ``cond(J)`` rather than ``cond(J)²``. Directions whose eigenvalue is below
    ``p · eps`` times the largest are numerically singular: they are left out of the
    inverse and the parameters in them are flagged in ``singular``. The algebra runs in
    float64 LAPACK on the host whatever the tensors' dtype and device (like the solvers'
    ``p x p`` algebra: for small matrices a chain of torch operations costs far more).
    """
    if J is not None:
        Jh = _finite_columns(host64(J))
        norms = np.sqrt(np.einsum("ij,ij->j", Jh, Jh))
        s = 1.0 / np.where(norms > 0, norms, 1.0)
        _, sv, Vh = np.linalg.svd(Jh * s, full_matrices=False)
        return _from_eigen(sv**2, Vh.T, s, near_null_ratio)
    if A.shape[0] > EIGH_MAX_PARAMS and bool(torch.isfinite(A).all()):
        large = _large_inverse(A, near_null_ratio)
        if large is not None:
            return large
    Ah = _finite_columns(host64(A), square=True)
    d = np.diagonal(Ah)
    s = 1.0 / np.sqrt(np.where(d > 0, d, 1.0))
    eig, V = np.linalg.eigh(Ah * s[:, None] * s[None, :])
    return _from_eigen(eig, V, s, near_null_ratio)


def _finite_columns(M: np.ndarray, square: bool = False) -> np.ndarray:
    """``M`` with every column holding a non-finite entry set to zero (and the matching
    row of a square ``JᵀWJ``): a derivative that is not finite at the solution carries no
    information, and its parameter then sits in a singular direction (infinite variance)
    instead of breaking the decomposition of all the others."""
    bad = ~np.isfinite(M).all(axis=0)
    if not bad.any():
        return M
    M = M.copy()
    M[:, bad] = 0.0
    if square:
        M[bad, :] = 0.0
    return M


def column_norms(A: Tensor | None = None, J: Tensor | None = None) -> np.ndarray:
    """``‖J_k‖`` of every column of the (whitened) Jacobian, from ``J`` itself or from
    ``A = JᵀWJ`` (``√A_kk``), as float64 on the host.

    The unit-curvature scaling of :func:`inverse_curvature` divides every column by this
    norm, so a column that underflowed looks perfectly conditioned after it: the norms
    are what tells such a column apart (see :mod:`inversekit.results.identifiability`).
    """
    if J is not None:
        Jh = host64(J)
        return np.sqrt(np.einsum("ij,ij->j", Jh, Jh))
    return np.sqrt(np.clip(np.diagonal(host64(A)).copy(), 0.0, None))


def eigen_inverse(eig, V, s):
    """The inverse of ``A`` from the eigendecomposition ``(eig, V)`` of its unit-curvature
    scaled form ``S A S`` (``S = diag(s)``, ``s = 1/√diag(A)``), over any leading batch axes
    (NumPy arrays for one problem, torch tensors for a batch: one formula for both).

    Directions whose eigenvalue is below ``p · eps`` times the largest are numerically
    singular: they are left out of the inverse and the parameters taking part in them
    (|component| > 1e-3) are flagged. Returns ``(inverse, condition, singular, relative)``:
    the condition number of ``S A S`` (inf when singular) and the eigenvalues relative to
    the largest.
    """
    p = eig.shape[-1]
    top = amax(eig, -1, keepdims=True)
    low = amin(eig, -1)
    keep = eig > p * eps(eig) * top
    inv_eig = where(keep, 1.0 / where(keep, eig, 1.0), 0.0)
    inverse = ((V * inv_eig[..., None, :]) @ transpose(V)) * s[..., :, None] * s[..., None, :]
    singular = ((abs(V) > 1e-3) & ~keep[..., None, :]).any(-1)
    condition = where(low > 0, top[..., 0] / where(low > 0, low, 1.0), INF)
    return inverse, condition, singular, eig / where(top > 0, top, 1.0)


def _from_eigen(eig: np.ndarray, V: np.ndarray, s: np.ndarray, ratio: float) -> InverseCurvature:
    inverse, condition, singular, relative = eigen_inverse(eig, V, s)
    near = relative < ratio
    return InverseCurvature(inverse, float(condition), V[:, near], relative[near], singular)


def _large_inverse(A: Tensor, ratio: float, n_power: int = 50) -> InverseCurvature | None:
    """Cholesky inverse of the unit-curvature scaled ``A``, extremes by power iteration,
    on ``A``'s own device (for thousands of parameters ``eigh`` would dominate).

    Returns ``None`` when the scaled matrix is numerically singular (the caller falls back
    to the eigendecomposition, which can isolate the singular directions).
    """
    p = A.shape[0]
    d = torch.diagonal(A)
    s = torch.where(d > 0, torch.rsqrt(d), torch.ones_like(d))
    M = A * s[:, None] * s[None, :]
    L, info = torch.linalg.cholesky_ex(M)
    if int(info) != 0:
        return None
    g = torch.Generator(device="cpu").manual_seed(0)
    v_top = torch.randn(p, generator=g, dtype=M.dtype).to(M.device)
    v_low = v_top.clone()
    for _ in range(n_power):
        v_top = M @ v_top
        v_top /= torch.linalg.vector_norm(v_top)
        v_low = torch.cholesky_solve(v_low[:, None], L)[:, 0]
        v_low /= torch.linalg.vector_norm(v_low)
    top, low = float(v_top @ M @ v_top), float(v_low @ M @ v_low)
    if not low > p * torch.finfo(M.dtype).eps * top:
        return None
    inverse = host64(torch.cholesky_inverse(L) * s[:, None] * s[None, :])
    near = low < ratio * top
    directions = host64(v_low[:, None]) if near else np.zeros((p, 0))
    ratios = np.array([low / top]) if near else np.zeros(0)
    return InverseCurvature(inverse, top / low, directions, ratios, np.zeros(p, dtype=bool))
