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
from inversekit.linalg.curvature import column_norms, inverse_curvature
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
    # for the identifiability checks (:mod:`.identifiability`), float64 on the host:
    covariance_u: np.ndarray  # s² (JᵀWJ)⁻¹ in the solver's coordinates u
    column_norms: np.ndarray  # ‖J_k‖ of the whitened Jacobian in u
    derivative: np.ndarray  # dx/du of every free element
    singular: np.ndarray  # bool: in a numerically singular direction
    null_directions: np.ndarray  # (p, k) unit vectors of the near-null directions
    null_eigenvalues: np.ndarray  # (k,) their eigenvalues relative to the largest


def least_squares_uncertainty(problem, u: Tensor, chi2: float) -> Uncertainty:
    """Covariance of the free parameters of ``problem`` at the solution ``u``."""
    params = problem.params
    p, n = params.n_free, problem.n_data
    J, A = jacobian_or_curvature(problem, u)
    if J is not None:
        inv, norms = inverse_curvature(J=J), column_norms(J=J)
    else:
        inv, norms = inverse_curvature(A=A), column_norms(A=A)
    ndf = n - p
    if problem.noise_known:
        scale = 1.0
    else:
        scale = chi2 / ndf if ndf > 0 else math.nan
    G = None if params.identity else host64(params.derivative(u))
    G64 = np.ones(p) if G is None else G
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
        covariance_u=scale * inv.inverse,
        column_norms=norms,
        derivative=G64,
        singular=inv.singular,
        null_directions=inv.null_directions,
        null_eigenvalues=inv.null_eigenvalues,
    )


def jacobian_or_curvature(problem, u: Tensor) -> tuple[Tensor | None, Tensor | None]:
    """``(J, None)``: the whitened Jacobian at ``u`` for problems small enough to hold it
    (more accurate), else ``(None, JᵀWJ)``. For a non-Gaussian likelihood ``J`` is the
    residuals' Jacobian with its rows scaled so that ``JᵀJ`` is the Fisher information
    (``problem.fisher_rows``), and ``JᵀWJ`` that information."""
    p, n = problem.params.n_free, problem.n_data
    if n * p <= _MAX_JACOBIAN_ELEMENTS and p <= _MAX_JACOBIAN_COLUMNS:
        J = problem.jacobian.full(u)[0]
        s = problem.fisher_rows(u)
        return (J if s is None else s[:, None] * J), None
    return None, problem.fisher_information(u)


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


def all_stderr(params, u: Tensor, unc: Uncertainty) -> dict[str, Tensor]:
    """The standard error of every parameter, shaped like it: free elements as
    ``unc.stderr`` (NaN at a bound, inf when not identifiable), fixed elements 0, and tied
    parameters by the delta method, ``var = diag(J C_u Jᵀ)`` with ``J = d tie/du`` (the
    tie's value as a function of the solver's coordinates, by ``torch.func.jacrev``
    through ``params.unpack``) and ``C_u`` the covariance in ``u``. A tie that depends on
    a not identifiable element gets inf, one that depends on an element at a bound NaN."""
    free = params.split(unc.stderr, fill=0.0)
    out: dict[str, Tensor] = {}
    tied = set(params.tied_names)
    sd = host64(unc.stderr)
    for name in params:
        if name in free:
            out[name] = free[name]
        elif name in tied:
            out[name] = _tie_stderr(params, u, unc, name, sd)
        else:
            out[name] = torch.zeros_like(params.values[name], device=unc.stderr.device)
    return out


def _tie_stderr(params, u: Tensor, unc: Uncertainty, name: str, sd: np.ndarray) -> Tensor:
    shape = params.values[name].shape

    def tie(v: Tensor) -> Tensor:
        return params.unpack(v)[name].reshape(-1)

    J = host64(torch.func.jacrev(tie)(u.detach()))  # (elements, p)
    var = np.einsum("ip,pq,iq->i", J, unc.covariance_u, J)
    uses = J != 0
    var = np.where(uses @ unc.singular, np.inf, np.clip(var, 0.0, None))
    stderr = np.where(uses @ np.isnan(sd), np.nan, np.sqrt(var))
    t = torch.from_numpy(stderr).reshape(shape)
    return t.to(device=unc.stderr.device, dtype=unc.stderr.dtype)
