r"""Image components: what each one draws, its parameters and where it enters the image.

A component is a small immutable description; :func:`inversekit.models.image.group` turns a
set of them into a model function. Each has

* ``kind`` and ``info`` (its :class:`~inversekit.models.table.ModelInfo` parameter table),
* ``names``: its parameter names, the keys it reads from the parameter dict,
* ``stage``: ``"convolved"`` (sampled on a grid padded by the PSF half-width, then
  convolved), ``"direct"`` (drawn on the image grid, not convolved: skies, or profiles
  built with ``convolve=False``) or ``"point"`` (the PSF itself, shifted and scaled),
* ``render(p, grid, psf)``: pixel values on a :class:`~.sampling.Grid` for parameters ``p``
  (tensors of one broadcastable batch shape), shape ``batch + (height, width)``.

Coordinates are in pixels, the centre of pixel ``data[i, j]`` being ``(x, y) = (j, i)``;
surface brightness is flux per pixel (pixel area 1), as in AstroPhot with pixelscale 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from inversekit.errors import InputError
from inversekit.models.image import profiles
from inversekit.models.image._checks import AXIS_RATIO, FINITE, POSITIVE, Domain
from inversekit.models.image.psf import shifted_psf
from inversekit.models.image.sampling import Grid, Sampling, as_sampling, pixel_means
from inversekit.models.table import ModelInfo, ParamSpec

Params = Mapping[str, Tensor]

_BN = {"ciotti-bertin": profiles.sersic_bn, "exact": profiles.sersic_bn_exact}

# Shared parameter descriptions: one place for names, units, bounds and scales.
_CX = ParamSpec("cx", "px", 0.0, description="centre x (column) coordinate")
_CY = ParamSpec("cy", "px", 0.0, description="centre y (row) coordinate")
_Q = ParamSpec("q", "", 0.8, (0.0, 1.0), description="axis ratio b/a, in (0, 1]")
_PA = ParamSpec(
    "PA",
    "rad",
    0.5 * math.pi,
    description="position angle of the major axis from +y towards -x; period pi",
)
_GEOMETRY = (_CX, _CY, _Q, _PA)
_GEOMETRY_DOMAINS = {"cx": FINITE, "cy": FINITE, "q": AXIS_RATIO, "PA": FINITE}

_SPECS: dict[str, tuple[ParamSpec, ...]] = {
    "sersic": _GEOMETRY
    + (
        ParamSpec("n", "", 2.0, (0.36, 10.0), description="Sérsic index"),
        ParamSpec("Re", "px", 10.0, (0.0, None), True, "effective (half-light) radius"),
        ParamSpec("Ie", "flux/px^2", 1.0, (0.0, None), True, "surface brightness at Re"),
    ),
    "exponential": _GEOMETRY
    + (
        ParamSpec("Re", "px", 10.0, (0.0, None), True, "effective (half-light) radius"),
        ParamSpec("Ie", "flux/px^2", 1.0, (0.0, None), True, "surface brightness at Re"),
    ),
    "gaussian": _GEOMETRY
    + (
        ParamSpec("sigma", "px", 3.0, (0.0, None), True, "standard deviation (major axis)"),
        ParamSpec("flux", "flux", 1.0, (0.0, None), True, "total flux of the q = 1 profile"),
    ),
    "moffat": _GEOMETRY
    + (
        ParamSpec("n", "", 2.0, (0.1, 10.0), description="Moffat concentration index"),
        ParamSpec("Rd", "px", 3.0, (0.0, None), True, "scale radius"),
        ParamSpec("I0", "flux/px^2", 1.0, (0.0, None), True, "central surface brightness"),
    ),
    "point_source": (
        _CX,
        _CY,
        ParamSpec("flux", "flux", 1.0, (0.0, None), True, "total flux (for a PSF of sum 1)"),
    ),
    "flat_sky": (ParamSpec("I0", "flux/px^2", 0.0, description="sky level"),),
    "plane_sky": (
        ParamSpec("I0", "flux/px^2", 0.0, description="sky level at pixel (0, 0)"),
        ParamSpec("delta_x", "flux/px^3", 0.0, description="sky gradient along x"),
        ParamSpec("delta_y", "flux/px^3", 0.0, description="sky gradient along y"),
    ),
}

_SUMMARIES = {
    "sersic": "Sérsic profile Ie exp(-b_n((R/Re)^(1/n) - 1)), elliptical, PSF-convolved",
    "exponential": "exponential disc Ie exp(-b_1(R/Re - 1)) (Sérsic n = 1), PSF-convolved",
    "gaussian": "Gaussian flux/(2 pi sigma^2) exp(-R^2/2sigma^2), elliptical, PSF-convolved",
    "moffat": "Moffat profile I0 (1 + (R/Rd)^2)^-n, elliptical, PSF-convolved",
    "point_source": "point source: the PSF scaled by flux and shifted to (cx, cy)",
    "flat_sky": "constant sky level I0 per pixel, not PSF-convolved",
    "plane_sky": "tilted sky I0 + delta_x x + delta_y y (pixel coordinates), not PSF-convolved",
}

#: Parameter tables of every component, collected by :func:`inversekit.models.available`.
INFOS: dict[str, ModelInfo] = {
    kind: ModelInfo(
        name=f"image.{kind}",
        summary=_SUMMARIES[kind],
        parameters=specs,
        doc="docs/models/image.md",
    )
    for kind, specs in _SPECS.items()
}


def _names(kind: str) -> tuple[str, ...]:
    return tuple(spec.name for spec in _SPECS[kind])


@dataclass(frozen=True)
class Profile:
    """An elliptical radial profile ``I(R)`` centred at ``(cx, cy)`` with axis ratio and PA.

    ``radial(R2, p)`` evaluates the profile from the squared elliptical radius;
    ``prepare(p)`` adds quantities derived once per call (the Sérsic ``bn``).
    """

    kind: str
    radial: Callable[[Tensor, Params], Tensor]
    sampling: Sampling
    convolve: bool = True
    softening: float = profiles.SOFTENING
    prepare: Callable[[Params], Params] = field(default=lambda p: p)
    domains: Mapping[str, Domain] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return _names(self.kind)

    @property
    def info(self) -> ModelInfo:
        return INFOS[self.kind]

    @property
    def stage(self) -> str:
        return "convolved" if self.convolve else "direct"

    def brightness(self, p: Params, x: Tensor, y: Tensor) -> Tensor:
        """Surface brightness (flux/px²) at points ``(x, y)``; all arguments broadcast."""
        return self._brightness(self.prepare(p), x, y)

    def _brightness(self, p: Params, x: Tensor, y: Tensor) -> Tensor:
        R2 = profiles.elliptical_radius_squared(
            x, y, p["cx"], p["cy"], p["q"], p["PA"], self.softening
        )
        return self.radial(R2, p)

    def render(self, p: Params, grid: Grid, psf: Tensor | None = None) -> Tensor:
        """Pixel values on ``grid`` by this component's :class:`Sampling`."""
        prepared = {k: v[..., None, None] for k, v in self.prepare(p).items()}
        return pixel_means(
            lambda x, y: self._brightness(prepared, x, y), grid, self.sampling, p["cx"], p["cy"]
        )


