"""Comparison of reconstructed and true maps: the coherence spectrum."""

from __future__ import annotations

import torch
from torch import Tensor

from inversekit.errors import InputError


def coherence_spectrum(
    estimate: Tensor,
    truth: Tensor,
    pixel_scale: float,
    *,
    bins: int = 40,
    method: str = "phase",
) -> tuple[Tensor, Tensor]:
    """Coherence γ(k) between maps ``(B, n, n)`` in annuli of spatial frequency.

    ``method="phase"`` (default) is the standard, phase-sensitive coherence

        γ(k) = Re Σ_{|k'|∈bin} x̂*(k') ŷ(k') / sqrt(Σ |x̂|² Σ |ŷ|²),

    which lies in [−1, 1]: 1 for maps that agree up to a scale factor at that frequency, about 0
    for unrelated phases, −1 for sign-flipped structure. ``method="paper"`` reproduces the
    definition in the Censai code, mean |x̂* ŷ| / sqrt(mean |x̂|² mean |ŷ|²): it takes the modulus
    mode by mode, so it ignores phases and scores any map with the right amplitude spectrum
    near 1. Report it only next to the phase-sensitive one.

    ``pixel_scale`` is in arcsec; the returned frequencies are the bin centres in cycles per
    arcsec, ``bins`` equal-width annuli from 0 to the Nyquist frequency 1/(2Δ). Empty annuli
    give NaN. Returns ``(k (bins,), γ (B, bins))``.
    """
    if estimate.shape != truth.shape or estimate.dim() != 3:
        raise InputError(
            f"estimate and truth must have the same shape (B, n, n); got "
            f"{tuple(estimate.shape)} and {tuple(truth.shape)}"
        )
    if method not in ("phase", "paper"):
        raise InputError(f"method must be 'phase' or 'paper'; got {method!r}")
    n0, n1 = estimate.shape[-2:]
    fx = torch.fft.fftfreq(n1, d=pixel_scale, dtype=estimate.dtype, device=estimate.device)
    fy = torch.fft.fftfreq(n0, d=pixel_scale, dtype=estimate.dtype, device=estimate.device)
    k = torch.hypot(fy[:, None], fx[None, :])
    nyquist = 1 / (2 * pixel_scale)
    edges = torch.linspace(0, nyquist, bins + 1, dtype=estimate.dtype, device=estimate.device)
    index = torch.bucketize(k, edges, right=True) - 1  # bin i holds edges[i] <= k < edges[i+1]
    inside = (index >= 0) & (index < bins)
    x = torch.fft.fft2(estimate)
    y = torch.fft.fft2(truth)
    cross = x.conj() * y
    cross = cross.real if method == "phase" else cross.abs()
    terms = torch.stack((cross, x.abs().square(), y.abs().square()), dim=1)
    sums = torch.zeros(*terms.shape[:2], bins, dtype=terms.dtype, device=terms.device)
    flat = index[inside]
    sums.index_add_(2, flat, terms[..., inside])
    # Sums and means give the same ratio; empty annuli give 0/0 = NaN.
    gamma = sums[:, 0] / torch.sqrt(sums[:, 1] * sums[:, 2])
    return 0.5 * (edges[1:] + edges[:-1]), gamma
