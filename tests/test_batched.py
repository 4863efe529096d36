"""Batched least squares: one vectorised LM over many independent problems."""

from __future__ import annotations

import math

import pytest
import torch

import inversekit as ik
from inversekit.derivatives.compiled import compile_unavailable
from inversekit.linalg.damped import batched_damped_solve
from inversekit.optimize.levenberg_marquardt.batched import BatchedLM
from inversekit.problem.batched import BatchedLeastSquares
from inversekit.results.batched import BatchedFitResult

N = 60
X = torch.linspace(-4.0, 4.0, N, dtype=torch.float64)
NAMES = ("a", "c", "w", "b0", "b1")


def peak(p, x):
    """Gaussian peak on a linear background, for one problem."""
    z = (x - p["c"]) / p["w"]
    return p["a"] * torch.exp(-0.5 * z * z) + p["b0"] + p["b1"] * x


def make(B: int, seed: int = 0, sigma: float = 0.05):
    g = torch.Generator().manual_seed(seed)

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(B, generator=g, dtype=torch.float64)

    truth = {"a": u(1, 4), "c": u(-1, 1), "w": u(0.6, 1.4), "b0": u(0, 1), "b1": u(-0.1, 0.1)}
    clean = peak({k: v[:, None] for k, v in truth.items()}, X)
    y = clean + sigma * torch.randn(B, N, generator=g, dtype=torch.float64)
    start = {
        "a": truth["a"] * u(0.8, 1.2),
        "c": truth["c"] + u(-0.2, 0.2),
        "w": truth["w"] * u(0.8, 1.2),
        "b0": torch.full((B,), 0.5, dtype=torch.float64),
        "b1": torch.zeros(B, dtype=torch.float64),
    }
    return y, start


def template():
    return ik.Params(a=1.0, c=0.0, w=ik.Param(1.0, bounds=(0.0, None)), b0=0.0, b1=0.0)


def single_fit(y, start, b, sigma):
    params = ik.Params(
        {k: ik.Param(float(start[k][b]), bounds=template()[k].bounds) for k in NAMES}
    )
    return ik.fit(ik.LeastSquares(peak, params, inputs=(X,), y=y[b], sigma=sigma))


def assert_matches_single(result: BatchedFitResult, y, start, b, sigma):
    ref = single_fit(y, start, b, sigma)
    assert ref.success and result.status[b].success
    for k in NAMES:
        got, want = float(result.params[k][b]), float(ref.params[k])
        assert got == pytest.approx(want, rel=1e-8, abs=1e-12), k
        assert float(result.stderr[k][b]) == pytest.approx(float(ref.stderr[k]), rel=1e-6), k
    assert float(result.chi2[b]) == pytest.approx(ref.chi2, rel=1e-10)


@pytest.mark.parametrize("sigma", [0.05, None])
def test_batched_equals_one_by_one(sigma):
    torch.set_num_threads(1)
    y, start = make(5, seed=1)
    problem = BatchedLeastSquares(peak, template(), inputs=(X,), y=y, sigma=sigma, start=start)
    result = ik.fit(problem)
    assert isinstance(result, BatchedFitResult)
    assert result.covariance_scaled == (sigma is None)
    assert bool(result.success.all())
    for b in range(5):
        assert_matches_single(result, y, start, b, sigma)


def test_failing_problems_reported_rest_solved():
    y, start = make(6, seed=2)
    y[1, 10:20] = math.nan  # a NaN region in the data
    start["c"][3] = math.nan  # a non-finite start
    start["w"][4] = -1.0  # a start outside the bounds (w > 0)
    problem = BatchedLeastSquares(peak, template(), inputs=(X,), y=y, sigma=0.05, start=start)
    assert problem.valid.tolist() == [True, False, True, False, False, True]
    assert "y has 10 non-finite" in problem.notes[1]
    result = ik.fit(problem)
    assert result.success.tolist() == [True, False, True, False, False, True]
    assert result.failed == [1, 3, 4]
    for b in (1, 3, 4):
        assert result.status[b] is ik.Status.NONFINITE
        assert math.isnan(float(result.chi2[b]))
        assert math.isnan(float(result.stderr["a"][b]))
    assert float(result.params["w"][4]) == -1.0  # the bad start is reported as given
    for b in (0, 2, 5):
        assert_matches_single(result, y, start, b, 0.05)
    text = result.report()
    assert "problem 3: NONFINITE" in text and "start is non-finite" in text


