"""The demo fit: a noisy X-ray diffraction-like spectrum of three peaks on a sloped background.

Model (x in degrees 2θ, counts per channel)::

    f(x) = c0 + c1 (x - 40) + Σ_k A_k · pv(x; μ_k, w_k, η)

with ``pv`` a pseudo-Voigt peak of unit height, full width at half maximum ``w_k`` and a
shared Lorentzian fraction ``η``. Counts are Poisson-noisy; sigma = √counts is given, so
the covariance is absolute and chi2/ndf ≈ 1 tells the fit is good.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from inversekit.optimize import fit
from inversekit.problem.least_squares import LeastSquares
from inversekit.problem.params import Param, Params

TRUTH = {
    "c0": 120.0,
    "c1": -0.8,
    "eta": 0.35,
    "A": [900.0, 450.0, 650.0],
    "mu": [31.7, 36.2, 45.4],
    "w": [0.45, 0.6, 0.5],
}


def spectrum(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Three pseudo-Voigt peaks plus a linear background, evaluated at ``x`` (degrees)."""
    dx = x[:, None] - p["mu"]
    half = p["w"] / 2
    gauss = torch.exp(-math.log(2.0) * (dx / half) ** 2)
    lorentz = 1.0 / (1.0 + (dx / half) ** 2)
    peaks = p["A"] * (p["eta"] * lorentz + (1 - p["eta"]) * gauss)
    return p["c0"] + p["c1"] * (x - 40.0) + peaks.sum(dim=1)


def make_data(seed: int = 7, n: int = 1500):
    """Simulated counts on ``n`` channels from 25° to 55°."""
    x = torch.linspace(25.0, 55.0, n, dtype=torch.float64)
    truth = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in TRUTH.items()}
    expected = spectrum(truth, x)
    rng = np.random.default_rng(seed)
    counts = torch.as_tensor(rng.poisson(expected.numpy()), dtype=torch.float64)
    return x, counts, torch.sqrt(torch.clamp(counts, min=1.0))


def demo_problem(seed: int = 7) -> LeastSquares:
    """The demo's problem, started from rough by-eye guesses."""
    x, y, sigma = make_data(seed)
    params = Params(
        c0=Param(100.0),
        c1=Param(0.0),
        eta=Param(0.5, bounds=(0.0, 1.0)),
        A=Param(torch.tensor([700.0, 400.0, 500.0]), bounds=(0.0, None)),
        mu=Param(torch.tensor([31.5, 36.5, 45.0])),
        w=Param(torch.tensor([0.8, 0.8, 0.8]), bounds=(0.0, None)),
    )
    return LeastSquares(spectrum, params, inputs=(x,), y=y, sigma=sigma)


def run_demo(output="inversekit-demo.png", progress: bool | None = None):
    """Fit the demo spectrum, print the report and write the figure; return the result."""
    from inversekit.results.plots import fit_figure

    problem = demo_problem()
    result = fit(problem, progress=progress)
    print(result.report())
    x = problem.inputs[0]
    best = problem.model_output(problem.params.pack(result.params))
    path = fit_figure(
        x,
        problem.y,
        problem.noise.sigma,
        best,
        output,
        title="inversekit demo: three pseudo-Voigt peaks on a linear background",
    )
    print("\ntruth:", {k: v for k, v in TRUTH.items()})
    print(f"figure written to {path.resolve()}")
    return result
