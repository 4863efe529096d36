"""Parameter uncertainties of a least-squares fit (the Laplace / Gauss–Newton approximation).

In unconstrained space the covariance is ``C_u = s² (JᵀWJ)⁻¹`` with ``s² = 1`` when the noise
level was given and ``s² = chi2 / (n - p)`` when it was not (the ``curve_fit``/lmfit
convention). The physical covariance follows by the delta method, ``C_x = G C_u G`` with
``G = diag(dx/du)``. Parameters whose nearest bound lies within one standard error, or
that sit in a numerically singular direction, are flagged: their standard errors are
reported as NaN (at a bound) or infinite (not identifiable) rather than silently tiny.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from inversekit.linalg.curvature import inverse_curvature
from inversekit.linalg.host import host64, on_host64

# Use the m x p Jacobian itself (more accurate) for the covariance below these sizes.
_MAX_JACOBIAN_ELEMENTS = 10_000_000
_MAX_JACOBIAN_COLUMNS = 200


@dataclass
class Uncertainty:
    """Covariance and diagnostics in physical space, per free element."""

    covariance: Tensor
    stderr: Tensor
    correlation: Tensor
    scale: float  # s², the factor applied to (JᵀWJ)⁻¹
    condition: float
    near_null: list[list[str]]
    at_bounds: list[str]
    unidentified: list[str]


def least_squares_uncertainty(problem, u: Tensor, chi2: float) -> Uncertainty:
    """Covariance of the free parameters of ``problem`` at the solution ``u``."""
    params = problem.params
    p, n = params.n_free, problem.n_data
    if n * p <= _MAX_JACOBIAN_ELEMENTS and p <= _MAX_JACOBIAN_COLUMNS:
        J, _ = problem.jacobian.full(u)
        inv = inverse_curvature(J=J)
    else:
        inv = inverse_curvature(A=problem.normal_equations(u).A)
    ndf = n - p
    if problem.noise.known:
        scale = 1.0
    else:
        scale = chi2 / ndf if ndf > 0 else math.nan
    # p-sized algebra on the host, like the inverse itself
    cov = scale * inv.inverse
    if not params.identity:  # the delta method, C_x = G C_u G
        G = host64(params.derivative(u))
        cov *= G[:, None] * G[None, :]
    var = np.diagonal(cov).copy()
    var[inv.singular] = math.inf
    stderr = np.sqrt(var)
    pinned = _pinned(params, u, stderr, inv.singular)
    stderr[pinned] = math.nan
    labels = params.labels()
    host = on_host64(u)

    def tensor(a: np.ndarray) -> Tensor:
        t = torch.from_numpy(a)
        return t if host else t.to(device=u.device, dtype=u.dtype)

    return Uncertainty(
        covariance=tensor(cov),
        stderr=tensor(stderr),
        correlation=tensor(_correlation(cov, stderr)),
        scale=scale,
        condition=inv.condition,
        near_null=directions(inv.null_directions, labels),
        at_bounds=[labels[i] for i in np.flatnonzero(pinned)],
        unidentified=[labels[i] for i in np.flatnonzero(inv.singular & ~pinned)],
    )


def _pinned(params, u: Tensor, stderr: np.ndarray, singular: np.ndarray) -> np.ndarray:
    """Parameters held by a bound: the bound within one standard error, or a singular
    direction running into it. Unbounded parameters never are (an unidentifiable one is
    reported as such, not as at a bound)."""
    if params.bounded is None:
        return np.zeros(stderr.shape, dtype=bool)
    distance = host64(params.distance_to_bounds(params.physical(u)))
    return np.isfinite(distance) & ((distance <= stderr) | singular)


def _correlation(cov: np.ndarray, stderr: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diagonal(cov))
    if sd.min() > 0 and np.isfinite(stderr).all():  # the usual case, no zero division
        return cov / (sd[:, None] * sd[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / (sd[:, None] * sd[None, :])
    bad = ~np.isfinite(stderr)
    corr[bad, :] = math.nan
    corr[:, bad] = math.nan
    return corr


def directions(vectors, labels: list[str], weight: float = 0.1) -> list[list[str]]:
    """Names of the parameters making up each near-null direction (columns of
    ``vectors``, a tensor or an array), largest weight first."""
    v = np.abs(host64(vectors))
    out = []
    for k in range(v.shape[1]):
        order = np.argsort(-v[:, k], kind="stable")
        out.append([labels[i] for i in order if v[i, k] >= weight])
    return out
