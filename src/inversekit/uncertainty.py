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

import torch
from torch import Tensor

from inversekit.linalg import inverse_curvature

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
    G = params.derivative(u)
    cov = scale * inv.inverse * G[:, None] * G[None, :]
    var = torch.diagonal(cov).clone()
    var[inv.singular] = math.inf
    stderr = torch.sqrt(var)
    distance = params.distance_to_bounds(params.physical(u))
    pinned = (distance <= stderr) | (inv.singular & torch.isfinite(distance))
    stderr[pinned] = math.nan
    labels = params.labels()
    return Uncertainty(
        covariance=cov,
        stderr=stderr,
        correlation=_correlation(cov, stderr),
        scale=scale,
        condition=inv.condition,
        near_null=_directions(inv.null_directions, labels),
        at_bounds=[labels[i] for i in torch.nonzero(pinned).flatten().tolist()],
        unidentified=[labels[i] for i in torch.nonzero(inv.singular & ~pinned).flatten().tolist()],
    )


def _correlation(cov: Tensor, stderr: Tensor) -> Tensor:
    sd = torch.sqrt(torch.diagonal(cov))
    corr = cov / (sd[:, None] * sd[None, :])
    bad = ~torch.isfinite(stderr)
    corr[bad, :] = math.nan
    corr[:, bad] = math.nan
    return corr


def _directions(vectors: Tensor, labels: list[str], weight: float = 0.1) -> list[list[str]]:
    """Names of the parameters making up each near-null direction, largest weight first."""
    out = []
    for k in range(vectors.shape[1]):
        v = vectors[:, k].abs()
        order = torch.argsort(v, descending=True).tolist()
        out.append([labels[i] for i in order if float(v[i]) >= weight])
    return out