def test_model_nan_at_start_and_at_trials():
    """A model NaN where ``w > 1.3``: a start there fails; a trial there is rejected."""

    def guarded(p, x):
        f = peak(p, x)
        return torch.where(p["w"] > 1.3, torch.full_like(f, math.nan), f)

    y, start = make(4, seed=3)
    start["w"][2] = 1.35
    problem = BatchedLeastSquares(guarded, template(), inputs=(X,), y=y, sigma=0.05, start=start)
    assert problem.notes[2] == "the model output at the start is non-finite"
    result = ik.fit(problem)
    assert result.success.tolist() == [True, True, False, True]
    assert bool((result.params["w"][[0, 1, 3]] < 1.3).all())


def test_statuses_and_budgets():
    y, start = make(4, seed=4)
    problem = BatchedLeastSquares(peak, template(), inputs=(X,), y=y, sigma=0.05, start=start)
    result = ik.fit(problem, BatchedLM(max_iter=2))
    assert all(s is ik.Status.MAX_ITER for s in result.status)
    assert result.n_iter.tolist() == [2, 2, 2, 2]
    full = ik.fit(problem, BatchedLM.from_lm(ik.LM(xtol=1e-10, geodesic=False)))
    assert all(isinstance(s, ik.Status) and s.success for s in full.status)
    assert full.solver == "BatchedLM"


def test_result_indexing():
    y, start = make(3, seed=5)
    problem = BatchedLeastSquares(peak, template(), inputs=(X,), y=y, start=start)
    result = ik.fit(problem)
    one = result[1]
    assert isinstance(one, ik.FitResult)
    assert one.status is result.status[1]
    assert float(one.params["c"]) == float(result.params["c"][1])
    assert one.covariance.shape == (5, 5)
    assert one.history[-1] == pytest.approx(one.cost)
    assert len(one.history) == one.n_iter + 1
    assert "[[Parameters]]" in one.report()
    assert result[-1].chi2 == float(result.chi2[2])
    assert len(list(result)) == len(result) == 3
    with pytest.raises(IndexError):
        result[3]


def test_per_problem_inputs_and_fixed_parameters():
    """Different x per problem (``batched_inputs``) and a per-problem fixed slope."""
    B = 3
    y, start = make(B, seed=6)
    xs = X + 0.1 * torch.arange(B, dtype=torch.float64)[:, None]
    slope = torch.tensor([0.05, -0.02, 0.0], dtype=torch.float64)
    truth = {"a": 2.0, "c": 0.3, "w": 0.9, "b0": 0.4}
    y = peak({**truth, "b1": slope[:, None]}, xs)
    params = ik.Params(
        a=1.5, c=0.0, w=ik.Param(1.0, bounds=(0.0, None)), b0=0.0, b1=ik.Param(slope, fixed=True)
    )
    problem = BatchedLeastSquares(peak, params, inputs=(xs,), y=y, batched_inputs=(0,))
    result = ik.fit(problem)
    assert bool(result.success.all())
    for k, v in truth.items():
        assert torch.allclose(result.params[k], torch.full((B,), v, dtype=torch.float64))
    assert torch.equal(result.params["b1"], slope)
    assert result.labels == ["a", "c", "w", "b0"]


