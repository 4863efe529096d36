"""The problem layer: what is being solved, independent of how.

Parameters and their bijections (:mod:`.params`, :mod:`.transforms`), noise models
(:mod:`.noise`), the problem types (:mod:`.least_squares`, :mod:`.batched`,
:mod:`.objective`) and the problem seen at float64 host points (:mod:`.evaluators`).
"""

from inversekit.problem.batched import BatchedLeastSquares
from inversekit.problem.least_squares import LeastSquares
from inversekit.problem.objective import Objective
from inversekit.problem.params import Param, Params

__all__ = ["BatchedLeastSquares", "LeastSquares", "Objective", "Param", "Params"]
