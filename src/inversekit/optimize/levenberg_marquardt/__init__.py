"""Levenberg–Marquardt for one problem (:mod:`.solver`) and for a batch (:mod:`.batched`)."""

from inversekit.optimize.levenberg_marquardt.batched import (
    BatchedLevenbergMarquardt,
    BatchedLM,
)
from inversekit.optimize.levenberg_marquardt.solver import LM, LevenbergMarquardt

__all__ = ["LM", "BatchedLM", "BatchedLevenbergMarquardt", "LevenbergMarquardt"]
