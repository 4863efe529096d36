"""The one result builder: the fields every solver has plus the statistics the problem
defines.

The loop hands over the solver's :class:`~inversekit.contracts.Summary` (final point,
cost, counts, message) and its own :class:`Run` (status, iterations, time, history); the
problem's contract decides which statistics are added: chi2, covariance and friends for
least squares, nothing more for a scalar objective. A batched problem gets the batched
form of the same result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inversekit.contracts import (
    BatchedLeastSquaresProblem,
    LeastSquaresProblem,
    Summary,
    implements,
)
from inversekit.results.batched import BatchedFitResult, batched_result
from inversekit.results.fit_result import FitResult
from inversekit.results.identifiability import short_reason
from inversekit.results.least_squares import least_squares_statistics
from inversekit.results.status import Status


@dataclass
class Run:
    """What the loop measured: status, iterations, wall time, cost after each iteration."""

    status: Status
    n_iter: int
    time: float
    history: list[float] = field(default_factory=list)


def build_result(problem, summary: Summary, run: Run, solver: str) -> FitResult | BatchedFitResult:
    """The result of ``solver``'s run on ``problem`` (see the module docstring)."""
    if implements(problem, BatchedLeastSquaresProblem):
        return batched_result(problem, summary, run, solver=solver)
    u = summary.u
    params = problem.params
    stats = least_squares_statistics(problem, u) if implements(problem, LeastSquaresProblem) else {}
    cost = stats.pop("cost", summary.cost)
    result = FitResult(
        params=_in_order(problem.unpack(u), params),
        x=params.physical(u).detach(),
        labels=params.labels(),
        cost=cost,
        status=run.status,
        n_iter=run.n_iter,
        n_fev=int(summary.n_fev),
        n_jev=int(summary.n_jev),
        time=run.time,
        history=list(run.history),
        solver=solver,
        message=_message(run.status, summary.message),
        **description(params),
        **stats,
    )
    if result.unconstrained:  # the status stays the solver's; the message warns
        result.message += "; " + unconstrained_warning(result.unconstrained_reasons)
    return result


def _in_order(values: dict, params) -> dict:
    """The unpacked values in the order the parameters were declared (ties are computed
    last but listed where they were declared)."""
    order = [n for n in params if n in values] + [n for n in values if n not in params]
    return {n: values[n].detach() for n in order}


def description(params) -> dict:
    """What a result keeps of the parameters' description: every parameter's bounds
    (``lower``/``upper``, ``±inf`` open; tied ones have none) and each tie's definition."""
    return {
        "lower": {n: t.detach().clone() for n, t in params.lower.items()},
        "upper": {n: t.detach().clone() for n, t in params.upper.items()},
        "ties": {n: params.tie_text(n) for n in params.tied_names},
    }


def unconstrained_warning(reasons: dict[str, str]) -> str:
    """``"WARNING: b2 not constrained by the data (derivative at rounding level)"``, one
    clause per label (the first five, then a count)."""
    items = list(reasons.items())
    clauses = [
        f"WARNING: {k} not constrained by the data ({short_reason(v)})" for k, v in items[:5]
    ]
    if len(items) > 5:
        clauses.append(f"WARNING: {len(items) - 5} more parameters not constrained by the data")
    return "; ".join(clauses)


def _message(status: Status, own: str) -> str:
    """The status's message, with the solver's own words when it has more to say."""
    return status.value if not own or own == status.value else f"{status.value} ({own})"
