"""Parameters the data do not constrain are named (results.identifiability), and parameters
they do constrain are not: after every fit either the answer matches the fit started at the
truth, or the parameter that went astray is named, the message warns and the result is not
trustworthy. No warning on any of NIST's 38 certified problems."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import data_dir

import inversekit as ik
from inversekit.models import nist

X = torch.linspace(0, 10, 30, dtype=torch.float64)
NOISE = 0.02 * torch.randn(30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
Y = 2.0 * (1.0 - torch.exp(-0.5 * X)) + NOISE


def saturating(p, x):
    return p["b1"] * (1.0 - torch.exp(-p["b2"] * x))


def gaussian(p, x):
    return p["A"] * torch.exp(-0.5 * ((x - p["mu"]) / p["w"]) ** 2) + p["c"]


def sigmoid(p, x):
    return p["a"] / (1.0 + torch.exp(-(x - p["x0"]) / p["s"])) + p["c"]


def fit(model, params, x, y, sigma):
    return ik.fit(ik.LeastSquares(model, params, (x,), y, sigma=sigma), progress=False)


def right_or_named(result, truth, named: set[str]) -> str:
    """ "right" when ``result`` matches ``truth`` (the fit started at the truth) and is
    trustworthy; "named" when one of ``named`` is named, with the warning and not trustworthy."""
    if result.trustworthy:
        for k, v in truth.params.items():
            assert float(result.params[k]) == pytest.approx(float(v), rel=1e-6, abs=1e-9), k
        assert "WARNING" not in result.message and "[[Warnings]]" not in result.report()
        return "right"
    assert named & set(result.unconstrained), result.unconstrained_reasons
    for k in result.unconstrained:
        assert f"WARNING: {k} not constrained by the data" in result.message
        assert f"{k} not constrained by the data: " in result.report()
    assert "[[Warnings]]" in result.report()
    assert "trustworthy     no" in result.report()
    return "named"


@pytest.mark.parametrize("sigma", [0.02, None])
@pytest.mark.parametrize("bounds", [None, (0.0, None)])
def test_saturated_rate_is_right_or_named(sigma, bounds):
    truth = fit(saturating, ik.Params(b1=2.0, b2=0.5), X, Y, sigma)
    outcomes = {}
    for start in (5.0, 20.0, 50.0, 200.0, 1000.0):
        params = ik.Params(b1=1.0, b2=ik.Param(start, bounds=bounds))
        result = fit(saturating, params, X, Y, sigma)
        outcomes[start] = right_or_named(result, truth, {"b2"})
        if outcomes[start] == "named":
            # the dead column shows in the condition number
            assert not result.trustworthy
            assert math.isinf(result.condition_number)
            assert result.unconstrained_reasons["b2"].startswith("derivative at rounding level")
            assert "b1" not in result.unconstrained
    # from 200 on the start is saturated at every data point (b2 x >= 69 beyond x = 0)
    assert outcomes == {5.0: "right", 20.0: "right", 50.0: "right", 200.0: "named", 1000.0: "named"}


def test_nist_misra1a_saturated_starts_are_named():
    data = nist.read_strd(data_dir() / "nist_strd" / "Misra1a.dat")
    x, y = torch.tensor(data.x), torch.tensor(data.y)
    truth = fit(saturating, ik.Params(b1=500.0, b2=5e-4), x, y, None)
    for start in (0.05, 0.5, 5.0, 200.0):
        result = fit(saturating, ik.Params(b1=500.0, b2=start), x, y, None)
        assert right_or_named(result, truth, {"b2"}) == ("right" if start < 0.1 else "named")


def test_gaussian_of_zero_amplitude_names_its_centre_and_width():
    """Data without a peak: the amplitude fits to about zero, consistent with it, and the
    centre and width, which do nothing at zero amplitude, are named; the amplitude itself
    (linear, honestly constrained near zero) and the background are not."""
    x = torch.linspace(0, 10, 60, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    y = 0.3 + 0.02 * torch.randn(60, generator=g, dtype=torch.float64)
    seen = set()
    for start in ((1.0, 5.0, 1.0), (1.0, 8.0, 2.0)):
        A, mu, w = start
        result = fit(gaussian, ik.Params(A=A, mu=mu, w=w, c=0.0), x, y, 0.02)
        assert abs(float(result.params["A"])) < 1.96 * float(result.stderr["A"])
        assert set(result.unconstrained) == {"mu", "w"}, result.unconstrained_reasons
        assert "no effect at A = 0" in result.unconstrained_reasons["mu"]
        assert not result.trustworthy and result.success
        seen.add(tuple(result.unconstrained))
    assert seen == {("mu", "w")}


def test_gaussian_with_a_peak_and_zero_background_has_no_warning():
    """A parameter fitted near zero with an honest standard error (the background) is not
    named, nor are the peak's parameters when the peak is there."""
    x = torch.linspace(0, 10, 60, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    y = torch.exp(-0.5 * ((x - 5.0) / 1.0) ** 2) + 0.02 * torch.randn(
        60, generator=g, dtype=torch.float64
    )
    for start in ((1.0, 5.0, 1.0), (0.5, 4.0, 2.0)):
        A, mu, w = start
        result = fit(gaussian, ik.Params(A=A, mu=mu, w=w, c=0.0), x, y, 0.02)
        assert abs(float(result.params["c"])) < 2.0 * float(result.stderr["c"])
        assert result.trustworthy and result.unconstrained == [], result.unconstrained_reasons
        assert math.isfinite(result.condition_number) and result.condition_number < 100


def test_peak_run_off_the_data_names_centre_and_width():
    """Started narrow beside a place without a peak, the peak runs off the data: centre and
    width have standard errors beyond ten times their values and the model is not linear in
    them over that range (check 4)."""
    x = torch.linspace(0, 10, 60, dtype=torch.float64)
    y = 0.3 + 0.02 * torch.randn(
        60, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    result = fit(gaussian, ik.Params(A=0.1, mu=3.0, w=0.5, c=0.0), x, y, 0.02)
    assert {"mu", "w"} <= set(result.unconstrained)
    assert not result.trustworthy


@pytest.mark.parametrize("x0", [5.0, 20.0, -10.0, 30.0])
def test_saturated_sigmoid_is_right_or_named(x0):
    x = torch.linspace(0, 10, 60, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    y = (
        1.0 / (1.0 + torch.exp(-(x - 5.02) / 0.5))
        + 0.1
        + 0.02 * torch.randn(60, generator=g, dtype=torch.float64)
    )
    truth = fit(sigmoid, ik.Params(a=1.0, x0=5.02, s=0.5, c=0.1), x, y, 0.02)
    result = fit(sigmoid, ik.Params(a=1.0, x0=x0, s=0.5, c=0.0), x, y, 0.02)
    outcome = right_or_named(result, truth, {"x0", "s"})
    # started 25 widths beyond the data the sigmoid is flat there: nothing moves x0 or s
    assert outcome == ("named" if x0 in (-10.0, 30.0) else "right")


def test_no_warning_on_any_nist_problem():
    files = sorted((data_dir() / "nist_strd").glob("*.dat"))
    checked = 0
    for path in files:
        data = nist.read_strd(path)
        for start in (0, 1):
            result = ik.fit(nist.problem(data, start), progress=False)
            assert result.trustworthy, (data.name, start, result.unconstrained_reasons)
            assert "WARNING" not in result.message and "[[Warnings]]" not in result.report()
            checked += 1
    assert checked == 38


def test_parameter_at_its_bound_is_at_bound_not_unconstrained():
    x = torch.linspace(0, 1, 20, dtype=torch.float64)
    y = 0.75 - 0.5 * x
    params = ik.Params(slope=ik.Param(1.0, bounds=(0.0, None)), icept=0.0)
    result = fit(lambda p, x: p["slope"] * x + p["icept"], params, x, y, 0.01)
    assert result.at_bounds == ["slope"] and result.unconstrained == []
    assert result.trustworthy


def test_batched_names_the_same_parameters_as_single_fits():
    B = 6
    g = torch.Generator().manual_seed(2)
    y = 2.0 * (1.0 - torch.exp(-0.5 * X)) + 0.02 * torch.randn(
        B, 30, generator=g, dtype=torch.float64
    )
    starts = torch.tensor([5.0, 20.0, 50.0, 200.0, 1000.0, 0.3], dtype=torch.float64)
    problem = ik.BatchedLeastSquares(
        saturating, ik.Params(b1=1.0, b2=1.0), (X,), y, sigma=0.02, start={"b2": starts}
    )
    batch = ik.fit(problem, progress=False)
    assert batch.unconstrained.shape == (B, 2)
    named = [b for b in range(B) if bool(batch.unconstrained[b].any())]
    assert named == [3, 4]
    assert batch.trustworthy.tolist() == [True, True, True, False, False, True]
    assert torch.isinf(batch.condition_number[3]) and torch.isfinite(batch.condition_number[0])
    text = batch.report()
    assert "2 problems have parameters not constrained by the data (b2 in 2)" in text
    assert "problem 3: b2 (derivative at rounding level)" in text
    for b in range(B):
        single = fit(saturating, ik.Params(b1=1.0, b2=float(starts[b])), X, y[b], 0.02)
        assert batch[b].unconstrained == single.unconstrained
        assert batch[b].trustworthy == single.trustworthy
    assert "WARNING: b2 not constrained by the data" in batch[3].message


def test_batched_gaussians_of_zero_amplitude_match_single_fits():
    x = torch.linspace(0, 10, 60, dtype=torch.float64)
    amplitude = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    noise = 0.02 * torch.randn(4, 60, generator=g, dtype=torch.float64)
    y = amplitude[:, None] * torch.exp(-0.5 * (x - 5.0) ** 2) + 0.3 + noise
    start = {"mu": torch.tensor([5.0, 5.0, 6.0, 6.0], dtype=torch.float64)}
    problem = ik.BatchedLeastSquares(
        gaussian, ik.Params(A=1.0, mu=5.0, w=1.0, c=0.0), (x,), y, sigma=0.02, start=start
    )
    batch = ik.fit(problem, progress=False)
    for b in range(4):
        params = ik.Params(A=1.0, mu=float(start["mu"][b]), w=1.0, c=0.0)
        single = fit(gaussian, params, x, y[b], 0.02)
        assert batch[b].unconstrained == single.unconstrained, b
    assert batch[2].unconstrained == ["mu", "w"]
    assert batch[1].unconstrained == [] and batch[3].unconstrained == []


WELL_POSED = {
    "double exponential": (
        lambda p, x: p["a1"] * torch.exp(-p["k1"] * x) + p["a2"] * torch.exp(-p["k2"] * x) + p["c"],
        {"a1": 2.0, "k1": 1.5, "a2": 1.0, "k2": 0.2, "c": 0.1},
        {"a1": 1.0, "k1": 1.0, "a2": 0.5, "k2": 0.1, "c": 0.0},
        0.01,
    ),
    "lorentzian on a flat background": (
        lambda p, x: p["A"] / (1 + ((x - p["x0"]) / p["g"]) ** 2) + p["b0"] + p["b1"] * x,
        {"A": 1.0, "x0": 4.0, "g": 0.5, "b0": 0.2, "b1": 0.0},
        {"A": 0.5, "x0": 4.3, "g": 1.0, "b0": 0.0, "b1": 0.01},
        0.02,
    ),
    "cubic with a zero coefficient": (
        lambda p, x: p["c0"] + p["c1"] * x + p["c2"] * x**2 + p["c3"] * x**3,
        {"c0": 1.0, "c1": -0.5, "c2": 0.05, "c3": 0.0},
        {"c0": 0.0, "c1": 0.0, "c2": 0.0, "c3": 0.0},
        0.05,
    ),
    "two gaussians": (
        lambda p, x: (
            p["A1"] * torch.exp(-0.5 * ((x - p["m1"]) / p["w1"]) ** 2)
            + p["A2"] * torch.exp(-0.5 * ((x - p["m2"]) / p["w2"]) ** 2)
        ),
        {"A1": 1.0, "m1": 3.0, "w1": 0.5, "A2": 0.5, "m2": 6.0, "w2": 1.0},
        {"A1": 0.8, "m1": 3.2, "w1": 0.6, "A2": 0.4, "m2": 5.8, "w2": 0.8},
        0.02,
    ),
}


@pytest.mark.parametrize("name", list(WELL_POSED))
def test_no_warning_on_well_posed_fits(name):
    """Fits the data constrain, some with a parameter whose truth is zero, noise given or
    not: nothing is named (360 such fits over nine models named nothing when the
    thresholds were chosen; these are 40 of them)."""
    model, truth, start, sigma = WELL_POSED[name]
    x = torch.linspace(0.1, 10, 80, dtype=torch.float64)
    clean = model({k: torch.tensor(v, dtype=torch.float64) for k, v in truth.items()}, x)
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        y = clean + sigma * torch.randn(80, generator=g, dtype=torch.float64)
        for noise in (sigma, None):
            result = fit(model, ik.Params(**start), x, y, noise)
            assert result.trustworthy, (seed, noise, result.unconstrained_reasons)
