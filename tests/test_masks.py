"""Excluding data points: ``mask=`` (True = used), ``weights=0`` and ``sigma=inf``.

A masked fit must be the fit of the data with those points removed: the same parameters,
chi2, covariance (its scaling by ``chi2/(n - p)`` counting only the used points), ``ndf``
and log-likelihood, on every derivative engine, and whatever ``y`` (or the model) is at the
excluded points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import inversekit as ik
from inversekit.derivatives.compiled import compile_unavailable


def peak(p, x):
    return p["a"] * torch.exp(-0.5 * ((x - p["mu"]) / p["w"]) ** 2) + p["c"]


def peak_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.linspace(-5.0, 5.0, n)
    sigma = 0.05 + 0.02 * np.abs(x)
    y = 3.0 * np.exp(-0.5 * ((x - 0.4) / 1.3) ** 2) + 0.5 + sigma * rng.standard_normal(n)
    mask = rng.random(n) > 0.2  # about a fifth excluded
    return x, y, sigma, mask


def params():
    return ik.Params(a=2.0, mu=0.0, w=1.0, c=0.0)


def fit_pair(n: int, noise: str, jacobian: str, **kw):
    """The masked fit (y NaN at the excluded points) and the fit without those points."""
    x, y, sigma, mask = peak_data(n)
    noisy = {"sigma": sigma} if noise == "sigma" else {}
    y_bad = y.copy()
    y_bad[~mask] = np.nan
    masked = ik.LeastSquares(
        peak, params(), (torch.as_tensor(x),), y_bad, mask=mask, jacobian=jacobian, **noisy, **kw
    )
    kept = {"sigma": sigma[mask]} if noise == "sigma" else {}
    removed = ik.LeastSquares(
        peak, params(), (torch.as_tensor(x[mask]),), y[mask], jacobian=jacobian, **kept, **kw
    )
    return masked, removed, int(mask.sum())


def assert_same_fit(masked, removed, n_used: int, rel: float = 1e-10):
    a = ik.fit(masked, progress=False)
    b = ik.fit(removed, progress=False)
    assert a.success and b.success, (a.message, b.message)
    for k in b.params:
        assert float(a.params[k]) == pytest.approx(float(b.params[k]), rel=rel), k
    assert a.chi2 == pytest.approx(b.chi2, rel=rel)
    assert torch.allclose(a.covariance, b.covariance, rtol=100 * rel, atol=0.0)
    assert a.n_data == b.n_data == n_used
    assert a.ndf == b.ndf == n_used - 4
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=rel)
    assert a.covariance_scaled == b.covariance_scaled
    return a, b


@pytest.mark.parametrize("noise", ["sigma", "none"])
@pytest.mark.parametrize(("n", "jacobian"), [(80, "auto"), (80, "complex-step"), (3000, "eager")])
def test_masked_fit_equals_the_fit_without_those_points(n, jacobian, noise):
    masked, removed, n_used = fit_pair(n, noise, jacobian)
    if jacobian != "eager":  # the small problem stays on the fast host path with a mask
        assert masked.jacobian.engine_name == "complex-step", masked.jacobian.reason
        assert type(masked.evaluator()).__name__ == "HostEvaluator"
    assert_same_fit(masked, removed, n_used)


@pytest.mark.skipif(compile_unavailable() is not None, reason=f"{compile_unavailable()}")
@pytest.mark.slow
@pytest.mark.parametrize("noise", ["sigma", "none"])
def test_masked_fit_with_the_compiled_engine(noise):
    masked, removed, n_used = fit_pair(20_000, noise, "compiled", rowwise=True, chunk_rows=4096)
    assert masked.jacobian.engine_name == "compiled", masked.jacobian.reason
    a, _ = assert_same_fit(masked, removed, n_used, rel=1e-9)
    assert masked.jacobian.engine_name == "compiled", masked.jacobian.reason


def test_zero_weights_and_infinite_sigma_are_masks():
    x, y, sigma, mask = peak_data(120, seed=3)
    y_bad = y.copy()
    y_bad[~mask] = np.inf
    xt = torch.as_tensor(x)
    weights = np.where(mask, 1.0 / sigma**2, 0.0)
    by_weights = ik.fit(ik.LeastSquares(peak, params(), (xt,), y_bad, weights=weights))
    by_sigma = ik.fit(
        ik.LeastSquares(peak, params(), (xt,), y_bad, sigma=np.where(mask, sigma, np.inf)),
        progress=False,
    )
    by_mask = ik.fit(
        ik.LeastSquares(peak, params(), (xt,), y_bad, sigma=sigma, mask=mask), progress=False
    )
    for result in (by_weights, by_sigma):
        assert result.n_data == by_mask.n_data == int(mask.sum())
        assert result.chi2 == pytest.approx(by_mask.chi2, rel=1e-12)
        assert result.log_likelihood == pytest.approx(by_mask.log_likelihood, rel=1e-12)
        for k in result.params:
            assert float(result.params[k]) == pytest.approx(float(by_mask.params[k]), rel=1e-12)


def test_the_advice_for_non_finite_y_works_when_followed_literally():
    x, y, sigma, _ = peak_data(60, seed=5)
    y[[5, 17, 40]] = [np.nan, np.inf, np.nan]
    xt = torch.as_tensor(x)
    with pytest.raises(ik.InputError) as info:
        ik.LeastSquares(peak, params(), (xt,), y, sigma=sigma)
    message = str(info.value)
    assert message.startswith("y contains 3 non-finite value(s) (first at index (5,)); ")
    assert "mask=numpy.isfinite(y)" in message
    advice = message.split("exclude them with ")[1].split(" (or")[0]
    mask = eval(advice.split("=", 1)[1], {"numpy": np, "y": y})  # noqa: S307 - our own text
    result = ik.fit(ik.LeastSquares(peak, params(), (xt,), y, sigma=sigma, mask=mask))
    assert result.success and result.n_data == 57
    # with a mask already given, the advice combines both
    partial = np.ones(60, bool)
    partial[5] = False
    with pytest.raises(
        ik.InputError,
        match=r"\(first at index \(17,\)\); exclude them with mask=mask & numpy.isfinite\(y\)",
    ):
        ik.LeastSquares(peak, params(), (xt,), y, sigma=sigma, mask=partial)


class CountingModel:
    def __init__(self):
        self.calls = 0

    def __call__(self, p, x):
        self.calls += 1
        return peak(p, x)


SHAPE = r"mask \(True = the point is used\) has shape \(7,\), which does not broadcast to"
NOT_BOOL = r"mask must be boolean \(True = the point is used.*got dtype torch.float64"
SOME = np.arange(60) > 1


@pytest.mark.parametrize(
    ("mask", "extra", "message"),
    [
        (np.ones(7, bool), {}, SHAPE + r" y's shape \(60,\)"),
        (np.ones(60), {}, NOT_BOOL),
        ([1, 0] * 30, {}, "mask must be boolean"),
        (np.zeros(60, bool), {}, "no data point carries weight"),
        (SOME, {"inverse_covariance": np.eye(60)}, "mask cannot be combined with inverse_cov"),
    ],
)
def test_mask_errors_before_any_model_call(mask, extra, message):
    x, y, _, _ = peak_data(60)
    model = CountingModel()
    with pytest.raises(ik.InputError, match=message):
        ik.LeastSquares(model, params(), (torch.as_tensor(x),), y, mask=mask, **extra)
    assert model.calls == 0


def test_nan_sigma_is_refused_but_infinite_sigma_is_not():
    x, y, sigma, _ = peak_data(60)
    sigma[4] = np.nan
    with pytest.raises(
        ik.InputError, match=r"sigma contains 1 NaN value\(s\) \(first at index \(4,\)\)"
    ):
        ik.LeastSquares(peak, params(), (torch.as_tensor(x),), y, sigma=sigma)
    sigma[4] = np.inf
    assert ik.LeastSquares(peak, params(), (torch.as_tensor(x),), y, sigma=sigma).n_data == 59


def test_mask_broadcasts_over_rows_of_two_dimensional_data():
    x = torch.linspace(0.0, 1.0, 10, dtype=torch.float64)

    def planes(p, x):
        return p["a"] * x[:, None] + p["b"] * torch.ones(10, 3, dtype=x.dtype)

    y = 2.0 * x[:, None] + torch.tensor([1.0, 1.0, 50.0], dtype=torch.float64)
    column = np.array([True, True, False])  # (3,) broadcasts to (10, 3): the last column out
    result = ik.fit(ik.LeastSquares(planes, ik.Params(a=1.0, b=0.0), (x,), y, mask=column))
    assert result.n_data == 20
    assert float(result.params["a"]) == pytest.approx(2.0, rel=1e-12)
    assert float(result.params["b"]) == pytest.approx(1.0, rel=1e-12)


def test_model_not_finite_at_excluded_points_is_accepted():
    """A model undefined at excluded points (a detector gap): residuals there are exactly
    0, the fast engines step aside saying why, and the fit is that without the points."""
    x, y, sigma, _ = peak_data(100, seed=9)
    gap = (x > 1.0) & (x < 1.6)

    def gapped(p, x):
        out = peak(p, x)
        return torch.where((x > 1.0) & (x < 1.6), math.nan, out)

    xt = torch.as_tensor(x)
    masked = ik.LeastSquares(gapped, params(), (xt,), y, sigma=sigma, mask=~gap)
    assert masked.jacobian.engine_name == "eager"
    assert "not finite at excluded points" in masked.jacobian.reason
    r = masked.residuals()
    assert torch.equal(r[torch.as_tensor(gap)], torch.zeros(int(gap.sum()), dtype=r.dtype))
    removed = ik.LeastSquares(
        peak, params(), (torch.as_tensor(x[~gap]),), y[~gap], sigma=sigma[~gap]
    )
    assert_same_fit(masked, removed, int((~gap).sum()))
    # not excluded, the same model is an error at the start
    with pytest.raises(ik.ModelError, match="non-finite value"):
        ik.LeastSquares(gapped, params(), (xt,), y, sigma=sigma)


def test_fingerprint_includes_the_mask():
    x, y, sigma, mask = peak_data(60)
    xt = torch.as_tensor(x)
    plain = ik.LeastSquares(peak, params(), (xt,), y).fingerprint()
    masked = ik.LeastSquares(peak, params(), (xt,), y, mask=mask).fingerprint()
    other = mask.copy()
    other[np.flatnonzero(mask)[0]] = False
    masked2 = ik.LeastSquares(peak, params(), (xt,), y, mask=other).fingerprint()
    assert plain != masked and masked != masked2


def test_batched_problems_take_a_mask():
    rng = np.random.default_rng(2)
    B, n = 6, 40
    x = torch.linspace(-3.0, 3.0, n, dtype=torch.float64)
    truth = torch.as_tensor(rng.uniform(1.0, 2.0, B))
    y = truth[:, None] * torch.exp(-0.5 * x**2) + 0.02 * torch.as_tensor(
        rng.standard_normal((B, n))
    )
    mask = torch.as_tensor(rng.random((B, n)) > 0.3)
    y_bad = torch.where(mask, y, math.nan)

    def model(p, x):
        return p["a"] * torch.exp(-0.5 * x**2)

    batched = ik.fit(ik.BatchedLeastSquares(model, ik.Params(a=1.0), (x,), y_bad, mask=mask))
    for b in range(B):
        one = ik.fit(ik.LeastSquares(model, ik.Params(a=1.0), (x[mask[b]],), y[b][mask[b]]))
        assert float(batched.params["a"][b]) == pytest.approx(float(one.params["a"]), rel=1e-10)
        assert int(batched.n_data[b]) == one.n_data
    with pytest.raises(
        ik.InputError, match="BatchedLeastSquares supports likelihood='gaussian' only"
    ):
        ik.BatchedLeastSquares(model, ik.Params(a=1.0), (x,), y, likelihood="poisson")


@pytest.mark.parametrize("noise", ["sigma", "none"])
def test_profile_intervals_of_a_masked_fit_equal_those_without_the_points(noise):
    masked, removed, _ = fit_pair(80, noise, "auto")
    a = ik.fit(masked, progress=False).intervals(["w"])["w"]
    b = ik.fit(removed, progress=False).intervals(["w"])["w"]
    assert a.lower == pytest.approx(b.lower, rel=1e-8)
    assert a.upper == pytest.approx(b.upper, rel=1e-8)
