"""XPCS two-time correlation c2(t1, t2) of homodyne's static and laminar-flow models.

The forward model of homodyne (He et al., PNAS 121 (2024) e2401162121, as implemented in
the homodyne package) with its exact discretisation: power-law diffusion and shear rates
integrated by trapezoid sums over the data's own time grid, a diffusion decay and a sinc^2
shear term per angle, per-angle contrast and offset. See ``docs/models/xpcs.md``.

Models (``model(p, t, phi, q=, dt=, L=, mode=) -> (P, N, N)``): :func:`c2`
(``xpcs.static`` and ``xpcs.laminar_flow``), with :func:`c2_tile` and :func:`c2_pairs` for
blocks and individual entries, and :func:`load` for homodyne's data layouts.
"""

from __future__ import annotations

from inversekit.models.xpcs.data import XPCSData, correct_diagonal, load
from inversekit.models.xpcs.model import c2, c2_pairs, c2_tile, parameter_names
from inversekit.models.xpcs.tables import LAMINAR_FLOW, MODELS, STATIC

__all__ = [
    "LAMINAR_FLOW",
    "MODELS",
    "STATIC",
    "XPCSData",
    "c2",
    "c2_pairs",
    "c2_tile",
    "correct_diagonal",
    "load",
    "parameter_names",
]