@dataclass(frozen=True)
class PointSource:
    """The PSF scaled by ``flux`` and centred at ``(cx, cy)`` with sub-pixel interpolation."""

    kernel: str = "bilinear"
    kind: str = "point_source"
    stage: str = "point"
    domains: Mapping[str, Domain] = field(
        default_factory=lambda: {"cx": FINITE, "cy": FINITE, "flux": FINITE}
    )

    @property
    def names(self) -> tuple[str, ...]:
        return _names(self.kind)

    @property
    def info(self) -> ModelInfo:
        return INFOS[self.kind]

    def render(self, p: Params, grid: Grid, psf: Tensor | None = None) -> Tensor:
        if psf is None:
            raise InputError("a point_source needs a psf")
        x, y = grid.axes(p["cx"].dtype, p["cx"].device)
        image = shifted_psf(psf, x, y, p["cx"], p["cy"], self.kernel)
        return p["flux"][..., None, None] * image


@dataclass(frozen=True)
class Sky:
    """A flat or tilted sky, drawn on the image grid and not PSF-convolved (AstroPhot).

    The plane is ``I0 + delta_x x + delta_y y`` in pixel coordinates, so ``I0`` is the
    level at the centre of pixel ``[0, 0]``: this is what AstroPhot 0.18 computes (its
    docstring calls ``I0`` the central value, but the code uses plane coordinates).
    """

    kind: str
    stage: str = "direct"

    @property
    def names(self) -> tuple[str, ...]:
        return _names(self.kind)

    @property
    def info(self) -> ModelInfo:
        return INFOS[self.kind]

    @property
    def domains(self) -> Mapping[str, Domain]:
        return {name: FINITE for name in self.names}

    def render(self, p: Params, grid: Grid, psf: Tensor | None = None) -> Tensor:
        level = p["I0"][..., None, None]
        if self.kind == "flat_sky":
            return level.expand(*level.shape[:-2], grid.height, grid.width)
        x, y = grid.axes(level.dtype, level.device)
        return (
            level + p["delta_x"][..., None, None] * x + p["delta_y"][..., None, None] * y[:, None]
        )


Component = Profile | PointSource | Sky


