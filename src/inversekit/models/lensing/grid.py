"""Pixel grids of the image, convergence and source planes.

Convention (shared with the Censai code, so data made with it line up): a plane of ``n``
pixels per side and field of view ``fov`` (arcsec) has pixel *centres* at
``linspace(-fov/2, +fov/2, n)``; the centres of the edge pixels lie at ``±fov/2`` and the
pixel scale is ``fov / (n - 1)``. Arrays are indexed ``[..., row, column]`` with ``x``
growing along columns and ``y`` along rows (row 0 is ``y = -fov/2``; display with
``origin="lower"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from inversekit.errors import InputError

PLANES = ("image", "kappa", "source")


@dataclass(frozen=True)
class LensGrid:
    """Fields of view (arcsec, centre to centre of the edge pixels) and pixel counts.

    The defaults are the paper's HST-like set-up: a 128-pixel image and convergence map over
    7.68", and a 128-pixel source over 3.0". ``kappa_pixels`` and ``kappa_fov`` default to the
    image's. The convergence field must cover the image field, because deflections are only
    known where the convergence map is.
    """

    image_pixels: int = 128
    image_fov: float = 7.68
    source_pixels: int = 128
    source_fov: float = 3.0
    kappa_pixels: int | None = None
    kappa_fov: float | None = None

    def __post_init__(self) -> None:
        if self.kappa_pixels is None:
            object.__setattr__(self, "kappa_pixels", self.image_pixels)
        if self.kappa_fov is None:
            object.__setattr__(self, "kappa_fov", self.image_fov)
        for plane in PLANES:
            pixels = getattr(self, f"{plane}_pixels")
            fov = getattr(self, f"{plane}_fov")
            if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 2:
                raise InputError(f"{plane}_pixels must be an integer >= 2; got {pixels!r}")
            if not (isinstance(fov, (int, float)) and math.isfinite(fov) and fov > 0):
                raise InputError(
                    f"{plane}_fov must be a positive finite number (arcsec); got {fov!r}"
                )
        if self.kappa_fov < self.image_fov * (1 - 1e-12):
            raise InputError(
                f"kappa_fov ({self.kappa_fov}) must be at least image_fov ({self.image_fov}): "
                "deflections are only known where the convergence map is"
            )

    def pixels(self, plane: str) -> int:
        """Pixels per side of ``plane`` ("image", "kappa" or "source")."""
        _check_plane(plane)
        return getattr(self, f"{plane}_pixels")

    def fov(self, plane: str) -> float:
        """Field of view of ``plane`` in arcsec, centre to centre of the edge pixels."""
        _check_plane(plane)
        return float(getattr(self, f"{plane}_fov"))

    def pixel_scale(self, plane: str) -> float:
        """Pixel scale of ``plane`` in arcsec per pixel: ``fov / (pixels - 1)``."""
        return self.fov(plane) / (self.pixels(plane) - 1)

    def kappa_matches_image(self) -> bool:
        """True when the convergence and image pixels coincide (no resampling of deflections)."""
        return self.kappa_pixels == self.image_pixels and math.isclose(
            self.kappa_fov, self.image_fov, rel_tol=1e-12
        )

    def coordinates(
        self,
        plane: str = "image",
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Pixel-centre coordinates ``(x, y)`` of ``plane`` in arcsec, each of shape ``(n, n)``.

        ``x[row, col]`` grows with ``col`` and ``y[row, col]`` with ``row``.
        """
        n = self.pixels(plane)
        half = self.fov(plane) / 2
        axis = torch.linspace(-half, half, n, dtype=dtype, device=device)
        y, x = torch.meshgrid(axis, axis, indexing="ij")
        return x, y


def _check_plane(plane: str) -> None:
    if plane not in PLANES:
        raise InputError(f"plane must be one of {PLANES}; got {plane!r}")
