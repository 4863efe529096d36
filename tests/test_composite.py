"""Composite models: sums and products of components with namespaced parameters fit as the
same model written by hand, ties keep their meaning, sharing fits one value."""

from __future__ import annotations

import pytest
import torch

import inversekit as ik

X = torch.linspace(0.0, 10.0, 400, dtype=torch.float64)
F64 = torch.float64


def gaussian(p, x):
    return p["amp"] * torch.exp(-0.5 * ((x - p["mu"]) / p["sigma"]) ** 2)


def line(p, x):
    return p["a"] + p["b"] * x


def envelope(p, x):
    return torch.exp(-x / p["tau"])


def wave(p, x):
    return p["A"] * torch.cos(p["k"] * x + p["phase"])


def peak(amp, mu, sigma) -> ik.Component:
    params = ik.Params(
        amp=ik.Param(amp, bounds=(0.0, None), unit="counts"),
        mu=ik.Param(mu, bounds=(0.0, 10.0), unit="keV"),
        sigma=ik.Param(sigma, bounds=(0.05, 5.0), log_scale=True, unit="keV"),
    )
    return ik.Component(gaussian, params)


def background() -> ik.Component:
    return ik.Component(line, ik.Params(a=0.5, b=ik.Param(0.0, description="slope")))


def two_peaks_by_hand(p, x):
    return (
        p["g1_amp"] * torch.exp(-0.5 * ((x - p["g1_mu"]) / p["g1_sigma"]) ** 2)
        + p["g2_amp"] * torch.exp(-0.5 * ((x - p["g2_mu"]) / p["g2_sigma"]) ** 2)
        + p["bg_a"]
        + p["bg_b"] * x
    )


def hand_params(drop: tuple[str, ...] = (), **changes) -> ik.Params:
    items = {
        "g1_amp": ik.Param(4.0, bounds=(0.0, None)),
        "g1_mu": ik.Param(3.2, bounds=(0.0, 10.0)),
        "g1_sigma": ik.Param(0.8, bounds=(0.05, 5.0), log_scale=True),
        "g2_amp": ik.Param(2.0, bounds=(0.0, None)),
        "g2_mu": ik.Param(6.5, bounds=(0.0, 10.0)),
        "g2_sigma": ik.Param(1.2, bounds=(0.05, 5.0), log_scale=True),
        "bg_a": 0.5,
        "bg_b": 0.0,
    }
    items.update(changes)
    return ik.Params({k: v for k, v in items.items() if k not in drop})


def data(truth: dict[str, float]) -> torch.Tensor:
    clean = two_peaks_by_hand({k: torch.tensor(v, dtype=F64) for k, v in truth.items()}, X)
    return clean + 0.05 * torch.sin(37.0 * X)  # deterministic "noise": residuals not zero


TRUTH = dict(g1_amp=5.0, g1_mu=3.0, g1_sigma=0.6, g2_amp=2.5, g2_mu=6.8, g2_sigma=1.0)
TRUTH.update(bg_a=0.3, bg_b=0.05)


def test_composite_names_and_copies_each_description():
    model = ik.Sum(g1=peak(4.0, 3.2, 0.8), g2=peak(2.0, 6.5, 1.2), bg=background())
    names = ["g1.amp", "g1.mu", "g1.sigma", "g2.amp", "g2.mu", "g2.sigma", "bg.a", "bg.b"]
    assert list(model.params) == names
    sigma = model.params["g2.sigma"]
    assert sigma.bounds == (0.05, 5.0) and sigma.log_scale and sigma.unit == "keV"
    assert model.params["bg.b"].description == "slope"
    assert float(model.params.values["g2.mu"]) == 6.5
    # the same model in the dict form and by the operator (automatic names)
    assert list(ik.Sum({"g1": peak(1, 2, 1), "bg": background()}).params) == [
        "g1.amp",
        "g1.mu",
        "g1.sigma",
        "bg.a",
        "bg.b",
    ]
    chained = peak(1, 2, 1) + peak(1, 5, 1) + background()
    assert isinstance(chained, ik.Sum) and list(chained.components) == ["c0", "c1", "c2"]
    assert list(chained.params)[-2:] == ["c2.a", "c2.b"]
    # extending a + b keeps what was set on it; a parenthesised right operand nests
    pair = peak(1, 2, 1) + peak(1, 5, 1)
    pair.params["c1.mu"].set(tie="c0.mu", bounds=None)
    assert (pair + background()).params.tied_names == ["c1.mu"]
    nested = background() + (peak(1, 2, 1) + peak(1, 5, 1))
    assert list(nested.components) == ["c0", "c1"] and "c1.c0.amp" in nested.params
    # composing copies: changing the composite leaves the component alone, and back
    component = background()
    model = ik.Sum(bg=component)
    model.params["bg.a"].set(value=2.0)
    assert float(component.params.values["a"]) == 0.5


