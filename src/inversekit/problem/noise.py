"""Gaussian noise models: how residuals are weighted.

Every noise model turns raw residuals ``f(x) - y`` into *whitened* residuals ``r`` with
``chi2 = r·r``:

- ``sigma``: ``r_i = (f_i - y_i) / sigma_i``  (weights ``w_i = 1/sigma_i²``)
- ``weights``: the same with ``sigma_i = 1/sqrt(w_i)``; a zero weight is ``sigma_i = inf``
  (the point carries no weight: the problem sets ``r_i = 0`` there)
- ``mask`` (boolean, ``True`` = the point is used): ``sigma_i = inf`` where it is False,
  with any of the above or with unit weights (the points left out count nowhere: not in
  chi2, not in ``n``, not in ``log det W``)
- ``inverse_covariance`` ``W``: ``r = Lᵀ (f - y)`` with ``W = L Lᵀ`` (Cholesky), so
  ``r·r = (f - y)ᵀ W (f - y)``.

Diagonal noise keeps ``sigma`` itself, the user's array when it already has y's shape and
dtype: dividing by it costs no more than multiplying by stored weights, and storing
``1/sigma`` would be one more array the size of the data. Scans over data-sized arrays
(finiteness, counts, log-determinant) run in chunks so that they never allocate
temporaries the size of the data.

With no noise given the weights are one and the noise level is unknown: covariances are
then scaled by ``chi2 / (n - p)`` (the ``curve_fit``/lmfit convention).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from inversekit.errors import InputError

SCAN_CHUNK = 1 << 20  # elements per step of a scan over a data-sized array


def first_where(
    t: Tensor, bad: Callable[[Tensor], Tensor], used: Tensor | None = None
) -> tuple[int, int | None]:
    """``(count, first flat index)`` of the elements of ``t`` where ``bad`` holds (only
    where the flat mask ``used`` holds, when given), scanned in chunks (``first`` is
    ``None`` when there are none)."""
    flat = t.reshape(-1)
    if used is None and flat.numel() <= SCAN_CHUNK and not bool(bad(flat).any()):
        return 0, None  # small and clean: one test
    count, first = 0, None
    for start in range(0, flat.numel(), SCAN_CHUNK):
        mask = bad(flat[start : start + SCAN_CHUNK])
        if used is not None:
            mask = mask & used[start : start + SCAN_CHUNK]
        n = int(mask.sum())
        if n and first is None:
            first = start + int(torch.nonzero(mask)[0, 0])
        count += n
    return count, first


def not_finite(t: Tensor) -> Tensor:
    """Mask of the non-finite elements of ``t``."""
    return ~torch.isfinite(t)


class GaussianNoise:
    """Diagonal or full Gaussian noise on ``n`` flattened data points."""

    def __init__(self, sigma: Tensor | None, chol: Tensor | None, known: bool, n: int):
        self.sigma = sigma  # (n,) standard deviations (inf: no weight), or None for unit
        self.chol = chol  # (n, n) lower Cholesky factor of W, or None
        self.known = known  # True when the user stated the noise level
        self.n_effective, self.log_det_weights = self._weight_summary(n)
        # flat mask of the points that carry weight (finite sigma); None when all do
        self.used: Tensor | None = None
        if self.n_effective < n:
            self.used = torch.isfinite(sigma)

    def _weight_summary(self, n: int) -> tuple[int, float]:
        """Number of points carrying weight and ``log det W``, summed in chunks."""
        if self.chol is not None:
            return n, 2.0 * float(torch.log(torch.diagonal(self.chol)).sum())
        if self.sigma is None:
            return n, 0.0
        count, logdet = 0, 0.0
        for start in range(0, self.sigma.numel(), SCAN_CHUNK):
            s = self.sigma[start : start + SCAN_CHUNK]
            s = s[torch.isfinite(s)]
            count += s.numel()
            logdet -= 2.0 * float(torch.log(s).sum())
        return count, logdet

    @property
    def diagonal(self) -> bool:
        """True when each residual depends only on its own data point (rows may be chunked)."""
        return self.chol is None

    def whiten(self, raw: Tensor, rows: slice | None = None) -> Tensor:
        """Whitened residuals of a flat raw residual vector (optionally a slice of rows)."""
        if self.chol is not None:
            return self.chol.mT @ raw
        if self.sigma is None:
            return raw
        return raw / (self.sigma if rows is None else self.sigma[rows])

    def whitened_norm(self, y: Tensor) -> float:
        """``‖r(y)‖``: the norm of the data ``y`` (flat) whitened like residuals, in chunks
        for diagonal noise. It sets the rounding scale of the residuals ``(f - y)/σ`` (for
        a strongly correlated full inverse covariance ``Lᵀy`` can cancel where the rounding
        of ``Lᵀ(f - y)`` does not, and the scale is then an underestimate)."""
        if self.chol is not None:
            return float(torch.linalg.vector_norm(self.whiten(y)))
        total = 0.0
        for start in range(0, y.numel(), SCAN_CHUNK):
            rows = slice(start, start + SCAN_CHUNK)
            part = self.whiten(y[rows], rows)
            total += float(torch.dot(part, part))
        return math.sqrt(total)


def gaussian_log_likelihood(chi2, n, log_det_weights, known: bool):
    """The Gaussian log-likelihood of a fit with ``chi2 = rᵀWr`` over ``n`` weighted points,
    for one problem (floats) or a batch (tensors): the same formula.

    With the noise known: ``-chi2/2 + ½ log det W - n/2 log 2π``. With it unknown the noise
    variance is profiled out (``s² = chi2/n``): ``-n/2 (log(2π chi2/n) + 1)``, ``+inf`` for an
    exact fit (the profiled variance is zero).
    """
    if known:
        return -0.5 * chi2 + 0.5 * log_det_weights - 0.5 * n * math.log(2 * math.pi)
    if isinstance(chi2, Tensor):
        return -0.5 * n * (torch.log(2 * math.pi * chi2 / n) + 1.0)
    if chi2 == 0.0:
        return math.inf
    return -0.5 * n * (math.log(2 * math.pi * chi2 / n) + 1.0)


def _finite(name: str, t: Tensor, bad=not_finite, what: str = "non-finite") -> None:
    count, first = first_where(t, bad)
    if count:
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(first), t.shape))
        raise InputError(f"{name} contains {count} {what} value(s) (first at index {index})")


def _like_y(name: str, value, y: Tensor) -> Tensor:
    t = torch.as_tensor(value, dtype=y.dtype, device=y.device).detach()  # data, not a graph
    try:
        return torch.broadcast_to(t, y.shape).reshape(-1)
    except RuntimeError:
        raise InputError(
            f"{name} has shape {tuple(t.shape)}, which does not broadcast to y's shape "
            f"{tuple(y.shape)}"
        ) from None


def make_mask(mask, y: Tensor) -> Tensor | None:
    """The flat boolean mask of the points used (``True``: the point is fitted) broadcast
    to ``y``'s shape, or ``None`` when every point is used."""
    if mask is None:
        return None
    t = torch.as_tensor(mask, device=y.device).detach()
    if t.dtype != torch.bool:
        raise InputError(
            f"mask must be boolean (True = the point is used, False = excluded), got dtype "
            f"{t.dtype}; e.g. mask=numpy.isfinite(y)"
        )
    try:
        flat = torch.broadcast_to(t, y.shape).reshape(-1)
    except RuntimeError:
        raise InputError(
            f"mask (True = the point is used) has shape {tuple(t.shape)}, which does not "
            f"broadcast to y's shape {tuple(y.shape)}"
        ) from None
    return None if bool(flat.all()) else flat


