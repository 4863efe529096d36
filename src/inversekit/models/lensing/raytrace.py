"""Lens equation and bilinear sampling of a pixelated source."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def lens_equation(x: Tensor, y: Tensor, alpha_x: Tensor, alpha_y: Tensor) -> tuple[Tensor, Tensor]:
    """Source-plane positions β = θ − α(θ) (arcsec) of image-plane positions θ = (x, y)."""
    return x - alpha_x, y - alpha_y


def sample_source(source: Tensor, beta_x: Tensor, beta_y: Tensor, fov: float) -> Tensor:
    """Bilinear interpolation of ``source`` ``(B, S, S)`` at source-plane points ``(B, H, W)``.

    The source pixel centres lie at ``linspace(-fov/2, fov/2, S)`` (arcsec), so β maps to the
    fractional pixel index ``(β + fov/2) / (fov / (S − 1))`` (column from β_x, row from β_y).
    Pixels outside the source read as zero, so a point between the outermost centre and half a
    pixel beyond blends towards zero. Surface brightness is conserved: an image pixel takes the
    source's value at its β, with no magnification factor.

    Uses ``grid_sample(mode="bilinear", padding_mode="zeros", align_corners=True)``: with
    ``align_corners=True`` the normalised coordinates ±1 are the centres of the edge pixels,
    exactly this grid convention. It is differentiable (to second order) in the source values and
    in β, hence in κ.
    """
    batch = max(source.shape[0], beta_x.shape[0])
    grid = torch.stack((beta_x, beta_y), dim=-1) / (fov / 2)
    image = F.grid_sample(
        source.unsqueeze(1).expand(batch, 1, -1, -1),
        grid.expand(batch, -1, -1, -1),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )
    return image.squeeze(1)
