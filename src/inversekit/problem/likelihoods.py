"""Likelihoods: how model output ``f`` and data ``y`` become residuals ``r``.

Every likelihood here turns ``f`` and ``y`` (and the noise scale ``σ`` where it has one)
into residuals whose squares sum to the *deviance*,

    Σ r_i² = -2 log L(f; y) + const,

so every solver (they all minimise ``½ r·r``) and every derivative engine (they all
differentiate the residual function) works unchanged, and the minimum of ``½ Σ r²`` is
the maximum-likelihood fit.

- :class:`Gaussian` (``"gaussian"``, the default): ``r = (f - y)/σ``, or ``r = Lᵀ(f - y)``
  for a full inverse covariance ``W = L Lᵀ``. The residuals are formed by the noise model
  (:mod:`inversekit.problem.noise`); this class only names the choice.
- :class:`Poisson` (``"poisson"``): counts, variance equal to the mean. Deviance residuals
  ``r = sign(f - y) sqrt(2 (f - y - y log(f/y)))`` (``sqrt(2 f)`` where ``y = 0``).
- :class:`StudentT` (``"student-t"``): heavy-tailed noise of scale ``σ`` and ``ν`` degrees
  of freedom, robust to outliers: ``r = sign(z) sqrt((ν + 1) log(1 + z²/ν))`` with
  ``z = (f - y)/σ``.

The covariance of the fitted parameters is the inverse Fisher information
``I = Σ_i w_i ∂f_i ∂f_iᵀ`` (``w_i = 1/σ_i²`` for the Gaussian, ``1/f_i`` for Poisson,
``(ν + 1)/((ν + 3) σ_i²)`` for Student-t). The derivative engines give the Jacobian of the
residuals, ``J_r = diag(∂r/∂f) J_f``; :meth:`Likelihood.fisher_scale` gives the row
scale ``s`` with ``diag(s) J_r = diag(sqrt(w)) J_f``, so ``I = (s J_r)ᵀ (s J_r)``.

Residuals and their derivatives are computed so that they are exact and finite where
``f = y`` (``z = 0``): the square root of the deviance term is written as ``(f - y)`` times
the square root of a smooth positive function, evaluated by its Taylor series near
``f = y``, so that forward mode, reverse mode and the complex step see no ``sqrt(0)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from inversekit.errors import InputError, ModelError
from inversekit.problem.noise import first_where

# q(t)/2 = (t - log1p t)/t² = Σ_k (-t)^k/(k + 2): its series is used for |t| below this
# (truncation after _Q_TERMS terms < 2e-18; the closed form loses eps/|t| to cancellation,
# the rounding of log1p: 4e-15 relative at the switch).
_Q_SWITCH = 0.05
_Q_TERMS = 13
# h(a) = log1p(a)/a = Σ_k (-a)^k/(k + 1): series below this (5 terms, error < 2e-16); the
# closed form has no cancellation (log1p is accurate), only the 0/0 at a = 0.
_H_SWITCH = 1e-3
_H_TERMS = 5

# Under torch.func's transforms (the Jacobians are vmapped jvps) an arithmetic operation
# between a tensor carrying tangents and a constant (a float, y, sigma) costs about ten
# times one between two tangent-carrying tensors (0.2 ms against 0.02 ms on small data):
# constants are therefore lifted once (``_lift``) and series summed by one product with
# their coefficients, not by Horner's rule.


def _lift(f: Tensor, value) -> Tensor:
    """``value`` (a tensor or float) as an operand of ``f``'s kind: ``(f - f) + value``
    (exactly ``value`` wherever ``f`` is finite)."""
    return (f - f) + value


def _series(t: Tensor, coeffs: Tensor) -> Tensor:
    """``Σ_k coeffs[k] t^k`` (powers by products, summed by one matrix product)."""
    powers = [torch.ones_like(t), t]
    for _ in range(coeffs.numel() - 2):
        powers.append(powers[-1] * t)
    return torch.stack(powers, -1) @ coeffs.to(t.dtype)


def _coefficients(terms: int, first: int, scale: float = 1.0) -> Tensor:
    """``scale (-1)^k/(k + first)`` for ``k < terms`` (float64)."""
    k = torch.arange(terms, dtype=torch.float64)
    return scale * (1.0 - 2.0 * (k % 2)) / (k + first)


_Q_HALF = _coefficients(_Q_TERMS, 2)
_H = _coefficients(_H_TERMS, 1)


def deviance_q_half(t: Tensor) -> Tensor:
    """``q(t)/2 = (t - log(1 + t))/t²`` (``1/2`` at ``t = 0``), smooth through ``t = 0``:
    ``f - y - y log(f/y) = y t² q(t)/2`` with ``t = (f - y)/y``. Non-finite for ``t <= -1``."""
    small = t.abs() < _Q_SWITCH
    series = _series(torch.where(small, t, 0.0), _Q_HALF.to(t.device))
    far = torch.where(small, 1.0, t)  # a safe argument where the series is used
    closed = (far - torch.log1p(far)) / (far * far)
    return torch.where(small, series, closed)


def deviance_q(t: Tensor) -> Tensor:
    """``q(t) = 2 (t - log(1 + t))/t²`` (``q(0) = 1``); see :func:`deviance_q_half`."""
    half = deviance_q_half(t)
    return half + half


def log1p_ratio(a: Tensor) -> Tensor:
    """``h(a) = log(1 + a)/a`` for ``a >= 0`` (``h(0) = 1``), smooth through ``a = 0``."""
    small = a < _H_SWITCH
    series = _series(torch.where(small, a, 0.0), _H.to(a.device))
    far = torch.where(small, 1.0, a)
    return torch.where(small, series, torch.log1p(far) / far)


def _index(flat: int, shape: torch.Size, first_row: int = 0) -> tuple[int, ...]:
    """The index in ``shape`` of flat position ``flat``, rows counted from ``first_row``."""
    index = [int(i) for i in torch.unravel_index(torch.tensor(flat), shape)]
    if index:
        index[0] += first_row
    return tuple(index)


class Likelihood:
    """One likelihood: residuals whose squares sum to the deviance (see the module).

    Attributes:
        name: the canonical name (``likelihood=`` accepts it).
        gaussian: whether the residuals are the noise model's whitened ``f - y``.
        noise_known: whether the likelihood fixes the noise level (covariances absolute
            without ``sigma``; ``None``: as the noise description says).
    """

    name = ""
    gaussian = False
    noise_known: bool | None = None

    @property
    def spec(self) -> str:
        """The likelihood with its options, as text (for fingerprints and reports)."""
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def check_noise(self, given: list[str]) -> None:
        """Refuse a noise description (``sigma``, ``weights``, ``inverse_covariance``, the
        ones given) this likelihood cannot use."""

    def check_data(self, y: Tensor, used: Tensor | None) -> None:
        """Refuse data ``y`` (finite where the flat mask ``used`` holds) outside the
        likelihood's support."""

    def check_model(self, f: Tensor, used: Tensor | None, first_row: int) -> None:
        """Refuse a model output ``f`` (rows ``first_row...`` of the data) where the
        likelihood is not defined, at the starting parameters."""

    # The three methods below are what a non-Gaussian likelihood defines; the Gaussian one
    # is the noise model's whitening (the problem's fast path) and has none of them.
    def residuals(self, f: Tensor, y: Tensor, sigma: Tensor | None) -> Tensor:
        """Residuals ``r`` (flat) with ``Σ r² = -2 log L + const``."""
        raise NotImplementedError(f"{type(self).__name__} defines no residuals")

    def fisher_scale(self, f: Tensor, y: Tensor, sigma: Tensor | None) -> Tensor:
        """Row scale ``s``: ``s_i ∂r_i/∂u = sqrt(w_i) ∂f_i/∂u`` (see the module)."""
        raise NotImplementedError(f"{type(self).__name__} defines no Fisher scale")

    def log_likelihood_constant(self, y: Tensor, used: Tensor | None, log_det_weights: float):
        """``log L + ½ Σ r²`` (independent of the parameters), summed over used points."""
        raise NotImplementedError(f"{type(self).__name__} defines no log-likelihood constant")

    def report_note(self) -> str:
        """What the report says about the likelihood (one line)."""
        return self.spec


