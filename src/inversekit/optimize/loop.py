"""The one iteration loop every solver runs under.

A solver is only its maths: ``init(problem) -> state``, ``step(problem, state) -> state``,
``terminate(problem, state) -> Status | None`` and ``postprocess(problem, state, run)``.
This loop owns everything around it: the iteration and wall-time budgets, the
non-finite check, the progress bar, the user's callback, logging and statistics.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import Tensor

from inversekit.results.status import Status

log = logging.getLogger("inversekit")


class SolverState(Protocol):
    """What the loop reads from any solver's state."""

    u: Tensor  # current point, unconstrained space
    cost: float


class Solver(Protocol):
    """The contract of an iterative solver (see the module docstring)."""

    name: str
    max_iter: int
    max_time: float | None

    def init(self, problem) -> Any: ...
    def step(self, problem, state) -> Any: ...
    def terminate(self, problem, state) -> Status | None: ...
    def postprocess(self, problem, state, run: Run) -> Any: ...


@dataclass
class IterationState:
    """What a ``callback`` receives after every iteration."""

    iteration: int
    cost: float
    params: dict[str, Tensor]
    elapsed: float
    solver_state: Any


@dataclass
class Run:
    """Statistics the loop gathered: status, iterations, wall time, cost history.

    ``time`` covers the iterations; the result's own ``time`` adds the post-processing.
    """

    status: Status
    n_iter: int
    time: float
    history: list[float] = field(default_factory=list)


def _progress_bar(enabled: bool | None, total: int, name: str):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, unit="it", leave=False)


def iterate(
    problem,
    solver: Solver,
    *,
    callback: Callable[[IterationState], bool | None] | None = None,
    progress: bool | None = None,
):
    """Run ``solver`` on ``problem`` until it terminates or a budget is used up.

    ``callback(state)`` is called after every iteration; returning ``True`` stops the run
    with :attr:`Status.CALLBACK`. ``progress`` shows a tqdm bar (default: only when stderr
    is a terminal). Returns whatever ``solver.postprocess`` builds (a result object).
    """
    start = time.perf_counter()
    state = solver.init(problem)
    history = [state.cost]
    bar = _progress_bar(progress, solver.max_iter, solver.name)
    n_iter = 0
    status = None if math.isfinite(state.cost) else Status.NONFINITE
    try:
        while status is None:
            if n_iter >= solver.max_iter:
                status = Status.MAX_ITER
                break
            if solver.max_time is not None and time.perf_counter() - start > solver.max_time:
                status = Status.MAX_TIME
                break
            state = solver.step(problem, state)
            n_iter += 1
            history.append(state.cost)
            log.debug("%s iteration %d: cost %.17g", solver.name, n_iter, state.cost)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(cost=f"{state.cost:.6g}")
            if not math.isfinite(state.cost):
                status = Status.NONFINITE
                break
            status = solver.terminate(problem, state)
            if status is None and callback is not None:
                info = IterationState(
                    n_iter,
                    state.cost,
                    problem.params.unpack(state.u),
                    time.perf_counter() - start,
                    state,
                )
                if callback(info):
                    status = Status.CALLBACK
    finally:
        if bar is not None:
            bar.close()
    run = Run(status, n_iter, time.perf_counter() - start, history)
    log.info("%s finished after %d iterations: %s", solver.name, n_iter, status.value)
    result = solver.postprocess(problem, state, run)
    result.time = time.perf_counter() - start  # include the uncertainty computation
    return result
