"""Child process of the NIST benchmark: fit every file from both starts with one solver.

Run by the runner as ``python -m benchmarks.nist.child TASK OUT``. The side's options pick
the solver: ``inversekit`` (defaults), ``scipy`` (``least_squares`` with ``method`` lm or
trf, Jacobian ``analytic`` or ``torch-ad``, library defaults or ``tight`` 1e-15 tolerances),
``lmfit`` (``minimize(method="leastsq")``, its forward-difference Jacobian) or ``nlsq``
(JAX, one ``CurveFit`` per file). Every case is fitted once (scored, and timed as the first
call) and then up to ``reps`` more times, stopping once they have taken ``WARM_BUDGET_S``
(the warm time is their median). The residual sum of squares is recomputed here with NumPy
from the returned parameters, the same way for every solver.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.child import (
    Probe,
    import_nlsq,
    import_torch,
    require_inversekit,
    serve,
    time_calls,
)
from benchmarks.nist.data import NistProblem, load_all, lre, stderr_from_jacobian
from benchmarks.nist.models import NistModel, get_model, response
from benchmarks.roofline import time_forward

TIGHT = {"xtol": 1e-15, "ftol": 1e-15, "gtol": 1e-15, "max_nfev": 20000}
#: warm repetitions of one case stop once they have taken this long (at least one is made)
WARM_BUDGET_S = 2.0

Solve = Callable[[np.ndarray], dict[str, Any]]
#: ``forward(b)`` -> a no-argument call that evaluates the model once, in the solver's own
#: array library (for the roofline)
Forward = Callable[[np.ndarray], Callable[[], Any]]


def numpy_forward(prob: NistProblem, model: NistModel) -> Forward:
    """The model evaluated with NumPy (what scipy and lmfit call)."""
    return lambda b: lambda: model.f(prob.x, b, np)


def scipy_solver(
    prob: NistProblem, model: NistModel, y: np.ndarray, opts: dict
) -> tuple[Solve, Forward]:
    """``scipy.optimize.least_squares`` with an analytic or a torch-AD Jacobian."""
    from scipy.optimize import least_squares

    x = prob.x

    def fun(b):
        return model.f(x, b, np) - y

    if opts.get("jac", "analytic") == "analytic":

        def jac(b):
            return model.jac(x, b)

    elif opts["jac"] == "torch-ad":
        torch = import_torch()

        xt = torch.as_tensor(x)

        def jac(b):
            bt = torch.as_tensor(b)
            return torch.func.jacfwd(lambda bb: model.f(xt, bb, torch))(bt).numpy()

    else:
        jac = opts["jac"]
    kwargs: dict[str, Any] = {"method": opts.get("method", "trf"), "jac": jac}
    if opts.get("tight"):
        kwargs.update(TIGHT)

    def solve(b0: np.ndarray) -> dict[str, Any]:
        r = least_squares(fun, np.array(b0, dtype=float), **kwargs)
        rss = float(r.fun @ r.fun)
        return {
            "b": r.x,
            "se": stderr_from_jacobian(r.jac, rss, prob.nobs),
            "nfev": int(r.nfev),
            "njev": int(r.njev or 0),
            "n_iter": int(r.njev or 0),
            "success": bool(r.success),
            "message": str(r.message),
        }

    return solve, numpy_forward(prob, model)


def lmfit_solver(
    prob: NistProblem, model: NistModel, y: np.ndarray, opts: dict
) -> tuple[Solve, Forward]:
    """``lmfit.minimize(method="leastsq")`` with lmfit's forward-difference Jacobian."""
    import lmfit

    x = prob.x
    names = [f"b{i + 1}" for i in range(prob.nparams)]

    def residual(params):
        values = params.valuesdict()
        return model.f(x, [values[k] for k in names], np) - y

    kwargs = dict(TIGHT) if opts.get("tight") else {}

    def solve(b0: np.ndarray) -> dict[str, Any]:
        params = lmfit.Parameters()
        for k, v in zip(names, b0, strict=True):
            params.add(k, value=float(v))
        r = lmfit.minimize(residual, params, method="leastsq", **kwargs)
        se = [np.nan if r.params[k].stderr is None else r.params[k].stderr for k in names]
        return {
            "b": np.array([r.params[k].value for k in names]),
            "se": np.array(se, dtype=float),
            "nfev": int(r.nfev),
            "njev": 0,
            "n_iter": None,
            "success": bool(r.success),
            "message": str(r.message),
        }

    return solve, numpy_forward(prob, model)


