"""The statistics a least-squares problem adds to a result: chi2, covariance, diagnostics."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from inversekit.results.identifiability import identifiability_fields
from inversekit.results.uncertainty import all_stderr, least_squares_uncertainty


def least_squares_statistics(problem, u: Tensor) -> dict[str, Any]:
    """The :class:`~inversekit.FitResult` fields a least-squares ``problem`` defines at
    its solution ``u``: chi2 and ndf, covariance and standard errors (see
    :mod:`.uncertainty`), log-likelihood and the derivative engine that ran."""
    params = problem.params
    # the data's chi2: 2·cost less the Gaussian priors' rows
    chi2 = 2.0 * problem.cost(u) - problem.prior_penalty(u)
    ndf = problem.n_data - params.n_free
    unc = least_squares_uncertainty(problem, u, chi2)
    engine = problem.jacobian
    return {
        "covariance": unc.covariance,
        "stderr": params.split(unc.stderr),
        "correlation": unc.correlation,
        "chi2": chi2,
        "reduced_chi2": chi2 / ndf if ndf > 0 else math.nan,
        "ndf": ndf,
        "n_data": problem.n_data,
        "covariance_scaled": not problem.noise_known,
        "condition_number": unc.condition,
        "near_null": unc.near_null,
        "at_bounds": unc.at_bounds,
        "unidentified": unc.unidentified,
        "log_likelihood": problem.log_likelihood(u),
        "likelihood": problem.likelihood.spec,
        "priors": list(params.prior_names),
        "cost": problem.value(u),
        "jacobian": f"{engine.engine_name}: {engine.reason}",
        "stderr_all": all_stderr(params, u, unc),
        # parameters the data do not constrain (may set condition_number to inf)
        **identifiability_fields(problem, u, unc),
    }
