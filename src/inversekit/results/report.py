"""The readable report of a :class:`~inversekit.FitResult`.

Sections: ``[[Fit: solver]]`` (status, counts, statistics), ``[[Parameters]]`` (every
element, fixed and tied ones marked), ``[[Correlations]]`` (pairs above a threshold in
size, largest first) and ``[[Warnings]]`` (parameters the data do not constrain, with
the reason; near-degenerate directions).
"""

from __future__ import annotations

import math

import numpy as np

from inversekit.problem.likelihoods import likelihood_note
from inversekit.results.rows import Row, parameter_rows

ROW_LIMIT = 40  # parameter rows shown
CORRELATION_LIMIT = 20  # correlation pairs shown


def fmt(v: float) -> str:
    """Ten significant digits, or the name of a non-finite value."""
    return f"{v:.10g}" if math.isfinite(v) else str(v)


def report_lines(r, min_correlation: float = 0.5) -> list[str]:
    """The report of result ``r`` as lines (see the module docstring)."""
    return (
        _fit_lines(r)
        + ["[[Parameters]]"]
        + _parameter_lines(r)
        + _correlation_lines(r, min_correlation)
        + _warning_lines(r)
    )


def _fit_lines(r) -> list[str]:
    mark = "" if r.success else "  <-- NOT CONVERGED"
    lines = [
        f"[[Fit: {r.solver}]]",
        f"    status          {r.status.name}: {r.message}{mark}",
    ]
    if r.unconstrained:
        lines.append(
            f"    trustworthy     no: {', '.join(r.unconstrained[:8])}"
            f"{' ...' if len(r.unconstrained) > 8 else ''} not constrained by the data"
        )
    lines += [
        f"    iterations      {r.n_iter}  (function evals {r.n_fev}, "
        f"{'gradient' if r.n_data is None else 'Jacobian'} evals {r.n_jev})",
        f"    time            {r.time:.4g} s",
    ]
    if r.n_data is None:  # a scalar objective: no data statistics
        return lines + [
            f"    free parameters {len(r.labels)}",
            f"    cost            {fmt(r.cost)}",
        ]
    if r.covariance_scaled:
        noise = "covariance scaled by reduced chi2 (no noise level given)"
    elif r.likelihood.startswith("poisson"):
        noise = "covariance absolute (Poisson counts: the variance is the mean)"
    else:
        noise = "covariance absolute (noise level given)"
    rounding = [
        k for k, why in r.unconstrained_reasons.items() if why.startswith("derivative at rounding")
    ]
    condition = f"    condition       {r.condition_number:.3g} "
    if rounding and math.isinf(r.condition_number):
        condition += (
            f"(of JᵀWJ: inf because the derivative of {', '.join(rounding[:4])} is at "
            "rounding level, which scaling to unit curvature would hide)"
        )
    else:
        condition += "(of JᵀWJ, parameters scaled to unit curvature)"
    return lines + [
        f"    derivatives     {r.jacobian}",
        *[f"    likelihood      {likelihood_note(s)}" for s in [r.likelihood] if s != "gaussian"],
        *[
            f"    priors          {', '.join(r.priors)} (the fit is the MAP; chi-square is "
            "the data's, the cost adds the priors)"
            for _ in [0]
            if r.priors
        ],
        f"    data points     {r.n_data}   free parameters {len(r.labels)}   ndf {r.ndf}",
        f"    chi-square      {fmt(r.chi2)}",
        f"    reduced chi2    {fmt(r.reduced_chi2)}",
        f"    cost            {fmt(r.cost)}",
        f"    {noise}",
        condition,
    ]


def _parameter_lines(r) -> list[str]:
    rows = parameter_rows(r)
    shown = rows[:ROW_LIMIT]
    width = max([len(row.label) for row in shown] + [4])
    lines = [f"    {row.label:<{width}}  {_row_text(row, bool(r.stderr))}" for row in shown]
    if len(rows) > ROW_LIMIT:
        lines.append(f"    ... {len(rows) - ROW_LIMIT} more elements")
    return lines


def _row_text(row: Row, uncertainties: bool) -> str:
    if row.kind == "fixed":
        return f"{row.value: .10g} (fixed)"
    if not uncertainties:  # a scalar objective: values only
        text = f"{row.value: .10g}"
        return text + (f" (tied: = {row.tie})" if row.kind == "tied" else "")
    err = row.stderr
    rel = ""
    if row.value != 0 and math.isfinite(err) and not row.note:
        rel = f" ({abs(err / row.value) * 100:.3g}%)"
    err_text = fmt(err) if not row.note else str(err)
    text = f"{row.value: .10g} +/- {err_text}{rel}"
    if row.kind == "tied":
        text += f" (tied: = {row.tie})"
    return text + (f"  {row.note}" if row.note else "")


def _correlation_lines(r, min_correlation: float) -> list[str]:
    if r.correlation is None or len(r.labels) < 2:
        return []
    c = r.correlation.detach().cpu().double().numpy()
    i, j = np.triu_indices(len(r.labels), k=1)
    v = c[i, j]
    keep = np.isfinite(v) & (np.abs(v) > min_correlation)
    if not keep.any():
        return []
    order = np.argsort(-np.abs(v[keep]), kind="stable")
    pairs = [
        (r.labels[a], r.labels[b], x) for a, b, x in zip(i[keep], j[keep], v[keep], strict=True)
    ]
    pairs = [pairs[k] for k in order]
    width = max(len(f"C({a}, {b})") for a, b, _ in pairs[:CORRELATION_LIMIT])
    lines = [f"[[Correlations]] (|r| > {min_correlation:g}, largest first)"]
    lines += [f"    {f'C({a}, {b})':<{width}}  {x:+.4f}" for a, b, x in pairs[:CORRELATION_LIMIT]]
    if len(pairs) > CORRELATION_LIMIT:
        lines.append(f"    ... {len(pairs) - CORRELATION_LIMIT} more pairs")
    return lines


def _warning_lines(r) -> list[str]:
    lines = []
    for label, why in list(r.unconstrained_reasons.items())[:20]:
        lines.append(f"    {label} not constrained by the data: {why}")
    if len(r.unconstrained_reasons) > 20:
        lines.append(f"    ... {len(r.unconstrained_reasons) - 20} more not constrained")
    for names in r.near_null[:5]:
        lines.append(
            "    near-degenerate combination of: "
            + ", ".join(names[:8])
            + (" ..." if len(names) > 8 else "")
        )
    return ["[[Warnings]]", *lines] if lines else []
