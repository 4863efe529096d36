"""Parameter tables of the XPCS models (data read by docs, CLI and ``models.available``).

Units, defaults and bounds are homodyne's: bounds from its parameter manager (the template
configuration), defaults from its parameter registry; ``log_scale`` marks the parameters
homodyne samples in log space.
"""

from __future__ import annotations

from inversekit.models.table import ModelInfo, ParamSpec

_CONTRAST = ParamSpec(
    name="contrast",
    unit="1",
    default=0.5,
    bounds=(0.0, 1.0),
    description="speckle contrast (beta of the Siegert relation), one per angle",
    per="angle",
)
_OFFSET = ParamSpec(
    name="offset",
    unit="1",
    default=1.0,
    bounds=(0.5, 1.5),
    description="baseline of c2, one per angle",
    per="angle",
)
_DIFFUSION = (
    ParamSpec(
        name="D0",
        unit="Angstrom^2/s",
        default=1000.0,
        bounds=(1e2, 1e5),
        log_scale=True,
        description="diffusion prefactor: D(t) = D0 t^alpha + D_offset",
    ),
    ParamSpec(
        name="alpha",
        unit="1",
        default=0.5,
        bounds=(-2.0, 2.0),
        description="diffusion exponent (ageing: the power law is in absolute time)",
    ),
    ParamSpec(
        name="D_offset",
        unit="Angstrom^2/s",
        default=10.0,
        bounds=(-1e5, 1e5),
        description="constant diffusion term; D(t) is floored at 1e-10",
    ),
)
_SHEAR = (
    ParamSpec(
        name="gamma_dot_t0",
        unit="1/s",
        default=0.01,
        bounds=(1e-6, 0.5),
        log_scale=True,
        description="shear-rate prefactor: gamma_dot(t) = gamma_dot_t0 t^beta + gamma_dot_t_offset",
    ),
    ParamSpec(
        name="beta",
        unit="1",
        default=0.5,
        bounds=(-2.0, 2.0),
        description="shear-rate exponent",
    ),
    ParamSpec(
        name="gamma_dot_t_offset",
        unit="1/s",
        default=0.0,
        bounds=(-0.1, 0.1),
        description="constant shear-rate term; gamma_dot(t) is floored at 1e-10",
    ),
    ParamSpec(
        name="phi0",
        unit="deg",
        default=0.0,
        bounds=(-10.0, 10.0),
        description="flow direction; the shear phase scales with cos(phi0 - phi)",
    ),
)

STATIC = ModelInfo(
    name="xpcs.static",
    summary="XPCS two-time correlation, anomalous diffusion D(t) (homodyne static mode)",
    parameters=(*_DIFFUSION, _CONTRAST, _OFFSET),
    doc="docs/models/xpcs.md",
)

LAMINAR_FLOW = ModelInfo(
    name="xpcs.laminar_flow",
    summary="XPCS two-time correlation, diffusion plus laminar shear (homodyne laminar_flow mode)",
    parameters=(*_DIFFUSION, *_SHEAR, _CONTRAST, _OFFSET),
    doc="docs/models/xpcs.md",
)

MODELS = (STATIC, LAMINAR_FLOW)
