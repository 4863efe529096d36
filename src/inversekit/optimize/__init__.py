"""Local optimisers and the front-end :func:`fit`."""

from __future__ import annotations

from collections.abc import Callable

from inversekit.errors import InputError
from inversekit.optimize.levenberg_marquardt.solver import LM, LevenbergMarquardt
from inversekit.optimize.loop import IterationState, iterate
from inversekit.results.status import Status

# Shorthand names for default-constructed solvers.
SOLVERS: dict[str, Callable[[], object]] = {
    "lm": LevenbergMarquardt,
    "levenberg_marquardt": LevenbergMarquardt,
    "levenberg-marquardt": LevenbergMarquardt,
}


def _default_solver(problem):
    if hasattr(problem, "default_solver"):
        return problem.default_solver()
    if hasattr(problem, "normal_equations"):
        return LevenbergMarquardt()
    raise InputError(
        f"no default solver for a {type(problem).__name__}; pass one explicitly "
        f"(known names: {', '.join(sorted(SOLVERS))})"
    )


def resolve_solver(solver, problem):
    """A solver object from ``None`` (the problem's default), a name, or a solver object."""
    if solver is None:
        return _default_solver(problem)
    if isinstance(solver, str):
        key = solver.strip().lower()
        if key not in SOLVERS:
            raise InputError(
                f"unknown solver name {solver!r}; known names: {', '.join(sorted(SOLVERS))}"
            )
        solver = SOLVERS[key]()
    from inversekit.optimize.levenberg_marquardt.batched import BatchedLevenbergMarquardt

    if type(solver) is LevenbergMarquardt and hasattr(problem, "batched_normal_equations"):
        return BatchedLevenbergMarquardt.from_lm(solver)  # same options, one run per batch
    for method in ("init", "step", "terminate", "postprocess"):
        if not callable(getattr(solver, method, None)):
            raise InputError(
                f"solver must be a name or a solver object with init/step/terminate/"
                f"postprocess; {type(solver).__name__} has no {method}()"
            )
    return solver


def fit(
    problem,
    solver=None,
    *,
    callback: Callable[[IterationState], bool | None] | None = None,
    progress: bool | None = None,
):
    """Solve ``problem`` with ``solver`` and return a result object.

    Args:
        problem: e.g. an :class:`inversekit.LeastSquares`.
        solver: a solver object such as ``inversekit.LM(max_iter=500)``, a name (``"lm"``:
            a default-constructed solver), or ``None`` for the problem's default
            (Levenberg–Marquardt for least squares).
        callback: called as ``callback(state)`` after each iteration with an
            :class:`~inversekit.optimize.loop.IterationState`; return ``True`` to stop.
        progress: show a progress bar (default: only when stderr is a terminal).

    Returns:
        A :class:`~inversekit.FitResult` (for least squares).
    """
    solver = resolve_solver(solver, problem)
    return iterate(problem, solver, callback=callback, progress=progress)


__all__ = ["LM", "IterationState", "LevenbergMarquardt", "Status", "fit", "resolve_solver"]
