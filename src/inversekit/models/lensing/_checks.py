"""Input checks shared by the lensing functions.

Every failure is a :class:`ValueError` whose message starts with the parameter's name, so a
caller fitting many parameters sees at once which one is wrong.
"""

from __future__ import annotations

import torch
from torch import Tensor

from inversekit.errors import InputError


def as_tensor(name: str, value: Tensor | float, like: Tensor | None = None) -> Tensor:
    """Return ``value`` as a floating tensor: float64 unless ``like`` or ``value`` has a dtype."""
    if isinstance(value, Tensor):
        if value.is_floating_point():
            return value
        if value.is_complex():
            raise InputError(f"{name} must be real; got dtype {value.dtype}")
        return value.to(torch.float64)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"{name} must be a number or a tensor; got {type(value).__name__}"
        ) from None
    dtype = like.dtype if like is not None else torch.float64
    device = like.device if like is not None else None
    return torch.tensor(number, dtype=dtype, device=device)


def check_finite(name: str, value: Tensor) -> None:
    """Raise if ``value`` holds NaN or infinity."""
    if not bool(torch.isfinite(value).all()):
        raise InputError(f"{name} must be finite; it contains NaN or infinity")


def check_range(
    name: str,
    value: Tensor,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = False,
    high_inclusive: bool = True,
    unit: str = "",
) -> None:
    """Raise unless every element of ``value`` is finite and lies in the given interval."""
    check_finite(name, value)
    detached = value.detach()
    bad = torch.zeros_like(detached, dtype=torch.bool)
    if low is not None:
        bad |= detached < low if low_inclusive else detached <= low
    if high is not None:
        bad |= detached > high if high_inclusive else detached >= high
    if bool(bad.any()):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        worst = detached[bad].flatten()[0].item()
        suffix = f" {unit}" if unit else ""
        raise InputError(f"{name} must lie in {left}{lo}, {hi}{right}{suffix}; got {worst:g}")


def check_square_batch(name: str, value: Tensor, pixels: int | None = None) -> None:
    """Raise unless ``value`` has shape ``(B, n, n)`` (and ``n == pixels`` when given)."""
    if value.dim() != 3:
        raise InputError(f"{name} must have shape (B, n, n); got shape {tuple(value.shape)}")
    if value.shape[-1] != value.shape[-2]:
        raise InputError(f"{name} must be square; got shape {tuple(value.shape)}")
    if pixels is not None and value.shape[-1] != pixels:
        raise InputError(
            f"{name} has {value.shape[-1]} pixels per side but the grid expects {pixels}"
        )


def batch_size(named: dict[str, Tensor]) -> int:
    """Common leading batch size of per-system parameters (0-d or shape (B,)).

    Scalars broadcast; two different sizes larger than one are an error naming the second.
    """
    size = 1
    first = ""
    for name, value in named.items():
        if value.dim() > 1:
            raise InputError(
                f"{name} must be a scalar or have shape (B,); got shape {tuple(value.shape)}"
            )
        n = value.shape[0] if value.dim() == 1 else 1
        if n == 1:
            continue
        if size == 1:
            size, first = n, name
        elif n != size:
            raise InputError(f"{name} has batch size {n} but {first} has batch size {size}")
    return size