@pytest.mark.parametrize("jacobian", ["complex-step", "eager"])
def test_sum_fits_as_the_model_written_by_hand(jacobian):
    y = data(TRUTH)
    model = ik.Sum(g1=peak(4.0, 3.2, 0.8), g2=peak(2.0, 6.5, 1.2), bg=background())
    problem = ik.LeastSquares(model, model.params, inputs=(X,), y=y, sigma=0.05, jacobian=jacobian)
    assert problem.jacobian.engine_name == jacobian  # the composite passes the engine's checks
    result = ik.fit(problem, progress=False)
    reference = ik.fit(
        ik.LeastSquares(
            two_peaks_by_hand, hand_params(), inputs=(X,), y=y, sigma=0.05, jacobian=jacobian
        ),
        progress=False,
    )
    assert result.success and reference.success
    for name, value in reference.params.items():
        composed = result.params[name.replace("_", ".", 1)]
        torch.testing.assert_close(composed, value, rtol=1e-10, atol=1e-13)
    assert result.chi2 == pytest.approx(reference.chi2, rel=1e-10)
    # and the fit found the truth it was made from (not merely agreed with itself)
    assert float(result.params["g1.mu"]) == pytest.approx(TRUTH["g1_mu"], abs=1e-2)
    assert float(result.params["g2.sigma"]) == pytest.approx(TRUTH["g2_sigma"], abs=1e-2)


def test_product_is_the_elementwise_product_and_fits():
    def signal(tau, A, k, phase):
        env = ik.Component(envelope, ik.Params(tau=ik.Param(tau, bounds=(0.1, 100.0))))
        sig = ik.Component(wave, ik.Params(A=A, k=ik.Param(k, bounds=(0.5, 5.0)), phase=phase))
        return env, sig

    env, sig = signal(4.0, 2.0, 2.0, 0.3)
    model = ik.Product(env=env, sig=sig)
    p = model.params.values
    expected = torch.exp(-X / 4.0) * 2.0 * torch.cos(2.0 * X + 0.3)
    torch.testing.assert_close(model(p, X), expected, rtol=1e-15, atol=0)
    assert isinstance(env * sig, ik.Product) and list((env * sig).components) == ["c0", "c1"]

    truth = {"env.tau": 3.0, "sig.A": 1.5, "sig.k": 2.2, "sig.phase": 0.1}
    y = model({k: torch.tensor(v, dtype=F64) for k, v in truth.items()}, X)
    result = ik.fit(ik.LeastSquares(model, model.params, inputs=(X,), y=y), progress=False)
    assert result.success
    for name, value in truth.items():
        assert float(result.params[name]) == pytest.approx(value, rel=1e-8)


def test_nested_composite_names_three_levels_and_evaluates_each_part():
    env = ik.Component(envelope, ik.Params(tau=ik.Param(5.0, bounds=(0.1, None))))
    sig = ik.Component(wave, ik.Params(A=1.0, k=2.0, phase=0.0))
    inner = ik.Product(env=env, sig=sig)
    model = ik.Sum(burst=inner, bg=background())
    assert list(model.params) == [
        "burst.env.tau",
        "burst.sig.A",
        "burst.sig.k",
        "burst.sig.phase",
        "bg.a",
        "bg.b",
    ]
    assert model.params["burst.env.tau"].bounds == (0.1, None)
    numbers = [3.0, 2.0, 1.5, 0.2, 1.0, 0.1]
    values = {k: torch.tensor(v, dtype=F64) for k, v in zip(model.params, numbers, strict=True)}
    expected = torch.exp(-X / 3) * 2 * torch.cos(1.5 * X + 0.2) + 1 + 0.1 * X
    torch.testing.assert_close(model(values, X), expected, rtol=1e-14, atol=1e-15)
    # a Sum of Products fits back the values it was made from
    y = model(values, X)
    result = ik.fit(ik.LeastSquares(model, model.params, inputs=(X,), y=y), progress=False)
    assert result.success
    for name, value in values.items():
        assert float(result.params[name]) == pytest.approx(float(value), rel=1e-7, abs=1e-9)
    tree = model.describe().splitlines()
    assert tree[0] == "Sum" and tree[1] == "├─ burst: Product"
    assert tree[2] == "│  ├─ env: envelope(tau)" and tree[-1] == "└─ bg: line(a, b)"
    assert repr(model) == "Sum(burst=Product(env=envelope, sig=wave), bg=line)"


