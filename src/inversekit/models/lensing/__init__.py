"""Strong gravitational lensing with pixelated or analytic lenses and a pixelated source.

The forward model of Adam et al. (2023, ApJ 951:6; the Censai RIM paper): deflections of a
pixelated convergence map by zero-padded FFT convolution, the lens equation, bilinear
interpolation of a pixelated source, PSF convolution and Gaussian noise — with the kernel
sampled at the map's own pixel spacing and PSFs centred on a pixel. Analytic SIE (+ external
shear) and NFW lenses share the same ray tracing. See ``docs/models/lensing.md``.

Models (``model(p, grid, psf) -> (B, N, N)`` images): :func:`lens_image` (``lensing.pixelated``),
:func:`sie_image` (``lensing.sie``) and :func:`nfw_image` (``lensing.nfw``). Reconstructions
are compared with :func:`coherence_spectrum`, phase-sensitive by default.
"""

from __future__ import annotations

from inversekit.models.lensing.convergence import (
    deflection_from_kappa,
    einstein_radius,
    lensing_kernel,
)
from inversekit.models.lensing.forward import (
    add_noise,
    image_from_deflection,
    kappa_deflection,
    lens_image,
    nfw_image,
    sie_image,
)
from inversekit.models.lensing.grid import LensGrid
from inversekit.models.lensing.metrics import coherence_spectrum
from inversekit.models.lensing.profiles import (
    nfw_convergence,
    nfw_deflection,
    nfw_enclosed_mass,
    pixel_average_convergence,
    shear_deflection,
    sie_convergence,
    sie_deflection,
)
from inversekit.models.lensing.psf import convolve_psf, gaussian_psf
from inversekit.models.lensing.raytrace import lens_equation, sample_source
from inversekit.models.lensing.tables import MODELS

__all__ = [
    "MODELS",
    "LensGrid",
    "add_noise",
    "coherence_spectrum",
    "convolve_psf",
    "deflection_from_kappa",
    "einstein_radius",
    "gaussian_psf",
    "image_from_deflection",
    "kappa_deflection",
    "lens_equation",
    "lens_image",
    "lensing_kernel",
    "nfw_convergence",
    "nfw_deflection",
    "nfw_enclosed_mass",
    "nfw_image",
    "pixel_average_convergence",
    "sample_source",
    "shear_deflection",
    "sie_convergence",
    "sie_deflection",
    "sie_image",
]
