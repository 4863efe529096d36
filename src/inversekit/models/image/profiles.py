r"""Radial surface-brightness profiles and the elliptical radius, as elementwise torch maths.

Everything here is pure and elementwise: parameters and coordinates broadcast against each
other, so the same functions serve one image, a batch of images and a 1-D radial cut.
Lengths are in pixels and surface brightness is flux per pixel area (pixel area 1).

Conventions follow AstroPhot 0.18 exactly (so that its images are reproduced to rounding):

.. math::

    \theta = \tfrac{\pi}{2} - \mathrm{PA},\quad
    x' = \cos\theta\,\Delta x - \sin\theta\,\Delta y,\quad
    y' = (\sin\theta\,\Delta x + \cos\theta\,\Delta y) / q,\quad
    R = \sqrt{x'^2 + y'^2 + s^2}

with :math:`\Delta x = x - c_x`, :math:`\Delta y = y - c_y` and softening :math:`s = 10^{-3}`
pixel. The major axis points along :math:`(-\sin\mathrm{PA}, \cos\mathrm{PA})`: PA = 0 is
+y (up in an ``origin="lower"`` display) and PA grows towards -x (East of North on a
north-up, east-left image). PA is cyclic with period :math:`\pi`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: AstroPhot's softening length (pixels) added in quadrature to the elliptical radius.
SOFTENING = 1e-3

# Ciotti & Bertin (1999) asymptotic series for b(n), as used by AstroPhot.
_CB = (4.0 / 405.0, 46.0 / 25515.0, 131.0 / 1148175.0, -2194697.0 / 30690717750.0)


def elliptical_radius_squared(
    x: Tensor,
    y: Tensor,
    cx: Tensor,
    cy: Tensor,
    q: Tensor,
    PA: Tensor,
    softening: float = SOFTENING,
) -> Tensor:
    r"""Squared softened elliptical radius :math:`R^2` (pixels²) of points ``(x, y)``.

    Expanded as the quadratic form
    :math:`R^2 = A\,\Delta x^2 + B\,\Delta x \Delta y + C\,\Delta y^2 + s^2` with
    :math:`A = \cos^2\theta + \sin^2\theta / q^2`,
    :math:`B = 2 \sin\theta \cos\theta\,(1/q^2 - 1)`,
    :math:`C = \sin^2\theta + \cos^2\theta / q^2`: on a pixel grid ``x`` is a row and
    ``y`` a column, so only the cross term and two sums cost a full image (the rotated form
    costs five). Rounding grows like :math:`\epsilon / q^2` (2e-12 at q = 0.01).
    Profiles take :math:`R^2` so that those needing only it (Gaussian, Moffat) or its log
    (Sérsic) skip the square root.
    """
    theta = 0.5 * math.pi - PA
    c, s = torch.cos(theta), torch.sin(theta)
    inv_q2 = 1.0 / (q * q)
    a = c * c + s * s * inv_q2
    b = 2.0 * s * c * (inv_q2 - 1.0)
    cc = s * s + c * c * inv_q2
    dx = x - cx
    dy = y - cy
    return (b * dx) * dy + (a * dx * dx + softening * softening) + cc * dy * dy


def elliptical_radius(
    x: Tensor,
    y: Tensor,
    cx: Tensor,
    cy: Tensor,
    q: Tensor,
    PA: Tensor,
    softening: float = SOFTENING,
) -> Tensor:
    r"""Softened elliptical radius :math:`R` (pixels) of points ``(x, y)``; see module docs.

    ``R`` is the major-axis distance: an isophote ``R = a`` is an ellipse with semi-major
    axis ``a`` and semi-minor axis ``q a``.
    """
    return torch.sqrt(elliptical_radius_squared(x, y, cx, cy, q, PA, softening))


def sersic_bn(n: Tensor) -> Tensor:
    r"""Ciotti & Bertin's series for the Sérsic :math:`b_n` (AstroPhot's choice).

    .. math::
        b_n \approx 2n - \tfrac13 + \tfrac{4}{405n} + \tfrac{46}{25515n^2}
        + \tfrac{131}{1148175n^3} - \tfrac{2194697}{30690717750n^4}

    Its relative error is 4e-4 at n = 0.5, 2.5e-5 at n = 1, 5e-7 at n = 2.5 and 7e-8 at
    n = 4 (see :func:`sersic_bn_exact` for the root of the incomplete gamma itself).
    """
    x = 1.0 / n
    return 2.0 * n - 1.0 / 3.0 + x * (_CB[0] + x * (_CB[1] + x * (_CB[2] + _CB[3] * x)))


def _gamma_density(a: Tensor, x: Tensor) -> Tensor:
    """d/dx of the regularised lower incomplete gamma P(a, x)."""
    return torch.exp((a - 1.0) * torch.log(x) - x - torch.lgamma(a))


def _gamma_dP_da(a: Tensor, x: Tensor, terms: int = 160) -> Tensor:
    r"""d/da of P(a, x) from the series :math:`P = \sum_k x^{a+k} e^{-x} / \Gamma(a+k+1)`.

    Differentiating term by term gives
    :math:`\sum_k x^{a+k} e^{-x} [\log x - \psi(a+k+1)] / \Gamma(a+k+1)`; near the median
    (x close to a) every term has the same sign and they fall off faster than geometrically,
    so 160 terms reach double precision for a up to about 60 (Sérsic n up to about 30).
    """
    k = torch.arange(terms, dtype=a.dtype, device=a.device)
    ak = a.unsqueeze(-1) + k
    logx = torch.log(x).unsqueeze(-1)
    log_term = ak * logx - x.unsqueeze(-1) - torch.lgamma(ak + 1.0)
    return torch.sum(torch.exp(log_term) * (logx - torch.digamma(ak + 1.0)), dim=-1)


def sersic_bn_exact(n: Tensor, iterations: int = 6) -> Tensor:
    r"""Exact Sérsic :math:`b_n`: the root of :math:`P(2n, b_n) = \tfrac12`.

    :math:`P` is the regularised lower incomplete gamma function, so :math:`R_e` encloses
    half the light. Solved by Newton's method in :math:`\log b` from Ciotti & Bertin's
    series (or, for :math:`n < 0.36`, from the small-argument form
    :math:`b \approx (\Gamma(2n+1)/2)^{1/(2n)}`); a fixed iteration count keeps it free of
    data-dependent control flow (safe under ``torch.func`` transforms). Converged to
    :math:`|P - \tfrac12| < 10^{-14}` for :math:`0.05 \le n \le 30`.

    Gradients: torch has no derivative of :math:`P(a, x)` in :math:`a`, so the root is
    found on detached values and re-attached to ``n`` through the implicit-function slope
    :math:`db/dn = -2\,\partial_a P / \partial_x P` (:math:`\partial_a P` from its series).
    First derivatives, backward and forward mode, are exact to rounding; second derivatives
    in ``n`` are not (the slope is held constant).
    """
    n0 = n.detach()
    a = 2.0 * n0
    small = torch.exp((torch.lgamma(a + 1.0) - math.log(2.0)) / a)
    guess = torch.where(n0 >= 0.36, sersic_bn(torch.clamp(n0, min=0.36)), small)
    t = torch.log(guess)
    for _ in range(iterations):
        b = torch.exp(t)
        t = t - (torch.special.gammainc(a, b) - 0.5) / (b * _gamma_density(a, b))
    b = torch.exp(t)
    slope = -2.0 * _gamma_dP_da(a, b) / _gamma_density(a, b)
    return b + slope * (n - n0)


def sersic(R2: Tensor, n: Tensor, Re: Tensor, Ie: Tensor, bn: Tensor) -> Tensor:
    r"""Sérsic profile :math:`I = I_e \exp\{-b_n[(R/R_e)^{1/n} - 1]\}` (flux/pixel²).

    Takes :math:`R^2`. :math:`(R/R_e)^{1/n}` is formed as
    :math:`\exp[(\tfrac12 \log R^2 - \log R_e)/n]`: a tensor-exponent ``pow`` costs more
    and its derivative in ``n`` needs the same logarithm anyway.
    """
    inv_n = 1.0 / n
    scaled = torch.exp(torch.addcmul(-torch.log(Re) * inv_n, torch.log(R2), 0.5 * inv_n))
    return Ie * torch.exp(torch.addcmul(bn, scaled, -bn))


def exponential(R2: Tensor, Re: Tensor, Ie: Tensor, b1: float | Tensor) -> Tensor:
    r"""Exponential disc :math:`I = I_e \exp\{-b_1 (R/R_e - 1)\}`: Sérsic n = 1; takes R²."""
    return Ie * torch.exp(-b1 * (torch.sqrt(R2) / Re - 1.0))


def gaussian(R2: Tensor, sigma: Tensor, flux: Tensor) -> Tensor:
    r"""Gaussian :math:`I = \frac{F}{2\pi\sigma^2} \exp(-R^2 / 2\sigma^2)` (AstroPhot); takes R².

    ``flux`` is the total flux of the circular (q = 1) profile; with the elliptical radius
    the integrated flux is ``q * flux``, as in AstroPhot.
    """
    inv_var = 1.0 / (sigma * sigma)
    return flux * inv_var / (2.0 * math.pi) * torch.exp(-0.5 * R2 * inv_var)


def moffat(R2: Tensor, n: Tensor, Rd: Tensor, I0: Tensor) -> Tensor:
    r"""Moffat profile :math:`I = I_0 / [1 + (R/R_d)^2]^n` (flux/pixel²); takes R²."""
    return I0 * torch.exp(-n * torch.log1p(R2 / (Rd * Rd)))


def sersic_total_flux(n: Tensor, Re: Tensor, Ie: Tensor, q: Tensor, bn: Tensor) -> Tensor:
    r"""Integral of the elliptical Sérsic profile over the whole plane (flux).

    .. math::
        F = 2\pi q R_e^2 I_e\, n\, e^{b_n} b_n^{-2n}\, \Gamma(2n)

    valid for any :math:`b_n` (the formula only uses the profile's form). The 0.001-pixel
    softening changes it by far less than :math:`10^{-9}` relative and is ignored.
    """
    log_f = (
        math.log(2.0 * math.pi)
        + torch.log(q)
        + 2.0 * torch.log(Re)
        + torch.log(n)
        + bn
        - 2.0 * n * torch.log(bn)
        + torch.lgamma(2.0 * n)
    )
    return Ie * torch.exp(log_f)
