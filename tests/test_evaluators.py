"""The evaluators through which LM sees a problem: float64 host points in, NumPy out.

The NumPy path for small complex-step problems must give what the problem's own tensor
methods give (to rounding), be chosen only where it serves, and hand over to the tensor
path when the complex step fails during a fit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import inversekit as ik
from inversekit.optimize.levenberg_marquardt.gauss_newton import cost_resolution
from inversekit.problem.evaluators import HostEvaluator, TensorEvaluator, make_evaluator


def peak(p, x):
    return p["a"] * torch.exp(-((x - p["mu"]) ** 2) / (2 * p["s"] ** 2)) + p["c"]


def peak_problem(**kwargs) -> ik.LeastSquares:
    rng = np.random.default_rng(3)
    x = np.linspace(0.0, 10.0, 120)
    y = 3.0 * np.exp(-((x - 4.0) ** 2) / 2.0) + 0.5 + 0.05 * rng.standard_normal(x.size)
    params = ik.Params(
        a=2.5, mu=4.3, s=ik.Param(1.3, bounds=(0.0, None)), c=0.4, k=ik.Param(1.0, fixed=True)
    )
    sigma = kwargs.pop("sigma", 0.05 + 0.01 * x)
    return ik.LeastSquares(peak, params, inputs=(x,), y=y, sigma=sigma, **kwargs)


@pytest.mark.parametrize("sigma", [None, "vector"])
def test_host_evaluator_equals_the_tensor_path(sigma):
    problem = peak_problem(**({"sigma": None} if sigma is None else {}))
    host, tensor = HostEvaluator(problem), TensorEvaluator(problem)
    assert HostEvaluator.serves(problem)
    x = host.start() + np.array([0.1, -0.05, 0.2, 0.03])
    assert host.cost(x) == pytest.approx(tensor.cost(x.copy()), rel=1e-14)
    got_all, want_all = host.normal_equations(x), tensor.normal_equations(x.copy())
    for got, want in zip(got_all, want_all, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13)
    v = np.array([0.02, 0.01, -0.03, 0.005])
    host.cost(x + v), tensor.cost(x + v)  # the solver evaluates the plain step first
    rhs = host.geodesic_rhs(x, v)
    assert np.abs(rhs).max() > 0
    np.testing.assert_allclose(rhs, tensor.geodesic_rhs(x, v), rtol=1e-9)


def test_host_evaluator_remembers_points_by_value():
    problem = peak_problem()
    host = HostEvaluator(problem)
    x = host.start() + 0.1
    first = host.normal_equations(x)
    assert host.normal_equations(x.copy()) is first  # a new array, same numbers: a hit
    before = problem.jacobian.n_jev
    host.normal_equations(x + 1e-9)
    assert problem.jacobian.n_jev == before + 1


def test_evaluator_choice():
    assert isinstance(make_evaluator(peak_problem()), HostEvaluator)
    for kwargs in ({"dtype": torch.float32}, {"jacobian": "eager"}):
        assert isinstance(make_evaluator(peak_problem(**kwargs)), TensorEvaluator), kwargs
    inv_cov = np.diag(1.0 / (0.05 + 0.01 * np.linspace(0, 10, 120)) ** 2)
    full = peak_problem(sigma=None, inverse_covariance=inv_cov)
    assert isinstance(make_evaluator(full), TensorEvaluator)


def test_fit_switches_to_the_tensor_path_when_the_complex_step_fails_midway():
    state = {"complex_calls": 0}

    def fragile(p, x):
        if p["a"].is_complex():
            state["complex_calls"] += 1
            if state["complex_calls"] > 3:  # validated, then fails after two iterations
                raise RuntimeError("no complex numbers past this point")
        return peak(p, x)

    base = peak_problem()
    problem = ik.LeastSquares(
        fragile, base.params, inputs=base.inputs, y=base.y, sigma=base.noise.sigma
    )
    assert isinstance(problem.evaluator(), HostEvaluator)
    result = ik.fit(problem, progress=False)
    reference = ik.fit(peak_problem(jacobian="eager"), progress=False)
    assert result.success
    assert result.jacobian.startswith("eager")
    assert "complex step failed during the fit" in result.jacobian
    for name in ("a", "mu", "s", "c"):
        assert float(result.params[name]) == pytest.approx(float(reference.params[name]), rel=1e-9)


def test_a_fit_is_the_same_through_either_evaluator():
    """One chunk of rows: the host evaluator; the same data in three row chunks: the
    tensor evaluator, with the same complex-step engine."""
    host_problem = peak_problem()
    full = peak_problem(chunk_rows=40, rowwise=True)
    assert isinstance(host_problem.evaluator(), HostEvaluator)
    assert isinstance(full.evaluator(), TensorEvaluator) and len(full.chunks) == 3
    assert full.jacobian.engine_name == host_problem.jacobian.engine_name == "complex-step"
    host, tensor = ik.fit(host_problem, progress=False), ik.fit(full, progress=False)
    assert host.success and tensor.success
    for name in ("a", "mu", "s", "c"):
        assert float(host.params[name]) == pytest.approx(float(tensor.params[name]), rel=1e-12)
        assert float(host.stderr[name]) == pytest.approx(float(tensor.stderr[name]), rel=1e-9)


def test_cost_resolution_follows_the_residual_rounding():
    # a large residual: 64 ulp of the cost; a tiny one against large data: ε ‖r‖ ‖y/σ‖
    eps = 2.220446049250313e-16
    assert cost_resolution(1.0, 1.0, eps) == pytest.approx((64 + 8 * 2**0.5) * eps)
    tiny = cost_resolution(1e-10, 1e3, eps)  # ‖r‖ = 1.4e-5
    assert tiny == pytest.approx(eps * (64e-10 + 8e3 * np.sqrt(2e-10)))
    assert tiny > 1e4 * 64 * eps * 1e-10
    # a float32 problem's residuals round at float32's ε
    assert cost_resolution(1.0, 1.0, 1.1920929e-07) > 1e8 * cost_resolution(1.0, 1.0, eps)


def test_float32_fits_stop_at_their_own_resolution():
    """In float32 the cost resolves 1e-7, not 1e-14: the end-game stops there instead of
    spending rejected trials on steps the cost cannot see."""
    single = ik.fit(peak_problem(dtype=torch.float32), progress=False)
    double = ik.fit(peak_problem(), progress=False)
    assert single.success and single.n_fev <= 2 * double.n_fev
    for name in ("a", "mu", "s", "c"):
        assert float(single.params[name]) == pytest.approx(float(double.params[name]), rel=1e-4)


def test_previous_jacobian_times_residuals_is_the_secant_target():
    """J(x_old)ᵀ r(x_new), the exact target of LM's secant term, from what the evaluator
    kept: the Jacobian at the previous point and the residuals at the new one."""
    problem = peak_problem()
    host = HostEvaluator(problem)
    x0 = host.start()
    x1 = x0 + np.array([0.05, -0.02, 0.1, 0.01])
    host.normal_equations(x0)
    host.cost(x1)
    got = host.previous_jacobian_times(x0, x1)
    J0, _ = problem.jacobian.eager.full(torch.from_numpy(x0))
    r1 = problem.residuals(torch.from_numpy(x1))
    np.testing.assert_allclose(got, (J0.mT @ r1).numpy(), rtol=1e-10)
    host.normal_equations(x1)  # the previous Jacobian is still at hand
    np.testing.assert_allclose(host.previous_jacobian_times(x0, x1), got, rtol=0)
    assert host.previous_jacobian_times(x0 + 1.0, x1) is None
    assert TensorEvaluator(problem).previous_jacobian_times(x0, x1) is None


def test_host_evaluator_follows_an_engine_that_fell_back_by_another_route():
    problem = peak_problem()
    host = problem.evaluator()
    x = host.start() + 0.05
    problem.jacobian.fall_back(RuntimeError("made to fail"))
    got = host.normal_equations(x)
    want = peak_problem(jacobian="eager").evaluator().normal_equations(x.copy())
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert host.previous_jacobian_times(x, x) is None  # the tensor path keeps no J
