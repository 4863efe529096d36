"""Every bad input fails before any work, with an error naming the culprit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import inversekit as ik

X = torch.linspace(0.0, 1.0, 20, dtype=torch.float64)
Y = 2.0 * X + 1.0


def line(p, x):
    return p["a"] * x + p["b"]


def problem(**overrides):
    kwargs = dict(model=line, params=ik.Params(a=1.0, b=0.0), inputs=(X,), y=Y)
    kwargs.update(overrides)
    return ik.LeastSquares(**kwargs)


def test_non_finite_y_names_y_and_index():
    y = Y.clone()
    y[3] = math.nan
    with pytest.raises(
        ik.InputError, match=r"y contains 1 non-finite value\(s\) \(first at index \(3,\)\)"
    ):
        problem(y=y)


def test_nan_sigma():
    """NaN is refused; inf is not (a point without weight, see tests/test_masks.py)."""
    sigma = torch.ones(20, dtype=torch.float64)
    sigma[5] = math.nan
    with pytest.raises(ik.InputError, match=r"sigma contains 1 NaN value\(s\)"):
        problem(sigma=sigma)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_sigma_not_positive(bad):
    sigma = torch.ones(20, dtype=torch.float64)
    sigma[7] = bad
    with pytest.raises(ik.InputError, match=r"sigma must be > 0 everywhere; sigma\[7\]"):
        problem(sigma=sigma)


def test_sigma_wrong_shape():
    with pytest.raises(ik.InputError, match=r"sigma has shape \(3,\).*y's shape \(20,\)"):
        problem(sigma=torch.ones(3))


def test_two_noise_descriptions():
    with pytest.raises(ik.InputError, match="at most one of sigma, weights"):
        problem(sigma=1.0, weights=1.0)


def test_inverse_covariance_not_positive_definite():
    W = -torch.eye(20, dtype=torch.float64)
    with pytest.raises(ik.InputError, match="inverse_covariance must be positive definite"):
        problem(inverse_covariance=W)


def test_model_output_shape_differs_from_y():
    with pytest.raises(
        ik.ModelError, match=r"model output has shape \(19,\) but y has shape \(20,\)"
    ):
        problem(model=lambda p, x: line(p, x)[:-1])


def test_model_wrong_dtype():
    with pytest.raises(ik.ModelError, match="returned dtype torch.float32, expected torch.float64"):
        problem(model=lambda p, x: line(p, x).float())


def test_model_returns_non_tensor():
    with pytest.raises(ik.ModelError, match="must return a torch.Tensor, got ndarray"):
        problem(model=lambda p, x: np.zeros(20))


def test_model_exception_is_included():
    def broken(p, x):
        raise KeyError("no parameter called 'slope'")

    with pytest.raises(ik.ModelError, match="model raised KeyError.*no parameter called 'slope'"):
        problem(model=broken)


def test_model_non_finite_at_start():
    with pytest.raises(ik.ModelError, match=r"non-finite value\(s\) \(first at index \(0,\)\)"):
        problem(model=lambda p, x: torch.log(p["a"] * x - p["b"] * 0.0))


def test_lower_not_below_upper():
    with pytest.raises(
        ik.InputError, match=r"parameter 'a': lower bound 2.0 must be < upper bound 1.0"
    ):
        ik.Params(a=ik.Param(1.5, bounds=(2.0, 1.0)))


def test_start_outside_bounds():
    with pytest.raises(
        ik.InputError,
        match=r"parameter 'w': starting value -1 is not strictly above its lower bound 0",
    ):
        ik.Params(w=ik.Param(-1.0, bounds=(0.0, None)))


def test_start_on_upper_bound():
    with pytest.raises(
        ik.InputError, match=r"parameter 'q': .* not strictly below its upper bound 1"
    ):
        ik.Params(q=ik.Param(1.0, bounds=(0.0, 1.0)))


def test_non_finite_start():
    with pytest.raises(ik.InputError, match="parameter 'a': starting value contains non-finite"):
        ik.Params(a=math.nan)


def test_no_free_parameters():
    params = ik.Params(a=ik.Param(1.0, fixed=True), b=ik.Param(0.0, fixed=True))
    with pytest.raises(ik.InputError, match="no free parameters"):
        problem(params=params)


def test_more_parameters_than_data():
    params = ik.Params(a=1.0, b=0.0, c=ik.Param(torch.zeros(25)))
    with pytest.raises(
        ik.InputError, match=r"more free parameters \(27\) than data points carrying weight \(20\)"
    ):
        problem(params=params, model=lambda p, x: line(p, x) + 0 * p["c"].sum())


def test_unknown_solver_name():
    with pytest.raises(ik.InputError, match="unknown solver name 'lmm'; known names: .*lm"):
        ik.fit(problem(), "lmm")


def test_bad_solver_option():
    with pytest.raises(ik.InputError, match="LM option `max_iter` must be a positive integer"):
        ik.LM(max_iter=0)


def test_lm_on_an_objective_is_refused():
    objective = ik.Objective(lambda p: (p["a"] - 1.0) ** 2, ik.Params(a=0.0))
    with pytest.raises(ik.InputError, match="LM cannot solve this Objective: .*least-squares"):
        ik.fit(objective, ik.LM())


def test_a_model_without_effect_converges_without_crashing():
    """No parameter changes the output (a zero Jacobian): Marquardt's scale falls back to
    one, the fit ends, and every parameter is reported as not identifiable."""
    x = np.linspace(0.0, 1.0, 20)
    problem = ik.LeastSquares(
        lambda p, x: p["a"] * 0.0 * x + 1.0, ik.Params(a=1.0, b=2.0), inputs=(x,), y=np.ones(20)
    )
    result = ik.fit(problem)
    assert result.status.success or result.status is ik.Status.ZERO_RESIDUAL


def test_an_unbounded_unidentifiable_parameter_beside_a_bounded_one_is_not_at_a_bound():
    """(a + b) x + c with c bounded: a and b are not separately identifiable; they are
    reported as such (stderr inf), not as held by a bound (NaN)."""
    x = np.linspace(0.0, 1.0, 30)
    y = 2.0 * x + 0.5 + 0.01 * np.sin(11 * x)
    params = ik.Params(a=1.0, b=0.5, c=ik.Param(0.2, bounds=(0.0, 10.0)))
    result = ik.fit(
        ik.LeastSquares(lambda p, x: (p["a"] + p["b"]) * x + p["c"], params, inputs=(x,), y=y)
    )
    assert result.unidentified == ["a", "b"] and result.at_bounds == []
    assert np.isinf(float(result.stderr["a"])) and np.isinf(float(result.stderr["b"]))
    assert np.isfinite(float(result.stderr["c"]))
