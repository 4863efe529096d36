"""Why a run stopped. Each member's value is the message a user reads.

The statuses are generic: a solver converged by one of its criteria, used up a budget, was
stopped by the callback, met a non-finite value, or failed. The result also carries the
solver's own words (``result.message``) where it has more to say.
"""

from __future__ import annotations

from enum import Enum


class Status(Enum):
    """Outcome of a run; ``status.value`` is a human-readable message."""

    FTOL = "converged: the relative reduction of the cost fell below ftol"
    XTOL = "converged: the relative step size fell below xtol"
    GTOL = "converged: the gradient fell below gtol"
    ZERO_RESIDUAL = "converged: the model reproduces the data exactly (zero cost)"
    PRECISION = "converged: no further reduction of the cost is possible in floating point"
    MAX_ITER = "stopped: the iteration budget max_iter was used up; raise max_iter"
    MAX_TIME = "stopped: the wall-time budget max_time was used up; raise max_time"
    MAX_EVALS = "stopped: the evaluation budget max_evals was used up; raise max_evals"
    CALLBACK = "stopped: the callback asked to stop"
    STALLED = "failed: no step the solver tried reduced the cost"
    NONFINITE = "failed: the cost or its derivatives became non-finite at the current point"
    FAILED = "failed: the solver could not continue (see the result's message)"

    @property
    def success(self) -> bool:
        """True for the statuses that mean the solver reached a minimum."""
        return self in _CONVERGED

    def __str__(self) -> str:
        return self.value


_CONVERGED = {Status.FTOL, Status.XTOL, Status.GTOL, Status.ZERO_RESIDUAL, Status.PRECISION}
