"""The result of a fit: best parameters, uncertainties, diagnostics and a readable report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from inversekit.results.archive import identical, to_archive
from inversekit.results.status import Status

FORMAT = "inversekit.FitResult"


@dataclass
class FitResult:
    """Everything a user needs after a fit, whatever the solver.

    Every solver fills the first group: ``params`` holds every parameter (fixed ones
    included) as physical tensors; ``x`` is the flat vector of free elements in physical
    space, labelled by ``labels``; ``cost`` the objective at the end (``½ chi2`` for least
    squares), ``status`` why the run stopped and ``message`` the solver's own words;
    iteration and evaluation counts, wall time and the cost after each iteration.

    The problem adds the statistics it defines. For least squares: ``chi2``,
    ``reduced_chi2``, ``ndf``, ``n_data``, ``covariance`` and ``correlation`` over ``x``,
    ``stderr`` mapping each free parameter to a tensor of its shape (NaN where the
    parameter sits at a bound, inf where it is not identifiable), ``covariance_scaled``
    (scaled by ``reduced_chi2`` because no noise level was given, or absolute),
    ``condition_number`` of ``JᵀWJ`` with every parameter scaled to unit curvature,
    ``near_null`` (the parameters of each near-degenerate direction), ``log_likelihood``
    and ``jacobian`` (the derivative engine that ran, and why). For a scalar objective
    they stay empty (``None``, NaN).
    """

    params: dict[str, Tensor]
    x: Tensor
    labels: list[str]
    cost: float
    status: Status
    n_iter: int
    n_fev: int
    n_jev: int
    time: float
    history: list[float]
    solver: str = ""
    message: str = ""
    covariance: Tensor | None = None
    stderr: dict[str, Tensor] = field(default_factory=dict)
    correlation: Tensor | None = None
    chi2: float = math.nan
    reduced_chi2: float = math.nan
    ndf: int | None = None
    n_data: int | None = None
    covariance_scaled: bool | None = None
    condition_number: float = math.nan
    near_null: list[list[str]] = field(default_factory=list)
    at_bounds: list[str] = field(default_factory=list)
    unidentified: list[str] = field(default_factory=list)
    log_likelihood: float = math.nan
    priors: list[str] = field(default_factory=list)  # parameters that carried priors
    jacobian: str = ""  # derivative engine that ran, and why it was chosen

    @property
    def success(self) -> bool:
        """True when the solver converged (see :class:`~inversekit.Status`)."""
        return self.status.success

    def __post_init__(self) -> None:
        if not self.message:
            self.message = self.status.value

    def report(self) -> str:
        """A readable multi-line summary: fit statistics, parameters, warnings."""
        return "\n".join(_report_lines(self))

    def __str__(self) -> str:
        return self.report()

    def save(self, path) -> None:
        """Write to ``path`` (``.npz``); :func:`inversekit.load` reads it back bit-identically."""
        to_archive(self, path, FORMAT)

    def __eq__(self, other) -> bool:
        return isinstance(other, FitResult) and identical(self, other)


def _fmt(v: float) -> str:
    return f"{v:.10g}" if math.isfinite(v) else str(v)


def _report_lines(r: FitResult) -> list[str]:
    mark = "" if r.success else "  <-- NOT CONVERGED"
    lines = [
        f"[[Fit: {r.solver}]]",
        f"    status          {r.status.name}: {r.message}{mark}",
        f"    iterations      {r.n_iter}  (function evals {r.n_fev}, "
        f"{'gradient' if r.n_data is None else 'Jacobian'} evals {r.n_jev})",
        f"    time            {r.time:.4g} s",
    ]
    if r.n_data is None:  # a scalar objective: no data statistics
        lines += [f"    free parameters {len(r.labels)}", f"    cost            {_fmt(r.cost)}"]
    else:
        noise = (
            "covariance scaled by reduced chi2 (no noise level given)"
            if r.covariance_scaled
            else "covariance absolute (noise level given)"
        )
        lines += [
            f"    derivatives     {r.jacobian}",
            f"    data points     {r.n_data}   free parameters {len(r.labels)}   ndf {r.ndf}",
            f"    chi-square      {_fmt(r.chi2)}",
            f"    reduced chi2    {_fmt(r.reduced_chi2)}",
            f"    cost            {_fmt(r.cost)}",
            f"    {noise}",
            f"    condition       {r.condition_number:.3g} "
            "(of JᵀWJ, parameters scaled to unit curvature)",
        ]
    lines.append("[[Parameters]]")
    lines += _parameter_lines(r)
    lines += _warning_lines(r)
    return lines


def _parameter_lines(r: FitResult, limit: int = 40) -> list[str]:
    width = max([len(label) for label in r.labels[:limit]] + [4])
    if not r.stderr:  # no uncertainties defined (a scalar objective): values only
        lines = [
            f"    {label:<{width}}  {float(v): .10g}"
            for label, v in zip(r.labels, r.x, strict=True)
        ]
        more = len(r.labels) - limit
        return lines[:limit] + ([f"    ... {more} more free elements"] if more > 0 else [])
    sd = torch.cat([v.reshape(-1) for v in r.stderr.values()])
    lines = []
    flagged = set(r.at_bounds) | set(r.unidentified)
    for i, label in enumerate(r.labels[:limit]):
        value, err = float(r.x[i]), float(sd[i])
        rel = f"({abs(err / value) * 100:.3g}%)" if value != 0 and math.isfinite(err) else ""
        note = ""
        if label in r.at_bounds:
            note = "  at bound: stderr unreliable"
        elif label in r.unidentified:
            note = "  not identifiable"
        err_text = _fmt(err) if label not in flagged else str(err)
        lines.append(f"    {label:<{width}}  {value: .10g} +/- {err_text} {rel}{note}")
    if len(r.labels) > limit:
        lines.append(f"    ... {len(r.labels) - limit} more free elements")
    return lines


def _warning_lines(r: FitResult) -> list[str]:
    lines = []
    if r.near_null:
        lines.append("[[Warnings]]")
        for names in r.near_null[:5]:
            lines.append(
                "    near-degenerate combination of: "
                + ", ".join(names[:8])
                + (" ..." if len(names) > 8 else "")
            )
    return lines
