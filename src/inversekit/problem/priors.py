"""Priors on parameters: any ``torch.distributions`` distribution, plus :class:`LogUniform`.

A prior is a density over the *physical* value of a parameter (each element, its batch
shape broadcast against the value). Fitting a problem with priors gives the maximum a
posteriori point of the physical density:

- a :class:`~torch.distributions.Normal` prior is one residual row per element,
  ``(x - loc) / scale``, appended to the least-squares system: Levenberg–Marquardt and its
  covariance (then the Laplace approximation of the posterior) see it directly;
- any other prior adds ``-log p(x)`` to the scalar objective, which gradient-based
  minimisers (L-BFGS-B) see; least-squares solvers refuse such a problem by name.

A prior's support must contain the region the bounds allow: where no bounds are given the
support's ends become the bounds (a Gamma prior makes a parameter positive), where they
are given they must lie inside it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, Normal, constraints

from inversekit.errors import InputError
from inversekit.problem.decimals import shortest_decimals


class LogUniform(Distribution):
    """The log-uniform (reciprocal) distribution on ``[low, high]``, ``0 < low < high``:
    density ``1 / (x log(high/low))``, uniform in ``log x`` (scale-invariant ignorance)."""

    arg_constraints = {"low": constraints.positive, "high": constraints.positive}
    has_rsample = True

    def __init__(self, low, high, validate_args=None):
        self.low = torch.as_tensor(low, dtype=torch.float64)
        self.high = torch.as_tensor(high, dtype=torch.float64)
        if not bool((self.low > 0).all()) or not bool((self.high > self.low).all()):
            raise InputError(f"LogUniform needs 0 < low < high, got low={low}, high={high}")
        self.low, self.high = torch.broadcast_tensors(self.low, self.high)
        super().__init__(self.low.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low, self.high)

    def log_prob(self, value: Tensor) -> Tensor:
        inside = (value >= self.low) & (value <= self.high)
        safe = torch.where(inside, value, self.low.to(value.dtype))
        density = -torch.log(safe) - torch.log(torch.log(self.high / self.low))
        return torch.where(inside, density, -math.inf)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        q = torch.rand(shape, dtype=self.low.dtype, device=self.low.device)
        return torch.exp(torch.log(self.low) + q * torch.log(self.high / self.low))

    def __repr__(self) -> str:
        return f"LogUniform(low={_short(self.low)}, high={_short(self.high)})"


def _short(t: Tensor) -> str:
    return f"{float(t):g}" if t.numel() == 1 else f"tensor of shape {tuple(t.shape)}"


def is_gaussian(prior) -> bool:
    """Whether ``prior`` enters least squares as residual rows (a Normal)."""
    return isinstance(prior, Normal)


def describe(prior) -> str:
    """A short name of the prior for reports: ``Normal(0.5, 0.1)``."""
    if isinstance(prior, Normal):
        return f"Normal({_short(prior.loc)}, {_short(prior.scale)})"
    return repr(prior) if isinstance(prior, LogUniform) else type(prior).__name__


def support_interval(name: str, prior) -> tuple[float, float]:
    """``(lower, upper)`` of the prior's support on the real line (``±inf`` when open)."""
    support = prior.support
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    if support is constraints.real:
        return -math.inf, math.inf
    lo = getattr(support, "lower_bound", -math.inf)
    hi = getattr(support, "upper_bound", math.inf)
    known = (
        constraints.interval,
        constraints.half_open_interval,
        constraints.greater_than,
        constraints.greater_than_eq,
        constraints.less_than,
    )
    if not isinstance(support, known):
        raise InputError(
            f"parameter '{name}': the prior {describe(prior)} has support {support}, not an "
            "interval of the real line"
        )
    return _extreme(lo, min), _extreme(hi, max)


def _extreme(bound, pick) -> float:
    """One float for a support bound given per element (its loosest value)."""
    t = torch.as_tensor(bound, dtype=torch.float64)
    return float(t) if t.numel() == 1 else float(pick(t.reshape(-1).tolist()))


def _lift(t):
    """A float32 distribution parameter in float64 at the decimals it was written as:
    ``Normal(0.5, 0.1)`` stores ``0.1`` in float32 (the default dtype), and a float64 fit
    should not be off by that rounding (see :mod:`.decimals`)."""
    return shortest_decimals(t) if isinstance(t, Tensor) else t


def as_float64(prior):
    """The prior rebuilt with float64 parameters (see :func:`_lift`); unchanged if it
    cannot be rebuilt from its parameters."""
    names = list(getattr(prior, "arg_constraints", {}))
    args = {k: getattr(prior, k, None) for k in names}
    if not any(isinstance(v, Tensor) and v.dtype == torch.float32 for v in args.values()):
        return prior
    try:
        return type(prior)(**{k: _lift(v) for k, v in args.items()})
    except (TypeError, ValueError):
        return prior


def check_prior(name: str, prior, value: Tensor, lower: Tensor, upper: Tensor):
    """Check ``prior`` against the parameter's value and bounds (flat tensors, ``±inf``
    for open); returns the bounds, the support's ends put in where none were given."""
    if not isinstance(prior, Distribution):
        raise InputError(
            f"parameter '{name}': prior must be a torch.distributions.Distribution (e.g. "
            f"torch.distributions.Normal(0.5, 0.1)) or inversekit.LogUniform, got "
            f"{type(prior).__name__}"
        )
    if prior.event_shape != torch.Size():
        raise InputError(
            f"parameter '{name}': the prior {describe(prior)} is multivariate; give a "
            "univariate distribution (its batch shape broadcasting against the value)"
        )
    try:
        torch.broadcast_shapes(prior.batch_shape, value.shape)
    except RuntimeError:
        raise InputError(
            f"parameter '{name}': the prior's batch shape {tuple(prior.batch_shape)} does not "
            f"broadcast to the value's shape {tuple(value.shape)}"
        ) from None
    s_lo, s_hi = support_interval(name, prior)
    lower = torch.where(torch.isfinite(lower), lower, torch.full_like(lower, s_lo))
    upper = torch.where(torch.isfinite(upper), upper, torch.full_like(upper, s_hi))
    if bool((lower < s_lo).any()) or bool((upper > s_hi).any()):
        raise InputError(
            f"parameter '{name}': the prior {describe(prior)} has support [{s_lo:g}, {s_hi:g}] "
            f"but the bounds allow [{float(lower.min()):g}, {float(upper.max()):g}]; keep the "
            "bounds inside the prior's support"
        )
    try:
        density = prior.log_prob(value.to(torch.float64))
    except ValueError:  # torch's argument validation: the value is outside the support
        density = torch.tensor(-math.inf)
    if not bool(torch.isfinite(density).all()):
        raise InputError(
            f"parameter '{name}': the starting value has zero density under its prior "
            f"{describe(prior)}"
        )
    return lower, upper
