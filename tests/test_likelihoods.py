"""Likelihoods other than the Gaussian: Poisson counts and Student-t noise.

Each is checked against an independent answer: scipy's minimiser of the negative
log-likelihood written out by hand, the Fisher information computed by NumPy from the
model's analytic derivatives, the deviance written naively, and simulations whose bias
has a known direction.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import torch

import inversekit as ik
from inversekit.problem.likelihoods import (
    _Q_SWITCH,
    Poisson,
    StudentT,
    deviance_q,
    make_likelihood,
)

X = np.linspace(0.0, 10.0, 60)


def decay(p, x):
    return p["a"] * torch.exp(-x / p["tau"]) + p["b"]


def decay_np(theta, x=X):
    a, tau, b = theta
    e = np.exp(-x / tau)
    f = a * e + b
    df = np.stack([e, a * e * x / tau**2, np.ones_like(x)], axis=1)  # (n, 3)
    return f, df, e


TRUE = (20.0, 3.0, 2.0)


def counts(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(decay_np(TRUE)[0]).astype(float)


def decay_problem(y, **kw) -> ik.LeastSquares:
    params = ik.Params(a=15.0, tau=2.5, b=1.0)
    return ik.LeastSquares(decay, params, (torch.as_tensor(X),), y, **kw)


# --- Poisson against scipy ---------------------------------------------------------


def scipy_poisson_fit(y: np.ndarray) -> np.ndarray:
    """The Poisson maximum-likelihood estimate by Newton's method with the exact gradient
    and Hessian of ``Σ (f - y log f)`` (scipy's trust-exact)."""

    def nll(theta):
        f, _, _ = decay_np(theta)
        return float(np.sum(f - y * np.log(f)))

    def grad(theta):
        f, df, _ = decay_np(theta)
        return df.T @ (1.0 - y / f)

    def hess(theta):
        a, tau, _ = theta
        f, df, e = decay_np(theta)
        second = np.zeros((len(X), 3, 3))
        second[:, 0, 1] = second[:, 1, 0] = e * X / tau**2
        second[:, 1, 1] = a * e * (X**2 / tau**4 - 2 * X / tau**3)
        return np.einsum("i,ij,ik->jk", y / f**2, df, df) + np.einsum(
            "i,ijk->jk", 1.0 - y / f, second
        )

    out = scipy.optimize.minimize(
        nll, np.array([15.0, 2.5, 1.0]), jac=grad, hess=hess, method="trust-exact",
        options={"gtol": 1e-9},
    )  # fmt: skip
    # (it may stop short of gtol at rounding level, saying it could not predict improvement)
    theta = out.x
    for _ in range(3):  # Newton's quadratic convergence takes it to rounding
        theta = theta - np.linalg.solve(hess(theta), grad(theta))
    assert np.max(np.abs(grad(theta))) <= 1e-10
    return theta


def test_poisson_fit_equals_scipy_and_covariance_the_inverse_fisher():
    y = counts()
    result = ik.fit(decay_problem(y, likelihood="poisson"), progress=False)
    assert result.success, result.message
    got = np.array([float(result.params[k]) for k in ("a", "tau", "b")])
    want = scipy_poisson_fit(y)
    rel = np.max(np.abs(got - want) / np.abs(want))
    print(f"Poisson fit vs scipy trust-exact: max relative difference {rel:.2e}")
    assert rel <= 1e-8
    f, df, _ = decay_np(want)
    fisher = df.T @ (df / f[:, None])
    inverse = np.linalg.inv(fisher)
    cov = result.covariance.numpy()
    rel_cov = np.max(np.abs(cov - inverse) / np.abs(inverse))
    print(f"Poisson covariance vs inverse Fisher: max relative difference {rel_cov:.2e}")
    assert rel_cov <= 1e-8
    assert result.covariance_scaled is False
    # chi2 is the deviance, log_likelihood the exact Poisson one
    deviance = 2.0 * np.sum(f - y - scipy.special.xlogy(y, f / np.where(y > 0, y, 1.0)))
    assert result.chi2 == pytest.approx(deviance, rel=1e-10)
    assert result.log_likelihood == pytest.approx(
        float(np.sum(scipy.stats.poisson.logpmf(y, f))), rel=1e-10
    )
    assert result.likelihood == "poisson"
    assert "likelihood      poisson (chi2 = deviance" in result.report()
    assert result.n_data == 60 and result.ndf == 57


def test_poisson_fisher_information_in_chunks_equals_the_scaled_jacobian():
    """The chunked Fisher information (large problems) equals ``(s J)ᵀ(s J)`` of the whole
    residual Jacobian, and both equal NumPy's ``Σ ∂f∂fᵀ/f``."""
    y = counts(2)
    chunked = decay_problem(y, likelihood="poisson", rowwise=True, chunk_rows=7)
    assert len(chunked.chunks) > 1
    u = chunked.u0 + 0.01
    info = chunked.fisher_information(u).numpy()
    J, _ = chunked.jacobian.full(u)
    Js = (chunked.fisher_rows(u)[:, None] * J).numpy()
    theta = chunked.params.physical(u).numpy()
    f, df, _ = decay_np(theta)
    want = df.T @ (df / f[:, None])
    assert np.max(np.abs(info - want) / np.abs(want)) <= 1e-12
    assert np.max(np.abs(Js.T @ Js - want) / np.abs(want)) <= 1e-12


# --- Poisson: bias at low counts -----------------------------------------------------


def test_poisson_is_unbiased_at_low_counts_where_gaussian_weights_are_not():
    """Counts of mean about 2 on a known profile, amplitude fitted: over 200 data sets the
    Poisson estimate is unbiased; the Gaussian fit with sigma = sqrt(max(y, 1)) gives the
    low counts too much weight and underestimates."""
    x = torch.linspace(-3.0, 3.0, 25, dtype=torch.float64)
    profile = torch.exp(-0.5 * x**2) + 0.3
    amplitude = 2.5

    def model(p, x):
        return p["A"] * (torch.exp(-0.5 * x**2) + 0.3)

    rng = np.random.default_rng(12345)
    poisson, gaussian = [], []
    for _ in range(200):
        y = torch.as_tensor(rng.poisson(amplitude * profile.numpy()), dtype=torch.float64)
        params = ik.Params(A=1.0)
        p = ik.fit(ik.LeastSquares(model, params, (x,), y, likelihood="poisson"), progress=False)
        sigma = torch.sqrt(torch.clamp(y, min=1.0))
        g = ik.fit(ik.LeastSquares(model, params, (x,), y, sigma=sigma), progress=False)
        assert p.success and g.success
        poisson.append(float(p.params["A"]))
        gaussian.append(float(g.params["A"]))
        # the Poisson estimate of a pure amplitude is Σy/Σprofile exactly
        assert poisson[-1] == pytest.approx(float(y.sum() / profile.sum()), rel=1e-10)
    poisson, gaussian = np.array(poisson), np.array(gaussian)
    z_poisson = (poisson.mean() - amplitude) / (poisson.std(ddof=1) / math.sqrt(200))
    z_gaussian = (gaussian.mean() - amplitude) / (gaussian.std(ddof=1) / math.sqrt(200))
    print(
        f"mean estimate of A = {amplitude}: Poisson {poisson.mean():.4f} (z = {z_poisson:.2f}), "
        f"Gaussian sqrt(max(y,1)) {gaussian.mean():.4f} (z = {z_gaussian:.2f})"
    )
    assert abs(z_poisson) < 3.0
    assert z_gaussian < -3.0


# --- Student-t ---------------------------------------------------------------------


def line(p, x):
    return p["m"] * x + p["c"]


def test_student_t_resists_outliers_that_pull_the_gaussian_fit():
    rng = np.random.default_rng(7)
    x = np.linspace(0.0, 10.0, 100)
    y = 1.5 * x + 3.0 + 0.5 * rng.standard_normal(100)
    bad = rng.choice(100, size=10, replace=False)
    y[bad] += rng.uniform(15.0, 30.0, size=10)  # 10% gross outliers, all upwards
    params = ik.Params(m=1.0, c=0.0)
    xt = torch.as_tensor(x)
    robust = ik.fit(
        ik.LeastSquares(line, params, (xt,), y, sigma=0.5, likelihood=StudentT(nu=4)),
        progress=False,
    )
    plain = ik.fit(ik.LeastSquares(line, params, (xt,), y, sigma=0.5), progress=False)
    assert robust.success and plain.success
    for name, truth in (("m", 1.5), ("c", 3.0)):
        z_robust = (float(robust.params[name]) - truth) / float(robust.stderr[name])
        z_plain = (float(plain.params[name]) - truth) / float(plain.stderr[name])
        print(f"{name}: Student-t z = {z_robust:.2f}, Gaussian z = {z_plain:.2f}")
        assert abs(z_robust) < 3.0
    assert abs(float(plain.params["c"]) - 3.0) / float(plain.stderr["c"]) > 10.0
    assert robust.likelihood == "student-t(nu=4)"
    assert "expected Fisher information" in robust.report()


def test_student_t_covariance_is_the_inverse_expected_fisher_information():
    rng = np.random.default_rng(3)
    x = np.linspace(0.0, 5.0, 40)
    sigma = 0.2 + 0.05 * x
    y = 2.0 * x - 1.0 + sigma * rng.standard_t(3, size=40)
    nu = 3.0
    result = ik.fit(
        ik.LeastSquares(
            line, ik.Params(m=1.0, c=0.0), (torch.as_tensor(x),), y, sigma=sigma,
            likelihood=StudentT(nu),
        ),
        progress=False,
    )  # fmt: skip
    D = np.stack([x, np.ones_like(x)], axis=1)
    w = (nu + 1) / ((nu + 3) * sigma**2)
    want = np.linalg.inv(D.T @ (w[:, None] * D))
    assert np.max(np.abs(result.covariance.numpy() - want) / np.abs(want)) <= 1e-10
    m, c = float(result.params["m"]), float(result.params["c"])
    logpdf = scipy.stats.t.logpdf(y, nu, loc=m * x + c, scale=sigma).sum()
    assert result.log_likelihood == pytest.approx(float(logpdf), rel=1e-10)

    # the fit maximises that log-likelihood: scipy's optimum agrees
    def nll(theta):
        return -scipy.stats.t.logpdf(y, nu, loc=theta[0] * x + theta[1], scale=sigma).sum()

    ref = scipy.optimize.minimize(nll, [m + 0.1, c - 0.1], method="BFGS", options={"gtol": 1e-10})
    assert np.allclose([m, c], ref.x, rtol=1e-6)


# --- residuals: the deviance, smooth at f = y ----------------------------------------


def test_poisson_deviance_residuals_sum_to_the_deviance():
    """``r²`` against the deviance term in 50-digit arithmetic (the float64 formula cancels
    near ``f = y``), including ``y = 0`` and ``f == y`` entries."""
    mpmath = pytest.importorskip("mpmath")
    y = torch.tensor([0.0, 0.0, 1.0, 3.0, 7.0, 7.0, 100.0, 4.0, 2.0, 1e6], dtype=torch.float64)
    f = torch.tensor(
        [0.5, 3.0, 1.0, 2.9, 7.0, 20.0, 80.0, 4.000001, 1.9, 1e6 + 5], dtype=torch.float64
    )
    r = Poisson().residuals(f, y)
    with mpmath.workdps(50):
        exact = [
            2 * (mpmath.mpf(fi) - yi - (yi * mpmath.log(mpmath.mpf(fi) / yi) if yi else 0))
            for fi, yi in zip(f.tolist(), y.tolist(), strict=True)
        ]
    for got, want in zip((r**2).tolist(), exact, strict=True):
        assert got == pytest.approx(float(want), rel=1e-13, abs=0.0)
    assert float((r**2).sum()) == pytest.approx(float(sum(exact)), rel=1e-14)
    # the naive float64 formula agrees to its own cancellation (1e6 log(1 + 5e-6) here)
    safe = torch.where(y > 0, y, 1.0)
    naive = 2.0 * (f - y - torch.special.xlogy(y, f / safe))
    assert float((r**2).sum()) == pytest.approx(float(naive.sum()), rel=1e-10)
    assert torch.equal(torch.sign(r), torch.sign(f - y))
    assert float(r[2]) == 0.0 and float(r[4]) == 0.0  # f == y exactly


def test_poisson_residual_derivative_at_f_equal_y_is_one_over_sqrt_y():
    y = torch.tensor([1.0, 4.0, 9.0, 2.5], dtype=torch.float64)
    poisson = Poisson()
    J = torch.func.jacfwd(lambda f: poisson.residuals(f, y))(y.clone())
    assert torch.all(torch.isfinite(J))
    assert torch.allclose(torch.diagonal(J), 1.0 / torch.sqrt(y), rtol=1e-14, atol=0.0)
    # reverse mode agrees
    f = y.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(poisson.residuals(f, y).sum(), [f])
    assert torch.allclose(g, 1.0 / torch.sqrt(y), rtol=1e-14)
    # near f = y and far from it: the derivative against a central difference
    for shift in (1e-7, 0.01, 0.0499, 0.0501, 0.5, 3.0, -0.5):
        f = y * (1.0 + shift)
        J = torch.diagonal(torch.func.jacfwd(lambda f: poisson.residuals(f, y))(f))
        h = 1e-6 * f
        fd = (poisson.residuals(f + h, y) - poisson.residuals(f - h, y)) / (2 * h)
        assert torch.allclose(J, fd, rtol=1e-7), shift


def test_deviance_q_is_continuous_across_its_series_switch():
    """The series (below the switch) and the closed form (above) agree where they meet,
    and with 50-digit arithmetic."""
    mpmath = pytest.importorskip("mpmath")
    below, above = _Q_SWITCH * (1 - 1e-12), _Q_SWITCH * (1 + 1e-12)
    t = torch.tensor([below, above, -below, -above, 1e-3, -0.3, 2.0], dtype=torch.float64)
    q = deviance_q(t)
    assert float(q[0]) == pytest.approx(float(q[1]), rel=1e-13)
    assert float(q[2]) == pytest.approx(float(q[3]), rel=1e-13)
    with mpmath.workdps(50):
        for got, ti in zip(q.tolist(), t.tolist(), strict=True):
            want = 2 * (mpmath.mpf(ti) - mpmath.log1p(mpmath.mpf(ti))) / mpmath.mpf(ti) ** 2
            assert got == pytest.approx(float(want), rel=1e-14)
    assert float(deviance_q(torch.zeros((), dtype=torch.float64))) == 1.0


def test_student_t_residual_is_smooth_at_z_zero():
    nu, sigma = 4.0, 0.5
    y = torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)
    student = StudentT(nu)
    s = torch.full_like(y, sigma)
    r = student.residuals(y.clone(), y, s)
    assert torch.equal(r, torch.zeros_like(y))
    J = torch.func.jacfwd(lambda f: student.residuals(f, y, s))(y.clone())
    assert torch.all(torch.isfinite(J))
    assert torch.allclose(torch.diagonal(J), torch.full_like(y, math.sqrt(1.25) / sigma))
    # away from zero: r² = (ν + 1) log(1 + z²/ν)
    f = y + torch.tensor([1e-4, 0.3, 5.0], dtype=torch.float64)
    z = (f - y) / sigma
    want = (nu + 1) * torch.log1p(z**2 / nu)
    assert torch.allclose(student.residuals(f, y, s) ** 2, want, rtol=1e-14)