@pytest.mark.parametrize("how", ["set", "shared", "share"])
def test_a_shared_centre_is_fitted_once_and_both_components_see_it(how):
    truth = {**TRUTH, "g2_mu": TRUTH["g1_mu"], "g2_sigma": 2.0}
    y = data(truth)
    shared = {"g2.mu": "g1.mu"} if how == "shared" else None
    model = ik.Sum(g1=peak(4.0, 3.2, 0.8), g2=peak(2.0, 3.5, 1.5), bg=background(), shared=shared)
    if how == "set":
        model.params["g2.mu"].set(tie="g1.mu", bounds=None)
    elif how == "share":
        model.share("g2.mu", "g1.mu")
    assert model.params.tied_names == ["g2.mu"] and model.params.n_free == 7
    assert model.params["g2.mu"].unit == "keV"  # sharing keeps what the parameter is
    result = ik.fit(
        ik.LeastSquares(model, model.params, inputs=(X,), y=y, sigma=0.05), progress=False
    )
    assert result.success and "g2.mu" not in result.labels and len(result.labels) == 7
    assert torch.equal(result.params["g2.mu"], result.params["g1.mu"])  # exactly

    def by_hand(p, x):  # one centre in the formula itself
        return two_peaks_by_hand({**p, "g2_mu": p["g1_mu"]}, x)

    params = hand_params(
        drop=("g2_mu",), g2_sigma=ik.Param(1.5, bounds=(0.05, 5.0), log_scale=True)
    )
    reference = ik.fit(
        ik.LeastSquares(by_hand, params, inputs=(X,), y=y, sigma=0.05), progress=False
    )
    for name, value in reference.params.items():
        torch.testing.assert_close(
            result.params[name.replace("_", ".", 1)], value, rtol=1e-10, atol=1e-13
        )
    assert float(result.params["g1.mu"]) == pytest.approx(truth["g1_mu"], abs=1e-2)


def test_component_ties_are_renamed_to_the_namespaced_names():
    params = ik.Params(
        r=ik.Param(2.0, bounds=(0.0, None)),
        v=ik.Param(torch.tensor([1.0, 3.0])),
        area=ik.Param(tie="pi * r**2"),  # pi is the constant, not a parameter
        root=ik.Param(tie="sqrt(v[1]) + r"),
        double=ik.Param(tie=lambda p: 2 * p["r"]),
    )
    comp = ik.Component(lambda p, x: p["area"] + 0 * x, params, name="disc")
    model = ik.Sum(left=comp, right=ik.Component(line, ik.Params(a=1.0, b=0.0)))
    assert model.params.tie_text("left.area") == "pi * left.r ** 2"
    assert model.params.tie_text("left.root") == "sqrt(left.v[1]) + left.r"
    model.params["left.r"].set(value=3.0)  # the ties follow the composite's own value
    values = model.params.values
    assert float(values["left.area"]) == pytest.approx(torch.pi * 9.0, rel=1e-15)
    assert float(values["left.root"]) == pytest.approx(3.0**0.5 + 3.0, rel=1e-15)
    assert float(values["left.double"]) == 6.0
    assert float(params.values["area"]) == pytest.approx(torch.pi * 4.0)  # component unchanged
    # nested once more: the names are prefixed again, the function still reads its own
    outer = ik.Sum(top=model)
    assert outer.params.tie_text("top.left.area") == "pi * top.left.r ** 2"
    outer.params["top.left.r"].set(value=0.5)
    assert float(outer.params.values["top.left.double"]) == 1.0
    # and the composite evaluates with them
    out = outer(outer.params.values, X)
    torch.testing.assert_close(out, torch.full_like(X, torch.pi * 0.25 + 1.0))


