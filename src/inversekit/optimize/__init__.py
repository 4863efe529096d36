"""The solver layer for local optimisation: the front end :func:`fit` with its registry
(:mod:`.fit`), the one loop (:mod:`.loop`) with checkpoints (:mod:`.checkpoint`), and the
solvers (:mod:`.levenberg_marquardt`, :mod:`.lbfgsb`)."""

from inversekit.optimize.fit import SOLVERS, fit, resolve_solver
from inversekit.optimize.lbfgsb import LBFGSB
from inversekit.optimize.levenberg_marquardt import (
    LM,
    BatchedLevenbergMarquardt,
    BatchedLM,
    LevenbergMarquardt,
)
from inversekit.optimize.loop import IterationState

__all__ = [
    "LBFGSB",
    "LM",
    "SOLVERS",
    "BatchedLM",
    "BatchedLevenbergMarquardt",
    "IterationState",
    "LevenbergMarquardt",
    "fit",
    "resolve_solver",
]