# --- the fast engines and the fingerprint --------------------------------------------


@pytest.mark.parametrize("engine", ["auto", "complex-step", "compiled"])
def test_fast_engines_fall_back_to_forward_mode_naming_the_likelihood(engine):
    problem = decay_problem(counts(), likelihood="poisson", jacobian=engine)
    assert problem.jacobian.engine_name == "eager"
    assert "poisson likelihood" in problem.jacobian.reason
    assert not problem.plain_gaussian
    assert problem.evaluator().__class__.__name__ == "TensorEvaluator"


def test_fingerprint_tells_likelihoods_apart():
    y = counts()
    gaussian = decay_problem(y).fingerprint()
    poisson = decay_problem(y, likelihood="poisson").fingerprint()
    student = decay_problem(y, sigma=1.0, likelihood="student-t").fingerprint()
    assert poisson["likelihood"] == "poisson" and gaussian["likelihood"] == "gaussian"
    assert len({str(gaussian), str(poisson), str(student)}) == 3


def test_checkpoint_of_a_poisson_fit_does_not_resume_a_gaussian_one(tmp_path):
    y = counts()
    path = tmp_path / "fit.ckpt"
    ik.fit(decay_problem(y, likelihood="poisson"), progress=False, checkpoint=path)
    with pytest.raises(ik.InputError, match="another problem .differs in: likelihood"):
        ik.fit(decay_problem(y), progress=False, resume=path)


