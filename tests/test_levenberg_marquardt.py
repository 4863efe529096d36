"""Levenberg–Marquardt on problems with analytic or independently computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch
from conftest import data_dir

import inversekit as ik
from inversekit.linalg.damped import DampedSystem
from inversekit.models import nist

torch.manual_seed(0)


def decay(p, x):
    return p["a"] * torch.exp(-p["k"] * x) + p["c"]


def decay_data(n=60, noise=0.02, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(0.0, 8.0, n, dtype=torch.float64)
    y = 3.0 * torch.exp(-0.7 * x) + 0.5 + noise * torch.randn(n, generator=g, dtype=torch.float64)
    return x, y


def test_linear_model_matches_weighted_normal_equations():
    g = torch.Generator().manual_seed(3)
    x = torch.linspace(-1, 1, 40, dtype=torch.float64)
    sigma = 0.1 + 0.05 * torch.rand(40, generator=g, dtype=torch.float64)
    y = 1.0 - 2.0 * x + 0.5 * x**2 + sigma * torch.randn(40, generator=g, dtype=torch.float64)
    params = ik.Params(c=ik.Param(torch.zeros(3)))
    result = ik.fit(
        ik.LeastSquares(
            lambda p, x: p["c"][0] + p["c"][1] * x + p["c"][2] * x**2,
            params,
            inputs=(x,),
            y=y,
            sigma=sigma,
        )
    )
    X = torch.stack([torch.ones_like(x), x, x**2], dim=1) / sigma[:, None]
    cov = torch.linalg.inv(X.T @ X)
    best = cov @ X.T @ (y / sigma)
    assert result.success
    torch.testing.assert_close(result.params["c"], best, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(result.covariance, cov, rtol=1e-10, atol=0)
    assert not result.covariance_scaled
    expected_loglike = (
        -0.5 * result.chi2 - float(torch.log(sigma).sum()) - 20 * math.log(2 * math.pi)
    )
    assert result.log_likelihood == pytest.approx(expected_loglike, rel=1e-12)


def test_matches_scipy_curve_fit_parameters_and_scaled_covariance():
    x, y = decay_data()
    result = ik.fit(ik.LeastSquares(decay, ik.Params(a=1.0, k=1.0, c=0.0), inputs=(x,), y=y))

    def jac(x, a, k, c):
        e = np.exp(-k * x)
        return np.stack([e, -a * x * e, np.ones_like(x)], axis=1)

    popt, pcov = scipy.optimize.curve_fit(
        lambda x, a, k, c: a * np.exp(-k * x) + c,
        x.numpy(),
        y.numpy(),
        p0=[1, 1, 0],
        jac=jac,
        ftol=1e-15,
        xtol=1e-15,
        gtol=1e-15,
    )
    got = np.array([float(result.params[n]) for n in "akc"])
    np.testing.assert_allclose(got, popt, rtol=1e-9)
    np.testing.assert_allclose(result.covariance.numpy(), pcov, rtol=1e-7)
    assert result.covariance_scaled
    assert result.reduced_chi2 == pytest.approx(result.chi2 / (60 - 3))


def test_far_bounds_leave_answer_and_errors_unchanged():
    x, y = decay_data()
    free = ik.fit(ik.LeastSquares(decay, ik.Params(a=1.0, k=1.0, c=0.0), inputs=(x,), y=y))
    bounded = ik.Params(
        a=ik.Param(1.0, bounds=(0.0, 100.0)),
        k=ik.Param(1.0, bounds=(0.0, None)),
        c=ik.Param(0.0, bounds=(None, 10.0)),
    )
    result = ik.fit(ik.LeastSquares(decay, bounded, inputs=(x,), y=y))
    for name in "akc":
        assert float(result.params[name]) == pytest.approx(float(free.params[name]), rel=1e-9)
        assert float(result.stderr[name]) == pytest.approx(float(free.stderr[name]), rel=1e-7)
    assert result.at_bounds == []


def test_parameter_pinned_at_bound_is_flagged_not_tiny():
    x = torch.linspace(0.0, 1.0, 30, dtype=torch.float64)
    y = -0.5 * x + 1.0  # the best unconstrained slope is negative
    params = ik.Params(slope=ik.Param(1.0, bounds=(0.0, None)), icept=0.0)
    result = ik.fit(
        ik.LeastSquares(
            lambda p, x: p["slope"] * x + p["icept"], params, inputs=(x,), y=y, sigma=0.01
        )
    )
    assert float(result.params["slope"]) < 1e-6
    assert result.at_bounds == ["slope"]
    assert math.isnan(float(result.stderr["slope"]))
    assert math.isfinite(float(result.stderr["icept"]))
    assert "at bound: stderr unreliable" in result.report()


def test_degenerate_parameters_are_named():
    x = torch.linspace(0.0, 1.0, 30, dtype=torch.float64)
    y = 2.0 * x
    params = ik.Params(a=1.0, b=1.0)
    result = ik.fit(
        ik.LeastSquares(lambda p, x: p["a"] * p["b"] * x, params, inputs=(x,), y=y, sigma=0.1)
    )
    assert float(result.params["a"] * result.params["b"]) == pytest.approx(2.0, rel=1e-10)
    assert result.condition_number > 1e12
    assert sorted(result.near_null[0]) == ["a", "b"]
    assert "near-degenerate combination of: " in result.report()


def test_unidentifiable_unbounded_parameters_are_not_reported_at_a_bound():
    # a and b enter only as a + b: their covariance is infinite along a - b
    x = torch.linspace(0.0, 1.0, 30, dtype=torch.float64)
    y = 2.0 * x + 0.3 + 0.01 * torch.sin(9 * x)
    params = ik.Params(a=1.0, b=1.0, c=0.5)
    result = ik.fit(
        ik.LeastSquares(
            lambda p, x: p["a"] * x + p["b"] * x + p["c"], params, inputs=(x,), y=y, sigma=0.1
        ),
        progress=False,
    )
    assert result.unidentified == ["a", "b"] and result.at_bounds == []
    assert math.isinf(float(result.stderr["a"])) and math.isinf(float(result.stderr["b"]))
    assert math.isfinite(float(result.stderr["c"]))
    assert "not identifiable" in result.report()


def test_model_with_nan_region_still_converges():
    """log(x - c) is NaN for c > min(x); early full steps land there and must be rejected."""
    x = torch.linspace(0.0, 2.0, 40, dtype=torch.float64)
    y = 1.5 * torch.log(x + 0.05) + 0.3
    nan_calls = []

    def model(p, x):
        out = p["a"] * torch.log(x - p["c"]) + p["d"]
        if not bool(torch.isfinite(out).all()):
            nan_calls.append(float(p["c"]))
        return out

    params = ik.Params(a=0.2, c=-3.0, d=0.0)
    result = ik.fit(
        ik.LeastSquares(model, params, inputs=(x,), y=y), ik.LM(geodesic=False, lambda0=1e-6)
    )
    assert nan_calls, "the test must exercise the non-finite branch"
    assert result.success
    assert float(result.params["c"]) == pytest.approx(-0.05, rel=1e-8)
    assert float(result.params["a"]) == pytest.approx(1.5, rel=1e-8)


def blur(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.conv2d(image[None, None], kernel[None, None], padding=1)[0, 0]


@pytest.mark.slow
def test_two_thousand_pixel_deconvolution_recovers_truth():
    """2,026 free parameters: a 45x45 positive image (log-parametrised) and a background,
    seen through two different 3x3 blurs; noise-free data, so the answer is the truth."""
    g = torch.Generator().manual_seed(5)
    truth = torch.exp(0.5 * torch.randn(45, 45, generator=g, dtype=torch.float64))
    k1 = torch.tensor([[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]], dtype=torch.float64)
    k2 = torch.tensor([[0.0, 0.2, 0.0], [0.1, 0.5, 0.1], [0.0, 0.1, 0.0]], dtype=torch.float64)

    def model(p):
        image = torch.exp(p["log_image"])
        return torch.stack([blur(image, k1), blur(image, k2)]) + p["background"]

    y = model({"log_image": torch.log(truth), "background": torch.tensor(0.3, dtype=torch.float64)})
    params = ik.Params(log_image=ik.Param(torch.zeros(45, 45)), background=0.0)
    problem = ik.LeastSquares(model, params, y=y, sigma=1e-3)
    assert problem.params.n_free == 2026 and not problem.rowwise
    result = ik.fit(problem)
    assert result.success, result.message
    torch.testing.assert_close(torch.exp(result.params["log_image"]), truth, rtol=1e-7, atol=0)
    assert float(result.params["background"]) == pytest.approx(0.3, abs=1e-8)
    assert result.stderr["log_image"].shape == (45, 45)
    # the stderr of an exactly determined image pixel is small but finite
    assert bool(torch.isfinite(result.stderr["log_image"]).all())


@pytest.mark.parametrize("geodesic", [False, True])
def test_both_variants_reach_the_same_minimum(geodesic):
    x, y = decay_data()
    result = ik.fit(
        ik.LeastSquares(decay, ik.Params(a=1.0, k=1.0, c=0.0), inputs=(x,), y=y),
        ik.LM(geodesic=geodesic),
    )
    reference = ik.fit(ik.LeastSquares(decay, ik.Params(a=3.0, k=0.7, c=0.5), inputs=(x,), y=y))
    assert result.success
    assert result.chi2 == pytest.approx(reference.chi2, rel=1e-12)


def test_noise_descriptions_agree():
    x, y = decay_data()
    sigma = torch.full_like(y, 0.02)
    params = ik.Params(a=1.0, k=1.0, c=0.0)
    by_sigma = ik.fit(ik.LeastSquares(decay, params, inputs=(x,), y=y, sigma=sigma))
    by_weights = ik.fit(ik.LeastSquares(decay, params, inputs=(x,), y=y, weights=1 / sigma**2))
    by_matrix = ik.fit(
        ik.LeastSquares(
            decay, params, inputs=(x,), y=y, inverse_covariance=torch.diag(1 / sigma**2)
        )
    )
    for other in (by_weights, by_matrix):
        torch.testing.assert_close(other.x, by_sigma.x, rtol=1e-10, atol=0)
        torch.testing.assert_close(other.covariance, by_sigma.covariance, rtol=1e-8, atol=0)
        assert other.chi2 == pytest.approx(by_sigma.chi2, rel=1e-10)


def test_zero_weights_mask_points_exactly():
    """Points of weight zero (sigma = inf) leave the fit, the count of data and the
    log-likelihood as if they had been removed, even where y is absurd."""
    x, y = decay_data(n=60)
    keep = torch.ones_like(y, dtype=torch.bool)
    keep[::4] = False
    w = torch.where(keep, 1 / 0.02**2, 0.0)
    corrupted = torch.where(keep, y, 1e6)
    params = ik.Params(a=1.0, k=1.0, c=0.0)
    masked = ik.LeastSquares(decay, params, inputs=(x,), y=corrupted, weights=w)
    removed = ik.LeastSquares(decay, params, inputs=(x[keep],), y=y[keep], sigma=0.02)
    assert masked.n_data == removed.n_data == int(keep.sum())
    a, b = ik.fit(masked), ik.fit(removed)
    torch.testing.assert_close(a.x, b.x, rtol=1e-10, atol=0)
    assert a.chi2 == pytest.approx(b.chi2, rel=1e-10)
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-12)


def test_sigma_is_kept_without_a_copy():
    """The noise model divides by the user's sigma instead of storing 1/sigma: no second
    array the size of the data."""
    x, y = decay_data()
    sigma = torch.full_like(y, 0.02)
    problem = ik.LeastSquares(decay, ik.Params(a=1.0, k=1.0, c=0.0), inputs=(x,), y=y, sigma=sigma)
    assert problem.noise.sigma.data_ptr() == sigma.data_ptr()


def test_correlated_noise_equals_manual_whitening():
    x, y = decay_data(n=30)
    i = torch.arange(30, dtype=torch.float64)
    C = 0.02**2 * torch.exp(-torch.abs(i[:, None] - i[None, :]) / 3.0)
    W = torch.linalg.inv(C)
    L = torch.linalg.cholesky(W)
    params = ik.Params(a=1.0, k=1.0, c=0.0)
    full = ik.fit(ik.LeastSquares(decay, params, inputs=(x,), y=y, inverse_covariance=W))
    whitened = ik.fit(
        ik.LeastSquares(lambda p, x: L.T @ decay(p, x), params, inputs=(x,), y=L.T @ y, sigma=1.0)
    )
    torch.testing.assert_close(full.x, whitened.x, rtol=1e-9, atol=0)
    torch.testing.assert_close(full.covariance, whitened.covariance, rtol=1e-7, atol=0)


def test_chunked_and_whole_normal_equations_agree():
    x, y = decay_data(n=1000)
    params = ik.Params(a=1.0, k=1.0, c=0.0)
    whole = ik.LeastSquares(decay, params, inputs=(x,), y=y, sigma=0.1)
    chunked = ik.LeastSquares(decay, params, inputs=(x,), y=y, sigma=0.1, chunk_rows=37)
    assert len(whole.chunks) == 1 and len(chunked.chunks) == 28
    a, b = whole.normal_equations(whole.u0), chunked.normal_equations(chunked.u0)
    torch.testing.assert_close(b.A, a.A, rtol=1e-12, atol=0)
    torch.testing.assert_close(b.g, a.g, rtol=1e-12, atol=0)
    assert b.cost == pytest.approx(a.cost, rel=1e-12)
    u = whole.u0 + 0.1
    torch.testing.assert_close(
        chunked.jacobian.geodesic_rhs(u, torch.ones(3, dtype=u.dtype)),
        whole.jacobian.geodesic_rhs(u, torch.ones(3, dtype=u.dtype)),
        rtol=1e-11,
        atol=0,
    )


def test_normal_equations_match_finite_differences():
    x, y = decay_data(n=50)
    problem = ik.LeastSquares(
        decay, ik.Params(a=1.0, k=ik.Param(1.0, bounds=(0, 5)), c=0.0), inputs=(x,), y=y, sigma=0.1
    )
    u = problem.u0
    h = 1e-6
    J = torch.stack(
        [
            (problem.residuals(u + h * e) - problem.residuals(u - h * e)) / (2 * h)
            for e in torch.eye(3, dtype=u.dtype)
        ],
        dim=1,
    )
    ne = problem.normal_equations(u)
    r = problem.residuals(u)
    torch.testing.assert_close(ne.A, J.T @ J, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(ne.g, J.T @ r, rtol=1e-7, atol=1e-9)


def test_rowwise_detection():
    x, y = decay_data(n=40)
    assert ik.LeastSquares(decay, ik.Params(a=1.0, k=1.0, c=0.0), inputs=(x,), y=y).rowwise
    smooth = ik.LeastSquares(
        lambda p, x: torch.cumsum(decay(p, x), 0),
        ik.Params(a=1.0, k=1.0, c=0.0),
        inputs=(x,),
        y=torch.cumsum(y, 0),
    )
    assert not smooth.rowwise


def test_large_data_are_checked_chunk_by_chunk(monkeypatch):
    """From CHUNKED_CHECK_MIN_POINTS on, a rowwise model is checked in row chunks (its
    intermediates are never held for all rows): same detection, same errors."""
    import inversekit.problem.least_squares as problem_module

    monkeypatch.setattr(problem_module, "DEFAULT_CHUNK_BYTES", 2**26)  # 262,144-row chunks
    n = problem_module.CHUNKED_CHECK_MIN_POINTS + 5
    x = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    y = 2.0 * torch.exp(-1.5 * x)
    params = ik.Params(a=1.0, k=1.0, c=0.0)
    problem = ik.LeastSquares(decay, params, inputs=(x,), y=y)
    assert problem.rowwise and len(problem.chunks) == 4  # 262,144-row chunks
    assert [c.stop - c.start for c in problem.chunks[:3]] == [262_144] * 3
    cumulative = ik.LeastSquares(
        lambda p, x: torch.cumsum(decay(p, x), 0) / n, params, inputs=(x,), y=y
    )
    assert not cumulative.rowwise

    def per_chunk_scale(p, x):  # depends on the rows it is given (their largest x)
        return decay(p, x) * x.max()

    assert not ik.LeastSquares(per_chunk_scale, params, inputs=(x,), y=y).rowwise

    def blows_up(p, x):  # not finite at one row in the third chunk
        return decay(p, x) / (x != x[600_000])

    with pytest.raises(ik.ModelError, match=r"first at index \(600000,\)"):
        ik.LeastSquares(blows_up, params, inputs=(x,), y=y)


def test_budgets_and_callback_stop_with_their_own_status():
    x, y = decay_data()
    problem = ik.LeastSquares(decay, ik.Params(a=1.0, k=3.0, c=0.0), inputs=(x,), y=y)
    assert ik.fit(problem, ik.LM(max_iter=2)).status is ik.Status.MAX_ITER
    seen = []
    result = ik.fit(problem, callback=lambda s: seen.append(s.iteration) or s.iteration >= 3)
    assert result.status is ik.Status.CALLBACK and seen == [1, 2, 3] and result.n_iter == 3
    assert not result.success
    assert len(result.history) == 4 and result.history[-1] <= result.history[0]


def test_fixed_and_tensor_parameters():
    x = torch.linspace(0, 1, 25, dtype=torch.float64)
    truth = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    y = truth[0] + truth[1] * x + truth[2] * x**2 + 0.25
    params = ik.Params(c=ik.Param(torch.zeros(3)), offset=ik.Param(0.25, fixed=True))
    model = lambda p, x: p["c"][0] + p["c"][1] * x + p["c"][2] * x**2 + p["offset"]  # noqa: E731
    result = ik.fit(ik.LeastSquares(model, params, inputs=(x,), y=y), "lm")
    torch.testing.assert_close(result.params["c"], truth, rtol=0, atol=1e-10)
    assert float(result.params["offset"]) == 0.25
    assert "offset" not in result.stderr and result.labels == ["c[0]", "c[1]", "c[2]"]


def test_objective_gradient_and_hessian_vector_product():
    A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    objective = ik.Objective(
        lambda p: 0.5 * p["v"] @ A @ p["v"] + torch.sin(p["s"]),
        ik.Params(v=ik.Param(torch.tensor([1.0, -1.0])), s=0.3),
    )
    u = objective.u0
    value, grad = objective.gradient(u)
    assert value == pytest.approx(0.5 * 3.0 + math.sin(0.3))
    torch.testing.assert_close(grad, torch.tensor([2.0, -1.0, math.cos(0.3)], dtype=torch.float64))
    v = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    expected = torch.tensor([5.0, 5.0, -math.sin(0.3) * 3.0], dtype=torch.float64)
    torch.testing.assert_close(objective.hvp(u, v), expected)


def test_damped_system_solves_the_scaled_damped_equations():
    rng = np.random.default_rng(0)
    J = rng.normal(size=(30, 5)) * np.array([1.0, 10.0, 100.0, 1e-3, 1.0])
    A = J.T @ J
    D = np.diagonal(A).copy()
    rhs = rng.normal(size=5)
    for lam in (0.0, 1e-3, 10.0):
        delta = DampedSystem.build(A, D, lam).solve(rhs)
        np.testing.assert_allclose((A + lam * np.diag(D)) @ delta, rhs, rtol=1e-8, atol=1e-10)
    assert DampedSystem.build(-np.eye(3), np.ones(3), 0.0) is None  # not positive definite


def test_small_fit_evaluates_the_model_at_most_twice_per_point():
    """A real call for a trial's cost and one batched complex call for J where the step is
    accepted; r at an accepted point is reused for its Jacobian rather than computed again,
    and a trial below the cost's resolution is evaluated by the batched call alone (its
    real part gives r)."""
    real, batched = [], []

    def model(p, x):
        if p["a"].is_complex():  # each batch point perturbs one parameter by i h
            batched.append(tuple(float(p[k].reshape(-1)[0].real) for k in "akc"))
        else:
            real.append(tuple(float(p[k].detach()) for k in "akc"))
        return p["a"] * torch.exp(-p["k"] * x) + p["c"]

    x = np.linspace(0, 4, 60)
    y = 2.0 * np.exp(-1.3 * x) + 0.5 + 0.01 * np.sin(7 * x)
    problem = ik.LeastSquares(model, ik.Params(a=1.0, k=0.5, c=0.0), inputs=(x,), y=y)
    real.clear(), batched.clear()
    result = ik.fit(problem, progress=False)
    assert result.jacobian.startswith("complex-step")
    assert result.success
    assert len(set(real)) == len(real) and len(set(batched)) == len(batched)
    # J and r at the start were computed when the problem was built (to validate the
    # complex step); the uncertainty step reuses the last Jacobian (no model call, no count)
    assert len(batched) == result.n_jev - 1
    # every trial point evaluated once, by one call or the other; some by the batch alone
    assert len(set(real) | set(batched)) == result.n_fev - 1
    assert set(batched) - set(real)


def test_long_steps_of_bounded_parameters_are_damped_not_taken():
    # The demo spectrum from its by-eye start: at the third step the linear model sends the
    # Lorentzian fraction eta (a logit coordinate) 55 units down, deep into its lower
    # bound's saturation, where dx/du is 1e-22 and eta never comes back (a local fit with
    # reduced chi2 1.34). Steps that move a bounded coordinate further than
    # max_bounded_step are damped before they are tried.
    from inversekit.front.demo import TRUTH, demo_problem

    trapped = ik.fit(demo_problem(), ik.LM(max_bounded_step=math.inf), progress=False)
    assert float(trapped.params["eta"]) < 1e-10 and trapped.reduced_chi2 > 1.3

    problem = demo_problem()
    bounded = problem.params.bounded
    assert bounded is not None and bounded.sum() == 7  # eta, A (3) and w (3)
    moves = []

    def record(state):
        moves.append(float(np.abs(state.solver_state.delta[bounded]).max()))

    result = ik.fit(problem, callback=record, progress=False)
    assert result.success and max(moves) <= 10.0
    assert result.reduced_chi2 < 1.1
    eta, se = float(result.params["eta"]), float(result.stderr["eta"])
    assert abs(eta - TRUTH["eta"]) < 3 * se


def test_max_bounded_step_must_be_positive():
    with pytest.raises(ik.InputError, match="max_bounded_step"):
        ik.LM(max_bounded_step=0.0)


def test_secant_update_satisfies_the_secant_condition():
    """S⁺ s = y# = g⁺ - g - JᵀJ s, symmetric, from S = 0 and from a previous S."""
    from inversekit.optimize.levenberg_marquardt.solver import AcceptedPoint, LMState, secant_update

    rng = np.random.default_rng(5)
    p = 4
    J = rng.standard_normal((20, p))
    A = J.T @ J
    g, g_new, s = rng.standard_normal(p), rng.standard_normal(p), rng.standard_normal(p)
    g_new = g + (A + np.eye(p)) @ s  # a gradient change with yᵀs > 0
    state = LMState(uh=np.zeros(p), u=None, cost=1.0, A=A, g=g, D=np.ones(p), lam=0.0, n_fev=1)
    new = AcceptedPoint(s, None, 0.5, A, g_new)
    target = g_new - g - A @ s
    S, _ = secant_update(state, new, s, 0.1)
    np.testing.assert_allclose(S @ s, target, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(S, S.T, rtol=0, atol=1e-14)
    state.S = S + 0.3 * np.eye(p)
    S2, _ = secant_update(state, new, s, 0.1)
    np.testing.assert_allclose(S2 @ s, target, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(S2, S2.T, rtol=0, atol=1e-14)


def test_secant_model_shortens_large_residual_fits_to_the_same_minimum():
    """NIST ENSO (large residuals, 9 parameters): Gauss–Newton converges linearly; the
    secant-augmented model reaches the same certified minimum in far fewer iterations."""
    data = nist.read_strd(data_dir() / "nist_strd" / "ENSO.dat")
    names = [f"b{i + 1}" for i in range(data.n_params)]
    plain = ik.fit(nist.problem(data, 1), ik.LM(secant=False), progress=False)
    secant = ik.fit(nist.problem(data, 1), ik.LM(), progress=False)
    assert plain.success and secant.success
    assert secant.n_iter < plain.n_iter / 2
    for n, certified in zip(names, data.certified, strict=True):
        assert float(secant.params[n]) == pytest.approx(certified, rel=1e-9)
        assert float(secant.stderr[n]) == pytest.approx(float(plain.stderr[n]), rel=1e-8)
