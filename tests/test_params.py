"""Parameter packing and the bijections behind bounds."""

from __future__ import annotations

import math

import pytest
import torch

import inversekit as ik
from inversekit.transforms import Bijection

BOUNDS = [(None, None), (0.0, None), (None, 3.0), (-2.0, 5.0), (1e-9, 1e-6)]


@pytest.mark.parametrize("bounds", BOUNDS)
def test_bijection_round_trip_and_derivative(bounds):
    b = Bijection(*bounds)
    lo = -10.0 if bounds[0] is None else bounds[0]
    hi = 10.0 if bounds[1] is None else bounds[1]
    x = torch.linspace(lo, hi, 9, dtype=torch.float64)[1:-1]
    u = b.inverse(x)
    torch.testing.assert_close(b.forward(u), x, rtol=1e-12, atol=0)
    h = 1e-6
    numeric = (b.forward(u + h) - b.forward(u - h)) / (2 * h)
    torch.testing.assert_close(b.derivative(u), numeric, rtol=1e-7, atol=0)


def test_every_real_u_maps_inside_the_bounds():
    b = Bijection(-1.0, 2.0)
    x = b.forward(torch.tensor([-30.0, 0.0, 30.0], dtype=torch.float64))
    assert float(x.min()) >= -1.0 and float(x.max()) <= 2.0


def test_pack_unpack_keeps_shapes_and_fixed_values():
    params = ik.Params(
        s=ik.Param(2.0, bounds=(0.0, None)),
        m=ik.Param(torch.arange(6.0).reshape(2, 3) + 1.0, bounds=(0.0, 10.0)),
        f=ik.Param(torch.ones(4), fixed=True),
    )
    u = params.pack()
    assert u.shape == (7,) and params.n_free == 7
    out = params.unpack(u)
    assert out["m"].shape == (2, 3) and out["s"].shape == ()
    torch.testing.assert_close(out["m"], params.values["m"])
    assert out["f"] is params.values["f"]
    assert params.labels() == [
        "s",
        "m[0, 0]",
        "m[0, 1]",
        "m[0, 2]",
        "m[1, 0]",
        "m[1, 1]",
        "m[1, 2]",
    ]


def test_delta_method_covariance_matches_a_reparametrised_fit():
    """Fitting log-bounded w and unbounded w give the same physical stderr (delta method)."""
    x = torch.linspace(0.0, 2.0, 50, dtype=torch.float64)
    y = torch.exp(-1.3 * x) + 0.01 * torch.sin(17 * x)
    model = lambda p, x: torch.exp(-p["w"] * x)  # noqa: E731
    free = ik.fit(ik.LeastSquares(model, ik.Params(w=1.0), inputs=(x,), y=y))
    bounded = ik.fit(
        ik.LeastSquares(model, ik.Params(w=ik.Param(1.0, bounds=(0.0, None))), inputs=(x,), y=y)
    )
    assert float(bounded.stderr["w"]) == pytest.approx(float(free.stderr["w"]), rel=1e-8)


def test_infinite_bounds_mean_open():
    params = ik.Params(a=ik.Param(1.0, bounds=(-math.inf, math.inf)))
    assert params.bijections["a"].kind == "free"