# --- errors, all before the model is called -------------------------------------------


class CountingModel:
    def __init__(self):
        self.calls = 0

    def __call__(self, p, x):
        self.calls += 1
        return decay(p, x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(likelihood="poisson", sigma=1.0), "sigma cannot be given with likelihood='poisson'"),
        (dict(likelihood="poisson", weights=1.0), "weights cannot be given with likelihood="),
        (
            dict(likelihood="poisson", y_shift=-5.0),
            r"y has 23 negative value\(s\), first at index \(30,\) \(y = -2\)",
        ),
        (dict(likelihood="laplace"), r"unknown likelihood 'laplace'; known: 'gaussian', 'poisson'"),
        (dict(likelihood="student-t"), "needs the noise scale: give sigma"),
        (
            dict(likelihood="student-t", inverse_covariance=np.eye(60)),
            "inverse_covariance cannot be given with likelihood='student-t'",
        ),
        (dict(likelihood=StudentT, sigma=1.0, mask=np.ones(3, bool)), r"mask .* shape \(3,\)"),
    ],
)
def test_input_errors_come_before_any_model_call(kwargs, message):
    model = CountingModel()
    y = counts() + kwargs.pop("y_shift", 0.0)
    with pytest.raises(ik.InputError, match=message):
        ik.LeastSquares(
            model, ik.Params(a=15.0, tau=2.5, b=1.0), (torch.as_tensor(X),), y, **kwargs
        )
    assert model.calls == 0


