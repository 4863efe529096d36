"""Build a :class:`~inversekit.results.fit_result.FitResult` for a least-squares problem at its solution."""

from __future__ import annotations

import math

from torch import Tensor

from inversekit.results.fit_result import FitResult
from inversekit.results.uncertainty import least_squares_uncertainty


def least_squares_result(problem, u: Tensor, run, *, solver: str, n_fev: int) -> FitResult:
    """Statistics, uncertainties and diagnostics of ``problem`` at ``u`` after ``run``."""
    params = problem.params
    cost = problem.cost(u)
    chi2 = 2.0 * cost
    ndf = problem.n_data - params.n_free
    unc = least_squares_uncertainty(problem, u, chi2)
    physical = {k: v.detach() for k, v in params.unpack(u).items()}
    return FitResult(
        params=physical,
        x=params.physical(u).detach(),
        labels=params.labels(),
        covariance=unc.covariance,
        stderr=params.split(unc.stderr),
        correlation=unc.correlation,
        cost=cost,
        chi2=chi2,
        reduced_chi2=chi2 / ndf if ndf > 0 else math.nan,
        ndf=ndf,
        n_data=problem.n_data,
        status=run.status,
        n_iter=run.n_iter,
        n_fev=n_fev,
        n_jev=problem.jacobian.n_jev,
        time=run.time,
        history=list(run.history),
        covariance_scaled=not problem.noise.known,
        condition_number=unc.condition,
        near_null=unc.near_null,
        at_bounds=unc.at_bounds,
        unidentified=unc.unidentified,
        log_likelihood=problem.log_likelihood(u),
        solver=solver,
        jacobian=f"{problem.jacobian.engine_name}: {problem.jacobian.reason}",
    )
