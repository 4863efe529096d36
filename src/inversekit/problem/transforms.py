"""Smooth bijections between a bounded physical interval and the whole real line.

Solvers work on an unconstrained vector ``u``; each bounded parameter is mapped to physical
space by ``x = forward(u)``:

=========================  =====================================  ============================
bounds                     x(u)                                   dx/du
=========================  =====================================  ============================
(None, None)               u                                      1
(lo, None)                 lo + exp(u)                            x - lo
(None, hi)                 hi - exp(u)                            -(hi - x)
(lo, hi)                   lo + (hi - lo) sigmoid(u)              (x - lo)(hi - x)/(hi - lo)
(lo, hi), log, lo > 0      exp(log lo + log(hi/lo) sigmoid(u))    x log(x/lo) log(hi/x)/L
=========================  =====================================  ============================

(``L = log(hi/lo)``.)

The one-sided maps are logarithmic, so a positive scale parameter such as a width or a rate
is fitted in relative terms whatever its units; the two-sided map is the logistic. A
parameter declared ``log_scale=True`` gets an implicit lower bound of 0 (so ``x = exp(u)``
without other bounds) and, between two positive bounds, the logistic acts on ``log x``: a
parameter spanning decades moves by the same ``u`` per decade. All maps are smooth,
strictly monotone and defined for every real ``u``; an overflowing ``u`` gives a non-finite
``x`` which the solvers treat as a rejected step. Far into a bound's tail (``u`` of -30 and
below for the logistic near its lower bound) ``dx/du`` vanishes and a parameter sent there
by one overlong step never comes back, so Levenberg–Marquardt damps any step that moves a
bounded coordinate by more than ``max_bounded_step`` (10).

:class:`Bijection` serves a parameter whose elements share one pair of bounds (floats);
:class:`ElementwiseBijection` one whose elements have bounds of their own (tensors), each
element taking its own row of the table above.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

KINDS = ("free", "lower", "upper", "both", "log-both")


def _kind(lower: float | None, upper: float | None, log_scale: bool = False) -> str:
    if lower is None and upper is None:
        return "free"
    if upper is None:
        return "lower"
    if lower is None:
        return "upper"
    return "log-both" if log_scale and lower > 0 else "both"


class Bijection:
    """Map between unconstrained ``u`` and physical ``x`` for one pair of bounds.

    ``log_scale`` only changes the map between two positive bounds (the logistic on
    ``log x``); an implicit lower bound of 0 is added by :class:`~inversekit.Params`.
    """

    def __init__(self, lower: float | None, upper: float | None, log_scale: bool = False):
        self.lower = lower
        self.upper = upper
        self.kind = _kind(lower, upper, log_scale)
        if self.kind == "log-both":
            self._log_lo, self._log_span = math.log(lower), math.log(upper / lower)

    def forward(self, u: Tensor) -> Tensor:
        """Physical value ``x(u)``."""
        lo, hi = self.lower, self.upper
        if self.kind == "free":
            return u
        if self.kind == "lower":
            return lo + torch.exp(u)
        if self.kind == "upper":
            return hi - torch.exp(u)
        if self.kind == "log-both":
            return torch.exp(self._log_lo + self._log_span * torch.sigmoid(u))
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
        if self.kind == "log-both":
            return torch.log(torch.log(x) - self._log_lo) - torch.log(math.log(hi) - torch.log(x))
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
        if self.kind == "log-both":
            return self.forward(u) * self._log_span * s * (1.0 - s)
        return (hi - lo) * s * (1.0 - s)

    def distance_to_bound(self, x: Tensor) -> Tensor:
        """Distance from ``x`` to the nearest finite bound (``inf`` when unbounded)."""
        d = torch.full_like(x, math.inf)
        if self.lower is not None:
            d = torch.minimum(d, x - self.lower)
        if self.upper is not None:
            d = torch.minimum(d, self.upper - x)
        return d


class ElementwiseBijection:
    """The maps of :class:`Bijection` with bounds of their own for every element.

    ``lower`` and ``upper`` are flat tensors over the elements (``-inf``/``inf``: open);
    ``u`` may carry leading batch axes. Each branch is evaluated on a safe argument (``0``
    where another branch applies), so an overflow in a branch that is not taken can never
    leak a NaN into a value or a derivative.
    """

    kind = "elementwise"

    def __init__(self, lower: Tensor, upper: Tensor, log_scale: bool = False):
        has_lo, has_hi = torch.isfinite(lower), torch.isfinite(upper)
        self.lower, self.upper = lower, upper
        self.logistic = has_lo & has_hi
        self.log_both = self.logistic & (lower > 0) if log_scale else torch.zeros_like(has_lo)
        self.lower_only = has_lo & ~has_hi
        self.upper_only = has_hi & ~has_lo
        self.free = ~has_lo & ~has_hi
        self._lo = torch.where(has_lo, lower, 0.0)
        self._hi = torch.where(has_hi, upper, 1.0)
        self._log_lo = torch.log(torch.where(self.log_both, lower, 1.0))
        self._log_span = torch.log(torch.where(self.log_both, upper, 1.0)) - self._log_lo

    def forward(self, u: Tensor) -> Tensor:
        """Physical value ``x(u)``, element by element."""
        one_sided = self.lower_only | self.upper_only
        e = torch.exp(torch.where(one_sided, u, 0.0))
        s = torch.sigmoid(u)
        x = torch.where(self.lower_only, self._lo + e, u)
        x = torch.where(self.upper_only, self._hi - e, x)
        x = torch.where(self.logistic, self._lo + (self._hi - self._lo) * s, x)
        return torch.where(self.log_both, torch.exp(self._log_lo + self._log_span * s), x)

    def inverse(self, x: Tensor) -> Tensor:
        """Unconstrained value ``u(x)``; ``x`` must lie strictly inside its bounds."""
        lo_gap = torch.where(self.lower_only | self.logistic, x - self._lo, 1.0)
        hi_gap = torch.where(self.upper_only | self.logistic, self._hi - x, 1.0)
        u = torch.where(self.lower_only, torch.log(lo_gap), x)
        u = torch.where(self.upper_only, torch.log(hi_gap), u)
        u = torch.where(self.logistic, torch.log(lo_gap) - torch.log(hi_gap), u)
        log_x = torch.log(torch.where(self.log_both, x, 1.0))
        log_hi = self._log_lo + self._log_span
        logit = torch.log(log_x - self._log_lo) - torch.log(log_hi - log_x)
        return torch.where(self.log_both, logit, u)

    def derivative(self, u: Tensor) -> Tensor:
        """``dx/du`` at ``u``, element by element."""
        one_sided = self.lower_only | self.upper_only
        e = torch.exp(torch.where(one_sided, u, 0.0))
        s = torch.sigmoid(u)
        d = torch.where(self.lower_only, e, torch.ones_like(u))
        d = torch.where(self.upper_only, -e, d)
        d = torch.where(self.logistic, (self._hi - self._lo) * s * (1.0 - s), d)
        log_both = torch.exp(self._log_lo + self._log_span * s) * self._log_span * s * (1.0 - s)
        return torch.where(self.log_both, log_both, d)

    def distance_to_bound(self, x: Tensor) -> Tensor:
        """Distance from each element to its nearest finite bound (``inf`` when unbounded)."""
        return torch.minimum(x - self.lower, self.upper - x)