def test_bad_shapes_name_the_array():
    y, start = make(4)
    params = template()
    with pytest.raises(ik.InputError, match="sigma"):
        BatchedLeastSquares(peak, params, inputs=(X,), y=y, sigma=torch.ones(3, N))
    with pytest.raises(ik.InputError, match=r"start\['a'\]"):
        BatchedLeastSquares(peak, params, inputs=(X,), y=y, start={"a": torch.ones(3)})
    with pytest.raises(ik.InputError, match=r"start\['zz'\]"):
        BatchedLeastSquares(peak, params, inputs=(X,), y=y, start={"zz": torch.ones(4)})
    bad = ik.Params(a=ik.Param(torch.ones(3)), c=0.0, w=1.0, b0=0.0, b1=0.0)
    with pytest.raises(ik.InputError, match=r"params\['a'\]"):
        BatchedLeastSquares(peak, bad, inputs=(X,), y=y)
    with pytest.raises(ik.InputError, match=r"inputs\[0\]"):
        BatchedLeastSquares(peak, params, inputs=(X,), y=y, batched_inputs=(0,))
    with pytest.raises(ik.ModelError, match="shape"):
        BatchedLeastSquares(peak, params, inputs=(X[:-1],), y=y)
    with pytest.raises(ik.InputError, match="y must have shape"):
        BatchedLeastSquares(peak, params, inputs=(X,), y=torch.tensor(1.0))


def test_model_not_vmappable_is_explained():
    def branchy(p, x):
        if float(p["a"]) > 0:  # Python branching on a tensor value: not vmappable
            return peak(p, x)
        return -peak(p, x)

    y, _ = make(2)
    with pytest.raises(ik.ModelError, match="vmap"):
        BatchedLeastSquares(branchy, template(), inputs=(X,), y=y)