def inversekit_solver(
    prob: NistProblem, model: NistModel, y: np.ndarray, opts: dict
) -> tuple[Solve, Forward]:
    """``inversekit.fit`` at its defaults: unit weights, float64, AD Jacobian. The timed call
    builds the ``Params`` and the ``LeastSquares`` problem too, as a user would."""
    ik = require_inversekit()
    torch = import_torch()
    xt = torch.as_tensor(prob.x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    names = [f"b{i + 1}" for i in range(prob.nparams)]

    def f(p, x):
        return model.f(x, [p[k] for k in names], torch)

    def solve(b0: np.ndarray) -> dict[str, Any]:
        params = ik.Params(**{k: ik.Param(float(v)) for k, v in zip(names, b0, strict=True)})
        problem = ik.LeastSquares(f, params, inputs=(xt,), y=yt, sigma=None)
        r = ik.fit(problem, progress=False)
        return {
            "b": np.array([float(r.params[k]) for k in names]),
            "se": np.array([float(r.stderr[k]) for k in names]),
            "nfev": int(r.n_fev),
            "njev": int(r.n_jev),
            "n_iter": int(r.n_iter),
            "success": bool(r.success),
            "message": str(r.status),
        }

    def forward(b: np.ndarray) -> Callable[[], Any]:
        p = {k: torch.tensor(float(v), dtype=torch.float64) for k, v in zip(names, b, strict=True)}

        def call():
            with torch.no_grad():
                return f(p, xt)

        return call

    return solve, forward


def nlsq_solver(
    prob: NistProblem, model: NistModel, y: np.ndarray, opts: dict
) -> tuple[Solve, Forward]:
    """``nlsq`` (JAX autodiff Jacobian, TRF) through one ``CurveFit`` per file, which keeps
    the compiled code between calls (the module-level ``curve_fit`` re-traces every call)."""
    nlsq = import_nlsq()
    import jax.numpy as jnp

    x = prob.x
    fitter = nlsq.CurveFit()
    kwargs = dict(TIGHT) if opts.get("tight") else {}

    def f(xx, *b):
        return model.f(xx, b, jnp)

    def solve(b0: np.ndarray) -> dict[str, Any]:
        r = fitter.curve_fit(f, x, y, p0=np.array(b0, dtype=float), **kwargs)
        popt, pcov = r
        return {
            "b": np.asarray(popt),
            "se": np.sqrt(np.abs(np.diag(np.asarray(pcov)))),
            "nfev": int(r.nfev),
            "njev": int(r.get("njev") or 0),
            "n_iter": int(r.get("njev") or 0) or None,
            "success": bool(r.success),
            "message": str(r.message),
        }

    def forward(b: np.ndarray) -> Callable[[], Any]:
        xj, bj = jnp.asarray(x), [jnp.asarray(v) for v in b]
        return lambda: model.f(xj, bj, jnp).block_until_ready()

    return solve, forward


SOLVERS = {
    "scipy": scipy_solver,
    "lmfit": lmfit_solver,
    "inversekit": inversekit_solver,
    "nlsq": nlsq_solver,
}


def score(prob: NistProblem, model: NistModel, y: np.ndarray, out: dict) -> dict[str, Any]:
    """LRE of the parameters, standard errors and RSS against the certified values."""
    b = np.asarray(out["b"], dtype=float)
    r = y - model.f(prob.x, b, np)
    rss = float(r @ r)
    lre_b, lre_se = lre(b, prob.cert), lre(out["se"], prob.cert_sd)
    return {
        "lre_params": float(lre_b.min()),
        "lre_se": float(lre_se.min()),
        "lre_rss": float(lre(rss, prob.rss)[0]),
        "rss": rss,
        "b": b.tolist(),
        **{k: out[k] for k in ("nfev", "njev", "n_iter", "success")},
        "message": out["message"][:200],
    }


def fit_case(
    prob: NistProblem, start: int, solve: Solve, forward: Forward, reps: int
) -> dict[str, Any]:
    """Fit one file from one start: first call scored, ``reps`` warm calls timed, and one
    forward pass at the solution timed for the roofline."""
    b0 = prob.starts[start - 1]
    model = get_model(prob.name, prob.formula)
    y = response(model, prob.y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out, t_first, *_ = time_calls(lambda: solve(b0), 0)
        except Exception as exc:  # a solver that raises has failed this case
            fail = {"lre_params": 0.0, "lre_se": 0.0, "lre_rss": 0.0, "success": False}
            return {"figures": {}, "quality": {**fail, "error": f"{type(exc).__name__}: {exc}"}}
        warm: list[float] = []
        while len(warm) < reps and (not warm or sum(warm) < WARM_BUDGET_S):
            try:
                warm.append(time_calls(lambda: solve(b0), 0)[1])
            except Exception:  # timing only; the scored call above succeeded
                break
    figures = {
        "first_s": t_first,
        "fit_s": statistics.median(warm) if warm else t_first,
        "forward_s": time_forward(forward(np.asarray(out["b"], dtype=float))),
    }
    return {"figures": figures, "quality": score(prob, model, y, out)}


def work(task: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """All files x both starts for the solver named in the side's options."""
    opts = task["options"]
    case = task["case"]
    problems = load_all(case["folder"], case.get("files"))
    probe.mark_base()
    make = SOLVERS[opts["solver"]]
    if opts["solver"] == "inversekit":
        require_inversekit()  # a missing API fails the side once, not each case
    items = {}
    for prob in problems:
        model = get_model(prob.name, prob.formula)
        solve, forward = make(prob, model, response(model, prob.y), opts)
        for start in (1, 2):
            items[f"{prob.name}/{start}"] = fit_case(prob, start, solve, forward, int(case["reps"]))
    return {"items": items}


if __name__ == "__main__":
    serve(work)
