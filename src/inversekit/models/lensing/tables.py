"""Parameter tables of the lensing models (data read by docs, CLI and ``models.available``)."""

from __future__ import annotations

import math

from inversekit.models.table import ModelInfo, ParamSpec

_SOURCE = ParamSpec(
    name="source",
    unit="flux / pixel",
    default=0.1,  # a faint uniform start, strictly inside the bound a fit needs
    bounds=(0.0, None),
    description="surface brightness of the source pixels; the paper peak-normalises to [0, 1]",
    per="source pixel",
)
_SHEAR = (
    ParamSpec(
        name="gamma1",
        unit="1",
        default=0.0,
        bounds=(-1.0, 1.0),
        description="external shear along the x / y axes, centred on the origin",
    ),
    ParamSpec(
        name="gamma2",
        unit="1",
        default=0.0,
        bounds=(-1.0, 1.0),
        description="external shear along the diagonals, centred on the origin",
    ),
)
_CENTRE = (
    ParamSpec(name="x0", unit="arcsec", default=0.0, description="lens centre, x"),
    ParamSpec(name="y0", unit="arcsec", default=0.0, description="lens centre, y"),
)

PIXELATED = ModelInfo(
    name="lensing.pixelated",
    summary="pixelated source lensed by a pixelated convergence map (FFT deflections)",
    parameters=(
        ParamSpec(
            name="kappa",
            unit="1",
            default=0.1,  # log scale: a fit starts strictly above 0
            bounds=(0.0, None),
            log_scale=True,
            description="convergence (surface density / critical density) of each pixel",
            per="kappa pixel",
        ),
        _SOURCE,
        *_SHEAR,
    ),
    doc="docs/models/lensing.md",
)

SIE = ModelInfo(
    name="lensing.sie",
    summary="pixelated source lensed by a singular isothermal ellipsoid plus external shear",
    parameters=(
        ParamSpec(
            name="theta_e",
            unit="arcsec",
            default=1.5,
            bounds=(0.0, None),
            log_scale=True,
            description="Einstein radius (mass inside the κ = 1/2 isodensity is π θ_E²)",
        ),
        ParamSpec(
            name="q",
            unit="1",
            default=0.8,
            bounds=(0.0, 1.0),
            description="axis ratio, minor over major, in (0, 1]",
        ),
        ParamSpec(
            name="phi",
            unit="rad",
            default=0.0,
            bounds=(-math.pi / 2, math.pi / 2),
            description="position angle of the major axis, counter-clockwise from +x (period π)",
        ),
        *_CENTRE,
        ParamSpec(
            name="core",
            unit="arcsec",
            default=0.0,
            bounds=(0.0, None),
            description="core radius; 0 gives the singular profile (fixed unless freed)",
            fixed=True,
        ),
        *_SHEAR,
        _SOURCE,
    ),
    doc="docs/models/lensing.md",
)

NFW = ModelInfo(
    name="lensing.nfw",
    summary="pixelated source lensed by a spherical NFW halo plus external shear",
    parameters=(
        ParamSpec(
            name="kappa_s",
            unit="1",
            default=0.3,
            bounds=(0.0, None),
            log_scale=True,
            description="characteristic convergence ρ_s r_s / Σ_cr",
        ),
        ParamSpec(
            name="r_s",
            unit="arcsec",
            default=5.0,
            bounds=(0.0, None),
            log_scale=True,
            description="scale radius",
        ),
        *_CENTRE,
        *_SHEAR,
        _SOURCE,
    ),
    doc="docs/models/lensing.md",
)

MODELS = (PIXELATED, SIE, NFW)
