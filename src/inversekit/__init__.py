"""inversekit: fit differentiable physical forward models to data.

Describe a problem once (:class:`Params`, :class:`LeastSquares`, :class:`Objective`) and
solve it with :func:`fit`::

    import inversekit as ik
    params = ik.Params(a=ik.Param(1.0), w=ik.Param(2.0, bounds=(0, None)))
    result = ik.fit(ik.LeastSquares(model, params, inputs=(x,), y=y, sigma=dy))
    print(result.report())
"""

from inversekit import models
from inversekit.batched_problem import BatchedLeastSquares
from inversekit.batched_result import BatchedFitResult
from inversekit.errors import InputError, ModelError
from inversekit.io import load
from inversekit.optimize import LM, IterationState, LevenbergMarquardt, Status, fit
from inversekit.optimize.batched import BatchedLevenbergMarquardt, BatchedLM
from inversekit.params import Param, Params
from inversekit.problem import LeastSquares, Objective
from inversekit.result import FitResult

__all__ = [
    "BatchedFitResult",
    "BatchedLM",
    "BatchedLeastSquares",
    "BatchedLevenbergMarquardt",
    "LM",
    "FitResult",
    "InputError",
    "IterationState",
    "LeastSquares",
    "LevenbergMarquardt",
    "ModelError",
    "Objective",
    "Param",
    "Params",
    "Status",
    "fit",
    "load",
    "models",
]
