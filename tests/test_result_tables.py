"""The report and tables of a result: every parameter (fixed and tied ones marked, tied
standard errors by the delta method), correlations, values rounded to their uncertainty,
CSV/JSON/LaTeX exports that read back, and save/load of the new fields."""

from __future__ import annotations

import csv
import io
import json
import math
import re

import pytest
import torch

import inversekit as ik
from inversekit.results.rounding import latex_uncertainty, round_to_place, round_to_uncertainty

X = torch.linspace(0, 10, 40, dtype=torch.float64)


def two_peaks(p, x):
    g1 = torch.exp(-0.5 * ((x - p["mu1"]) / p["sigma1"]) ** 2)
    g2 = torch.exp(-0.5 * ((x - p["mu2"]) / p["sigma2"]) ** 2)
    return p["A"] * (g1 + g2) + p["c"]


def tied_fit():
    truth = {"A": 1.0, "mu1": 3.0, "sigma1": 0.6, "mu2": 7.0, "sigma2": 1.2, "c": 0.2}
    y = two_peaks({k: torch.tensor(v, dtype=torch.float64) for k, v in truth.items()}, X)
    y = y + 0.02 * torch.randn(40, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    params = ik.Params(
        A=ik.Param(0.8, bounds=(0.0, None)),
        mu1=2.8,
        sigma1=0.5,
        mu2=7.2,
        sigma2=ik.Param(tie="2 * sigma1"),
        c=ik.Param(0.2, fixed=True),
    )
    problem = ik.LeastSquares(two_peaks, params, (X,), y, sigma=0.02)
    return problem, ik.fit(problem, progress=False)


@pytest.mark.parametrize(
    ("value", "err", "expected"),
    [
        (1.23456, 0.0123, ("1.235", "0.012")),
        (-0.5, 0.0449, ("-0.500", "0.045")),
        (1.0, 0.0996, ("1.00", "0.10")),  # the carry moves the place
        (123456.7, 2345.0, ("123500", "2300")),
        (1.2345e-8, 1.23e-10, ("1.235e-08", "1.2e-10")),
        (6.02214076e23, 1.2e15, ("6.022140760e+23", "1.2e+15")),
        (0.001, 0.0123, ("0.001", "0.012")),
        (1.23456789, 0.0, ("1.23457", "0")),
        (1.23456789, math.inf, ("1.23457", "inf")),
        (1.23456789, math.nan, ("1.23457", "nan")),
    ],
)
def test_round_to_uncertainty(value, err, expected):
    got = round_to_uncertainty(value, err)
    assert got == expected
    # the rounded strings read back as the rounded numbers
    assert (
        abs(float(got[0]) - value) <= 0.5 * 10 ** (math.floor(math.log10(err)) - 1)
        if 0 < err < math.inf
        else True
    )


def test_latex_and_interval_ends_round_to_the_same_place():
    assert latex_uncertainty(1.23456, 0.0123) == "$1.235 \\pm 0.012$"
    assert latex_uncertainty(1.2345e-8, 1.23e-10) == "$(1.235 \\pm 0.012) \\times 10^{-8}$"
    assert latex_uncertainty(2.0, math.inf) == "$2 \\pm \\infty$"
    assert round_to_place(1.2111, 0.0123) == "1.211"


def test_report_shows_fixed_and_tied_parameters_with_delta_method_errors():
    problem, result = tied_fit()
    text = result.report()
    assert re.search(r"\n    c +0\.2 \(fixed\)", text)
    assert "(tied: = 2 * sigma1)" in text
    # a linear tie: its standard error is exactly twice sigma1's
    sd1 = float(result.stderr["sigma1"])
    assert float(result.stderr_all["sigma2"]) == pytest.approx(2.0 * sd1, rel=1e-12)
    assert float(result.stderr_all["c"]) == 0.0
    assert set(result.stderr_all) == {"A", "mu1", "sigma1", "mu2", "sigma2", "c"}
    assert "c" not in result.stderr  # the free-only field keeps its meaning
    assert result.ties == {"sigma2": "2 * sigma1"}


def test_nonlinear_tie_standard_error_is_the_delta_method():
    """``r = sqrt(a² + b²)``: var r = gᵀ C g with g = (a, b)/r, from the fit's covariance."""
    x = torch.linspace(0, 1, 30, dtype=torch.float64)
    y = (
        1.5
        + 2.0 * x
        + 0.05 * torch.randn(30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    )
    params = ik.Params(a=1.0, b=1.0, r=ik.Param(tie="sqrt(a**2 + b**2)"))
    result = ik.fit(
        ik.LeastSquares(lambda p, x: p["a"] + p["b"] * x, params, (x,), y, sigma=0.05),
        progress=False,
    )
    a, b = float(result.params["a"]), float(result.params["b"])
    r = math.hypot(a, b)
    g = torch.tensor([a / r, b / r], dtype=torch.float64)
    expected = math.sqrt(float(g @ result.covariance @ g))
    assert float(result.params["r"]) == pytest.approx(r, rel=1e-12)
    assert float(result.stderr_all["r"]) == pytest.approx(expected, rel=1e-10)


def test_correlations_above_the_threshold_sorted_by_size():
    _, result = tied_fit()
    c = result.correlation
    pairs = [
        (abs(float(c[i, j])), result.labels[i], result.labels[j])
        for i in range(len(result.labels))
        for j in range(i + 1, len(result.labels))
    ]
    text = result.report(min_correlation=0.0)
    lines = [ln for ln in text.splitlines() if ln.strip().startswith("C(")]
    assert len(lines) == len(pairs)
    shown = [abs(float(ln.split()[-1])) for ln in lines]
    assert shown == sorted(shown, reverse=True)
    above = [p for p in pairs if p[0] > 0.5]
    strict = [ln for ln in result.report().splitlines() if ln.strip().startswith("C(")]
    assert len(strict) == len(above)
    assert "[[Correlations]] (|r| > 0.5" in result.report() or not above
    assert "[[Correlations]]" not in result.report(min_correlation=1.0)


def test_table_exports_read_back():
    _, result = tied_fit()
    table = result.to_table()
    assert [r["name"] for r in table.rows] == ["A", "mu1", "sigma1", "mu2", "sigma2", "c"]
    rows = list(csv.DictReader(io.StringIO(table.to_csv())))
    by = {r["name"]: r for r in rows}
    for name in ("A", "mu1", "sigma1"):
        value, err = float(result.params[name]), float(result.stderr[name])
        v, e = round_to_uncertainty(value, err)
        assert by[name]["value"] == v and by[name]["stderr"] == e
        assert float(by[name]["value"]) == pytest.approx(value, abs=err / 10)
    assert by["A"]["lower_bound"] == "0.0" and by["A"]["upper_bound"] == "inf"
    assert by["c"]["fixed"] == "True" and by["c"]["stderr"] == "0"
    assert by["sigma2"]["tied"] == "2 * sigma1"
    parsed = json.loads(table.to_json())
    assert [r["name"] for r in parsed] == [r["name"] for r in rows]
    assert parsed[0]["upper_bound"] is None and parsed[0]["lower_bound"] == 0.0
    assert parsed[1]["value"] == float(by["mu1"]["value"])
    full = json.loads(table.to_json(rounded=False))
    assert full[1]["value"] == float(result.params["mu1"])  # repr: bit for bit
    latex = table.to_latex()
    assert latex_uncertainty(float(result.params["mu1"]), float(result.stderr["mu1"])) in latex
    assert "(fixed)" in latex and "tied: $2 * sigma1$" in latex


def test_table_written_to_a_path(tmp_path):
    _, result = tied_fit()
    path = tmp_path / "params.csv"
    text = result.to_table().to_csv(path)
    assert path.read_text() == text


def test_to_pandas_needs_pandas():
    _, result = tied_fit()
    table = result.to_table()
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="to_pandas needs pandas"):
            table.to_pandas()
        return
    frame = table.to_pandas()
    assert list(frame["name"]) == [r["name"] for r in table.rows]
    assert float(frame["value"][1]) == float(result.params["mu1"])


def test_new_fields_save_and_load_bit_identically(tmp_path):
    problem, result = tied_fit()
    result.intervals(["mu1"])
    path = tmp_path / "r.npz"
    result.save(path)
    loaded = ik.load(path)
    assert loaded == result
    assert loaded.stderr_all.keys() == result.stderr_all.keys()
    assert loaded.confidence_intervals == result.confidence_intervals
    assert loaded.ties == result.ties and loaded.report() == result.report()
    assert loaded.to_table().to_csv() == result.to_table().to_csv()


def test_unconstrained_reasons_save_and_load(tmp_path):
    x = torch.linspace(0, 10, 30, dtype=torch.float64)
    y = 2.0 * (1.0 - torch.exp(-0.5 * x))
    problem = ik.LeastSquares(
        lambda p, x: p["b1"] * (1.0 - torch.exp(-p["b2"] * x)),
        ik.Params(b1=1.0, b2=1000.0),
        (x,),
        y,
        sigma=0.02,
    )
    result = ik.fit(problem, progress=False)
    path = tmp_path / "r.npz"
    result.save(path)
    loaded = ik.load(path)
    assert loaded == result and loaded.unconstrained == ["b2"]
    assert loaded.unconstrained_reasons == result.unconstrained_reasons
    assert not loaded.trustworthy and math.isinf(loaded.condition_number)
