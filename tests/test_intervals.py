"""Profile-likelihood confidence intervals (optimize.intervals): exact on a linear model,
the stated coverage on a nonlinear one, per-element labels, and what a loaded result says."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

import inversekit as ik

X = torch.linspace(0, 1, 20, dtype=torch.float64)
LINE_Y = (
    1.0
    + 2.0 * X
    + 0.1 * torch.randn(20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
)


def line(p, x):
    return p["a"] + p["b"] * x


def test_linear_model_profile_equals_exact_interval_noise_known():
    """Δchi2 of a linear model is exactly quadratic: the profile interval is value ±
    z·σ with σ from (JᵀWJ)⁻¹, computed here independently by the normal equations."""
    problem = ik.LeastSquares(line, ik.Params(a=0.0, b=0.0), (X,), LINE_Y, sigma=0.1)
    result = ik.fit(problem, progress=False)
    intervals = result.intervals(level=0.95)
    J = torch.stack([torch.ones_like(X), X], dim=1) / 0.1
    sd = torch.sqrt(torch.diagonal(torch.linalg.inv(J.T @ J)))
    z = stats.norm.ppf(0.975)
    for k, name in enumerate(["a", "b"]):
        row = intervals[name]
        value = float(result.params[name])
        assert row.lower == pytest.approx(value - z * float(sd[k]), abs=1e-6 * float(sd[k]))
        assert row.upper == pytest.approx(value + z * float(sd[k]), abs=1e-6 * float(sd[k]))
        assert row.delta_lower == pytest.approx(value - z * float(sd[k]), rel=1e-12)
        assert row.n_refits > 0 and row.level == 0.95 and row.note == ""
    assert set(result.confidence_intervals) == {"a", "b"}
    assert "[[Confidence intervals]] 0.95" in str(intervals)


def test_linear_model_profile_noise_unknown_uses_the_f_test():
    """Without a noise level the threshold is s²·F(level; 1, n - p) and the delta method
    uses Student's t with n - p degrees of freedom: equal for a linear model."""
    problem = ik.LeastSquares(line, ik.Params(a=0.0, b=0.0), (X,), LINE_Y)
    result = ik.fit(problem, progress=False)
    intervals = ik.profile_intervals(problem, result, level=0.68)
    t = stats.t.ppf(0.84, result.ndf)
    for name in ("a", "b"):
        row, sd = intervals[name], float(result.stderr[name])
        value = float(result.params[name])
        assert row.lower == pytest.approx(value - t * sd, abs=1e-6 * sd)
        assert row.upper == pytest.approx(value + t * sd, abs=1e-6 * sd)
        assert row.delta_upper == pytest.approx(value + t * sd, rel=1e-12)


def test_exponential_decay_profile_interval_covers_at_its_level():
    """200 simulations of a exp(-k x) with sigma known: the 95% profile interval of k
    covers the truth 95% of the time within binomial error (3·√(.95·.05/200) = 4.6%)."""
    x = torch.linspace(0, 4, 15, dtype=torch.float64)
    a, k, sigma = 2.0, 0.8, 0.1
    hits = 0
    for i in range(200):
        g = torch.Generator().manual_seed(1000 + i)
        y = a * torch.exp(-k * x) + sigma * torch.randn(15, generator=g, dtype=torch.float64)
        problem = ik.LeastSquares(
            lambda p, x: p["a"] * torch.exp(-p["k"] * x),
            ik.Params(a=1.0, k=1.0),
            (x,),
            y,
            sigma=sigma,
        )
        row = ik.fit(problem, progress=False).intervals("k")["k"]
        assert row.lower < row.upper
        hits += row.lower <= k <= row.upper
    assert abs(hits / 200 - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / 200)


