"""Derivative engines agree: eager forward mode, compiled fused accumulation, complex step.

Each engine must give the same ``JᵀWJ``, ``JᵀWr`` and cost as eager forward-mode AD,
whether rows are chunked or not, and a fit with each must reach the same minimum. Engines
that cannot be used (a model that is not complex-step safe, one that dynamo cannot
compile) must fall back to eager and say why.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import data_dir

import inversekit as ik
from inversekit.derivatives.compiled import CompiledJacobian, compile_unavailable
from inversekit.derivatives.complex_step import ComplexStepJacobian
from inversekit.derivatives.forward import ChunkedJacobian, jacobian
from inversekit.models import nist

FILES = sorted((data_dir() / "nist_strd").glob("*.dat"))


def peak(p, x):
    """One Gaussian on a linear background (5 parameters)."""
    g = p["a"] * torch.exp(-((x - p["mu"]) ** 2) / (2 * p["s"] ** 2))
    return g + p["c0"] + p["c1"] * x


def peak_problem(n: int = 3000, **kwargs) -> ik.LeastSquares:
    rng = np.random.default_rng(7)
    x = np.linspace(0.0, 10.0, n)
    y = 3.0 * np.exp(-((x - 4.0) ** 2) / 2.0) + 0.5 + 0.1 * x + 0.05 * rng.standard_normal(n)
    params = ik.Params(a=2.5, mu=4.3, s=ik.Param(1.3, bounds=(0.0, None)), c0=0.4, c1=0.05)
    return ik.LeastSquares(peak, params, inputs=(x,), y=y, sigma=0.05 + 0.01 * x, **kwargs)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def assert_same_normal_equations(got, want, rtol: float = 1e-12) -> None:
    assert relative(got.A, want.A) <= rtol
    assert relative(got.g, want.g) <= rtol
    assert got.cost == pytest.approx(want.cost, rel=rtol)


# --- selection ----------------------------------------------------------------------


def test_auto_uses_the_complex_step_for_small_problems():
    problem = peak_problem(200)
    assert problem.jacobian.engine_name == "complex-step"
    assert problem.jacobian.reason.startswith("auto (n·p = ")


def test_auto_falls_back_to_eager_for_non_holomorphic_small_problems():
    x = torch.linspace(-1.0, 1.0, 50, dtype=torch.float64)
    problem = ik.LeastSquares(
        lambda p, x: p["a"] * torch.abs(x - p["b"]),
        ik.Params(a=1.0, b=0.1),
        inputs=(x,),
        y=torch.abs(x),
    )
    assert problem.jacobian.engine_name == "eager"
    assert "not complex-step safe" in problem.jacobian.reason


def test_unknown_engine_is_an_input_error():
    with pytest.raises(ik.InputError, match="jacobian must be one of"):
        peak_problem(200, jacobian="magic")


# --- chunking -----------------------------------------------------------------------


def test_eager_chunked_equals_unchunked():
    whole = peak_problem(3000, rowwise=False)
    chunked = peak_problem(3000, chunk_rows=700)
    assert len(chunked.chunks) == 5
    u = whole.u0 + 0.01
    assert_same_normal_equations(chunked.normal_equations(u), whole.normal_equations(u))
    v = 0.1 * torch.ones_like(u)
    assert relative(chunked.jacobian.geodesic_rhs(u, v), whole.jacobian.geodesic_rhs(u, v)) < 1e-12


# --- complex step -------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_complex_step_equals_forward_mode_on_nist(path):
    problem = nist.problem(nist.read_strd(path), 0)
    engine = ComplexStepJacobian(problem)
    assert engine.engine_name == "complex-step", engine.reason
    u = problem.u0
    J_ref, r_ref = jacobian(problem.residual_function(), u)
    J, r = engine.full(u)
    assert relative(J, J_ref) <= 1e-12
    assert relative(r, r_ref) <= 1e-14
    assert_same_normal_equations(engine.normal_equations(u), problem.normal_equations(u))
    # The geodesic term is the second difference along the step itself,
    # Jᵀ 2 (r(u + v) - r - J v), here rebuilt from the forward-mode Jacobian.
    v = 1e-2 * (u.abs() + 1e-3) * torch.linspace(-1, 1, u.numel(), dtype=u.dtype)
    second = 2 * (problem.residuals(u + v) - r_ref - J_ref @ v)
    assert relative(engine.geodesic_rhs(u, v), J_ref.mT @ second) <= 1e-8


def test_geodesic_difference_converges_to_the_second_derivative():
    """First order in the step against forward-over-forward mode, until rounding."""
    problem = nist.problem(nist.read_strd(data_dir() / "nist_strd/Misra1a.dat"), 0)
    engine, exact = ComplexStepJacobian(problem), ChunkedJacobian(problem)
    u = problem.u0
    errors = []
    for size in (1e-1, 1e-2, 1e-3):
        v = size * u.abs() * torch.tensor([1.0, -0.5], dtype=u.dtype)
        errors.append(relative(engine.geodesic_rhs(u, v), exact.geodesic_rhs(u, v)))
    assert errors[0] < 0.5
    assert errors[1] <= 0.2 * errors[0] and errors[2] <= 0.2 * errors[1], errors
    tiny = 1e-9 * u.abs() * torch.tensor([1.0, -0.5], dtype=u.dtype)
    assert not engine.geodesic_rhs(u, tiny).any()  # unresolved curvature: no acceleration


def test_complex_step_handles_weights_bounds_and_vmap_batching():
    problem = peak_problem(300, jacobian="complex-step")
    assert problem.jacobian.engine_name == "complex-step"
    reference = peak_problem(300, jacobian="eager")
    u = reference.u0 + 0.05
    assert_same_normal_equations(problem.normal_equations(u), reference.normal_equations(u))

    def vector_model(p, x):  # a vector parameter: the broadcast batch cannot serve it
        b = p["b"]
        return b[0] * torch.exp(-b[1] * x) + b[2]

    x = np.linspace(0, 5, 50)
    y = 2 * np.exp(-0.7 * x) + 0.3
    params = ik.Params(b=torch.tensor([1.5, 0.5, 0.1], dtype=torch.float64))
    vec = ik.LeastSquares(vector_model, params, inputs=(x,), y=y, jacobian="complex-step")
    assert vec.jacobian.engine_name == "complex-step"
    assert vec.jacobian.batching == "vmap"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "op", [torch.abs, lambda t: torch.clamp(t, min=-1e9), lambda t: torch.where(t > 0, t, -t)]
)
def test_non_holomorphic_model_falls_back_to_eager(op, dtype):
    def model(p, x):
        return p["a"] * op(x - p["b"])

    x = np.linspace(-3, 3, 40)
    problem = ik.LeastSquares(
        model,
        ik.Params(a=1.0, b=0.2),
        inputs=(x,),
        y=np.abs(x),
        jacobian="complex-step",
        dtype=dtype,
    )
    assert problem.jacobian.engine_name == "eager"
    assert "not complex-step safe" in problem.jacobian.reason
    reference = ik.LeastSquares(
        model, ik.Params(a=1.0, b=0.2), inputs=(x,), y=np.abs(x), dtype=dtype
    )
    u = problem.u0
    assert_same_normal_equations(problem.normal_equations(u), reference.normal_equations(u))


def test_complex_step_serves_float32_problems():
    # float32 rounding alone puts the validation mismatch at 1e-8 to 1e-7: the check's
    # tolerance follows the dtype, so float32 problems keep the fast engine
    problem = peak_problem(300, dtype=torch.float32)
    assert problem.jacobian.engine_name == "complex-step", problem.jacobian.reason
    reference = peak_problem(300, dtype=torch.float32, jacobian="eager")
    u = reference.u0 + 0.05
    assert_same_normal_equations(problem.normal_equations(u), reference.normal_equations(u), 1e-5)
    fitted = ik.fit(problem, progress=False)
    exact = ik.fit(peak_problem(300), progress=False)
    assert fitted.success
    for name in ("a", "mu", "s"):
        assert float(fitted.params[name]) == pytest.approx(float(exact.params[name]), rel=1e-4)


@pytest.mark.parametrize("n", [40, 50, 200])
@pytest.mark.parametrize("scale", [1.0, 1e-10])
def test_abs_of_a_parameter_is_never_taken_for_holomorphic(n, scale):
    """abs(x - b) zeroes the complex step's column for b: the check must see it for every
    size of data and of residuals (a ±1 projection can cancel; tiny residuals must not
    pass an absolute tolerance)."""

    def model(p, x):
        return p["a"] * torch.abs(x - p["b"])

    x = np.linspace(-3, 3, n)
    y = scale * np.abs(x - 0.3)
    problem = ik.LeastSquares(
        model, ik.Params(a=scale, b=0.2), inputs=(x,), y=y, jacobian="complex-step"
    )
    assert problem.jacobian.engine_name == "eager", problem.jacobian.reason


def test_complex_step_check_is_made_once_per_model_and_layout():
    def model(p, x):  # a model object no other test has used
        return peak(p, x)

    def build(params=None, n=200):
        base = peak_problem(n)
        return ik.LeastSquares(
            model, params or base.params, inputs=base.inputs, y=base.y, sigma=base.noise.sigma
        )

    first, second = build(), build()
    assert first.jacobian.reason.endswith("validated against reverse mode (broadcast-complex)")
    assert second.jacobian.reason.endswith("for this model (broadcast-complex)")
    u = first.u0 + 0.01
    a, b = first.normal_equations(u), second.normal_equations(u)
    assert torch.equal(a.A, b.A) and torch.equal(a.g, b.g)
    # another layout (here: a bound moved) is checked again
    other = ik.Params(a=2.5, mu=4.3, s=ik.Param(1.3, bounds=(0.1, None)), c0=0.4, c1=0.05)
    assert build(other).jacobian.reason.endswith("reverse mode (broadcast-complex)")


@pytest.mark.parametrize("name", ["Misra1a", "MGH17", "ENSO"])
def test_fit_with_complex_step_reaches_the_certified_minimum(name):
    data = nist.read_strd(data_dir() / "nist_strd" / f"{name}.dat")
    values = {f"b{i + 1}": float(v) for i, v in enumerate(data.starts[0])}

    def digits(jacobian: str) -> np.ndarray:
        problem = ik.LeastSquares(
            nist.CURVES[name],
            ik.Params(values),
            inputs=(torch.as_tensor(data.x),),
            y=data.y,
            jacobian=jacobian,
        )
        result = ik.fit(problem, progress=False)
        assert problem.jacobian.engine_name == jacobian
        assert result.success, result.message
        assert result.chi2 == pytest.approx(data.rss, rel=1e-9)
        estimate = np.array([float(result.params[f"b{i + 1}"]) for i in range(data.n_params)])
        return -np.log10(np.abs(estimate - data.certified) / np.abs(data.certified))

    complex_step, eager = digits("complex-step").min(), digits("eager").min()
    # Where the minimum is well determined in float64 both reach 10-11 digits; MGH17's
    # long flat valley leaves its last digits to rounding (about 7.5 to 10, by engine and
    # start). The complex step must do as well as forward mode, to within that noise.
    assert complex_step >= 7.0
    assert complex_step >= eager - 1.0


# --- compiled -----------------------------------------------------------------------

needs_compile = pytest.mark.skipif(
    compile_unavailable() is not None, reason=f"torch.compile unavailable: {compile_unavailable()}"
)


@pytest.fixture(scope="module")
def compiled_problem():
    """3000 rows in 1024-row chunks: two full chunks and one padded with zero weights."""
    problem = peak_problem(3000)
    problem.jacobian = CompiledJacobian(problem, chunk_rows=1024)
    return problem


@needs_compile
@pytest.mark.slow
def test_compiled_equals_eager(compiled_problem):
    eager = peak_problem(3000, rowwise=False, jacobian="eager")
    engine = compiled_problem.jacobian
    for shift in (0.0, 0.03):  # the first call is checked against eager inside; so is this
        u = eager.u0 + shift
        assert_same_normal_equations(engine.normal_equations(u), eager.normal_equations(u))
        assert engine.engine_name == "compiled", engine.reason
    assert engine.n_chunks == 3  # 3000 rows in chunks of 1024
    v = 0.05 * torch.ones_like(u)
    assert relative(engine.geodesic_rhs(u, v), eager.jacobian.geodesic_rhs(u, v)) <= 1e-8
    assert engine.engine_name == "compiled", engine.reason
    assert engine.compile_seconds is not None


@needs_compile
@pytest.mark.slow
def test_compiled_engine_masks_zero_weights(compiled_problem):
    """Rows of weight zero (sigma = inf inside) drop out of the compiled kernel's sums
    exactly as in eager, even where y is absurd."""
    x, y = compiled_problem.inputs[0], compiled_problem.y.clone()
    w = 1.0 / (0.05 + 0.01 * x) ** 2
    w[::7] = 0.0
    y[::7] = 1e6
    params = compiled_problem.params

    def make(**kw):
        return ik.LeastSquares(peak, params, inputs=(x,), y=y, weights=w, **kw)

    masked = make(jacobian="eager")
    masked.jacobian = CompiledJacobian(masked, chunk_rows=1024)
    eager = make(rowwise=False, jacobian="eager")
    u = eager.u0 + 0.02
    assert_same_normal_equations(masked.jacobian.normal_equations(u), eager.normal_equations(u))
    assert masked.jacobian.engine_name == "compiled", masked.jacobian.reason


@needs_compile
@pytest.mark.slow
def test_fits_with_every_engine_reach_the_same_minimum(compiled_problem):
    results = {}
    for name in ("eager", "complex-step"):
        results[name] = ik.fit(peak_problem(3000, jacobian=name), progress=False)
    results["compiled"] = ik.fit(compiled_problem, progress=False)
    assert compiled_problem.jacobian.engine_name == "compiled", compiled_problem.jacobian.reason
    reference = results["eager"]
    for name, result in results.items():
        assert result.success, (name, result.message)
        assert result.chi2 == pytest.approx(reference.chi2, rel=1e-12), name
        for k in reference.params:
            assert float(result.params[k]) == pytest.approx(float(reference.params[k]), rel=1e-8), (
                name,
                k,
            )


@needs_compile
def test_model_dynamo_cannot_compile_falls_back_with_reason():
    def model(p, x):
        # a data-dependent Python branch on a tensor value: a graph break, so fullgraph fails
        if float(p["a"]) > 0:
            return p["a"] * x + p["b"]
        return -p["a"] * x + p["b"]

    x = np.linspace(0, 1, 64)
    problem = ik.LeastSquares(model, ik.Params(a=1.0, b=0.0), inputs=(x,), y=2 * x + 1)
    problem.jacobian = CompiledJacobian(problem)
    reference = ik.LeastSquares(
        model, ik.Params(a=1.0, b=0.0), inputs=(x,), y=2 * x + 1, jacobian="eager"
    )
    u = problem.u0
    assert_same_normal_equations(problem.normal_equations(u), reference.normal_equations(u))
    assert problem.jacobian.engine_name == "eager"
    assert problem.jacobian.reason.startswith("compilation failed")


def test_vector_parameters_use_vmap_not_broadcasting():
    """A tensor parameter's own axis must not be mistaken for the batch axis (p == len(c))."""
    x = torch.linspace(-1.0, 1.0, 40, dtype=torch.float64)
    y = 1.0 - 2.0 * x + 0.5 * x**2

    def quadratic(p, x):
        return p["c"][0] + p["c"][1] * x + p["c"][2] * x**2

    problem = ik.LeastSquares(
        quadratic, ik.Params(c=ik.Param(torch.zeros(3))), inputs=(x,), y=y, jacobian="complex-step"
    )
    assert problem.jacobian.engine_name == "complex-step"
    assert problem.jacobian.batching == "vmap"
    result = ik.fit(problem)
    torch.testing.assert_close(
        result.params["c"], torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), rtol=0, atol=1e-12
    )
    assert result.jacobian.startswith("complex-step")