class Gaussian(Likelihood):
    """Gaussian noise: ``r = (f - y)/σ`` (or ``Lᵀ(f - y)`` for a full inverse covariance).

    The residuals, log-likelihood and covariance are those of the noise model
    (:mod:`inversekit.problem.noise`): with no noise level given, unit weights and
    covariances scaled by ``chi2/(n - p)``.
    """

    name = "gaussian"
    gaussian = True

    def report_note(self) -> str:
        return "gaussian"


class Poisson(Likelihood):
    """Counts: ``y_i ~ Poisson(f_i)``, the variance of a count being its mean.

    Minimises the Poisson deviance ``D = 2 Σ (f - y - y log(f/y))`` (the term is ``2 f``
    where ``y = 0``) through the deviance residuals
    ``r = sign(f - y) sqrt(2 (f - y - y log(f/y)))``, computed as
    ``(f - y)/sqrt(y) · sqrt(q(t))`` with ``t = (f - y)/y`` and
    ``q(t) = 2 (t - log(1 + t))/t²`` (a series near ``t = 0``), so that ``r`` and
    ``∂r/∂f = 1/(sqrt(y) (1 + t) sqrt(q))`` are exact and finite at ``f = y``
    (``∂r/∂f = 1/sqrt(y)`` there).

    ``y`` must be ``>= 0``; non-integer values are accepted (the deviance is defined for
    them, e.g. for background-subtracted or rebinned counts that are still Poisson-like)
    but the log-likelihood then uses ``lgamma(y + 1)`` for the factorial. No ``sigma``,
    ``weights`` or ``inverse_covariance`` can be given (points are excluded with
    ``mask=``). The model must be positive: ``f <= 0`` where ``y > 0`` makes the residual
    non-finite (a solver rejects such a step), and at the start it is an error.

    Covariance: the inverse of the Fisher information ``I = Σ (1/f_i) ∂f_i ∂f_iᵀ`` at the
    solution, absolute (the noise level is known). ``chi2`` in a result is the deviance
    ``D`` (asymptotically chi-square with ``n - p`` degrees of freedom when counts are
    large), ``log_likelihood`` the exact ``Σ (y log f - f - log y!)``.
    """

    name = "poisson"
    noise_known = True

    def check_noise(self, given: list[str]) -> None:
        if given:
            raise InputError(
                f"{given[0]} cannot be given with likelihood='poisson': the variance of a "
                "count is its mean (exclude points with mask=)"
            )

    def check_data(self, y: Tensor, used: Tensor | None) -> None:
        count, first = first_where(y, lambda part: part < 0, used)
        if count:
            raise InputError(
                f"y must be >= 0 with likelihood='poisson' (counts); y has {count} negative "
                f"value(s), first at index {_index(first, y.shape)} "
                f"(y = {float(y.reshape(-1)[first]):g})"
            )

    def check_model(self, f: Tensor, used: Tensor | None, first_row: int) -> None:
        count, first = first_where(f, lambda part: ~(part > 0), used)
        if count:
            raise ModelError(
                "the Poisson likelihood needs a positive model; the model is <= 0 at "
                f"{count} point(s), first at index {_index(first, f.shape, first_row)} "
                f"(f = {float(f.reshape(-1)[first]):g}), at the starting parameters"
            )

    def residuals(self, f: Tensor, y: Tensor, sigma: Tensor | None = None) -> Tensor:
        positive = y > 0
        # a safe y where y = 0 (that branch is unused), lifted to f's kind (see _lift)
        Y = _lift(f, torch.where(positive, y, 1.0))
        d = f - Y
        # (f - y)/sqrt(y) sqrt(q(t)) = (f - y) sqrt(2/y) sqrt(q(t)/2)
        counts = d * torch.sqrt((Y + Y) / (Y * Y)) * torch.sqrt(deviance_q_half(d / Y))
        zeros = torch.sqrt(f + f)
        return torch.where(positive, counts, zeros)

    def fisher_scale(self, f: Tensor, y: Tensor, sigma: Tensor | None = None) -> Tensor:
        # 1/(sqrt(f) ∂r/∂f): sqrt((1 + t) q(t)) where y > 0, sqrt(2) where y = 0
        positive = y > 0
        ys = torch.where(positive, y, 1.0)
        t = (f - ys) / ys
        counts = torch.sqrt((1.0 + t) * deviance_q(t))
        return torch.where(positive, counts, math.sqrt(2.0))

    def log_likelihood_constant(self, y: Tensor, used: Tensor | None, log_det_weights: float):
        # log L = -D/2 + Σ (y log y - y - lgamma(y + 1)): the saturated model's log L
        y = y.reshape(-1)
        term = torch.special.xlogy(y, y) - y - torch.lgamma(y + 1.0)
        if used is not None:
            term = torch.where(used, term, 0.0)
        return float(term.sum())

    def report_note(self) -> str:
        return "poisson (chi2 = deviance; covariance from the Fisher information)"


