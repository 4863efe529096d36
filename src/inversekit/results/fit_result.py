"""The result of a fit: best parameters, uncertainties, diagnostics and a readable report."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from inversekit.errors import InputError
from inversekit.results.archive import identical, to_archive
from inversekit.results.plots import plot_fit
from inversekit.results.report import report_lines
from inversekit.results.status import Status
from inversekit.results.table import result_table

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

    Identifiability (see :mod:`inversekit.results.identifiability`): ``unconstrained``
    names the free elements the data do not constrain and ``unconstrained_reasons`` says
    why, per label; the message then carries a warning and :attr:`trustworthy` is False
    (the status stays what the solver said). ``condition_number`` is inf when a
    derivative is at rounding level.

    Every parameter: ``stderr_all`` maps every parameter (free, fixed, tied) to a tensor
    of its shape: free elements as ``stderr``, fixed ones 0, tied ones by the delta
    method; ``lower``/``upper`` hold each parameter's bounds (``±inf`` open) and ``ties``
    the definition of each tied parameter. ``confidence_intervals`` keeps the last
    :meth:`intervals` computed (label to a dict of its bounds).
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
    likelihood: str = "gaussian"  # the likelihood fitted (its spec, e.g. "poisson")
    priors: list[str] = field(default_factory=list)  # parameters that carried priors
    jacobian: str = ""  # derivative engine that ran, and why it was chosen
    unconstrained: list[str] = field(default_factory=list)
    unconstrained_reasons: dict[str, str] = field(default_factory=dict)
    stderr_all: dict[str, Tensor] = field(default_factory=dict)
    lower: dict[str, Tensor] = field(default_factory=dict)
    upper: dict[str, Tensor] = field(default_factory=dict)
    ties: dict[str, str] = field(default_factory=dict)
    confidence_intervals: dict[str, dict] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        """True when the solver converged (see :class:`~inversekit.Status`)."""
        return self.status.success

    @property
    def trustworthy(self) -> bool:
        """True when the solver converged *and* the data constrain every free parameter
        (``unconstrained`` is empty). A fit that converged to a point where some parameter
        has no effect (a saturated rate, a component of zero amplitude) is ``success``
        but not ``trustworthy``: its values and standard errors for those parameters mean
        nothing."""
        return self.success and not self.unconstrained

    def __post_init__(self) -> None:
        if not self.message:
            self.message = self.status.value
        # set by inversekit.fit for a least-squares problem (see intervals); not saved
        self._profiler: Callable | None = None

    def report(self, min_correlation: float = 0.5) -> str:
        """A readable multi-line summary: fit statistics, every parameter (fixed and tied
        ones marked), correlations above ``min_correlation`` in size (largest first) and
        warnings (parameters not constrained by the data, near-degenerate directions)."""
        return "\n".join(report_lines(self, min_correlation))

    def __str__(self) -> str:
        return self.report()

    def intervals(self, names=None, level: float = 0.95, solver=None):
        """Profile-likelihood confidence intervals at ``level`` for the free elements
        ``names`` (labels such as ``"b1"`` or ``"c[1]"``; default all), with the
        delta-method interval beside each: see
        :func:`inversekit.optimize.intervals.profile_intervals`, which refits the problem
        with each element fixed at trial values. Available on a result of
        :func:`inversekit.fit` (a loaded result has no problem to refit: call
        ``inversekit.profile_intervals(problem, result, ...)``). The intervals are also
        kept in ``confidence_intervals`` (and in :meth:`to_table`)."""
        if self._profiler is None:
            raise InputError(
                "intervals need the problem: call inversekit.profile_intervals(problem, "
                "result, ...) (a loaded result, or one not made by inversekit.fit on a "
                "least-squares problem, does not hold it)"
            )
        return self._profiler(self, names=names, level=level, solver=solver)

    def to_table(self):
        """Every parameter as a :class:`~inversekit.results.table.Table` (value, standard
        error rounded to it, bounds, fixed/tied/prior flags, intervals when computed),
        with ``to_csv``, ``to_json``, ``to_latex`` and ``to_pandas``."""
        return result_table(self)

    def plot(self, problem, path=None):
        """The figure of :func:`inversekit.results.plots.plot_fit`: data, best fit and
        normalised residuals of a 1-D fit, written to ``path`` (returned) or returned as
        a matplotlib figure."""
        return plot_fit(problem, self, path)

    def save(self, path) -> None:
        """Write to ``path`` (``.npz``); :func:`inversekit.load` reads it back bit-identically."""
        to_archive(self, path, FORMAT)

    def __eq__(self, other) -> bool:
        return isinstance(other, FitResult) and identical(self, other)
