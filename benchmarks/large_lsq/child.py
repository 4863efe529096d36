"""Child process of the large-lsq benchmark: fit the 11-parameter problem on one N.

Run by the runner as ``python -m benchmarks.large_lsq.child TASK OUT``. Options pick the
solver: ``inversekit`` (``fit`` defaults), ``scipy`` (``least_squares`` with ``method`` lm
or trf, analytic Jacobian, default tolerances) or ``nlsq`` (JAX autodiff, defaults). The
data file is loaded and the resident set marked before any fit, so the memory a solver needs
is reported above the data. The first fit is timed on its own (it pays the one-off costs of
a fresh process), then ``fits`` more.
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
from benchmarks.large_lsq.problem import NAMES, START, TRUTH, chi2, jacobian, model
from benchmarks.roofline import time_forward

Fit = Callable[[], dict[str, Any]]


def scipy_fit(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, opts: dict) -> tuple[Fit, Fit]:
    """``least_squares`` on weighted residuals with the analytic, weighted Jacobian."""
    from scipy.optimize import least_squares

    w = 1.0 / sigma

    def fun(p):
        return (model(x, p) - y) * w

    def jac(p):
        j = jacobian(x, p)
        j *= w[:, None]
        return j

    def fit() -> dict[str, Any]:
        r = least_squares(fun, START.copy(), jac=jac, method=opts["method"])
        return {
            "p": r.x,
            "n_iter": int(r.njev or 0),
            "nfev": int(r.nfev),
            "njev": int(r.njev or 0),
            "success": bool(r.success),
            "message": str(r.message),
        }

    return fit, lambda: model(x, TRUTH)


def inversekit_fit(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, opts: dict) -> tuple[Fit, Fit]:
    """``inversekit.fit`` at its defaults on the same arrays (shared, not copied)."""
    ik = require_inversekit()
    torch = import_torch()
    xt, yt, st = (torch.from_numpy(a) for a in (x, y, sigma))

    def f(p, xx):
        return model(xx, [p[k] for k in NAMES], torch)

    def fit() -> dict[str, Any]:
        params = ik.Params(**{k: ik.Param(float(v)) for k, v in zip(NAMES, START, strict=True)})
        problem = ik.LeastSquares(f, params, inputs=(xt,), y=yt, sigma=st)
        r = ik.fit(problem, progress=False)
        return {
            "p": np.array([float(r.params[k]) for k in NAMES]),
            "n_iter": int(r.n_iter),
            "nfev": int(r.n_fev),
            "njev": int(r.n_jev),
            "success": bool(r.success),
            "message": str(r.status),
        }

    truth = {
        k: torch.tensor(float(v), dtype=torch.float64) for k, v in zip(NAMES, TRUTH, strict=True)
    }

    def forward():
        with torch.no_grad():
            return f(truth, xt)

    return fit, forward


def nlsq_fit(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, opts: dict) -> tuple[Fit, Fit]:
    """``nlsq`` through one ``CurveFit`` (the first call compiles), sigma given, defaults."""
    nlsq = import_nlsq()
    import jax.numpy as jnp

    fitter = nlsq.CurveFit()

    def f(xx, *p):
        return model(xx, p, jnp)

    def fit() -> dict[str, Any]:
        r = fitter.curve_fit(f, x, y, p0=START.copy(), sigma=sigma, absolute_sigma=True)
        popt, _ = r
        return {
            "p": np.asarray(popt),
            "n_iter": int(r.get("njev") or 0) or None,
            "nfev": int(r.nfev),
            "njev": int(r.get("njev") or 0),
            "success": bool(r.success),
            "message": str(r.message),
        }

    xj, truth = jnp.asarray(x), [jnp.asarray(v) for v in TRUTH]
    return fit, lambda: model(xj, truth, jnp).block_until_ready()


SOLVERS = {"scipy": scipy_fit, "inversekit": inversekit_fit, "nlsq": nlsq_fit}


def prime(data: str) -> None:
    """Fit once in this process, to fill the compile cache a later process will read."""
    with np.load(data) as z:
        x, y, sigma = z["x"], z["y"], z["sigma"]
    fit, _ = inversekit_fit(x, y, sigma, {})
    fit()


def work(task: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """Load the data, fit ``1 + fits`` times, time one forward pass, score the first fit.

    With option ``prime_cache`` another process first fits the same data with the same
    (private) compile cache, so this process's first call measures a warm disk cache."""
    opts, case = task["options"], task["case"]
    if opts.get("prime_cache"):
        import subprocess
        import sys

        code = f"from benchmarks.large_lsq.child import prime; prime({case['data']!r})"
        subprocess.run([sys.executable, "-c", code], check=True)
    if opts["solver"] == "scipy":
        import scipy.optimize  # noqa: F401  (imported before the base mark)
    elif opts["solver"] == "nlsq":
        import_nlsq()
    else:
        require_inversekit()
    with np.load(case["data"]) as data:
        x, y, sigma = data["x"], data["y"], data["sigma"]
    probe.mark_base()
    fit, forward = SOLVERS[opts["solver"]](x, y, sigma, opts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, t_first, warm, warm_cpu, last = time_calls(fit, int(case["fits"]))
    probe.mark_peak()
    forward_s = time_forward(forward)
    p = np.asarray(out["p"], dtype=float)
    quality = {
        "chi2": chi2(x, y, sigma, p),
        "last_warm_chi2": chi2(x, y, sigma, np.asarray(last["p"], dtype=float)) if warm else None,
        "max_rel_err_vs_truth": float(np.max(np.abs(p - TRUTH) / np.abs(TRUTH))),
        "p": p.tolist(),
        **{k: out[k] for k in ("n_iter", "nfev", "njev", "success", "message")},
    }
    figures = {
        "first_s": t_first,
        "fit_s": statistics.median(warm) if warm else t_first,
        "fit_cpu_s": statistics.median(warm_cpu) if warm_cpu else None,
        "forward_s": forward_s,
    }
    return {"items": {f"n={x.size}": {"figures": figures, "quality": quality}}}


if __name__ == "__main__":
    serve(work)
