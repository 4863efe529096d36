"""L-BFGS-B (SciPy's ``setulb`` driven step by step on torch gradients): real SciPy, no
mocks.

Tolerances: SciPy's defaults (``ftol=2.2e-9``, ``gtol=1e-5``) stop Rosenbrock about 2e-6
from its minimum (the relative-reduction test fires once ``f`` is ~1e-12, i.e. ~1e-6 away
in this flat valley), so the accuracy tests use ``ftol=0`` (stop only when an iteration
no longer changes ``f`` at all) with an absolute ``gtol`` sized to the objective.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import scipy.optimize
import torch
from conftest import data_dir

import inversekit as ik
from inversekit.errors import InputError
from inversekit.models import nist
from inversekit.optimize.lbfgsb import LBFGSB, LBFGSBState
from inversekit.problem.batched import BatchedLeastSquares


def rosenbrock(p):
    return (1 - p["x"]) ** 2 + 100 * (p["y"] - p["x"] ** 2) ** 2


def rosen(x=-1.2, y=1.0, x_bounds=None, y_bounds=None, dtype=torch.float64) -> ik.Objective:
    params = ik.Params(x=ik.Param(x, bounds=x_bounds), y=ik.Param(y, bounds=y_bounds))
    return ik.Objective(rosenbrock, params, dtype=dtype)


def physical_gradient(x: float, y: float) -> np.ndarray:
    """``∂f/∂(x, y)`` of Rosenbrock in physical coordinates, by autograd."""
    p = {"x": torch.tensor(x, dtype=torch.float64, requires_grad=True)}
    p["y"] = torch.tensor(y, dtype=torch.float64, requires_grad=True)
    return np.array([float(v) for v in torch.autograd.grad(rosenbrock(p), [p["x"], p["y"]])])


def nist_problem(name: str, start: int):
    data = nist.read_strd(data_dir() / "nist_strd" / f"{name}.dat")
    return data, nist.problem(data, start)


def lre(estimate, certified) -> np.ndarray:
    """Log relative error, as tests/test_nist.py computes it."""
    estimate, certified = np.asarray(estimate, float), np.asarray(certified, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = -np.log10(np.abs(estimate - certified) / np.abs(certified))
    return np.clip(np.nan_to_num(value, nan=0.0, posinf=11.0), 0.0, 11.0)


def drive(solver: LBFGSB, problem, state: LBFGSBState, steps: int) -> list[LBFGSBState]:
    """Up to ``steps`` solver steps from ``state`` (stopping when it terminates)."""
    out = []
    for _ in range(steps):
        if solver.terminate(problem, state) is not None:
            break
        state = solver.step(problem, state)
        out.append(state)
    return out


# --- unbounded -------------------------------------------------------------------------
def test_rosenbrock_reaches_the_minimum():
    result = ik.fit(rosen(), ik.LBFGSB(ftol=0.0, gtol=1e-10), progress=False)
    assert result.success, result.message
    assert result.status is ik.Status.GTOL
    assert result.solver == "L-BFGS-B"
    assert "PROJECTED GRADIENT" in result.message
    np.testing.assert_allclose(result.x.numpy(), [1.0, 1.0], rtol=0, atol=1e-6)
    assert result.cost < 1e-20
    assert result.n_fev == result.n_jev  # each evaluation is a value and a gradient
    assert result.n_iter < 60  # 40 seen (47 evaluations)


def test_names_and_default_give_the_default_solver():
    reference = ik.fit(rosen(), ik.LBFGSB(), progress=False)
    # the defaults reach the minimum (SciPy's stop ~2e-6 from it: see LBFGSB's ftol)
    assert reference.success
    assert reference.status is ik.Status.GTOL
    np.testing.assert_allclose(reference.x.numpy(), [1.0, 1.0], rtol=0, atol=1e-12)
    for solver in ("lbfgsb", "L-BFGS-B", None):  # None: a scalar objective's default
        result = ik.fit(rosen(), solver, progress=False)
        assert result.solver == "L-BFGS-B"
        assert torch.equal(result.x, reference.x)
        assert result.n_fev == reference.n_fev


@pytest.mark.parametrize("case", ["rosenbrock", "Chwirut2"])
def test_iterates_are_scipys(case):
    """The same f and g handed to scipy.optimize.minimize give the same answer bit for bit,
    with the same number of evaluations (one more iteration: see the module docstring)."""
    problem = rosen() if case == "rosenbrock" else nist_problem(case, 0)[1]

    def fg(x):
        f, g = problem.gradient(torch.as_tensor(x))
        return f, g.numpy().copy()

    options = {"ftol": 1e-12, "gtol": 1e-8}
    want = scipy.optimize.minimize(
        fg, problem.u0.numpy(), jac=True, method="L-BFGS-B", options=options
    )
    # SciPy's coordinates (no scaling) and line-search budget (maxls 20)
    solver = ik.LBFGSB(**options, scaling="none", max_line_search=20)
    got = ik.fit(problem, solver, progress=False)
    assert want.success and got.success
    assert np.array_equal(got.x.numpy(), want.x)
    assert got.n_fev == want.nfev
    assert got.n_iter == want.nit + 1
    assert got.message.endswith(f"({want.message})")


# --- bounds ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["native", "transform"])
@pytest.mark.parametrize(
    "case",
    [
        # x <= 0.5 (two-sided bounds): the minimum moves to (0.5, 0.25), x's bound active;
        # native mode's margin is 16 eps times the larger bound's magnitude, 2
        dict(
            x=-1.2,
            y=1.0,
            x_bounds=(-2.0, 0.5),
            active=0,
            bound=0.5,
            sign=-1.0,
            scale=2.0,
            gtol=1e-10,
        ),
        # y >= 1.5 (one-sided): the minimum moves onto y = 1.5 near x = 1.224, y's bound
        # active; the margin is 16 eps times the larger of |1.5| and the start's distance.
        # gtol 1e-7: there f = 0.05 and f'' in x is ~1200, so a gradient g promises a
        # decrease g²/2400, below f's resolution (1e-17) for g < 1.6e-7: a smaller gtol
        # ends in an abnormal line search at the rounding floor (seen from x = -1.2 at 1e-7)
        dict(
            x=1.2,
            y=2.0,
            y_bounds=(1.5, None),
            active=1,
            bound=1.5,
            sign=1.0,
            scale=1.5,
            gtol=1e-7,
        ),
    ],
    ids=["upper-two-sided", "lower-one-sided"],
)
def test_bounded_rosenbrock_ends_on_the_bound(mode, case):
    """The minimum lies on a bound that excludes (1, 1); the answer satisfies the KKT
    conditions: the active coordinate on its bound with the gradient pushing outwards
    (``sign``: -1 for an upper bound, +1 for a lower one), the other's gradient zero."""
    case = dict(case)
    active, bound, sign, scale, gtol = (
        case.pop(k) for k in ("active", "bound", "sign", "scale", "gtol")
    )
    result = ik.fit(rosen(**case), ik.LBFGSB(bounds=mode, ftol=0.0, gtol=gtol), progress=False)
    assert result.success, result.message
    x = result.x.numpy()
    g = physical_gradient(*x)
    free = 1 - active
    distance = abs(x[active] - bound)
    if mode == "native":  # on the bound pulled in by its margin, to rounding
        assert distance <= 16 * np.finfo(float).eps * scale * (1 + 1e-6)
    else:  # approached asymptotically, stopped by gtol in u
        assert distance <= 1e-10
    assert sign * g[active] > 0.1  # strictly active: multipliers 1.0 and 0.18
    assert abs(g[free]) < 1e-6
    if active == 0:
        np.testing.assert_allclose(x, [0.5, 0.25], rtol=0, atol=1e-9)