def test_student_t_nu_must_be_positive():
    with pytest.raises(ik.InputError, match="nu"):
        StudentT(nu=0)
    assert make_likelihood("StudentT").nu == 4.0
    assert make_likelihood(" Poisson ").name == "poisson"


def test_poisson_model_not_positive_at_the_start_is_a_model_error():
    params = ik.Params(a=15.0, tau=2.5, b=-30.0)
    with pytest.raises(ik.ModelError, match="Poisson likelihood needs a positive model"):
        ik.LeastSquares(decay, params, (torch.as_tensor(X),), counts(), likelihood="poisson")


def test_poisson_with_mask_equals_poisson_without_the_points():
    y = counts(4)
    mask = np.ones(60, bool)
    mask[::5] = False
    y_masked = y.copy()
    y_masked[~mask] = -1.0  # not counts, but excluded
    masked = ik.fit(decay_problem(y_masked, likelihood="poisson", mask=mask), progress=False)
    params = ik.Params(a=15.0, tau=2.5, b=1.0)
    x = torch.as_tensor(X[mask])
    removed = ik.fit(
        ik.LeastSquares(decay, params, (x,), y[mask], likelihood="poisson"), progress=False
    )
    for k in ("a", "tau", "b"):
        assert float(masked.params[k]) == pytest.approx(float(removed.params[k]), rel=1e-10)
    assert masked.chi2 == pytest.approx(removed.chi2, rel=1e-10)
    assert masked.log_likelihood == pytest.approx(removed.log_likelihood, rel=1e-10)
    assert torch.allclose(masked.covariance, removed.covariance, rtol=1e-9, atol=0.0)
    assert masked.n_data == 48


