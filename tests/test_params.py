"""Parameter packing and the bijections behind bounds."""

from __future__ import annotations

import math

import pytest
import torch

import inversekit as ik
from inversekit.derivatives.param_slots import ParamSlots
from inversekit.problem.transforms import Bijection

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


def test_one_operation_paths_for_unbounded_scalars_match_the_general_ones():
    fast = ik.Params(a=1.5, b=-2.0, c=ik.Param(0.3, fixed=True))
    general = ik.Params(
        a=1.5, b=ik.Param(-2.0, bounds=(-1e300, 1e300)), c=ik.Param(0.3, fixed=True)
    )
    assert fast.identity and not general.identity
    u = fast.pack()
    assert torch.equal(u, torch.tensor([1.5, -2.0], dtype=torch.float64))
    assert torch.equal(fast.physical(u), u) and fast.physical(u) is not u
    assert torch.equal(fast.derivative(u), torch.ones(2, dtype=torch.float64))
    assert torch.equal(fast.distance_to_bounds(u), torch.full((2,), math.inf, dtype=torch.float64))
    assert {k: float(v) for k, v in fast.unpack(u).items()} == {"a": 1.5, "b": -2.0, "c": 0.3}
    split = fast.split(torch.tensor([4.0, 5.0], dtype=torch.float64))
    assert {k: (float(v), v.shape) for k, v in split.items()} == {
        "a": (4.0, torch.Size([])),
        "b": (5.0, torch.Size([])),
    }
    assert general.split(torch.tensor([4.0, 5.0], dtype=torch.float64))["b"].shape == ()


def test_param_slots_refill_views_of_one_buffer():
    params = ik.Params(a=1.0, w=ik.Param(2.0, bounds=(0, None)), k=ik.Param(7.0, fixed=True))
    slots = ParamSlots(params, torch.empty(2, dtype=torch.float64))
    u = params.pack()
    first = slots.fill(u)
    assert float(first["a"]) == 1.0 and float(first["w"]) == pytest.approx(2.0, rel=1e-15)
    assert float(first["k"]) == 7.0
    slots.fill(u + 1.0)
    # the same views, now holding the new point: what the model got last time changed too
    assert float(first["a"]) == 2.0
    again = slots.fill(torch.tensor([3.0, math.log(5.0)], dtype=torch.float64))
    assert float(again["a"]) == 3.0 and float(again["w"]) == pytest.approx(5.0, rel=1e-15)
    with pytest.raises(ValueError, match="scalar free parameters"):
        ParamSlots(ik.Params(v=torch.zeros(3)), torch.empty(3, dtype=torch.float64))


def test_solver_evaluations_give_ordinary_tensors_equal_to_the_plain_path():
    x = torch.linspace(0, 4, 30, dtype=torch.float64)

    def model(p, x):
        return p["a"] * torch.exp(-p["k"] * x) + p["c"]

    params = ik.Params(a=2.0, k=ik.Param(0.7, bounds=(0, None)), c=0.1)
    problem = ik.LeastSquares(model, params, inputs=(x,), y=1.5 * torch.exp(-0.5 * x))
    u = problem.u0 + 0.1
    plain = problem.residual_function()(u)  # params.unpack, autograd on
    r = problem.residuals(u)  # parameter slots, inference mode inside
    assert torch.equal(r, plain) and not r.is_inference()
    assert problem.cost(u) == 0.5 * float(plain @ plain)
    J, _ = problem.jacobian.full(u)
    assert problem.jacobian.engine_name == "complex-step" and not J.is_inference()
    w = torch.ones_like(r, requires_grad=True)
    (w * r).sum().backward()  # usable in autograd
    assert torch.equal(w.grad, r)
    # a point of another shape is unpacked the ordinary way, not broadcast into the slots
    with pytest.raises(ValueError, match="zip"):
        problem.cost(u[:2])


def test_data_and_noise_that_require_grad_are_fitted_as_plain_data():
    x = torch.linspace(0, 4, 30, dtype=torch.float64)
    y = (1.5 * torch.exp(-0.5 * x)).requires_grad_(True)
    sigma = torch.full((30,), 0.1, dtype=torch.float64, requires_grad=True)

    def model(p, x):
        return p["a"] * torch.exp(-p["k"] * x)

    problem = ik.LeastSquares(model, ik.Params(a=1.0, k=1.0), inputs=(x,), y=y, sigma=sigma)
    assert not problem.y.requires_grad and not problem.noise.sigma.requires_grad
    result = ik.fit(problem, progress=False)
    assert result.success
    assert float(result.params["a"]) == pytest.approx(1.5, rel=1e-10)
    assert float(result.params["k"]) == pytest.approx(0.5, rel=1e-10)