def test_native_bounds_stay_inside_and_see_the_physical_gradient():
    """Native mode works on physical values: the iterates never leave the open interval
    the model may be evaluated on, and the gradient L-BFGS-B sees at the start is the
    physical one (the chain rule through the bijection undone)."""
    problem = rosen(x_bounds=(-2.0, 0.5))
    solver = ik.LBFGSB()
    state = solver.init(problem)
    np.testing.assert_allclose(state.x, [-1.2, 1.0], rtol=1e-15)
    np.testing.assert_allclose(state.g, physical_gradient(-1.2, 1.0), rtol=1e-12)
    assert state.coords.nbd.tolist() == [2, 0]
    for later in drive(solver, problem, state, 100):
        assert -2.0 < later.x[0] < 0.5
        assert torch.isfinite(later.u).all()


def test_float32_problem():
    result = ik.fit(rosen(dtype=torch.float32), ik.LBFGSB(ftol=0.0, gtol=1e-4), progress=False)
    assert result.success, result.message
    assert result.x.dtype == torch.float32
    np.testing.assert_allclose(result.x.numpy(), [1.0, 1.0], rtol=0, atol=1e-3)


# --- NIST StRD -------------------------------------------------------------------------
# (file, start, gtol on ½ chi2, digits seen). ftol=0 throughout; gtol is absolute, sized
# (name, start index, digits measured at the defaults): the default scaling to unit
# Gauss–Newton curvature makes the badly scaled cases (Misra1a-d, Hahn1, Nelson, Roszman1:
# cond(JᵀJ) >= 1e13, parameters over 4-9 orders of magnitude) as easy as the others
NIST_CASES = [
    ("Misra1a", 0, 9.91),
    ("Misra1a", 1, 11.12),
    ("Chwirut2", 0, 8.39),
    ("DanWood", 0, 11.19),
    ("Lanczos3", 1, 6.29),
    ("MGH17", 1, 8.06),
    ("Gauss3", 0, 9.01),
    ("ENSO", 1, 8.11),
    ("Hahn1", 0, 7.81),
    ("Nelson", 0, 10.85),
    ("Roszman1", 1, 8.43),
    ("Misra1b", 0, 10.96),
    ("Misra1c", 1, 10.8),
    ("Misra1d", 1, 12.61),
    ("Kirby2", 0, 10.47),
]