class StudentT(Likelihood):
    """Heavy-tailed noise: ``(y - f)/σ ~ t_ν``, robust to outliers.

    Minimises ``Σ (ν + 1) log(1 + z²/ν)`` with ``z = (f - y)/σ`` through
    ``r = z sqrt((ν + 1)/ν · h(z²/ν))``, ``h(a) = log(1 + a)/a`` (a series near 0), which is
    ``sign(z) sqrt((ν + 1) log(1 + z²/ν))`` and smooth at ``z = 0`` (``∂r/∂z = sqrt((ν + 1)/ν)``
    there). A point ``k σ`` away pulls with a force that falls off as ``1/k`` beyond
    ``sqrt(ν)``, where the Gaussian's grows as ``k``: gross outliers barely move the fit.

    ``σ`` is the scale of the t distribution and must be given (``sigma=`` or
    ``weights=``): the boundary between inlier and outlier is measured in units of ``σ``,
    so, unlike the Gaussian, the fit itself depends on it and it cannot be set to 1 and
    rescaled afterwards; estimating it jointly would be a different (non-least-squares)
    problem. A full ``inverse_covariance`` is refused (correlated t noise is not a product
    of per-point terms).

    Covariance: the inverse of the expected Fisher information of the t location,
    ``I = Σ (ν + 1)/((ν + 3) σ_i²) ∂f_i ∂f_iᵀ``, absolute. ``chi2`` in a result is
    ``Σ r²``; ``log_likelihood`` the exact t log-likelihood.
    """

    name = "student-t"
    noise_known = True

    def __init__(self, nu: float = 4.0):
        if isinstance(nu, bool) or not isinstance(nu, int | float) or not (0 < nu < math.inf):
            raise InputError(f"StudentT needs nu (degrees of freedom) > 0 and finite, got {nu!r}")
        self.nu = float(nu)

    @property
    def spec(self) -> str:
        return f"student-t(nu={self.nu:g})"

    def __repr__(self) -> str:
        return f"StudentT(nu={self.nu:g})"

    def check_noise(self, given: list[str]) -> None:
        if "inverse_covariance" in given:
            raise InputError(
                "inverse_covariance cannot be given with likelihood='student-t': correlated "
                "t noise is not a product of per-point terms; give sigma (the scale)"
            )
        if not given:
            raise InputError(
                "likelihood='student-t' needs the noise scale: give sigma (or weights). The "
                "t distribution tells inliers from outliers in units of sigma, so the fit "
                "depends on it and it cannot be estimated afterwards as with Gaussian unit "
                "weights"
            )

    def residuals(self, f: Tensor, y: Tensor, sigma: Tensor | None) -> Tensor:
        zero = f - f  # constants lifted to f's kind (see _lift)
        z = f - (zero + y)
        if sigma is not None:
            z = z / (zero + sigma)
        nu = zero + self.nu
        h = log1p_ratio(z * z / nu)
        return z * torch.sqrt((nu + 1.0) / nu * h)

    def fisher_scale(self, f: Tensor, y: Tensor, sigma: Tensor | None) -> Tensor:
        # ∂r/∂f = sqrt(c/h)/((1 + a) σ) with c = (ν + 1)/ν, a = z²/ν; the target row weight
        # is sqrt((ν + 1)/(ν + 3))/σ, so s = sqrt((ν + 1)/(ν + 3)) (1 + a) sqrt(h/c)
        nu = self.nu
        z = (f - y) if sigma is None else (f - y) / sigma
        a = z * z / nu
        h = log1p_ratio(a)
        return math.sqrt((nu + 1.0) / (nu + 3.0)) * (1.0 + a) * torch.sqrt(h * nu / (nu + 1.0))

    def log_likelihood_constant(self, y: Tensor, used: Tensor | None, log_det_weights: float):
        # log L = Σ [lgamma((ν+1)/2) - lgamma(ν/2) - ½ log(νπ) - log σ_i] - ½ Σ r²
        nu = self.nu
        n = y.numel() if used is None else int(used.sum())
        per_point = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
        return n * per_point + 0.5 * log_det_weights

    def report_note(self) -> str:
        return likelihood_note(self.spec)


