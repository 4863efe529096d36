"""The front end ``ik.fit``: solver names and objects, the registry, the one loop's
budgets and callbacks, and a solver x problem matrix over every registered solver."""

from __future__ import annotations

import math

import pytest
import torch

import inversekit as ik
from inversekit.optimize import SOLVERS

X = torch.linspace(0, 4, 50, dtype=torch.float64)


def decay(p, x):
    return p["a"] * torch.exp(-p["k"] * x) + p["off"]


class Counting:
    """A model that counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, p, x):
        self.calls += 1
        return decay(p, x)


def least_squares(model=decay):
    y = 2.0 * torch.exp(-1.3 * X) + 0.5 + 0.01 * torch.sin(7 * X)
    params = ik.Params(a=1.0, k=ik.Param(0.5, bounds=(0, None)), off=0.0)
    return ik.LeastSquares(model, params, inputs=(X,), y=y, sigma=0.01)


def batched(model=decay, fixed_off=None):
    B = 6
    k = torch.linspace(0.5, 2.0, B, dtype=torch.float64)[:, None]
    off = 0.5 if fixed_off is None else fixed_off
    y = 2.0 * torch.exp(-k * X) + off + 0.001 * torch.cos(5 * X)
    params = ik.Params(
        a=1.0,
        k=ik.Param(1.0, bounds=(0, None)),
        off=ik.Param(off if fixed_off is not None else 0.0, fixed=fixed_off is not None),
    )
    return ik.BatchedLeastSquares(model, params, inputs=(X,), y=y, sigma=0.001)


def objective():
    return ik.Objective(
        # minimum 0 at a = 2, k = 1.3, off = 1
        lambda p: (
            (p["a"] - 2.0) ** 2
            + 3.0 * (p["k"] - 1.3) ** 2
            + (p["off"] - 0.5 * p["a"]) ** 2
            + 0.1 * (p["a"] * p["k"] - 2.6) ** 2
        ),
        ik.Params(a=1.0, k=0.5, off=0.0),
    )


FAMILIES = {"least squares": least_squares, "batched": batched, "objective": objective}


def test_unknown_solver_name_fails_before_the_model_is_called():
    model = Counting()
    problem = least_squares(model)
    before = model.calls
    with pytest.raises(ik.InputError, match="unknown solver name 'no-such-solver'; known names"):
        ik.fit(problem, "no-such-solver")
    assert model.calls == before


def test_a_solver_that_cannot_take_the_problem_fails_before_the_model_is_called():
    model = Counting()
    problem = batched(model)
    before = model.calls
    with pytest.raises(ik.InputError, match="L-BFGS-B cannot solve this BatchedLeastSquares"):
        ik.fit(problem, "lbfgsb")
    assert model.calls == before


def test_an_object_that_is_not_a_solver_is_refused():
    with pytest.raises(ik.InputError, match="solver must be a name .* or a solver object"):
        ik.fit(least_squares(), {"max_iter": 10})


def test_batched_callback_sees_fixed_parameters_at_their_values():
    seen = []

    def callback(state):
        seen.append(state.params["off"].clone())

    result = ik.fit(batched(fixed_off=5.0), callback=callback)
    assert seen and all(torch.all(off == 5.0) for off in seen)
    assert torch.all(result.params["off"] == 5.0)
    assert bool(result.success.all())


def test_single_callback_sees_physical_values_and_can_stop():
    seen = []

    def callback(state):
        seen.append(float(state.params["k"]))
        return state.iteration == 2

    result = ik.fit(least_squares(), callback=callback)
    assert result.status is ik.Status.CALLBACK and result.n_iter == 2
    assert all(k > 0 for k in seen) and len(seen) == 2


def test_evaluation_budget():
    result = ik.fit(least_squares(), ik.LM(max_evals=3))
    assert result.status is ik.Status.MAX_EVALS and result.n_fev >= 3 and not result.success


@pytest.mark.parametrize("option", ["max_evals", "max_iter"])
def test_bad_budgets_are_refused(option):
    with pytest.raises(ik.InputError, match=f"`{option}` must be a positive integer"):
        ik.LM(**{option: 0})


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_every_registered_solver_on_every_problem_family(name, family):
    """Each solver either solves the family (converged, the minimum checked) or refuses it
    with an InputError naming itself, before any work."""
    problem = FAMILIES[family]()
    try:
        solver = ik.optimize.resolve_solver(name, problem)
    except ik.InputError as refusal:
        assert f"cannot solve this {type(problem).__name__}" in str(refusal)
        with pytest.raises(ik.InputError, match="cannot solve"):
            ik.fit(problem, name)
        return
    assert solver.accepts(problem) is None
    result = ik.fit(problem, name)
    if family == "batched":
        assert bool(result.success.all())
        reference = [ik.fit(problem, "lm")[b].params["k"] for b in range(len(result))]
        torch.testing.assert_close(result.params["k"], torch.stack(reference), rtol=1e-9, atol=0)
        return
    assert result.success, result.message
    if family == "objective":
        for name, value in (("a", 2.0), ("k", 1.3), ("off", 1.0)):
            assert float(result.params[name]) == pytest.approx(value, abs=1e-5)
    else:
        reference = ik.fit(least_squares(), "lm")
        assert result.chi2 == pytest.approx(reference.chi2, rel=1e-8)
        assert result.chi2 == pytest.approx(2 * result.cost, rel=1e-12)
        assert math.isfinite(float(result.stderr["k"]))