def noise_given(sigma=None, weights=None, inverse_covariance=None) -> list[str]:
    """The names of the noise descriptions given (not ``None``)."""
    named = (("sigma", sigma), ("weights", weights), ("inverse_covariance", inverse_covariance))
    return [k for k, v in named if v is not None]


def make_noise(
    y: Tensor, sigma=None, weights=None, inverse_covariance=None, mask=None
) -> GaussianNoise:
    """Validate the noise description given for data ``y`` and build its noise model.

    ``mask`` (boolean, broadcast to ``y``; ``True`` = the point is used) excludes points:
    it is ``sigma = inf`` (weight zero) there, whatever sigma or weights say. With no noise
    given, a mask gives unit weights on the used points (the noise level stays unknown).
    """
    given = noise_given(sigma, weights, inverse_covariance)
    if len(given) > 1:
        raise InputError(f"give at most one of sigma, weights, inverse_covariance (got {given})")
    used = make_mask(mask, y)
    if used is not None and inverse_covariance is not None:
        raise InputError(
            "mask cannot be combined with inverse_covariance: excluding correlated points "
            "marginalises them, which needs their covariance; remove the points and their "
            "rows and columns of the covariance, then invert"
        )
    if sigma is not None:
        s = _like_y("sigma", sigma, y)
        if used is not None:
            s = torch.where(used, s, math.inf)
        _finite("sigma", s, torch.isnan, "NaN")
        count, first = first_where(s, lambda part: part <= 0)
        if count:
            raise InputError(
                f"sigma must be > 0 everywhere; sigma[{first}] = {float(s[first]):g} "
                "(use sigma=inf, weights=0 or mask= to exclude points)"
            )
        return _weighted(GaussianNoise(s, None, known=True, n=y.numel()))
    if weights is not None:
        w = _like_y("weights", weights, y)
        if used is not None:
            w = torch.where(used, w, 0.0)
        _finite("weights", w)
        if first_where(w, lambda part: part < 0)[0]:
            raise InputError("weights must be >= 0 (they are 1/sigma²)")
        return _weighted(GaussianNoise(torch.rsqrt(w), None, known=True, n=y.numel()))
    if inverse_covariance is not None:
        n = y.numel()
        W = torch.as_tensor(inverse_covariance, dtype=y.dtype, device=y.device).detach()
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
        return GaussianNoise(None, chol, known=True, n=n)
    if used is not None:  # unit weights on the used points, the level unknown
        ones = torch.full(used.shape, math.inf, dtype=y.dtype, device=y.device)
        ones.masked_fill_(used, 1.0)
        return _weighted(GaussianNoise(ones, None, known=False, n=y.numel()))
    return GaussianNoise(None, None, known=False, n=y.numel())


def _weighted(noise: GaussianNoise) -> GaussianNoise:
    if noise.n_effective == 0:
        raise InputError(
            "no data point carries weight (every point is masked, has weight 0 or sigma = inf)"
        )
    return noise