@pytest.mark.parametrize(
    "name, start, seen", NIST_CASES, ids=[f"{c[0]}-{c[1] + 1}" for c in NIST_CASES]
)
def test_nist_certified_values_at_the_defaults(name, start, seen):
    data, problem = nist_problem(name, start)
    result = ik.fit(problem, "lbfgsb", progress=False)
    assert result.success, result.message
    estimate = [float(result.params[f"b{i + 1}"]) for i in range(data.n_params)]
    digits = lre(estimate, data.certified).min()
    assert digits >= 6.0, (estimate, data.certified)
    assert digits >= min(seen, 9.0) - 0.5  # no silent regression from what was measured


def test_fresh_starts_rescue_unscaled_coordinates_on_a_badly_scaled_problem():
    """Misra1a from its second start (b1 = 250, b2 = 5e-4; cond(JᵀJ) = 6e13) in the
    coordinates as they are: the line search stalls after 5 iterations 1.3 digits from the
    certified values (SciPy's own minimize stops there); fresh starts from the iterate
    (setulb's memory cleared) carry the run to the certified values. With ``gtol=0`` it
    can only end by a failed line search, which is reported as a failure, not success."""
    data, problem = nist_problem("Misra1a", 1)
    solver = ik.LBFGSB(ftol=0.0, gtol=0.0, scaling="none", max_line_search=20)
    result = ik.fit(problem, solver, progress=False)
    assert not result.success
    assert result.cost <= result.history[0]
    assert math.isfinite(result.cost)
    estimate = [float(result.params[f"b{i + 1}"]) for i in range(data.n_params)]
    assert lre(estimate, data.certified).min() >= 8.0


# --- non-finite values -----------------------------------------------------------------
def test_nonfinite_trial_points_are_rejected():
    """x - log x from x = 5: the second iteration's quasi-Newton step goes to x < 0,
    where the loss is NaN; the line search backtracks and the run reaches x = 1."""
    seen = []

    def loss(p):
        seen.append(float(p["x"].detach()))
        return p["x"] - torch.log(p["x"])

    result = ik.fit(
        ik.Objective(loss, ik.Params(x=5.0)), ik.LBFGSB(ftol=0.0, gtol=1e-12), progress=False
    )
    assert result.success, result.message
    assert min(seen) <= 0.0  # a non-finite trial point was met
    assert float(result.x[0]) == pytest.approx(1.0, abs=1e-9)


def test_nonfinite_everywhere_but_the_start():
    """Every trial point is NaN: the line search fails, the run stops NONFINITE at the
    start."""

    def loss(p):
        return torch.where(p["x"] == 3.0, (p["x"] - 1) ** 2, torch.nan)

    result = ik.fit(ik.Objective(loss, ik.Params(x=3.0)), ik.LBFGSB(), progress=False)
    assert result.status is ik.Status.NONFINITE
    assert "not finite" in result.message
    assert float(result.x[0]) == 3.0
    assert result.cost == 4.0


# --- options and problems refused --------------------------------------------------------
@pytest.mark.parametrize(
    "option, value",
    [
        ("ftol", -1.0),
        ("ftol", math.nan),
        ("gtol", -1e-5),
        ("gtol", math.inf),
        ("max_iter", 0),
        ("max_iter", 1.5),
        ("history", 0),
        ("history", True),
        ("max_line_search", 0),
        ("max_evals", 0),
        ("max_time", 0.0),
        ("bounds", "clip"),
    ],
)
def test_bad_options_are_refused(option, value):
    with pytest.raises(InputError, match=f"`{option}`"):
        ik.LBFGSB(**{option: value})


