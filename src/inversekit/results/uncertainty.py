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

from inversekit.linalg.arrays import INF, NAN, copy, diagonal, isfinite, sqrt, where
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
    if problem.noise_known:
        scale = 1.0
    else:
        scale = chi2 / ndf if ndf > 0 else math.nan
    G = None if params.identity else host64(params.derivative(u))
    distance = None
    if params.bounded is not None:  # unbounded parameters are never at a bound
        distance = host64(params.distance_to_bounds(params.physical(u)))
    cov, stderr, pinned, corr = physical_uncertainty(inv.inverse, scale, G, inv.singular, distance)
    labels = params.labels()
    host = on_host64(u)

    def tensor(a: np.ndarray) -> Tensor:
        t = torch.from_numpy(a)
        return t if host else t.to(device=u.device, dtype=u.dtype)

    return Uncertainty(
        covariance=tensor(cov),
        stderr=tensor(stderr),
        correlation=tensor(corr),
        scale=scale,
        condition=inv.condition,
        near_null=directions(inv.null_directions, labels),
        at_bounds=[labels[i] for i in np.flatnonzero(pinned)],
        unidentified=[labels[i] for i in np.flatnonzero(inv.singular & ~pinned)],
    )


def physical_uncertainty(inverse, scale, G, singular, distance):
    """Covariance and flags in physical space from the inverse curvature in ``u``, over any
    leading batch axes (NumPy for one problem, torch for a batch: one formula for both).

    ``C_x = s² G (JᵀWJ)⁻¹ G`` with ``scale = s²`` and ``G = dx/du`` (``None``: identity);
    parameters in ``singular`` directions get infinite variance; a parameter whose bound
    lies within one standard error (``distance`` to the nearest bound, ``None`` when
    nothing is bounded), or whose singular direction runs into a bound, is ``pinned`` and
    its standard error reported as NaN; correlations of such parameters are NaN. Returns
    ``(covariance, stderr, pinned, correlation)``.
    """
    if not isinstance(scale, float):
        scale = scale[..., None, None]
    cov = scale * inverse
    if G is not None:  # the delta method, C_x = G C_u G
        cov = cov * G[..., :, None] * G[..., None, :]
    var = copy(diagonal(cov))
    var[singular] = INF
    stderr = sqrt(var)
    if distance is None:
        pinned = singular & False
    else:
        # unbounded elements (distance inf) are never at a bound: an unidentifiable one is
        # reported as such (inf), not as pinned
        pinned = isfinite(distance) & ((distance <= stderr) | singular)
    stderr[pinned] = NAN
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 where sd is 0: set NaN below
        sd = sqrt(diagonal(cov))
        corr = cov / (sd[..., :, None] * sd[..., None, :])
    bad = ~isfinite(stderr)
    corr = where(bad[..., :, None] | bad[..., None, :], NAN, corr)
    return cov, stderr, pinned, corr


def directions(vectors, labels: list[str], weight: float = 0.1) -> list[list[str]]:
    """Names of the parameters making up each near-null direction (columns of
    ``vectors``, a tensor or an array), largest weight first."""
    v = np.abs(host64(vectors))
    out = []
    for k in range(v.shape[1]):
        order = np.argsort(-v[:, k], kind="stable")
        out.append([labels[i] for i in order if v[i, k] >= weight])
    return out