def _with_bn(function: Callable[[Tensor], Tensor]) -> Callable[[Params], Params]:
    def prepare(p: Params) -> Params:
        return {**p, "bn": function(p["n"])}

    return prepare


def _bn_function(bn: str) -> Callable[[Tensor], Tensor]:
    if bn not in _BN:
        raise InputError(f"bn must be one of {sorted(_BN)}, got {bn!r}")
    return _BN[bn]


def sersic(
    *, sampling: str | Sampling = "midpoint", bn: str = "ciotti-bertin", convolve: bool = True
) -> Profile:
    r"""Sérsic component, parameters ``cx, cy, q, PA, n, Re, Ie``.

    :math:`I(R) = I_e \exp\{-b_n[(R/R_e)^{1/n} - 1]\}` with the elliptical radius of
    :mod:`~inversekit.models.image.profiles`. ``bn="ciotti-bertin"`` (AstroPhot's series,
    the default) or ``"exact"`` (root of :math:`P(2n, b) = 1/2`).
    """
    function = _bn_function(bn)
    return Profile(
        kind="sersic",
        radial=lambda R2, p: profiles.sersic(R2, p["n"], p["Re"], p["Ie"], p["bn"]),
        sampling=as_sampling(sampling),
        convolve=convolve,
        prepare=_with_bn(function),
        domains={**_GEOMETRY_DOMAINS, "n": POSITIVE, "Re": POSITIVE, "Ie": FINITE},
    )


def exponential(
    *, sampling: str | Sampling = "midpoint", bn: str = "ciotti-bertin", convolve: bool = True
) -> Profile:
    r"""Exponential disc, parameters ``cx, cy, q, PA, Re, Ie``: Sérsic with n = 1.

    :math:`I(R) = I_e \exp\{-b_1 (R/R_e - 1)\}`; AstroPhot takes :math:`b_1` from the
    Ciotti & Bertin series (1.678389), ``bn="exact"`` the true root (1.678347).
    """
    b1 = float(_bn_function(bn)(torch.tensor(1.0, dtype=torch.float64)))
    return Profile(
        kind="exponential",
        radial=lambda R2, p: profiles.exponential(R2, p["Re"], p["Ie"], b1),
        sampling=as_sampling(sampling),
        convolve=convolve,
        domains={**_GEOMETRY_DOMAINS, "Re": POSITIVE, "Ie": FINITE},
    )


def gaussian(*, sampling: str | Sampling = "midpoint", convolve: bool = True) -> Profile:
    r"""Elliptical Gaussian, parameters ``cx, cy, q, PA, sigma, flux`` (AstroPhot's form).

    :math:`I(R) = \frac{F}{2\pi\sigma^2} e^{-R^2/2\sigma^2}`; total flux :math:`qF`.
    """
    return Profile(
        kind="gaussian",
        radial=lambda R2, p: profiles.gaussian(R2, p["sigma"], p["flux"]),
        sampling=as_sampling(sampling),
        convolve=convolve,
        domains={**_GEOMETRY_DOMAINS, "sigma": POSITIVE, "flux": FINITE},
    )


def moffat(*, sampling: str | Sampling = "midpoint", convolve: bool = True) -> Profile:
    r"""Elliptical Moffat, parameters ``cx, cy, q, PA, n, Rd, I0``.

    :math:`I(R) = I_0 [1 + (R/R_d)^2]^{-n}`; total flux
    :math:`\pi q R_d^2 I_0 / (n - 1)` for n > 1.
    """
    return Profile(
        kind="moffat",
        radial=lambda R2, p: profiles.moffat(R2, p["n"], p["Rd"], p["I0"]),
        sampling=as_sampling(sampling),
        convolve=convolve,
        domains={**_GEOMETRY_DOMAINS, "n": POSITIVE, "Rd": POSITIVE, "I0": FINITE},
    )


def point_source(*, kernel: str = "bilinear") -> PointSource:
    """Point source, parameters ``cx, cy, flux``: ``flux`` times the PSF centred at (cx, cy).

    ``kernel="bilinear"`` interpolates the PSF as AstroPhot does; ``"cubic"`` (Keys) gives
    continuous derivatives in the position. Needs the group's ``psf``.
    """
    if kernel not in ("bilinear", "cubic"):
        raise InputError(f"kernel must be 'bilinear' or 'cubic', got {kernel!r}")
    return PointSource(kernel=kernel)


def flat_sky() -> Sky:
    """Flat sky, parameter ``I0`` (flux per pixel), not PSF-convolved."""
    return Sky("flat_sky")


def plane_sky() -> Sky:
    """Tilted-plane sky ``I0 + delta_x x + delta_y y``, parameters ``I0, delta_x, delta_y``."""
    return Sky("plane_sky")