def test_batched_problem_is_refused():
    x = torch.linspace(0, 1, 10, dtype=torch.float64)
    y = torch.stack([2 * x + 1, 3 * x - 1])
    problem = BatchedLeastSquares(
        lambda p, x: p["a"] * x + p["b"], ik.Params(a=1.0, b=0.0), inputs=(x,), y=y
    )
    why = ik.LBFGSB().accepts(problem)
    assert why is not None and "batched" in why
    with pytest.raises(InputError, match="batched"):
        ik.fit(problem, ik.LBFGSB())
    with pytest.raises(InputError, match="batched"):
        ik.fit(problem, "lbfgsb")


def test_least_squares_and_objective_are_accepted():
    assert ik.LBFGSB().accepts(rosen()) is None
    assert ik.LBFGSB().accepts(nist_problem("DanWood", 0)[1]) is None
    assert ik.LBFGSB().accepts(object()) is not None


# --- save / restore ----------------------------------------------------------------------
def through_disk(saved) -> dict:
    """``saved`` written as a checkpoint would be (arrays in .npz, scalars as JSON, no
    pickle) and read back."""
    arrays = {k: v for k, v in saved.items() if isinstance(v, np.ndarray)}
    scalars = json.loads(json.dumps({k: v for k, v in saved.items() if k not in arrays}))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        out = {k: data[k].copy() for k in data.files}
    out.update(scalars)
    return out


def same_state(a: LBFGSBState, b: LBFGSBState) -> bool:
    arrays = ("x", "g", "wa", "iwa", "task", "lsave", "isave", "dsave", "ln_task")
    return (
        all(np.array_equal(getattr(a, k), getattr(b, k)) for k in arrays)
        and a.f == b.f
        and torch.equal(a.u, b.u)
        and (a.n_fev, a.n_iter, a.status, a.message) == (b.n_fev, b.n_iter, b.status, b.message)
    )


@pytest.mark.parametrize(
    "case, k",
    [("rosenbrock-native", 7), ("rosenbrock-transform", 12), ("Lanczos3", 150)],
)
def test_save_restore_continues_bit_for_bit(case, k):
    if case.startswith("rosenbrock"):
        problem = rosen(x_bounds=(-2.0, 0.5))
        options = dict(bounds=case.split("-")[1], ftol=0.0, gtol=1e-10)
    else:
        problem = nist_problem(case, 1)[1]
        options = dict(ftol=0.0, gtol=1e-10)
    solver = ik.LBFGSB(**options)
    whole = drive(solver, problem, solver.init(problem), 10_000)
    assert whole[-1].status is not None and len(whole) > k + 5
    first = drive(solver, problem, solver.init(problem), k)
    saved = through_disk(solver.save(first[-1]))
    fresh = ik.LBFGSB(**options)
    restored = fresh.restore(problem, saved)
    assert same_state(restored, first[-1])
    rest = drive(fresh, problem, restored, 10_000)
    assert len(first) + len(rest) == len(whole)
    for a, b in zip(first + rest, whole, strict=True):
        assert same_state(a, b)
    summary = fresh.summary(problem, rest[-1])
    assert torch.equal(summary.u, solver.summary(problem, whole[-1]).u)


def test_step_leaves_its_input_alone():
    problem = rosen()
    solver = ik.LBFGSB()
    state = solver.init(problem)
    before = solver.save(state)
    solver.step(problem, state)
    after = solver.save(state)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_restore_refuses_other_options():
    problem = rosen()
    saved = ik.LBFGSB().save(ik.LBFGSB().init(problem))
    with pytest.raises(InputError, match="`history`"):
        ik.LBFGSB(history=5).restore(problem, saved)
    with pytest.raises(InputError, match="`bounds`"):
        ik.LBFGSB(bounds="transform").restore(problem, saved)


class Interrupted(Exception):
    pass


def test_checkpoint_resume_through_fit(tmp_path):
    """A run killed after iteration 9 (its checkpoint holds iteration 8) and resumed gives
    the uninterrupted run's answer bit for bit."""
    solver = ik.LBFGSB(ftol=0.0, gtol=1e-10)
    whole = ik.fit(rosen(), solver, progress=False)
    path = tmp_path / "lbfgsb.ckpt"

    def kill(state):
        if state.iteration == 9:
            raise Interrupted

    with pytest.raises(Interrupted):
        ik.fit(rosen(), solver, callback=kill, checkpoint=path, progress=False)
    resumed = ik.fit(rosen(), solver, resume=path, progress=False)
    assert resumed.status is whole.status
    assert torch.equal(resumed.x, whole.x)
    assert resumed.n_iter == whole.n_iter
    assert resumed.n_fev == whole.n_fev
    assert resumed.history == whole.history