def test_poisson_profile_intervals_profile_the_deviance():
    """``result.intervals`` refits with the Poisson likelihood: the profile interval of
    ``a`` equals scipy's profile of the Poisson log-likelihood (Δ deviance = 3.84)."""
    y = counts()
    result = ik.fit(decay_problem(y, likelihood="poisson"), progress=False)
    got = result.intervals(["a"])["a"]
    best = scipy_poisson_fit(y)

    def nll(theta):
        f, df, _ = decay_np(theta)
        return float(np.sum(f - y * np.log(f))), df.T @ (1.0 - y / f)

    def profile(a):
        def rest(v):
            value, grad = nll([a, v[0], v[1]])
            return value, grad[1:]

        out = scipy.optimize.minimize(
            rest, best[1:], jac=True, method="BFGS", options={"gtol": 1e-11}
        )
        return 2.0 * (out.fun - nll(best)[0]) - scipy.stats.chi2.ppf(0.95, 1)

    lower = scipy.optimize.brentq(profile, best[0] - 10.0, best[0], xtol=1e-12)
    upper = scipy.optimize.brentq(profile, best[0], best[0] + 10.0, xtol=1e-12)
    assert got.lower == pytest.approx(lower, rel=1e-8)
    assert got.upper == pytest.approx(upper, rel=1e-8)
