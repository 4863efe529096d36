"""The parameter description: per-element bounds and fixed masks, log scale, ties, priors,
changes after construction, and the errors for malformed descriptions."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Gamma, HalfNormal, Normal

import inversekit as ik
from inversekit.problem.transforms import Bijection, ElementwiseBijection

X = torch.linspace(0.0, 4.0, 40, dtype=torch.float64)
TRUTH = (2.0, 0.7, 0.3)
Y = TRUTH[0] * torch.exp(-TRUTH[1] * X) + TRUTH[2] + 0.01 * torch.sin(9 * X)


def vector_model(p, x):
    a = p["a"]
    return a[0] * torch.exp(-a[1] * x) + a[2]


def scalar_model(p, x):
    return p["a0"] * torch.exp(-p["a1"] * x) + p["a2"]


def fit(model, params, **kw):
    return ik.fit(ik.LeastSquares(model, params, inputs=(X,), y=Y, sigma=0.01, **kw))


@pytest.mark.parametrize("jacobian", ["auto", "eager"])
def test_per_element_bounds_and_fixed_mask_fit_like_the_scalar_problem(jacobian):
    vector = ik.Params(
        a=ik.Param(
            torch.tensor([1.5, 1.0, 0.3]),
            bounds=([0.0, 0.1, -1.0], [10.0, 5.0, None]),
            fixed=[False, False, True],
        )
    )
    scalar = ik.Params(
        a0=ik.Param(1.5, bounds=(0.0, 10.0)),
        a1=ik.Param(1.0, bounds=(0.1, 5.0)),
        a2=ik.Param(0.3, fixed=True),
    )
    assert vector.labels() == ["a[0]", "a[1]"] and vector.fixed_labels() == ["a[2]"]
    rv = fit(vector_model, vector, jacobian=jacobian)
    rs = fit(scalar_model, scalar, jacobian=jacobian)
    assert rv.success and rs.success
    expected = torch.stack([rs.params["a0"], rs.params["a1"], rs.params["a2"]])
    torch.testing.assert_close(rv.params["a"], expected, rtol=1e-9, atol=0)
    assert float(rv.params["a"][2]) == 0.3  # the fixed element is untouched
    torch.testing.assert_close(rv.covariance, rs.covariance, rtol=1e-7, atol=0)
    assert rv.chi2 == pytest.approx(rs.chi2, rel=1e-12)


def test_elementwise_bijection_matches_the_scalar_one_per_element():
    cases = [(None, None), (0.0, None), (None, 3.0), (-2.0, 5.0), (1e-3, 1e4)]
    lo = torch.tensor([-math.inf if a is None else a for a, _ in cases], dtype=torch.float64)
    hi = torch.tensor([math.inf if b is None else b for _, b in cases], dtype=torch.float64)
    for log_scale in (False, True):
        if log_scale:  # log scale: positive parameters only
            lo = torch.clamp(lo, min=0.0)
        many = ElementwiseBijection(lo, hi, log_scale)
        u = torch.tensor([-40.0, -3.0, 0.0, 2.5, 40.0], dtype=torch.float64)
        for k, (a, b) in enumerate(cases):
            a = float(lo[k]) if math.isfinite(lo[k]) else None
            one = Bijection(a, b, log_scale)
            uk = u.roll(k)
            x = many.forward(uk)
            assert float(x[k]) == pytest.approx(float(one.forward(uk[k])), rel=1e-15)
            d = many.derivative(uk)
            assert float(d[k]) == pytest.approx(float(one.derivative(uk[k])), rel=1e-14)
        # round trip and no NaN leaking from the branches not taken, values or gradients
        u = torch.zeros(5, dtype=torch.float64, requires_grad=True)
        x = many.forward(u)
        torch.testing.assert_close(many.inverse(x.detach()), u.detach(), atol=1e-12, rtol=0)
        x.sum().backward()
        assert bool(torch.isfinite(u.grad).all())


def test_log_scale_fit_gives_the_same_answer_and_delta_method_stderr():
    plain = fit(scalar_model, ik.Params(a0=1.5, a1=1.0, a2=0.2))
    logged = fit(scalar_model, ik.Params(a0=1.5, a1=ik.Param(1.0, log_scale=True), a2=0.2))
    both = fit(
        scalar_model,
        ik.Params(a0=1.5, a1=ik.Param(1.0, bounds=(1e-3, 1e3), log_scale=True), a2=0.2),
    )
    for r in (logged, both):
        assert r.params["a1"].item() == pytest.approx(plain.params["a1"].item(), rel=1e-9)
        assert r.stderr["a1"].item() == pytest.approx(plain.stderr["a1"].item(), rel=1e-6)
    params = ik.Params(a=ik.Param(3.0, bounds=(1e-3, 1e4), log_scale=True))
    assert params.bijections["a"].kind == "log-both"
    # one unit of u moves log x by the same amount anywhere in the range (decades apart)
    u = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    logs = torch.log(params.bijections["a"].forward(u))
    assert float(logs[2] - logs[1]) == pytest.approx(float(logs[1] - logs[0]), rel=0.3)


def test_a_tie_holds_exactly_and_equals_the_substituted_model():
    tied = ik.Params(a0=1.5, a1=1.0, a2=ik.Param(tie="0.15 * a0"))
    by_function = ik.Params(a0=1.5, a1=1.0, a2=ik.Param(tie=lambda p: 0.15 * p["a0"]))

    def substituted(p, x):
        return p["a0"] * torch.exp(-p["a1"] * x) + 0.15 * p["a0"]

    r = fit(scalar_model, tied)
    rf = fit(scalar_model, by_function)
    rs = fit(substituted, ik.Params(a0=1.5, a1=1.0))
    assert r.labels == ["a0", "a1"]
    assert float(r.params["a2"]) == 0.15 * float(r.params["a0"])  # exactly, at the optimum
    for res in (r, rf):
        for n in ("a0", "a1"):
            assert res.params[n].item() == pytest.approx(rs.params[n].item(), rel=1e-10)
        torch.testing.assert_close(res.covariance, rs.covariance, rtol=1e-7, atol=0)


def test_tie_expressions_chain_in_order_and_index_elements():
    params = ik.Params(
        c=ik.Param(tie="2 * b"),
        b=ik.Param(tie="sqrt(v[1]) + pi"),
        v=ik.Param(torch.tensor([1.0, 4.0])),
    )
    assert params.tied_names == ["b", "c"]
    out = params.unpack(params.pack())
    assert float(out["b"]) == pytest.approx(2.0 + math.pi)
    assert float(out["c"]) == pytest.approx(2 * (2.0 + math.pi))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (dict(b=ik.Param(tie="2 * c")), "tie refers to unknown parameter 'c'"),
        (dict(b=ik.Param(tie="b + 1")), "tie refers to itself"),
        (dict(b=ik.Param(tie="c"), c=ik.Param(tie="b")), "ties form a cycle"),
        (dict(b=ik.Param(tie="__import__('os')")), "is not allowed"),
        (dict(b=ik.Param(tie="a +")), "is not an expression"),
        (dict(b=ik.Param(tie=lambda p: p["zz"])), "unknown parameter 'zz'"),
        (dict(b=ik.Param(tie="a", bounds=(0, 1))), "a tied parameter takes its value"),
        (dict(b=ik.Param(torch.ones(3), bounds=([0, 0], None))), "lower bounds have shape (2,)"),
        (dict(b=ik.Param(torch.ones(3), bounds=(0, 2), fixed=[True, False])), "fixed mask"),
        (dict(b=ik.Param(torch.ones(2), fixed=[0.5, 1.0])), "boolean mask"),
        (dict(b=ik.Param(torch.ones(2), bounds=([0, 3], 5))), "not strictly above"),
        (dict(b=ik.Param(1.0, bounds=(-1, None), log_scale=True)), "log_scale needs a positive"),
        (dict(b=ik.Param(1.0, bounds=(-1, 5), prior=Gamma(2.0, 1.0))), "support"),
        (dict(b=ik.Param(1.0, prior="normal")), "prior must be a torch.distributions"),
        (dict(b=ik.Param(torch.ones(2), prior=Normal(torch.zeros(3), 1.0))), "batch shape"),
        (dict(b=ik.Param(-1.0, prior=HalfNormal(1.0))), "zero density under its prior"),
    ],
)
def test_malformed_descriptions_are_refused_naming_the_parameter(spec, message):
    with pytest.raises(ik.InputError, match="parameter 'b'") as info:
        ik.Params(a=1.0, **spec)
    assert message in str(info.value)


def test_a_prior_with_bounded_support_makes_the_bounds():
    params = ik.Params(
        a=ik.Param(1.0, prior=Gamma(2.0, 1.0)), b=ik.Param(2.0, prior=ik.LogUniform(1, 10))
    )
    assert params.bijections["a"].kind == "lower" and params.bijections["a"].lower == 0.0
    assert (params.bijections["b"].lower, params.bijections["b"].upper) == (1.0, 10.0)
    # the float32 parameters of Normal(0.5, 0.1) are read as the decimals written
    params = ik.Params(c=ik.Param(0.4, prior=Normal(0.5, 0.1)))
    assert float(params.prior("c").scale) == 0.1 and params.prior("c").scale.dtype == torch.float64
    rows = params.prior_residuals(params.values)
    assert float(rows[0]) == pytest.approx((0.4 - 0.5) / 0.1, rel=1e-15)


def test_log_uniform_density_and_samples():
    d = ik.LogUniform(1e-2, 1e2)
    x = torch.tensor([1e-2, 1.0, 50.0], dtype=torch.float64)
    expected = -torch.log(x) - math.log(math.log(1e4))
    torch.testing.assert_close(d.log_prob(x), expected)
    assert float(d.log_prob(torch.tensor(200.0, dtype=torch.float64))) == -math.inf
    torch.manual_seed(0)
    s = d.sample((20000,))
    assert float((s < 1.0).double().mean()) == pytest.approx(0.5, abs=0.02)  # uniform in log


def test_changes_after_construction_are_checked_like_lmfit():
    params = ik.Params(a0=1.5, a1=ik.Param(1.0, bounds=(0, 5)), a2=0.2)
    params["a2"].set(vary=False, value=0.3)
    assert params.fixed_names == ["a2"] and float(params.values["a2"]) == 0.3
    params["a1"].max = 4.0  # lmfit's attribute names work too
    params["a1"].set(min=0.5)
    assert params.bijections["a1"].lower == 0.5 and params.bijections["a1"].upper == 4.0
    params["a1"].vary = False
    assert params.fixed_names == ["a1", "a2"]
    params["a1"].vary = True
    with pytest.raises(AttributeError):
        params["a1"].vlaue = 2.0  # a misspelt field is an error, not a silent no-op
    params["a1"].bounds = (0.1, 3.0)
    assert params.bijections["a1"].upper == 3.0
    with pytest.raises(ik.InputError, match="parameter 'a1'.*start inside the bounds"):
        params["a1"].bounds = (2.0, 3.0)  # the start 1.0 would lie outside
    assert params["a1"].bounds == (0.1, 3.0) and params.bijections["a1"].upper == 3.0
    params["a0"].fixed = True
    assert params.free_names == ["a1"]
    params["a0"].set(vary=True, expr=None)
    params.add("a3", tie="2 * a0")
    assert params.tied_names == ["a3"]
    params["a1"].set(tie="a0")  # tying drops the bounds and fixing that no longer apply
    assert params.tied_names == ["a1", "a3"] and params["a1"].bounds is None
    params["a1"].set(tie=None, value=1.0, bounds=(0.1, 3.0))
    with pytest.raises(ik.InputError, match="unknown field 'vry'"):
        params["a0"].set(vry=False)
    # the fit sees the description as it was when the problem was made
    problem = ik.LeastSquares(scalar_model, params, inputs=(X,), y=Y)
    params["a0"].fixed = True
    assert "a0" in problem.params.free_names


def test_priors_reach_the_scalar_objective_as_minus_log_density():
    # loss ½(a - 3)², prior Normal(1, 1): the MAP is the mean of the two, a = 2
    params = ik.Params(a=ik.Param(0.0, prior=Normal(1.0, 1.0)))
    result = ik.fit(ik.Objective(lambda p: 0.5 * (p["a"] - 3.0) ** 2, params))
    assert float(result.params["a"]) == pytest.approx(2.0, abs=1e-7)
    # a Gamma(3, 1) prior alone on a flat loss: the mode is (k - 1)/rate = 2
    params = ik.Params(a=ik.Param(0.5, prior=Gamma(3.0, 1.0)))
    result = ik.fit(ik.Objective(lambda p: 0.0 * p["a"], params))
    assert float(result.params["a"]) == pytest.approx(2.0, rel=1e-6)


def test_batched_problems_refuse_descriptions_they_do_not_support():
    y = torch.stack([Y, Y])
    for params, what in [
        (ik.Params(a0=1.5, a1=1.0, a2=ik.Param(tie="0.1 * a0")), "tied"),
        (ik.Params(a0=1.5, a1=ik.Param(1.0, prior=Normal(1.0, 1.0)), a2=0.1), "with priors"),
    ]:
        with pytest.raises(ik.InputError, match=what):
            ik.BatchedLeastSquares(scalar_model, params, inputs=(X,), y=y)


def _line_data():
    gen = torch.Generator().manual_seed(1)
    x = torch.linspace(0.0, 1.0, 20, dtype=torch.float64)
    y = 1.0 + 2.0 * x + 0.1 * torch.randn(20, dtype=torch.float64, generator=gen)
    return x, y


def line(p, x):
    return p["a"] + p["b"] * x


def test_gaussian_priors_give_the_analytic_posterior_mode_and_covariance():
    x, y = _line_data()
    sigma = 0.1
    params = ik.Params(
        a=ik.Param(0.0, prior=Normal(0.5, 0.3)), b=ik.Param(1.0, prior=Normal(1.5, 0.2))
    )
    result = ik.fit(ik.LeastSquares(line, params, inputs=(x,), y=y, sigma=sigma))
    # conjugate linear-Gaussian posterior: precision AᵀA/σ² + P0, mean from the normal eqs
    A = torch.stack([torch.ones_like(x), x], 1)
    P0 = torch.diag(torch.tensor([0.3**-2, 0.2**-2], dtype=torch.float64))
    precision = A.T @ A / sigma**2 + P0
    mean = torch.linalg.solve(
        precision, A.T @ y / sigma**2 + P0 @ torch.tensor([0.5, 1.5]).double()
    )
    torch.testing.assert_close(result.x, mean, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(result.covariance, torch.linalg.inv(precision), rtol=1e-10, atol=0)
    assert result.priors == ["a", "b"]
    assert "    priors          a, b (the fit is the MAP" in result.report()
    # chi2 is the data's; the cost adds the priors' rows
    f = line({"a": result.x[0], "b": result.x[1]}, x)
    assert result.chi2 == pytest.approx(float((((f - y) / sigma) ** 2).sum()), rel=1e-12)
    penalty = ((result.x[0] - 0.5) / 0.3) ** 2 + ((result.x[1] - 1.5) / 0.2) ** 2
    assert result.cost == pytest.approx(0.5 * (result.chi2 + float(penalty)), rel=1e-12)


def test_other_priors_give_the_map_through_the_scalar_objective():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    x, y = _line_data()
    prior = Gamma(20.0, 10.0)
    params = ik.Params(a=ik.Param(0.5), b=ik.Param(1.0, prior=prior))
    # the reference evaluates the prior in float64 (torch's default float32 would round)
    prior = Gamma(torch.tensor(20.0, dtype=torch.float64), torch.tensor(10.0, dtype=torch.float64))
    problem = ik.LeastSquares(line, params, inputs=(x,), y=y, sigma=0.1)
    with pytest.raises(ik.InputError, match="non-Gaussian priors"):
        ik.fit(problem, "lm")
    result = ik.fit(problem)  # the default for such a problem: L-BFGS-B
    assert result.solver == "L-BFGS-B" and result.success

    def neg_log_post(v):
        t = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        r = (t[0] + t[1] * x - y) / 0.1
        value = 0.5 * (r @ r) - prior.log_prob(t[1])
        (grad,) = torch.autograd.grad(value, t)
        return float(value.detach()), grad.numpy()

    ref = scipy_optimize.minimize(
        neg_log_post, [0.5, 1.0], jac=True, method="BFGS", options={"gtol": 1e-12}
    )
    torch.testing.assert_close(
        result.x, torch.tensor(ref.x, dtype=torch.float64), rtol=1e-8, atol=0
    )


def test_priors_without_a_noise_level_are_refused():
    x, y = _line_data()
    params = ik.Params(a=ik.Param(0.0, prior=Normal(0.5, 0.3)), b=1.0)
    with pytest.raises(ik.InputError, match="parameters a have priors, but no noise level"):
        ik.LeastSquares(line, params, inputs=(x,), y=y)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tie", "partly fixed vector"])
def test_the_compiled_engine_differentiates_ties_and_fixed_elements_like_eager(kind):
    from inversekit.derivatives.compiled import CompiledJacobian, compile_unavailable

    if compile_unavailable() is not None:
        pytest.skip(f"torch.compile unavailable: {compile_unavailable()}")
    x = torch.linspace(0.0, 4.0, 3000, dtype=torch.float64)
    y = 2.0 * torch.exp(-0.7 * x) + 0.3 + 0.01 * torch.sin(9 * x)
    if kind == "tie":
        model, params = scalar_model, ik.Params(a0=1.5, a1=1.0, a2=ik.Param(tie="0.15 * a0"))
    else:
        model = vector_model
        params = ik.Params(
            a=ik.Param(torch.tensor([1.5, 1.0, 0.3]), bounds=(-1, 5), fixed=[0, 0, 1])
        )

    def make():
        return ik.LeastSquares(model, params, inputs=(x,), y=y, sigma=0.01, jacobian="eager")

    compiled, eager = make(), make()
    compiled.jacobian = CompiledJacobian(compiled, chunk_rows=1024)
    u = eager.u0 + 0.02
    got, want = compiled.jacobian.normal_equations(u), eager.normal_equations(u)
    assert compiled.jacobian.engine_name == "compiled", compiled.jacobian.reason
    torch.testing.assert_close(got.A, want.A, rtol=1e-10, atol=0)
    torch.testing.assert_close(got.g, want.g, rtol=1e-10, atol=1e-12)
    assert got.cost == pytest.approx(want.cost, rel=1e-12)


def test_the_parameter_table_says_how_each_parameter_is_fitted():
    params = ik.Params(
        a=ik.Param(1.0, bounds=(0, None), unit="s"),
        b=ik.Param(torch.tensor([1.0, 2.0, 3.0]), bounds=(0, 10), fixed=[1, 0, 0]),
        c=ik.Param(tie="2 * a"),
        d=ik.Param(0.3, prior=Normal(0.5, 0.1)),
        e=ik.Param(3.0, log_scale=True, fixed=True),
    )
    lines = str(params).splitlines()
    assert lines[0].split() == ["name", "value", "lower", "upper", "fit", "as", "unit"]
    assert lines[1].split() == ["a", "1", "0", "inf", "free", "s"]
    assert "1 of 3 fixed" in lines[2] and "[1 .. 3] (3)" in lines[2]
    assert lines[3].split()[:2] == ["c", "2"] and lines[3].endswith("tied: = 2 * a")
    assert lines[4].endswith("free, prior Normal(0.5, 0.1)")
    assert lines[5].endswith("fixed, log scale")
    values = params.valuesdict()
    assert values["c"] == 2.0 and values["a"] == 1.0 and values["b"].tolist() == [1.0, 2.0, 3.0]


def test_the_start_cost_includes_the_gaussian_priors_rows():
    x, y = _line_data()
    params = ik.Params(
        a=ik.Param(0.0, prior=Normal(0.5, 0.3)), b=ik.Param(1.0, prior=Normal(1.5, 0.2))
    )
    problem = ik.LeastSquares(line, params, inputs=(x,), y=y, sigma=0.1)
    r = (line({"a": 0.0, "b": 1.0}, x) - y) / 0.1
    penalty = (0.5 / 0.3) ** 2 + (0.5 / 0.2) ** 2
    assert problem.cost(problem.u0) == pytest.approx(0.5 * (float(r @ r) + penalty), rel=1e-12)


def test_a_bounded_poisson_fit_with_a_gamma_prior_reaches_the_map():
    """The default solver of a problem with non-Gaussian priors (L-BFGS-B) agrees with
    SciPy's BFGS on the same negative log-posterior."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    gen = torch.Generator().manual_seed(0)
    x = torch.linspace(0, 5, 100, dtype=torch.float64)

    def decay(p, x):
        return p["A"] * torch.exp(-x / p["tau"]) + p["B"]

    truth = {"A": torch.tensor(50.0), "tau": torch.tensor(1.5), "B": torch.tensor(2.0)}
    y = torch.poisson(decay(truth, x).double(), generator=gen)
    params = ik.Params(
        A=ik.Param(30.0, bounds=(0, None)),
        tau=ik.Param(1.0, bounds=(0.01, None), prior=Gamma(150.0, 100.0)),
        B=ik.Param(1.0, bounds=(0, None)),
    )
    problem = ik.LeastSquares(decay, params, inputs=(x,), y=y, likelihood="poisson")
    result = ik.fit(problem)

    def neg_log_post(v):
        u = torch.tensor(v, dtype=torch.float64)
        f, g = problem.gradient(u)
        return f, g.numpy()

    ref = scipy_optimize.minimize(
        neg_log_post, problem.u0.numpy(), jac=True, method="BFGS", options={"gtol": 1e-10}
    )
    assert result.cost == pytest.approx(ref.fun, rel=1e-9)
    assert float(result.params["tau"]) == pytest.approx(
        float(torch.exp(torch.tensor(ref.x[1]))) + 0.01, rel=1e-5
    )


def test_profile_intervals_keep_the_profiled_parameters_prior():
    """A line with Gaussian priors: the posterior is Gaussian, so the profile interval of
    each parameter equals the delta-method one."""
    x, y = _line_data()
    params = ik.Params(
        a=ik.Param(0.0, prior=Normal(1.0, 0.02)), b=ik.Param(1.0, prior=Normal(1.5, 0.5))
    )
    result = ik.fit(ik.LeastSquares(line, params, inputs=(x,), y=y, sigma=0.1))
    for label in ("a", "b"):
        row = result.intervals([label], level=0.68)[label]
        assert row.lower == pytest.approx(row.delta_lower, rel=1e-6)
        assert row.upper == pytest.approx(row.delta_upper, rel=1e-6)
