r"""Point-spread functions: checking, FFT convolution and sub-pixel placement.

Centring follows AstroPhot: a PSF array of odd shape ``(2p+1, 2r+1)`` has its centre at
index ``(p, r)``, and images are *convolved* with it (not correlated):

.. math::
    M[i, j] = \sum_{a, b} P[a, b]\, Z[i + p - a,\; j + r - b]

where ``Z`` is the model sampled on a grid padded by ``p`` rows and ``r`` columns on each
side (so light from just outside the field is scattered in). Only the fully overlapped
("valid") part is kept; the FFTs are zero-padded to at least the padded grid's size, which
is all a linear convolution needs for the valid part (circular wrap-around only reaches the
discarded border), then to a fast 2^a 3^b 5^c 7^d length.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from inversekit.errors import InputError


def check_psf(psf: object, name: str = "psf") -> Tensor:
    """Return ``psf`` as a detached float64 CPU tensor, or raise ``ValueError`` naming it.

    A PSF must be a 2-D array of odd side lengths (its centre is the middle pixel), finite,
    and have a positive sum. It is used as given (normalise it to sum 1 to make component
    fluxes total fluxes).
    """
    if isinstance(psf, Tensor):
        array = psf.detach().to("cpu", torch.float64)
    else:
        try:
            array = torch.as_tensor(np.asarray(psf, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} must be a 2-D array of numbers: {exc}") from None
    if array.ndim != 2:
        raise InputError(f"{name} must be 2-D, got shape {tuple(array.shape)}")
    if array.shape[0] % 2 == 0 or array.shape[1] % 2 == 0:
        raise InputError(
            f"{name} must have odd side lengths so that its centre is a pixel, "
            f"got shape {tuple(array.shape)}"
        )
    if not bool(torch.isfinite(array).all()):
        raise InputError(f"{name} contains non-finite values")
    if not float(array.sum()) > 0.0:
        raise InputError(f"{name} must have a positive sum, got {float(array.sum())}")
    return array.clone()


def fast_length(n: int) -> int:
    """Smallest integer >= n whose prime factors are all 2, 3, 5 or 7 (a fast FFT size)."""
    m = max(int(n), 1)
    while True:
        k = m
        for prime in (2, 3, 5, 7):
            while k % prime == 0:
                k //= prime
        if k == 1:
            return m
        m += 1


class Convolver:
    """Convolves images of one padded shape with one PSF, keeping the valid part.

    The PSF's spectrum is computed once per dtype and device and reused: the PSF is fixed
    data here, not a parameter.
    """

    def __init__(self, psf: Tensor, padded_shape: tuple[int, int]) -> None:
        self.psf = psf
        self.padded_shape = padded_shape
        self.fft_shape = (fast_length(padded_shape[0]), fast_length(padded_shape[1]))
        self._spectra: dict[tuple[torch.dtype, torch.device], Tensor] = {}

    def spectrum(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        """``rfft2`` of the zero-padded PSF in ``dtype`` on ``device`` (cached)."""
        key = (dtype, torch.device(device))
        if key not in self._spectra:
            psf = self.psf.to(device=device, dtype=dtype)
            self._spectra[key] = torch.fft.rfft2(psf, s=self.fft_shape)
        return self._spectra[key]

    def __call__(self, padded: Tensor) -> Tensor:
        """Valid part (..., H, W) of ``padded`` (..., H + 2p, W + 2r) convolved with the PSF."""
        ph, pw = self.psf.shape
        height = padded.shape[-2] - ph + 1
        width = padded.shape[-1] - pw + 1
        spectrum = self.spectrum(padded.dtype, padded.device)
        product = torch.fft.rfft2(padded, s=self.fft_shape) * spectrum
        full = torch.fft.irfft2(product, s=self.fft_shape)
        return full[..., ph - 1 : ph - 1 + height, pw - 1 : pw - 1 + width]


def _interpolation_weights(u: Tensor, size: int, kernel: str) -> Tensor:
    """Weights (..., N, size) taking a PSF axis of ``size`` samples to positions ``u`` (..., N).

    ``u`` is in PSF index units; samples beyond the PSF array count as zero. ``bilinear``
    is the tent kernel (AstroPhot's choice): exact at integer shifts, but its derivative
    in the position jumps there. ``cubic`` is Keys' cubic convolution kernel (a = -1/2):
    also interpolating, with continuous first derivatives in the position, which suits
    gradient-based fits of star positions. Both form a partition of unity and reproduce
    linear functions, so flux and centroid are preserved exactly.
    """
    t = (u.unsqueeze(-1) - torch.arange(size, dtype=u.dtype, device=u.device)).abs()
    if kernel == "bilinear":
        return torch.clamp(1.0 - t, min=0.0)
    inner = (1.5 * t - 2.5) * t * t + 1.0
    outer = ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0
    return torch.where(t <= 1.0, inner, torch.where(t < 2.0, outer, torch.zeros_like(t)))


def shifted_psf(
    psf: Tensor, x: Tensor, y: Tensor, cx: Tensor, cy: Tensor, kernel: str = "bilinear"
) -> Tensor:
    """The PSF centred at ``(cx, cy)`` (batch shaped), sampled at pixel centres ``x``, ``y``.

    Pixel ``(x, y)`` takes the PSF interpolated at index ``(y - cy + p, x - cx + r)``, as
    AstroPhot's point source does. The interpolation is separable, so the image is
    ``Wy @ psf @ Wx^T`` with sparse-in-effect weight matrices; returns (..., len(y), len(x)).
    """
    ph, pw = psf.shape
    wy = _interpolation_weights(y - cy.unsqueeze(-1) + ph // 2, ph, kernel)
    wx = _interpolation_weights(x - cx.unsqueeze(-1) + pw // 2, pw, kernel)
    return wy @ psf @ wx.transpose(-1, -2)
