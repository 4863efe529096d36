"""Linear (zero-padded) 2-D convolution by real FFTs."""

from __future__ import annotations

import torch
from torch import Tensor

from inversekit.errors import InputError


def fast_length(n: int) -> int:
    """Smallest integer >= ``n`` whose only prime factors are 2, 3 and 5 (cheap FFT sizes)."""
    best = 1
    while best < n:
        best *= 2
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            candidate = power35
            while candidate < n:
                candidate *= 2
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def linear_convolve(image: Tensor, kernel: Tensor, origin: tuple[int, int]) -> Tensor:
    """Linear convolution ``out[i, j] = Σ_kl image[i - k + o0, j - l + o1] kernel[k, l]``.

    ``image`` has shape ``(..., n0, n1)`` and ``kernel`` ``(..., m0, m1)`` (leading dims
    broadcast); the output has the image's spatial shape. ``origin = (o0, o1)`` is the kernel
    index that sits on the output pixel (the kernel's centre for a PSF, the zero-offset tap for
    the lensing kernel).

    Both arrays are zero-padded to a length ``P`` per axis with ``P >= n + m - 1 - o`` and
    ``P >= o + n``: a circular convolution of that length equals the linear one on the
    cropped window, because every wrapped-around term lands outside it. For the lensing kernel
    (``m = 2n - 1``, ``o = n - 1``) this is ``P >= 2n - 1``, half the ``4n + 1`` of the paper.
    """
    n0, n1 = image.shape[-2:]
    m0, m1 = kernel.shape[-2:]
    o0, o1 = origin
    p0, p1 = _padded_length(n0, m0, o0), _padded_length(n1, m1, o1)
    spectrum = _padded_rfft2(image, p0, p1) * _padded_rfft2(kernel, p0, p1)
    # Inverse transform column-wise first, then only the rows that survive the crop.
    rows = torch.fft.ifft(spectrum, n=p0, dim=-2)[..., o0 : o0 + n0, :]
    return torch.fft.irfft(rows, n=p1, dim=-1)[..., o1 : o1 + n1]


def _padded_rfft2(array: Tensor, p0: int, p1: int) -> Tensor:
    # Row transforms before padding the rows: the padded rows are zero and need no FFT.
    return torch.fft.fft(torch.fft.rfft(array, n=p1, dim=-1), n=p0, dim=-2)


def _padded_length(n: int, m: int, origin: int) -> int:
    if not 0 <= origin < m:
        raise InputError(f"origin must index the kernel (0 <= origin < {m}); got {origin}")
    return fast_length(max(n + m - 1 - origin, origin + n))
