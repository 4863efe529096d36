"""The one iteration loop every solver runs under.

A solver is only its maths (see :class:`~inversekit.contracts.Solver`): ``init``,
``step`` and ``terminate`` over an explicit state. This loop owns everything around it:
the iteration, wall-time and evaluation budgets, the non-finite check, the progress bar,
the user's callback, logging, the cost history, checkpoints and resuming, and the result
(the fields every solver has plus the statistics the problem defines).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from inversekit.contracts import Solver
from inversekit.errors import InputError
from inversekit.optimize import checkpoint as ckpt
from inversekit.results.assemble import Run, build_result
from inversekit.results.status import Status

log = logging.getLogger("inversekit")

_RESUMABLE = {Status.MAX_ITER, Status.MAX_TIME, Status.MAX_EVALS, Status.CALLBACK}


@dataclass
class IterationState:
    """What a ``callback`` receives after every iteration.

    ``params`` are the physical values of every parameter (fixed ones included), unpacked
    by the problem: ``(B, ...)`` tensors for a batched problem. ``cost`` is the sum over a
    batch's running problems.
    """

    iteration: int
    cost: float
    params: dict[str, Tensor]
    elapsed: float
    solver_state: Any


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often the loop writes checkpoints (``every`` iterations, and at the
    end of the run)."""

    path: str
    every: int = 1


def _progress_bar(enabled: bool | None, total: int, done: int, name: str):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=name, unit="it", leave=False)


def _budget_status(solver: Solver, state, n_iter: int, elapsed: float) -> Status | None:
    if n_iter >= solver.max_iter:
        return Status.MAX_ITER
    if solver.max_time is not None and elapsed > solver.max_time:
        return Status.MAX_TIME
    if solver.max_evals is not None and solver.n_evals(state) >= solver.max_evals:
        return Status.MAX_EVALS
    return None


def iterate(
    problem,
    solver: Solver,
    *,
    callback: Callable[[IterationState], bool | None] | None = None,
    progress: bool | None = None,
    checkpoint: Checkpointing | None = None,
    resume: str | None = None,
):
    """Run ``solver`` on ``problem`` until it terminates or a budget is used up.

    ``callback(state)`` is called after every iteration; returning ``True`` stops the run
    with :attr:`Status.CALLBACK`. ``progress`` shows a tqdm bar (default: only when stderr
    is a terminal). With ``checkpoint`` the solver's state is written every
    ``checkpoint.every`` iterations and at the end; ``resume`` continues the run saved in
    that file (the same problem and solver) exactly where it stopped.
    """
    start = time.perf_counter()
    fingerprint = problem.fingerprint() if checkpoint or resume else None
    if resume is not None:
        saved = ckpt.read(resume, solver=solver.name, problem=fingerprint)
        try:
            state = solver.restore(problem, saved.state)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(
                f"checkpoint file {resume} is incomplete or was written by another version "
                f"of inversekit ({type(exc).__name__}: {exc})"
            ) from None
        n_iter, history, before = saved.n_iter, saved.history, saved.elapsed
        # a run stopped by a budget or the callback continues (with this solver's budgets);
        # one that converged or failed is over
        status = None if saved.status is None else Status[saved.status]
        if status in _RESUMABLE:
            status = None
        log.info("%s resumed from %s at iteration %d", solver.name, resume, n_iter)
    else:
        state = solver.init(problem)
        n_iter, history, before = 0, [solver.cost(state)], 0.0
        status = None if math.isfinite(history[0]) else Status.NONFINITE

    def elapsed() -> float:
        return before + time.perf_counter() - start

    def save() -> None:
        ck = ckpt.Checkpoint(
            solver=solver.name,
            problem=fingerprint,
            state=dict(solver.save(state)),
            n_iter=n_iter,
            elapsed=elapsed(),
            history=history,
            status=None if status is None else status.name,
        )
        ckpt.write(checkpoint.path, ck)

    bar = _progress_bar(progress, solver.max_iter, n_iter, solver.name)
    try:
        while status is None:
            status = _budget_status(solver, state, n_iter, elapsed())
            if status is not None:
                break
            state = solver.step(problem, state)
            n_iter += 1
            cost = solver.cost(state)
            history.append(cost)
            log.debug("%s iteration %d: cost %.17g", solver.name, n_iter, cost)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(cost=f"{cost:.6g}")
            if not math.isfinite(cost):
                status = Status.NONFINITE
                break
            status = solver.terminate(problem, state)
            if status is None and callback is not None:
                point = solver.point(problem, state)
                info = IterationState(n_iter, cost, problem.unpack(point), elapsed(), state)
                if callback(info):
                    status = Status.CALLBACK
            if status is None and checkpoint is not None and n_iter % checkpoint.every == 0:
                save()
    finally:
        if bar is not None:
            bar.close()
    if checkpoint is not None:
        save()  # the finished run: resuming it gives the result without iterating
    run = Run(status, n_iter, elapsed(), history)
    log.info("%s finished after %d iterations: %s", solver.name, n_iter, status.value)
    result = build_result(problem, solver.summary(problem, state), run, solver.name)
    result.time = elapsed()  # include the statistics (covariance) in the time
    return result


def checkpointing(path, every) -> Checkpointing | None:
    """The checkpoint settings of :func:`~inversekit.fit`, checked."""
    if path is None:
        if every is not None:
            raise InputError("checkpoint_every was given without checkpoint (a file path)")
        return None
    every = 1 if every is None else every
    if not (isinstance(every, int) and not isinstance(every, bool) and every >= 1):
        raise InputError(f"checkpoint_every must be a positive integer, got {every!r}")
    folder = Path(path).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise InputError(
            f"checkpoint {path}: the folder {folder} does not exist or is not writable"
        )
    if Path(path).is_dir():
        raise InputError(f"checkpoint {path} is a folder; give a file path")
    return Checkpointing(str(path), every)
