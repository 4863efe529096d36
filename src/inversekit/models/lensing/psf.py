"""Point-spread functions and their convolution with images."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from inversekit.errors import InputError
from inversekit.models.lensing._checks import as_tensor, check_finite, check_range
from inversekit.models.lensing.fft import linear_convolve

FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


def gaussian_psf(
    fwhm: Tensor | float,
    pixel_scale: float,
    *,
    size: int | None = None,
    sampling: str = "integrated",
) -> Tensor:
    """Normalised Gaussian PSF stamps ``(B, m, m)`` with an odd side ``m``, centred on a pixel.

    σ = FWHM / (2 √(2 ln 2)); ``fwhm`` (arcsec) is a number or shape ``(B,)``. ``size``
    defaults to 2⌈4σ_max/Δ⌉ + 1 and must be odd: an even stamp has its centre on a pixel
    corner and shifts the image by half a pixel (the paper's 20-pixel stamps did). With
    ``sampling="integrated"`` each tap is the Gaussian integrated over its pixel (separable erf
    differences), which stays accurate for a FWHM of about one pixel; ``"point"`` samples the
    Gaussian at pixel centres, as the paper did. Each stamp sums to one.
    """
    fwhm = as_tensor("fwhm", fwhm)
    if fwhm.dim() > 1:
        raise InputError(f"fwhm must be a scalar or have shape (B,); got {tuple(fwhm.shape)}")
    check_range("fwhm", fwhm, 0.0, unit="arcsec")
    check_range("pixel_scale", torch.tensor(float(pixel_scale)), 0.0, unit="arcsec")
    sigma = fwhm.reshape(-1, 1) / FWHM_PER_SIGMA
    if size is None:
        size = 2 * math.ceil(4 * float(sigma.max()) / pixel_scale) + 1
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise InputError(
            f"size must be a positive odd integer (an even PSF stamp shifts the image by half a "
            f"pixel); got {size!r}"
        )
    half = (size - 1) // 2
    offsets = torch.arange(-half, half + 1, dtype=sigma.dtype, device=sigma.device) * pixel_scale
    if sampling == "integrated":
        scale = sigma * math.sqrt(2)
        upper = torch.erf((offsets + pixel_scale / 2) / scale)
        lower = torch.erf((offsets - pixel_scale / 2) / scale)
        profile = 0.5 * (upper - lower)
    elif sampling == "point":
        profile = torch.exp(-0.5 * (offsets / sigma).square())
    else:
        raise InputError(f"sampling must be 'integrated' or 'point'; got {sampling!r}")
    stamp = profile[:, :, None] * profile[:, None, :]
    return stamp / stamp.sum(dim=(-2, -1), keepdim=True)


def check_psf(psf: Tensor, batch: int | None = None) -> Tensor:
    """Validate a PSF ``(m, m)`` or ``(B, m, m)`` with odd ``m``; return it as ``(B | 1, m, m)``."""
    if psf.dim() == 2:
        psf = psf.unsqueeze(0)
    if psf.dim() != 3 or psf.shape[-1] != psf.shape[-2]:
        raise InputError(f"psf must have shape (m, m) or (B, m, m); got {tuple(psf.shape)}")
    if psf.shape[-1] % 2 == 0:
        raise InputError(
            f"psf must have an odd side so that its centre is a pixel (an even stamp shifts the "
            f"image by half a pixel); got {psf.shape[-1]}"
        )
    if batch is not None and psf.shape[0] not in (1, batch):
        raise InputError(f"psf has batch size {psf.shape[0]} but the images have {batch}")
    check_finite("psf", psf)
    return psf


def convolve_psf(image: Tensor, psf: Tensor, *, validate: bool = True) -> Tensor:
    """Convolve images ``(B, N, N)`` with PSFs ``(m, m)`` or ``(B, m, m)`` (odd ``m``).

    out[i, j] = Σ_kl image[i − k + c, j − l + c] psf[k, l], c = (m − 1)/2: the PSF's central tap
    sits on the output pixel, so a symmetric PSF moves no light. Zero-padded FFT (linear, not
    circular): light falling outside the image is lost, none wraps around. The PSF is used as
    given; normalise it to unit sum to conserve flux.
    """
    if validate:
        psf = check_psf(psf, image.shape[0] if image.dim() == 3 else None)
    centre = (psf.shape[-1] - 1) // 2
    return linear_convolve(image, psf, origin=(centre, centre))
