"""Child process of the batched benchmark: fit every problem of the data file.

Run by the runner as ``python -m benchmarks.batched.child TASK OUT``. Options pick the
side: ``inversekit`` (one :class:`~inversekit.BatchedLeastSquares` fit, ``jacobian`` as
given, default LM options) or ``curve_fit`` (a loop of ``scipy.optimize.curve_fit`` with the
analytic Jacobian, its defaults or ``tight`` tolerances ftol = xtol = 1e-14). The first
call is timed on its own (for inversekit it includes any compilation, with the private
empty compile cache the runner gives every child), then ``fits`` more; the parameters of
the first call go to ``<outdir>/<side>.npz`` for the gate.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.batched.problem import FREE, N_POINTS, SIGMA, X
from benchmarks.child import Probe, import_torch, require_inversekit, serve, time_calls

TIGHT = {"ftol": 1e-14, "xtol": 1e-14, "gtol": 0.0}


def chi2(data: dict[str, np.ndarray], params: np.ndarray) -> np.ndarray:
    """Every problem's chi-square at ``params`` (B, 4), computed the same way for all sides."""
    a, c, w, b0 = (params[:, i : i + 1] for i in range(4))
    z = (X[None, :] - c) / w
    f = a * np.exp(-0.5 * z * z) + b0 + data["b1"][:, None] * X[None, :]
    return (((f - data["y"]) / SIGMA) ** 2).sum(axis=1)


def curve_fit_side(data: dict[str, np.ndarray], opts: dict):
    """A loop of ``curve_fit`` (analytic Jacobian): ``(params (B, 4), converged (B,))``."""
    from scipy.optimize import curve_fit

    y, start, slope = data["y"], data["start"], data["b1"]
    sigma = np.full(N_POINTS, SIGMA)
    tolerances = TIGHT if opts.get("tight") else {}

    def jac(x, a, c, w, b0):
        z = (x - c) / w
        e = np.exp(-0.5 * z * z)
        return np.stack([e, a * e * z / w, a * e * z * z / w, np.ones_like(x)], axis=1)

    def fit():
        B = y.shape[0]
        out, ok = np.full((B, 4), np.nan), np.zeros(B, dtype=bool)
        for b in range(B):
            s = slope[b]

            def f(x, a, c, w, b0, s=s):
                z = (x - c) / w
                return a * np.exp(-0.5 * z * z) + b0 + s * x

            try:
                popt, _, _, _, ier = curve_fit(
                    f, X, y[b], p0=start[b], sigma=sigma, absolute_sigma=True, jac=jac,
                    full_output=True, **tolerances,
                )  # fmt: skip
                out[b], ok[b] = popt, ier in (1, 2, 3, 4)
            except RuntimeError:
                pass
        return out, ok, None

    return fit


def inversekit_side(data: dict[str, np.ndarray], opts: dict):
    """One batched fit: ``(params (B, 4), converged (B,), result)``."""
    ik = require_inversekit()
    torch = import_torch()
    x = torch.as_tensor(X)
    y = torch.as_tensor(data["y"])
    start = {k: torch.as_tensor(data["start"][:, i]) for i, k in enumerate(FREE)}
    slope = torch.as_tensor(data["b1"])

    def model(p, xx):
        z = (xx - p["c"]) / p["w"]
        return p["a"] * torch.exp(-0.5 * z * z) + p["b0"] + p["b1"] * xx

    def fit():
        params = ik.Params(
            a=1.0, c=0.0, w=ik.Param(1.0, bounds=(0.0, None)), b0=0.0,
            b1=ik.Param(slope, fixed=True),
        )  # fmt: skip
        problem = ik.BatchedLeastSquares(
            model, params, inputs=(x,), y=y, sigma=SIGMA, start=start,
            jacobian=opts.get("jacobian", "auto"),
        )  # fmt: skip
        result = ik.fit(problem, progress=False)
        p = torch.stack([result.params[k] for k in FREE], dim=1).numpy()
        return p, result.success.numpy(), (problem, result)

    return fit


def work(task: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """Load the data, fit ``1 + fits`` times, save the first call's parameters."""
    opts, case = task["options"], task["case"]
    if opts["solver"] == "inversekit":
        require_inversekit()
    else:
        import scipy.optimize  # noqa: F401  (imported before the base mark)
    with np.load(case["data"]) as z:
        data = {k: z[k] for k in z.files}
    probe.mark_base()
    side = curve_fit_side if opts["solver"] == "curve_fit" else inversekit_side
    fit = side(data, opts)
    out, t_first, warm, warm_cpu, _ = time_calls(fit, int(case["fits"]))
    probe.mark_peak()
    params, ok, extra = out
    path = Path(case["outdir"]) / f"{task['side']}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, params=params, ok=ok, chi2=chi2(data, params))
    B = params.shape[0]
    quality: dict[str, Any] = {"file": str(path), "converged": int(ok.sum()), "problems": B}
    if extra is not None:
        problem, result = extra
        engine = getattr(problem, "engine_name", "?")  # not public API: absent is no failure
        quality["engine"] = f"{engine}: {getattr(problem, 'engine_reason', '?')}"
        quality["iterations_max"] = int(result.n_iter.max())
        quality["iterations_mean"] = float(result.n_iter.float().mean())
    fit_s = statistics.median(warm) if warm else t_first
    figures = {
        "first_s": t_first,
        "fit_s": fit_s,
        "fit_cpu_s": statistics.median(warm_cpu) if warm_cpu else None,
        "fits_per_s": B / fit_s,
    }
    return {"items": {f"B={B}": {"figures": figures, "quality": quality}}}


if __name__ == "__main__":
    serve(work)
