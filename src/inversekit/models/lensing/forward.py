"""User-facing forward models: convergence + source -> lensed, blurred image.

The chain, per system of the batch (paper §2.2, eq. 4–5):

1. deflections α at the image-pixel centres, from a pixelated κ (FFT convolution) or an
   analytic lens (SIE, NFW), plus an optional external shear;
2. the lens equation β = θ − α(θ);
3. bilinear interpolation of the pixelated source at β (surface brightness is conserved);
4. convolution with the PSF (optional);
5. Gaussian noise, by :func:`add_noise`, kept apart so that the model itself is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from inversekit.errors import InputError
from inversekit.models.lensing._checks import (
    as_tensor,
    batch_size,
    check_finite,
    check_range,
    check_square_batch,
)
from inversekit.models.lensing.convergence import deflection_from_kappa
from inversekit.models.lensing.grid import LensGrid
from inversekit.models.lensing.profiles import (
    Deflection,
    nfw_deflection,
    shear_deflection,
    sie_deflection,
)
from inversekit.models.lensing.psf import check_psf, convolve_psf
from inversekit.models.lensing.raytrace import lens_equation, sample_source

PIXELATED_PARAMS = ("kappa", "source", "gamma1", "gamma2")
SIE_PARAMS = ("theta_e", "q", "phi", "x0", "y0", "core", "gamma1", "gamma2", "source")
NFW_PARAMS = ("kappa_s", "r_s", "x0", "y0", "gamma1", "gamma2", "source")


def _check_keys(p: Mapping[str, object], known: tuple[str, ...]) -> None:
    for name in p:
        if name not in known:
            raise InputError(f"{name} is not a parameter of this model; expected {known}")


def _source(p: Mapping[str, Tensor], grid: LensGrid | None, validate: bool) -> Tensor:
    if "source" not in p:
        raise InputError("source is required: a (B, S, S) tensor of surface brightness")
    source = as_tensor("source", p["source"])
    if validate:
        check_square_batch("source", source, None if grid is None else grid.source_pixels)
        check_finite("source", source)
    return source


def kappa_deflection(
    kappa: Tensor, grid: LensGrid, *, validate: bool = True
) -> tuple[Tensor, Tensor]:
    """Deflections ``(B, N, N)`` at the image-pixel centres of convergence maps ``(B, M, M)``.

    α is computed on the κ grid by FFT; when the κ and image grids differ it is interpolated
    bilinearly onto the image pixels (the image field lies inside the κ field by construction).
    """
    if validate:
        check_square_batch("kappa", kappa, grid.kappa_pixels)
        check_finite("kappa", kappa)
    alpha_x, alpha_y = deflection_from_kappa(kappa, grid.pixel_scale("kappa"), validate=False)
    if grid.kappa_matches_image():
        return alpha_x, alpha_y
    x, y = grid.coordinates("image", dtype=kappa.dtype, device=kappa.device)
    x, y = x.expand(kappa.shape[0], -1, -1), y.expand(kappa.shape[0], -1, -1)
    fov = grid.fov("kappa")
    return sample_source(alpha_x, x, y, fov), sample_source(alpha_y, x, y, fov)


def image_from_deflection(
    alpha_x: Tensor,
    alpha_y: Tensor,
    source: Tensor,
    grid: LensGrid,
    psf: Tensor | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    """Lensed (and PSF-blurred) image ``(B, N, N)`` given deflections at the image pixels."""
    x, y = grid.coordinates("image", dtype=alpha_x.dtype, device=alpha_x.device)
    beta_x, beta_y = lens_equation(x, y, alpha_x, alpha_y)
    image = sample_source(source.to(alpha_x.dtype), beta_x, beta_y, grid.fov("source"))
    if psf is None:
        return image
    return convolve_psf(image, psf.to(image), validate=validate)


def lens_image(
    p: Mapping[str, Tensor],
    grid: LensGrid | None = None,
    psf: Tensor | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    """Model ``lensing.pixelated``: image of a pixelated source behind a pixelated lens.

    ``p["kappa"]``: convergence ``(B, M, M)``, dimensionless; ``p["source"]``: surface
    brightness ``(B, S, S)`` in any unit (the image has the same unit per pixel);
    optional ``p["gamma1"], p["gamma2"]``: external shear, numbers or ``(B,)``. ``grid``
    describes the planes (default: the paper's fields of view, 7.68" for image and κ and 3.0"
    for the source, with pixel counts taken from the inputs). ``psf``: ``(m, m)`` or
    ``(B, m, m)`` with odd ``m``, or None. Returns the noiseless image ``(B, N, N)`` with the
    dtype and device of κ. Differentiable in κ, source, shear and PSF; ``validate=False`` skips
    the input checks (and their device synchronisation) inside tight loops.
    """
    if validate:
        _check_keys(p, PIXELATED_PARAMS)
    if "kappa" not in p:
        raise InputError("kappa is required: a (B, M, M) tensor of convergence")
    kappa = as_tensor("kappa", p["kappa"])
    if grid is None:
        if validate:
            check_square_batch("kappa", kappa)
        source_pixels = p["source"].shape[-1] if isinstance(p.get("source"), Tensor) else 128
        grid = LensGrid(image_pixels=kappa.shape[-1], source_pixels=source_pixels)
    source = _source(p, grid, validate)
    if validate:
        check_square_batch("kappa", kappa, grid.kappa_pixels)
        if source.device != kappa.device:
            raise InputError(f"source is on {source.device} but kappa is on {kappa.device}")
        if kappa.shape[0] != source.shape[0]:
            raise InputError(
                f"kappa has batch size {kappa.shape[0]} but source has batch size {source.shape[0]}"
            )
        if psf is not None:
            psf = check_psf(psf, kappa.shape[0])
    alpha_x, alpha_y = kappa_deflection(kappa, grid, validate=validate)
    if "gamma1" in p or "gamma2" in p:
        x, y = grid.coordinates("image", dtype=kappa.dtype, device=kappa.device)
        if validate:
            shear = {k: as_tensor(k, p[k], kappa) for k in ("gamma1", "gamma2") if k in p}
            _check_batch(shear, kappa.shape[0])
        sx, sy = shear_deflection(p, x, y, validate=validate)
        alpha_x, alpha_y = alpha_x + sx, alpha_y + sy
    return image_from_deflection(alpha_x, alpha_y, source, grid, psf, validate=False)


def _check_batch(values: Mapping[str, Tensor], batch: int) -> None:
    size = batch_size(dict(values))
    if size not in (1, batch):
        name = next(k for k, v in values.items() if v.dim() == 1 and v.shape[0] == size)
        raise InputError(f"{name} has batch size {size} but source has batch size {batch}")


def _analytic_image(
    p: Mapping[str, Tensor],
    deflection: Deflection,
    known: tuple[str, ...],
    grid: LensGrid | None,
    psf: Tensor | None,
    validate: bool,
) -> Tensor:
    if validate:
        _check_keys(p, known)
    source = _source(p, grid, validate)
    if grid is None:
        grid = LensGrid(source_pixels=source.shape[-1])
    lens = {k: as_tensor(k, v, source) for k, v in p.items() if k != "source"}
    if validate:
        _check_batch(lens, source.shape[0])
        if psf is not None:
            psf = check_psf(psf, source.shape[0])
    x, y = grid.coordinates("image", dtype=source.dtype, device=source.device)
    alpha_x, alpha_y = deflection(lens, x, y, validate=validate)
    if any(k in lens for k in ("gamma1", "gamma2")):
        sx, sy = shear_deflection(lens, x, y, validate=validate)
        alpha_x, alpha_y = alpha_x + sx, alpha_y + sy
    batch = source.shape[0]
    alpha_x = alpha_x.expand(batch, -1, -1)
    alpha_y = alpha_y.expand(batch, -1, -1)
    return image_from_deflection(alpha_x, alpha_y, source, grid, psf, validate=False)


def sie_image(
    p: Mapping[str, Tensor],
    grid: LensGrid | None = None,
    psf: Tensor | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    """Model ``lensing.sie``: pixelated source behind an SIE (+ external shear).

    ``p``: ``theta_e`` (arcsec), ``q``, optional ``phi`` (rad), ``x0``, ``y0``, ``core``
    (arcsec), ``gamma1``, ``gamma2`` — numbers or ``(B,)`` — and ``source`` ``(B, S, S)``.
    See :func:`~inversekit.models.lensing.profiles.sie_deflection`. Returns ``(B, N, N)``.
    """
    return _analytic_image(p, sie_deflection, SIE_PARAMS, grid, psf, validate)


def nfw_image(
    p: Mapping[str, Tensor],
    grid: LensGrid | None = None,
    psf: Tensor | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    """Model ``lensing.nfw``: pixelated source behind a spherical NFW halo (+ external shear).

    ``p``: ``kappa_s``, ``r_s`` (arcsec), optional ``x0``, ``y0`` (arcsec), ``gamma1``,
    ``gamma2`` — numbers or ``(B,)`` — and ``source`` ``(B, S, S)``. Returns ``(B, N, N)``.
    """
    return _analytic_image(p, nfw_deflection, NFW_PARAMS, grid, psf, validate)


def add_noise(
    image: Tensor, sigma: Tensor | float, *, generator: torch.Generator | None = None
) -> Tensor:
    """Add white Gaussian noise N(0, σ²), i.i.d. per pixel, after the PSF (paper order).

    ``sigma`` (image units) is a number or shape ``(B,)`` for a per-system noise level; pass a
    ``torch.Generator`` on the image's device for reproducible draws.
    """
    sigma = as_tensor("sigma", sigma, image)
    if sigma.dim() > 1:
        raise InputError(f"sigma must be a scalar or have shape (B,); got {tuple(sigma.shape)}")
    check_range("sigma", sigma, 0.0, low_inclusive=True)
    if sigma.dim() == 1 and sigma.shape[0] not in (1, image.shape[0]):
        raise InputError(f"sigma has batch size {sigma.shape[0]} but image has {image.shape[0]}")
    noise = torch.randn(image.shape, dtype=image.dtype, device=image.device, generator=generator)
    return image + sigma.reshape(-1, *([1] * (image.dim() - 1))) * noise
