"""Gaussian noise models: how residuals are weighted.

Every noise model turns raw residuals ``f(x) - y`` into *whitened* residuals ``r`` with
``chi2 = r·r``:

- ``sigma``: ``r_i = (f_i - y_i) / sigma_i``  (weights ``w_i = 1/sigma_i²``)
- ``weights``: ``r_i = sqrt(w_i) (f_i - y_i)``
- ``inverse_covariance`` ``W``: ``r = Lᵀ (f - y)`` with ``W = L Lᵀ`` (Cholesky), so
  ``r·r = (f - y)ᵀ W (f - y)``.

With no noise given the weights are one and the noise level is unknown: covariances are
then scaled by ``chi2 / (n - p)`` (the ``curve_fit``/lmfit convention).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from inversekit.errors import InputError


class GaussianNoise:
    """Diagonal or full Gaussian noise on ``n`` flattened data points."""

    def __init__(self, sqrt_weights: Tensor | None, chol: Tensor | None, known: bool):
        self.sqrt_weights = sqrt_weights  # (n,) or None for unit weights
        self.chol = chol  # (n, n) lower Cholesky factor of W, or None
        self.known = known  # True when the user stated the noise level

    @property
    def diagonal(self) -> bool:
        """True when each residual depends only on its own data point (rows may be chunked)."""
        return self.chol is None

    def whiten(self, raw: Tensor, rows: slice | None = None) -> Tensor:
        """Whitened residuals of a flat raw residual vector (optionally a slice of rows)."""
        if self.chol is not None:
            return self.chol.mT @ raw
        if self.sqrt_weights is None:
            return raw
        sw = self.sqrt_weights if rows is None else self.sqrt_weights[rows]
        return sw * raw

    def n_effective(self, n: int) -> int:
        """Number of data points that carry weight."""
        if self.sqrt_weights is None:
            return n
        return int((self.sqrt_weights > 0).sum())

    def log_normaliser(self, n: int) -> float:
        """``0.5 log det W - n/2 log 2π`` over the points that carry weight."""
        if self.chol is not None:
            logdet = 2.0 * float(torch.log(torch.diagonal(self.chol)).sum())
        elif self.sqrt_weights is None:
            logdet = 0.0
        else:
            sw = self.sqrt_weights[self.sqrt_weights > 0]
            logdet = 2.0 * float(torch.log(sw).sum())
        return 0.5 * logdet - 0.5 * self.n_effective(n) * math.log(2 * math.pi)


def _finite(name: str, t: Tensor) -> None:
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        first = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise InputError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (first at index {first})"
        )


def _like_y(name: str, value, y: Tensor) -> Tensor:
    t = torch.as_tensor(value, dtype=y.dtype, device=y.device)
    try:
        return torch.broadcast_to(t, y.shape).reshape(-1)
    except RuntimeError:
        raise InputError(
            f"{name} has shape {tuple(t.shape)}, which does not broadcast to y's shape "
            f"{tuple(y.shape)}"
        ) from None


def make_noise(y: Tensor, sigma=None, weights=None, inverse_covariance=None) -> GaussianNoise:
    """Validate the noise description given for data ``y`` and build its noise model."""
    given = [
        k
        for k, v in (
            ("sigma", sigma),
            ("weights", weights),
            ("inverse_covariance", inverse_covariance),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise InputError(f"give at most one of sigma, weights, inverse_covariance (got {given})")
    if sigma is not None:
        s = _like_y("sigma", sigma, y)
        _finite("sigma", s)
        if bool((s <= 0).any()):
            first = int(torch.nonzero(s <= 0)[0, 0])
            raise InputError(
                f"sigma must be > 0 everywhere; sigma[{first}] = {float(s[first]):g} "
                "(use weights=0 to mask points)"
            )
        return GaussianNoise(1.0 / s, None, known=True)
    if weights is not None:
        w = _like_y("weights", weights, y)
        _finite("weights", w)
        if bool((w < 0).any()):
            raise InputError("weights must be >= 0 (they are 1/sigma²)")
        if not bool((w > 0).any()):
            raise InputError("weights are all zero: no data point carries weight")
        return GaussianNoise(torch.sqrt(w), None, known=True)
    if inverse_covariance is not None:
        n = y.numel()
        W = torch.as_tensor(inverse_covariance, dtype=y.dtype, device=y.device)
        if W.shape != (n, n):
            raise InputError(
                f"inverse_covariance must have shape ({n}, {n}) for {n} data points, "
                f"got {tuple(W.shape)}"
            )
        _finite("inverse_covariance", W)
        asymmetry = float((W - W.mT).abs().max())
        if asymmetry > 1e-8 * float(W.abs().max()):
            raise InputError(
                f"inverse_covariance must be symmetric (largest |W - Wᵀ| is {asymmetry:.3g})"
            )
        W = 0.5 * (W + W.mT)  # remove rounding-level asymmetry, e.g. from a matrix inverse
        chol, info = torch.linalg.cholesky_ex(W)
        if int(info) != 0:
            raise InputError("inverse_covariance must be positive definite (Cholesky failed)")
        return GaussianNoise(None, chol, known=True)
    return GaussianNoise(None, None, known=False)