def test_batched_damped_solve_flags_indefinite_rows():
    A = torch.stack([torch.eye(2), -torch.eye(2)]).to(torch.float64)
    rhs = torch.ones(2, 2, dtype=torch.float64)
    D = torch.ones(2, 2, dtype=torch.float64)
    delta, ok = batched_damped_solve(A, rhs, D, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert ok.tolist() == [True, False]
    assert torch.allclose(delta[0], torch.full((2,), 0.5, dtype=torch.float64))
    assert torch.equal(delta[1], torch.zeros(2, dtype=torch.float64))


def test_callback_stops_running_problems():
    y, start = make(3, seed=7)
    problem = BatchedLeastSquares(peak, template(), inputs=(X,), y=y, sigma=0.05, start=start)
    seen = []

    def stop_after_one(state):
        seen.append(state.params["a"].shape)
        return True

    result = ik.fit(problem, callback=stop_after_one)
    assert seen == [(3,)]
    assert all(s is ik.Status.CALLBACK for s in result.status)
    assert result.n_iter.tolist() == [1, 1, 1]


def test_lm_options_are_validated():
    with pytest.raises(ik.InputError, match="max_iter"):
        BatchedLM(max_iter=0)
    with pytest.raises(ik.InputError, match="BatchedLeastSquares"):
        ik.fit(ik.LeastSquares(peak, template(), inputs=(X,), y=make(1)[0][0]), BatchedLM())


def test_nonfinite_jacobian_at_start_fails_that_problem_only():
    """Finite model, NaN derivative at the start (sqrt at 0): status NONFINITE, no crash."""

    def kinked(p, x):
        return peak(p, x) + torch.sqrt(p["b1"] * p["b1"])  # d/db1 is NaN at b1 = 0

    y, start = make(3, seed=8)
    start["b1"] = torch.tensor([0.01, 0.0, -0.01], dtype=torch.float64)
    problem = BatchedLeastSquares(kinked, template(), inputs=(X,), y=y, sigma=0.05, start=start)
    result = ik.fit(problem, BatchedLM(max_iter=50))
    assert result.status[1] is ik.Status.NONFINITE
    assert math.isnan(float(result.stderr["a"][1]))
    assert result.n_iter[1] == 0


def test_single_problem_lm_options_carry_over_to_a_batch():
    x = torch.linspace(0.0, 1.0, 30, dtype=torch.float64)
    Y = torch.stack([(i + 1) * x + 0.5 for i in range(4)])
    problem = ik.BatchedLeastSquares(
        lambda p, x: p["a"] * x + p["b"], ik.Params(a=1.0, b=0.0), inputs=(x,), y=Y
    )
    for solver in ("lm", ik.LM(geodesic=False, max_iter=50)):
        result = ik.fit(problem, solver)
        assert isinstance(result, ik.BatchedFitResult)
        torch.testing.assert_close(result.params["a"], torch.arange(1.0, 5.0, dtype=torch.float64))


# --- evaluation engines -----------------------------------------------------------------


def test_broadcast_form_equals_vmap_form():
    y, start = make(7, seed=4)
    idx = torch.arange(7)
    fast = BatchedLeastSquares(peak, template(), inputs=(X,), y=y, sigma=0.05, start=start)
    slow = BatchedLeastSquares(
        peak, template(), inputs=(X,), y=y, sigma=0.05, start=start, batching="vmap"
    )
    assert fast.engine_name == "broadcast" and slow.engine_name == "vmap"
    u = fast.u0 + 0.01
    for a, b in zip(
        fast.batched_normal_equations(u, idx), slow.batched_normal_equations(u, idx), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=0.0)
    for a, b in zip(fast.jacobians(u, idx), slow.jacobians(u, idx), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(fast.costs(u, idx), slow.costs(u, idx), rtol=1e-14, atol=0.0)


def test_models_that_do_not_broadcast_use_vmap_with_a_reason():
    def mixes_problems(p, x):  # a reduction over what, broadcast, is the batch axis
        return p["a"] * torch.exp(-x * x) + p["c"].sum()

    def vector(p, x):
        return p["v"][0] * torch.exp(-((x - p["v"][1]) ** 2))

    y, start = make(4, seed=5)
    params = ik.Params(a=1.0, c=0.0)
    p1 = BatchedLeastSquares(mixes_problems, params, inputs=(X,), y=y, start={"c": start["c"]})
    assert p1.engine_name == "vmap" and "differ" in p1.engine_reason
    v0 = torch.tensor([[2.0, 0.1]], dtype=torch.float64).expand(4, 2)
    p2 = BatchedLeastSquares(vector, ik.Params(v=v0), inputs=(X,), y=y)
    assert p2.engine_name == "vmap" and "vector parameters" in p2.engine_reason
    assert bool(ik.fit(p2).success.all())


def test_unknown_batched_engine_is_an_input_error():
    y, _ = make(2)
    with pytest.raises(ik.InputError, match="jacobian must be one of"):
        BatchedLeastSquares(peak, template(), inputs=(X,), y=y, jacobian="fast")


def test_engine_options_share_the_single_problem_vocabulary():
    from inversekit.derivatives.choice import JACOBIAN_ENGINES

    y, _ = make(2)
    with pytest.raises(ik.InputError, match="complex-step.*not available for batched"):
        BatchedLeastSquares(peak, template(), inputs=(X,), y=y, jacobian="complex-step")
    with pytest.raises(ik.InputError, match="batching must be one of"):
        BatchedLeastSquares(peak, template(), inputs=(X,), y=y, batching="loop")
    with pytest.raises(ik.InputError, match="cannot be compiled"):
        BatchedLeastSquares(
            peak, template(), inputs=(X,), y=y, jacobian="compiled", batching="vmap"
        )
    with pytest.raises(ik.InputError, match="chunk_problems must be a positive integer"):
        BatchedLeastSquares(peak, template(), inputs=(X,), y=y, chunk_problems=0)
    assert JACOBIAN_ENGINES == ("auto", "eager", "compiled", "complex-step")


def test_broadcast_asked_for_a_model_that_does_not_broadcast_is_a_model_error():
    y, start = make(3)

    def summing(p, x):  # reduces over what the broadcast form makes the batch axis
        return peak(p, x) * (1.0 + (p["a"] - p["a"].mean()))

    with pytest.raises(ik.ModelError, match='batching="broadcast" was asked for'):
        BatchedLeastSquares(
            summing, template(), inputs=(X,), y=y, start=start, batching="broadcast"
        )


@pytest.mark.skipif(compile_unavailable() is not None, reason="torch.compile unavailable")
def test_compiled_batched_engine_agrees_with_eager_and_fits_the_same():
    y, start = make(40, seed=6)
    idx = torch.arange(40)
    kwargs = dict(inputs=(X,), y=y, sigma=0.05, start=start, chunk_problems=16)
    compiled = BatchedLeastSquares(peak, template(), jacobian="compiled", **kwargs)
    eager = BatchedLeastSquares(peak, template(), jacobian="eager", **kwargs)
    assert compiled.engine_name == "broadcast-compiled", compiled.engine_reason
    u = compiled.u0 - 0.02
    for a, b in zip(
        compiled.batched_normal_equations(u, idx),
        eager.batched_normal_equations(u, idx),
        strict=True,
    ):
        # relative to each problem's largest entry (off-diagonal entries can cancel to ~0)
        scale = b.reshape(len(b), -1).abs().amax(1)
        assert float(((a - b).reshape(len(b), -1).abs().amax(1) / scale).max()) <= 1e-12
    # 40 problems in chunks of 16: the last chunk is padded; a subset too
    sub = torch.tensor([3, 17, 39])
    torch.testing.assert_close(
        compiled.costs(u[sub], sub), eager.costs(u[sub], sub), rtol=1e-13, atol=0.0
    )
    fit_c, fit_e = ik.fit(compiled), ik.fit(eager)
    assert bool(fit_c.success.all())
    torch.testing.assert_close(fit_c.x, fit_e.x, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("batching", ["vmap", "broadcast"])
def test_reverse_mode_product_equals_jacobian_transpose(batching):
    y, start = make(6, seed=7)
    problem = BatchedLeastSquares(
        peak, template(), inputs=(X,), y=y, sigma=0.05, start=start, batching=batching
    )
    idx = torch.tensor([0, 2, 5])
    u = problem.u0[idx] + 0.03
    w = torch.randn(3, N, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    J, _ = problem.jacobians(u, idx)
    want = (J.mT @ w[..., None])[..., 0]
    torch.testing.assert_close(problem.vjp(u, idx, w), want, rtol=1e-12, atol=1e-12)


def test_float32_batch_matches_float64_to_float32_accuracy():
    y, start = make(4, seed=8)
    kwargs = dict(inputs=(X,), sigma=0.05)
    r64 = ik.fit(BatchedLeastSquares(peak, template(), y=y, start=start, **kwargs))
    r32 = ik.fit(
        BatchedLeastSquares(
            peak, template(), y=y.float(), start=start, dtype=torch.float32, **kwargs
        )
    )
    assert bool(r32.success.all()) and r32.stderr["a"].dtype == torch.float32
    for k in NAMES:
        torch.testing.assert_close(r32.stderr[k].double(), r64.stderr[k], rtol=1e-3, atol=0.0)
        torch.testing.assert_close(r32.params[k].double(), r64.params[k], rtol=1e-4, atol=1e-5)


def test_finite_rows_flags_nan_inf_and_not_overflow():
    from inversekit.linalg.rows import finite_rows

    A = torch.ones(4, 2, 2, dtype=torch.float64)
    g = torch.ones(4, 2, dtype=torch.float64)
    A[1, 0, 1] = math.nan
    g[2, 1] = -math.inf
    A[3] = 1e308  # finite terms whose sum overflows
    assert finite_rows(A, g).tolist() == [True, False, False, True]


@pytest.mark.parametrize("p", [1, 3, 6])
def test_unrolled_cholesky_solve_matches_lapack_and_flags_indefinite(p):
    from inversekit.linalg.damped import _unrolled_cholesky_solve

    g = torch.Generator().manual_seed(p)
    J = torch.randn(50, 3 * p, p, generator=g, dtype=torch.float64)
    M = J.mT @ J + 1e-3 * torch.eye(p, dtype=torch.float64)
    M[7] = -torch.eye(p, dtype=torch.float64)  # negative definite
    b = torch.randn(50, p, generator=g, dtype=torch.float64)
    x, ok = _unrolled_cholesky_solve(M, b)
    assert ok.tolist() == [i != 7 for i in range(50)]
    want = torch.linalg.solve(M[ok], b[ok])
    torch.testing.assert_close(x[ok], want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("jacobian", ["eager", "compiled"])
def test_stopping_tests_and_statuses_match_single_fits(jacobian):
    """With a loose ftol the batch stops each problem by the same test as a single fit."""
    y, start = make(6, seed=3)
    lm = ik.LM(ftol=1e-6)
    problem = BatchedLeastSquares(
        peak, template(), inputs=(X,), y=y, sigma=0.05, start=start, jacobian=jacobian
    )
    result = ik.fit(problem, lm)
    for b in range(6):
        params = ik.Params(
            {k: ik.Param(float(start[k][b]), bounds=template()[k].bounds) for k in NAMES}
        )
        ref = ik.fit(ik.LeastSquares(peak, params, inputs=(X,), y=y[b], sigma=0.05), lm)
        assert result.status[b] is ref.status
        assert float(result.chi2[b]) == pytest.approx(ref.chi2, rel=1e-6)
    assert ik.Status.FTOL in result.status


@pytest.mark.parametrize("batching", ["auto", "vmap"])
def test_problems_whose_model_output_is_not_finite_at_the_start_are_reported(batching):
    """Found among the first problems (checked vmapped) and among the rest (checked by the
    chosen engine): both are reported, the others solved."""
    y, start = make(20, seed=4)
    scale = torch.ones(20, dtype=torch.float64)
    scale[[2, 13]] = -1.0  # sqrt(-1): NaN output for these two problems

    def scaled(p, x, s):
        return peak(p, x) * torch.sqrt(s)

    problem = BatchedLeastSquares(
        scaled, template(), inputs=(X, scale), batched_inputs=(1,), y=y, sigma=0.05,
        start=start, batching=batching,
    )  # fmt: skip
    bad = [2, 13]
    assert [b for b in range(20) if not problem.valid[b]] == bad
    assert all("model output at the start is non-finite" in problem.notes[b] for b in bad)
    result = ik.fit(problem)
    assert result.failed == bad
    assert all(result.status[b].success for b in range(20) if b not in bad)


def test_batched_fit_damps_long_steps_of_bounded_parameters():
    # two demo spectra (vector parameters with a batch dimension): without the limit both
    # problems' eta is driven into its bound's saturation, as in the single fit
    from inversekit.front.demo import demo_problem, make_data, spectrum

    x, y0, s0 = make_data(7)
    _, y1, s1 = make_data(8)

    def problem():
        def both(v):
            return torch.stack([torch.as_tensor(v)] * 2)

        params = ik.Params(
            c0=100.0,
            c1=0.0,
            eta=ik.Param(0.5, bounds=(0.0, 1.0)),
            A=ik.Param(both([700.0, 400.0, 500.0]), bounds=(0.0, None)),
            mu=ik.Param(both([31.5, 36.5, 45.0])),
            w=ik.Param(both([0.8, 0.8, 0.8]), bounds=(0.0, None)),
        )
        y, sigma = torch.stack([y0, y1]), torch.stack([s0, s1])
        return BatchedLeastSquares(spectrum, params, inputs=(x,), y=y, sigma=sigma)

    trapped = ik.fit(problem(), BatchedLM(max_bounded_step=math.inf), progress=False)
    assert bool((trapped.params["eta"] < 1e-10).all())
    result = ik.fit(problem(), progress=False)
    assert bool((result.reduced_chi2 < 1.1).all())
    single = ik.fit(demo_problem(), progress=False)
    assert float(result.params["eta"][0]) == pytest.approx(float(single.params["eta"]), rel=1e-8)