def test_global_parameter_outside_the_components_can_drive_both():
    model = ik.Sum(g1=peak(4.0, 3.2, 0.8), g2=peak(2.0, 6.5, 1.2))
    model.params.add("shift", 1.0)
    model.params["g2.mu"].set(tie="g1.mu + shift", bounds=None)
    assert float(model.params.values["g2.mu"]) == pytest.approx(4.2)
    assert "(outside the components: shift)" in model.describe()
    torch.testing.assert_close(
        model(model.params.values, X),
        gaussian({"amp": 4.0, "mu": 3.2, "sigma": 0.8}, X)
        + gaussian({"amp": 2.0, "mu": 4.2, "sigma": 1.2}, X),
    )


def test_errors_name_the_component():
    comp = background()
    with pytest.raises(ik.InputError, match="component 'bg' is given twice"):
        ik.Sum({"bg": comp}, bg=comp)
    with pytest.raises(ik.InputError, match="component name 'a.b' must be a Python identifier"):
        ik.Sum({"a.b": comp})
    with pytest.raises(ik.InputError, match="component name 'lambda'"):
        ik.Sum({"lambda": comp})
    with pytest.raises(ik.InputError, match="component 'sky' is not a model"):
        ik.Sum(bg=comp, sky=3.0)
    with pytest.raises(ik.InputError, match=r"component 'sky' has no params.*Component\(line"):
        ik.Sum(bg=comp, sky=line)
    with pytest.raises(ik.InputError, match="at least one component"):
        ik.Product()
    with pytest.raises(ik.InputError, match="Component 'flat': the model must be callable"):
        ik.Component(1.0, ik.Params(a=1.0), name="flat")
    with pytest.raises(ik.InputError, match="Component 'line': params are required"):
        ik.Component(line, None)
    with pytest.raises(ik.InputError, match=r"cannot share 'g2.mu'.*known: bg.a, bg.b"):
        ik.Sum(bg=comp, shared={"g2.mu": "bg.a"})
    with pytest.raises(ik.InputError, match="tie refers to unknown parameter 'g1.mu'"):
        ik.Sum(bg=comp, shared={"bg.a": "g1.mu"})
    single = ik.Component(line, ik.Params(a=1.0, b=0.0, dtype=torch.float32))
    with pytest.raises(ik.InputError, match="component 'x' has torch.float32 parameters"):
        ik.Sum(bg=comp, x=single)
    with pytest.raises(TypeError):
        comp + 1.0  # noqa: B018 - only components add
    # a duck-typed model carrying its params is a component
    carrier = type("Carrier", (), {"params": ik.Params(a=1.0, b=2.0), "__call__": line})()
    assert list(ik.Sum(bg=carrier).params) == ["bg.a", "bg.b"]


def test_fit_through_ik_fit_with_lbfgsb_and_a_prior():
    from torch.distributions import Normal

    g = peak(4.0, 3.2, 0.8)
    g.params["mu"].set(prior=Normal(3.0, 0.5))
    model = ik.Sum(g=g, bg=background())
    assert model.params.prior("g.mu") is not None
    truth = {"g.amp": 5.0, "g.mu": 3.0, "g.sigma": 0.6, "bg.a": 0.3, "bg.b": 0.05}
    y = model({k: torch.tensor(v, dtype=F64) for k, v in truth.items()}, X)
    lm = ik.fit(ik.LeastSquares(model, model.params, inputs=(X,), y=y, sigma=0.05))
    lbfgsb = ik.fit(ik.LeastSquares(model, model.params, inputs=(X,), y=y, sigma=0.05), "lbfgsb")
    assert lm.success and lm.priors == ["g.mu"]
    for name, value in truth.items():
        assert float(lm.params[name]) == pytest.approx(value, rel=1e-8, abs=1e-10)
        assert float(lbfgsb.params[name]) == pytest.approx(value, rel=1e-5, abs=1e-6)
