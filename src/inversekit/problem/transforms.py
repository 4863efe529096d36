"""Smooth bijections between a bounded physical interval and the whole real line.

Solvers work on an unconstrained vector ``u``; each bounded parameter is mapped to physical
space by ``x = forward(u)``:

=================  =====================================  ==============================
bounds             x(u)                                   dx/du
=================  =====================================  ==============================
(None, None)       u                                      1
(lo, None)         lo + exp(u)                            x - lo
(None, hi)         hi - exp(u)                            hi - x   (sign: -(hi - x))
(lo, hi)           lo + (hi - lo) * sigmoid(u)            (x - lo)(hi - x)/(hi - lo)
=================  =====================================  ==============================

The one-sided maps are logarithmic, so a positive scale parameter such as a width or a rate
is fitted in relative terms whatever its units; the two-sided map is the logistic. All are
smooth, strictly monotone and defined for every real ``u``; an overflowing ``u`` gives a
non-finite ``x`` which the solvers treat as a rejected step. Far into a bound's tail
(``u`` of -30 and below for the logistic near its lower bound) ``dx/du`` vanishes and a
parameter sent there by one overlong step never comes back, so Levenberg–Marquardt damps
any step that moves a bounded coordinate by more than ``max_bounded_step`` (10).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _kind(lower: float | None, upper: float | None) -> str:
    if lower is None and upper is None:
        return "free"
    if upper is None:
        return "lower"
    if lower is None:
        return "upper"
    return "both"


class Bijection:
    """Map between unconstrained ``u`` and physical ``x`` for one pair of bounds."""

    def __init__(self, lower: float | None, upper: float | None):
        self.lower = lower
        self.upper = upper
        self.kind = _kind(lower, upper)

    def forward(self, u: Tensor) -> Tensor:
        """Physical value ``x(u)``."""
        lo, hi = self.lower, self.upper
        if self.kind == "free":
            return u
        if self.kind == "lower":
            return lo + torch.exp(u)
        if self.kind == "upper":
            return hi - torch.exp(u)
        return lo + (hi - lo) * torch.sigmoid(u)

    def inverse(self, x: Tensor) -> Tensor:
        """Unconstrained value ``u(x)``; ``x`` must lie strictly inside the bounds."""
        lo, hi = self.lower, self.upper
        if self.kind == "free":
            return x
        if self.kind == "lower":
            return torch.log(x - lo)
        if self.kind == "upper":
            return torch.log(hi - x)
        # logit((x - lo)/(hi - lo)) written to keep precision near both ends
        return torch.log(x - lo) - torch.log(hi - x)

    def derivative(self, u: Tensor) -> Tensor:
        """``dx/du`` evaluated at ``u`` (used by the delta method for covariances)."""
        lo, hi = self.lower, self.upper
        if self.kind == "free":
            return torch.ones_like(u)
        if self.kind == "lower":
            return torch.exp(u)
        if self.kind == "upper":
            return -torch.exp(u)
        s = torch.sigmoid(u)
        return (hi - lo) * s * (1.0 - s)

    def distance_to_bound(self, x: Tensor) -> Tensor:
        """Distance from ``x`` to the nearest finite bound (``inf`` when unbounded)."""
        d = torch.full_like(x, math.inf)
        if self.lower is not None:
            d = torch.minimum(d, x - self.lower)
        if self.upper is not None:
            d = torch.minimum(d, self.upper - x)
        return d
