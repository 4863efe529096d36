"""2-D galaxy-image components with AstroPhot's conventions, as plain torch model functions.

Build a model from components and fit it like any other model::

    from inversekit.models import image

    model = image.group(gal0=image.sersic(), sky=image.flat_sky(), psf=psf, shape=(128, 128))
    img = model({"gal0.cx": 63.5, "gal0.cy": 63.5, "gal0.q": 0.7, "gal0.PA": 0.698,
                 "gal0.n": 2.5, "gal0.Re": 12.0, "gal0.Ie": 10.0, "sky.I0": 20.0})

Components: :func:`sersic`, :func:`exponential`, :func:`gaussian`, :func:`moffat`,
:func:`point_source`, :func:`flat_sky`, :func:`plane_sky`. Pixel sampling:
:class:`Sampling` (``"midpoint"`` or ``"quad"``). See ``docs/models/image.md`` for the
equations, units and conventions.
"""

from __future__ import annotations

from inversekit.models.image.components import (
    INFOS,
    PointSource,
    Profile,
    Sky,
    exponential,
    flat_sky,
    gaussian,
    moffat,
    plane_sky,
    point_source,
    sersic,
)
from inversekit.models.image.group import ImageModel, group
from inversekit.models.image.profiles import (
    elliptical_radius,
    sersic_bn,
    sersic_bn_exact,
    sersic_total_flux,
)
from inversekit.models.image.psf import check_psf
from inversekit.models.image.sampling import MIDPOINT, QUAD, Grid, Sampling

#: Parameter tables of the image components (``image.sersic``, ``image.flat_sky``, ...).
MODELS = tuple(INFOS.values())

__all__ = [
    "MIDPOINT",
    "MODELS",
    "QUAD",
    "Grid",
    "ImageModel",
    "PointSource",
    "Profile",
    "Sampling",
    "Sky",
    "check_psf",
    "elliptical_radius",
    "exponential",
    "flat_sky",
    "gaussian",
    "group",
    "moffat",
    "plane_sky",
    "point_source",
    "sersic",
    "sersic_bn",
    "sersic_bn_exact",
    "sersic_total_flux",
]