def likelihood_note(spec: str) -> str:
    """The report's line for the likelihood ``spec`` (as a result keeps it): the name and
    what chi2 and the covariance mean under it."""
    if spec == "poisson":
        return Poisson().report_note()
    if spec.startswith("student-t"):
        return f"{spec} (chi2 = Σ r²; covariance from the expected Fisher information)"
    return spec


LIKELIHOODS = {"gaussian": Gaussian, "poisson": Poisson, "student-t": StudentT}
_ALIASES = {"normal": "gaussian", "studentt": "student-t", "student_t": "student-t"}


def make_likelihood(spec: str | Likelihood) -> Likelihood:
    """The likelihood named by ``spec`` (``"gaussian"``, ``"poisson"``, ``"student-t"``;
    case-insensitive) or ``spec`` itself when it is a :class:`Likelihood`."""
    if isinstance(spec, Likelihood):
        return spec
    if isinstance(spec, type) and issubclass(spec, Likelihood):
        return spec()
    if isinstance(spec, str):
        key = spec.strip().lower()
        key = _ALIASES.get(key, key)
        if key in LIKELIHOODS:
            return LIKELIHOODS[key]()
    known = ", ".join(repr(k) for k in LIKELIHOODS)
    raise InputError(
        f"unknown likelihood {spec!r}; known: {known} (or an object such as StudentT(nu=3))"
    )
