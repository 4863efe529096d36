"""inversekit: fit differentiable physical forward models to data.

Describe a problem once (:class:`Params`, :class:`LeastSquares`, :class:`Objective`) and
solve it with :func:`fit`::

    import inversekit as ik
    params = ik.Params(a=ik.Param(1.0), w=ik.Param(2.0, bounds=(0, None)))
    result = ik.fit(ik.LeastSquares(model, params, inputs=(x,), y=y, sigma=dy))
    print(result.report())
"""

from inversekit import models
from inversekit.errors import InputError, ModelError
from inversekit.models.composite import Component, Product, Sum
from inversekit.optimize import LBFGSB, LM, IterationState, LevenbergMarquardt, fit
from inversekit.optimize.intervals import profile_intervals
from inversekit.optimize.levenberg_marquardt.batched import BatchedLevenbergMarquardt, BatchedLM
from inversekit.problem.batched import BatchedLeastSquares
from inversekit.problem.least_squares import LeastSquares
from inversekit.problem.likelihoods import Gaussian, Poisson, StudentT
from inversekit.problem.objective import Objective
from inversekit.problem.params import Param, Params
from inversekit.problem.priors import LogUniform
from inversekit.results.batched import BatchedFitResult
from inversekit.results.fit_result import FitResult
from inversekit.results.io import load
from inversekit.results.plots import plot_fit
from inversekit.results.status import Status

__all__ = [
    "BatchedFitResult",
    "BatchedLM",
    "BatchedLeastSquares",
    "BatchedLevenbergMarquardt",
    "Component",
    "LBFGSB",
    "LM",
    "FitResult",
    "Gaussian",
    "InputError",
    "IterationState",
    "LeastSquares",
    "LevenbergMarquardt",
    "LogUniform",
    "ModelError",
    "Objective",
    "Param",
    "Params",
    "Poisson",
    "Product",
    "Status",
    "StudentT",
    "Sum",
    "fit",
    "load",
    "models",
    "plot_fit",
    "profile_intervals",
]
