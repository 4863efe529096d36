"""The front end :func:`fit` and the solver registry.

Which solver a problem gets by default, and what a solver's string name means, is decided
here and nowhere else: problems never import solvers. A name is shorthand for a
default-constructed solver; the solver is checked against the problem (its ``accepts``)
before any model call.
"""

from __future__ import annotations

from collections.abc import Callable

from inversekit.contracts import BatchedLeastSquaresProblem, LeastSquaresProblem, Solver, implements
from inversekit.errors import InputError
from inversekit.optimize.intervals import attach
from inversekit.optimize.lbfgsb import LBFGSB
from inversekit.optimize.levenberg_marquardt import (
    BatchedLevenbergMarquardt,
    LevenbergMarquardt,
)
from inversekit.optimize.loop import IterationState, checkpointing, iterate

# Shorthand names for default-constructed solvers.
SOLVERS: dict[str, Callable[[], Solver]] = {
    "lm": LevenbergMarquardt,
    "levenberg_marquardt": LevenbergMarquardt,
    "levenberg-marquardt": LevenbergMarquardt,
    "lbfgsb": LBFGSB,
    "l-bfgs-b": LBFGSB,
}


def default_solver(problem) -> Solver:
    """Levenberg–Marquardt for least squares (batched or not), L-BFGS-B otherwise (and
    for least squares with non-Gaussian priors, which are not least-squares rows)."""
    if implements(problem, BatchedLeastSquaresProblem):
        return BatchedLevenbergMarquardt()
    if implements(problem, LeastSquaresProblem) and not problem.params.other_prior_names:
        return LevenbergMarquardt()
    if implements(problem, LeastSquaresProblem):
        # unscaled: the unit-curvature scaling of the data's least squares ignores the
        # priors' curvature, and on a bounded Poisson fit with a Gamma prior it left the
        # line search stalling far from the MAP (cost 42.2 against 36.2) where the
        # unscaled run converged in 30 iterations
        return LBFGSB(scaling="none")
    return LBFGSB()


def resolve_solver(solver, problem) -> Solver:
    """A solver object from ``None`` (the problem's default), a name, or a solver object,
    checked to accept ``problem``; an :class:`~inversekit.InputError` otherwise."""
    if solver is None:
        solver = default_solver(problem)
    elif isinstance(solver, str):
        key = solver.strip().lower()
        if key not in SOLVERS:
            raise InputError(
                f"unknown solver name {solver!r}; known names: {', '.join(sorted(SOLVERS))}"
            )
        solver = SOLVERS[key]()
    if type(solver) is LevenbergMarquardt and implements(problem, BatchedLeastSquaresProblem):
        solver = BatchedLevenbergMarquardt.from_lm(solver)  # same options, one run per batch
    if not implements(solver, Solver):
        raise InputError(
            f"solver must be a name ({', '.join(sorted(SOLVERS))}) or a solver object "
            f"(inversekit.contracts.Solver); got {type(solver).__name__}"
        )
    why = solver.accepts(problem)
    if why is not None:
        raise InputError(f"{solver.name} cannot solve this {type(problem).__name__}: {why}")
    return solver


def fit(
    problem,
    solver=None,
    *,
    callback: Callable[[IterationState], bool | None] | None = None,
    progress: bool | None = None,
    checkpoint=None,
    checkpoint_every: int | None = None,
    resume=None,
):
    """Solve ``problem`` with ``solver`` and return a result object.

    Args:
        problem: an :class:`inversekit.LeastSquares`, :class:`inversekit.BatchedLeastSquares`
            or :class:`inversekit.Objective` (any object meeting the contracts of
            :mod:`inversekit.contracts`).
        solver: a solver object such as ``inversekit.LM(max_iter=500)``, a name (``"lm"``,
            ``"lbfgsb"``: a default-constructed solver), or ``None`` for the default
            (Levenberg–Marquardt for least squares, L-BFGS-B for a scalar objective).
        callback: called as ``callback(state)`` after each iteration with an
            :class:`~inversekit.optimize.loop.IterationState`; return ``True`` to stop.
        progress: show a progress bar (default: only when stderr is a terminal).
        checkpoint: a file path; the solver's state is written there every
            ``checkpoint_every`` iterations (default 1) and at the end, atomically.
        resume: a checkpoint file written by a run of the same solver on the same
            problem; the run continues from it to the answer an uninterrupted run gives.
            Budgets count the whole run (iterations and time before the checkpoint
            included): a run stopped by its budget continues under a larger one.

    Returns:
        A :class:`~inversekit.FitResult` (a :class:`~inversekit.BatchedFitResult` for a
        batched problem).
    """
    solver = resolve_solver(solver, problem)
    saving = checkpointing(checkpoint, checkpoint_every)
    result = iterate(
        problem,
        solver,
        callback=callback,
        progress=progress,
        checkpoint=saving,
        resume=None if resume is None else str(resume),
    )
    attach(result, problem)  # result.intervals() refits this problem
    return result