def test_element_of_a_tensor_parameter_with_a_fixed_element():
    x = torch.linspace(-1, 1, 25, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    y = 1.0 + 2.0 * x - 0.5 * x**2 + 0.05 * torch.randn(25, generator=g, dtype=torch.float64)
    params = ik.Params(
        c=ik.Param(
            torch.tensor([0.0, 0.0, -0.5], dtype=torch.float64),
            fixed=torch.tensor([False, False, True]),
        )
    )
    problem = ik.LeastSquares(
        lambda p, x: p["c"][0] + p["c"][1] * x + p["c"][2] * x**2, params, (x,), y, sigma=0.05
    )
    result = ik.fit(problem, progress=False)
    intervals = result.intervals("c")  # a parameter's name: its free elements
    assert [r.label for r in intervals] == ["c[0]", "c[1]"]
    J = torch.stack([torch.ones_like(x), x], dim=1) / 0.05
    sd = torch.sqrt(torch.diagonal(torch.linalg.inv(J.T @ J)))
    z = stats.norm.ppf(0.975)
    row = intervals["c[1]"]
    assert row.upper - float(result.params["c"][1]) == pytest.approx(z * float(sd[1]), rel=1e-6)
    table = result.to_table()
    assert "profile_lower" in table.columns
    assert [r["fixed"] for r in table.rows] == [False, False, True]


def test_unconstrained_parameter_has_an_open_side():
    x = torch.linspace(0, 10, 30, dtype=torch.float64)
    y = 2.0 * (1.0 - torch.exp(-0.5 * x))
    y = y + 0.02 * torch.randn(30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    problem = ik.LeastSquares(
        lambda p, x: p["b1"] * (1.0 - torch.exp(-p["b2"] * x)),
        ik.Params(b1=1.0, b2=ik.Param(1000.0, bounds=(0.0, None))),
        (x,),
        y,
        sigma=0.02,
    )
    result = ik.fit(problem, progress=False)
    assert "b2" in result.unconstrained
    row = result.intervals("b2")["b2"]
    assert math.isinf(row.upper) and "upper side open" in row.note


def test_loaded_result_asks_for_the_problem(tmp_path):
    problem = ik.LeastSquares(line, ik.Params(a=0.0, b=0.0), (X,), LINE_Y, sigma=0.1)
    result = ik.fit(problem, progress=False)
    result.intervals("a")
    path = tmp_path / "fit.npz"
    result.save(path)
    loaded = ik.load(path)
    assert loaded == result and loaded.confidence_intervals == result.confidence_intervals
    with pytest.raises(
        ik.InputError, match=r"intervals need the problem: call inversekit\.profile_intervals"
    ):
        loaded.intervals()
    again = ik.profile_intervals(problem, loaded, ["b"])
    assert again["b"].upper == pytest.approx(result.intervals("b")["b"].upper, rel=1e-12)
    with pytest.raises(ik.InputError, match="no free parameter element 'nope'"):
        ik.profile_intervals(problem, loaded, ["nope"])
    with pytest.raises(ik.InputError, match="level must lie strictly between 0 and 1"):
        ik.profile_intervals(problem, loaded, level=95)


def test_a_one_parameter_profile_is_the_cost_itself():
    """With one parameter nothing is refitted: the profile of a line through the origin
    is exactly quadratic, so its interval is the delta-method one."""
    x = torch.linspace(0.0, 1.0, 20, dtype=torch.float64)
    y = 2.0 * x + 0.1 * torch.sin(20 * x)
    problem = ik.LeastSquares(
        lambda p, x: p["b"] * x, ik.Params(b=1.0), inputs=(x,), y=y, sigma=0.1
    )
    result = ik.fit(problem)
    row = result.intervals()["b"]
    sd = float(result.stderr["b"])
    b = float(result.params["b"])
    lower, upper = row.lower, row.upper
    assert row.n_refits == 0
    assert lower == pytest.approx(b - 1.959963984540054 * sd, rel=1e-9)
    assert upper == pytest.approx(b + 1.959963984540054 * sd, rel=1e-9)
