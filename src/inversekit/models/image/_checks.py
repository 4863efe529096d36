"""Input checks that raise ``ValueError`` naming the offending parameter.

Parameter values are checked on detached copies, so a check never enters the autograd
graph. Checking needs one host-device sync per model call (all parameters are reduced to a
single flag first; the slow per-parameter search runs only when something is wrong).
Inside ``torch.func`` transforms (``jacfwd``, ``vmap``) values are per-sample abstractions
that cannot be read on the host, so checks are skipped there; the caller has normally
evaluated the model once at the same point outside the transform.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from inversekit.errors import InputError


@dataclass(frozen=True)
class Domain:
    """Values a parameter may take: finite, and within ``lo``/``hi`` if given."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = True
    hi_open: bool = False

    def contains(self, value: Tensor) -> Tensor:
        """Elementwise membership (NaN and infinities are never members)."""
        ok = torch.isfinite(value)
        if self.lo is not None:
            ok = ok & ((value > self.lo) if self.lo_open else (value >= self.lo))
        if self.hi is not None:
            ok = ok & ((value < self.hi) if self.hi_open else (value <= self.hi))
        return ok

    def describe(self) -> str:
        if self.lo is None and self.hi is None:
            return "finite"
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"in {left}{self.lo:g}, {self.hi:g}{right}"


FINITE = Domain()
POSITIVE = Domain(lo=0.0)
AXIS_RATIO = Domain(lo=0.0, hi=1.0)


def in_functorch_transform(value: Tensor) -> bool:
    """Whether ``value`` is wrapped by a ``torch.func`` transform (vmap, jvp, grad)."""
    check = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return bool(check(value)) if check is not None else False


def check_values(values: Mapping[str, Tensor], domains: Mapping[str, Domain]) -> None:
    """Raise ``ValueError`` for the first parameter outside its domain."""
    named = [(k, v) for k, v in values.items() if k in domains]
    if not named or any(in_functorch_transform(v) for _, v in named):
        return
    bad = [~domains[k].contains(v.detach()) for k, v in named]
    if not bool(torch.stack([b.any() for b in bad]).any()):
        return
    for (name, value), flags in zip(named, bad, strict=True):
        if bool(flags.any()):
            offending = value.detach()[flags]
            shown = f"{float(offending.flatten()[0])!r}"
            if value.ndim > 0:
                shown += f" ({int(flags.sum())} of {flags.numel()} values bad)"
            raise InputError(f"{name} must be {domains[name].describe()}, got {shown}")


def check_shape(shape: object, name: str = "shape") -> tuple[int, int]:
    """Return ``shape`` as ``(height, width)`` of positive ints, or raise ``ValueError``."""
    try:
        items = tuple(shape)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"{name} must be (height, width), got {shape!r}") from None
    if len(items) != 2:
        raise InputError(f"{name} must be (height, width), got {shape!r}")
    out = []
    for item in items:
        integral = (
            isinstance(item, numbers.Real)
            and not isinstance(item, bool)
            and math.isfinite(item)
            and item == int(item)
        )
        if not integral:
            raise InputError(f"{name} must hold integers, got {shape!r}")
        if int(item) < 1:
            raise InputError(f"{name} must be positive, got {shape!r}")
        out.append(int(item))
    return out[0], out[1]
