"""Profile-likelihood confidence intervals: refit with one parameter fixed at trial values.

For a free element ``θ`` of a least-squares fit the profile is
``P(t) = min over the other parameters of 2·cost`` with ``θ = t`` (``2·cost`` is ``chi2``
plus the priors' ``-2 log p``); ``Δ(t) = P(t) - P(θ̂)``. The ends of the interval at
``level`` are the two roots of ``Δ(t) = c``:

- noise level given (covariance absolute): ``c = χ²₁(level)``, the ``level`` quantile of the
  chi-square distribution with one degree of freedom (Wilks: ``Δ`` is ``χ²₁`` distributed
  near the truth); 3.84 at 95%;
- no noise level (covariance scaled by ``s² = chi2/(n - p)``): ``c = s² F(level; 1, n - p)``,
  the F-test lmfit's ``conf_interval`` uses (``Δχ²/s²`` is F-distributed when the noise is
  estimated from the same residuals); ``F(level; 1, ν) = t(½ + level/2; ν)²``.

Beside it the delta-method interval ``θ̂ ± z σ_θ`` (``z`` the normal quantile with the noise
given, Student's ``t`` with ``n - p`` degrees of freedom without), which the profile
interval equals for a model linear in its parameters and departs from where the model is
not: asymmetric intervals, or one side open (``±inf``, or the bound) when the data do not
constrain the parameter that way.

Each side is bracketed by stepping out from ``θ̂`` in steps of ``z σ_θ`` doubled each time
(up to :data:`MAX_DOUBLINGS` times, then the side is open), and the root is found by
Brent's method (``scipy.optimize.brentq``); every evaluation is a refit started from the
parameters of the nearest trial already fitted (continuation along the profile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from inversekit.contracts import LeastSquaresProblem, implements
from inversekit.errors import InputError, ModelError
from inversekit.problem.least_squares import LeastSquares
from inversekit.problem.params import Params

MAX_DOUBLINGS = 12  # a side still below the threshold 2^12 steps out is open


@dataclass
class Interval:
    """One element's interval: profile (``lower``, ``upper``) and delta method
    (``delta_lower``, ``delta_upper``) at ``level``; ``n_refits`` fits it took; ``note``
    says why a side is open or ends at a bound."""

    label: str
    value: float
    stderr: float
    lower: float
    upper: float
    delta_lower: float
    delta_upper: float
    level: float
    n_refits: int
    note: str = ""

    def as_dict(self) -> dict:
        """The columns a result keeps (``FitResult.confidence_intervals``)."""
        return {
            "level": self.level,
            "profile_lower": self.lower,
            "profile_upper": self.upper,
            "delta_lower": self.delta_lower,
            "delta_upper": self.delta_upper,
            "n_refits": self.n_refits,
            "note": self.note,
        }


@dataclass
class Intervals:
    """The intervals of several elements at one ``level``; ``intervals["b1"]`` is one
    :class:`Interval`; ``str()`` prints a table."""

    level: float
    method: str  # how the threshold was set
    rows: list[Interval] = field(default_factory=list)

    def __getitem__(self, label: str) -> Interval:
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(label)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def n_refits(self) -> int:
        """Fits made for all the intervals together."""
        return sum(r.n_refits for r in self.rows)

    def __str__(self) -> str:
        head = ["name", "value", "profile lower", "profile upper", "delta lower", "delta upper"]
        cells = [
            [r.label]
            + [f"{v:.8g}" for v in (r.value, r.lower, r.upper, r.delta_lower, r.delta_upper)]
            + [str(r.n_refits), r.note]
            for r in self.rows
        ]
        head += ["refits", "note"]
        widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head)]
        lines = [f"[[Confidence intervals]] {self.level:.4g} ({self.method})"]
        lines.append("    " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
        for c in cells:
            lines.append("    " + "  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
        return "\n".join(line.rstrip() for line in lines)


def profile_intervals(problem, result, names=None, level: float = 0.95, solver=None) -> Intervals:
    """Profile-likelihood intervals (see the module docstring) of the free elements
    ``names`` (labels such as ``"b2"`` or ``"c[1]"``; a tensor parameter's name means all
    its free elements; default: every free element) of ``result``, a fit of the
    :class:`~inversekit.LeastSquares` ``problem``. ``solver`` refits (default: the
    problem's default solver). The intervals are also stored in
    ``result.confidence_intervals``."""
    from scipy import optimize, stats  # noqa: PLC0415 - scipy costs memory when imported

    if not isinstance(problem, LeastSquares) or not implements(problem, LeastSquaresProblem):
        raise InputError(
            "profile_intervals needs the inversekit.LeastSquares problem that was fitted, "
            f"got {type(problem).__name__}"
        )
    if not 0.0 < level < 1.0:
        raise InputError(f"level must lie strictly between 0 and 1, got {level!r}")
    labels = _labels(result, names)
    known = problem.noise_known
    ndf = result.ndf if result.ndf is not None else 0
    if known:
        target = float(stats.chi2.ppf(level, 1))
        z = float(stats.norm.ppf(0.5 + level / 2))
        method = "profile: Δchi2 = chi2 quantile, 1 dof; delta method: value ± z·stderr"
    else:
        if ndf <= 0:
            raise InputError(
                "intervals without a noise level need more data points than parameters"
            )
        s2 = result.chi2 / ndf
        target = s2 * float(stats.f.ppf(level, 1, ndf))
        z = float(stats.t.ppf(0.5 + level / 2, ndf))
        method = (
            f"profile: Δchi2 = s²·F(1, {ndf}) quantile, noise estimated; "
            f"delta method: value ± t({ndf})·stderr"
        )
    out = Intervals(level, method)
    for label in labels:
        profile = _Profile(problem, result, label, solver)
        row = profile.interval(target, z, optimize.brentq)
        row.level = level
        out.rows.append(row)
        result.confidence_intervals[label] = row.as_dict()
    return out


def attach(result, problem) -> None:
    """Give a result of :func:`inversekit.fit` on a least-squares ``problem`` what its
    :meth:`~inversekit.FitResult.intervals` needs (the problem; not saved with it)."""
    if isinstance(problem, LeastSquares) and hasattr(result, "_profiler"):

        def profiler(res, names=None, level=0.95, solver=None):
            return profile_intervals(problem, res, names=names, level=level, solver=solver)

        result._profiler = profiler


def _labels(result, names) -> list[str]:
    if names is None:
        return list(result.labels)
    if isinstance(names, str):
        names = [names]
    out = []
    for n in names:
        if n in result.labels:
            out.append(n)
            continue
        elements = [lb for lb in result.labels if lb.startswith(f"{n}[")]
        if not elements:
            raise InputError(
                f"no free parameter element {n!r} to profile; free elements: "
                + ", ".join(result.labels[:20])
            )
        out += elements
    return out


class _Profile:
    """``Δ(t)`` of one free element, each value a refit (remembered: brentq and the
    bracketing ask for some twice), and the interval it gives."""

    def __init__(self, problem: LeastSquares, result, label: str, solver):
        self.problem, self.result, self.label, self.solver = problem, result, label, solver
        self.k = result.labels.index(label)
        self.name, self.element = _owner(problem.params, label)
        self.value = float(result.x[self.k])
        self.best = 2.0 * float(result.cost)
        self.fits: dict[float, tuple[float, dict]] = {}  # t -> (2 cost, params)
        self.n_refits = 0
        lower = problem.params.lower[self.name].reshape(-1)[self.element]
        upper = problem.params.upper[self.name].reshape(-1)[self.element]
        self.bounds = (float(lower), float(upper))

    def delta(self, t: float) -> float:
        """``Δ(t)``: twice the cost of the refit with the element fixed at ``t``, less
        twice the best cost."""
        if t not in self.fits:
            self.fits[t] = self._refit(t)
        return self.fits[t][0] - self.best

    def _refit(self, t: float) -> tuple[float, dict]:
        from inversekit.optimize.fit import fit  # noqa: PLC0415 - fit attaches this module

        start = self._nearest(t)
        params = _fixed_params(self.problem.params, start, self.name, self.element, t)
        if params.n_free == 0:  # nothing else to fit: the profile is the cost itself
            u = self.problem.params.pack(params.values)  # the point in the problem's own u
            return 2.0 * self.problem.value(u) if self._defined(u) else math.inf, start
        try:
            refit = _with_params(self.problem, params)
        except ModelError:  # the model is not defined there: the profile ends
            return math.inf, start
        self.n_refits += 1
        got = fit(refit, self.solver, progress=False)
        # the cost of the problem itself at the refit's point: the refit leaves out the
        # profiled element's prior (a fixed element carries none)
        u = self.problem.params.pack(got.params)
        cost = 2.0 * self.problem.value(u) if self._defined(u) else math.inf
        return (cost if math.isfinite(cost) else math.inf), dict(got.params)

    def _defined(self, u) -> bool:
        try:
            return math.isfinite(self.problem.value(u))
        except Exception:  # noqa: BLE001 - a model undefined there
            return False

    def _nearest(self, t: float) -> dict:
        """The parameters of the trial nearest ``t`` (the fit itself at first)."""
        if not self.fits:
            return dict(self.result.params)
        near = min(self.fits, key=lambda s: abs(s - t))
        if abs(near - t) >= abs(self.value - t):
            return dict(self.result.params)
        return self.fits[near][1]

    def interval(self, target: float, z: float, brentq) -> Interval:
        sd = _stderr(self.result, self.k)
        step = z * sd if math.isfinite(sd) and sd > 0 else 0.1 * max(abs(self.value), 1.0)
        ends, notes = [], []
        for side in (-1.0, 1.0):
            end, note = self._side(side, step, target, brentq)
            ends.append(end)
            if note:
                notes.append(note)
        lowest = min((self.delta(t) for t in self.fits), default=0.0)
        if lowest < -1e-6 * max(target, 1.0):  # beyond the refits' own convergence
            notes.append(
                f"a refit reached chi2 lower by {-lowest:.3g}: the fit was not at the "
                "minimum, refit before reading these intervals"
            )
        return Interval(
            label=self.label,
            value=self.value,
            stderr=sd,
            lower=ends[0],
            upper=ends[1],
            delta_lower=self.value - z * sd,
            delta_upper=self.value + z * sd,
            level=math.nan,
            n_refits=self.n_refits,
            note="; ".join(notes),
        )

    def _side(self, side: float, step: float, target: float, brentq) -> tuple[float, str]:
        bound = self.bounds[1] if side > 0 else self.bounds[0]
        inner = self.value
        word = "upper" if side > 0 else "lower"
        for i in range(MAX_DOUBLINGS + 1):
            t = self.value + side * step * 2.0**i
            at_bound = math.isfinite(bound) and (t - bound) * side >= 0
            if at_bound:
                t = bound
            d = self.delta(t)
            if d >= target:
                root = brentq(
                    lambda s: self.delta(s) - target,
                    min(inner, t),
                    max(inner, t),
                    xtol=1e-12 * step,
                    rtol=4 * 2.0**-52,
                )
                return float(root), ""
            if at_bound:
                return bound, f"{word} end at the bound {bound:g} (profile below threshold)"
            inner = t
        return side * math.inf, (
            f"{word} side open: the profile stays below the threshold {2**MAX_DOUBLINGS} "
            "steps out (not constrained by the data that way)"
        )


def _stderr(result, k: int) -> float:
    """Element ``k``'s standard error from the covariance (finite at a bound, where the
    reported one is NaN); inf when it is not identifiable."""
    if result.labels[k] in result.unidentified or result.covariance is None:
        return math.inf
    return math.sqrt(max(float(result.covariance[k, k]), 0.0))


def _owner(params: Params, label: str) -> tuple[str, int]:
    """``(parameter name, flat element index)`` of a free element's label."""
    for name in params.free_names:
        labels = params.element_labels(name)
        if label in labels:
            return name, labels.index(label)
    raise InputError(f"{label!r} is not a free element")


def _fixed_params(params: Params, values: dict, name: str, element: int, t: float) -> Params:
    """A copy of ``params`` starting at ``values`` with element ``element`` of ``name``
    fixed at ``t`` (the others as they were: free, fixed or tied)."""
    items = {}
    tied = set(params.tied_names)
    for n in params:
        p = params[n]
        if n in tied:
            items[n] = p.copy()
            continue
        value = torch.as_tensor(values[n], dtype=params.dtype).detach().clone()
        if n != name:
            items[n] = p.copy(value=value)
            continue
        flat = value.reshape(-1)
        flat[element] = t
        mask = params.fixed[n].reshape(-1).clone()
        mask[element] = True
        if value.dim() == 0:
            items[n] = p.copy(value=flat.reshape(()), fixed=True)
        else:
            items[n] = p.copy(value=flat.reshape(value.shape), fixed=mask.reshape(value.shape))
    return Params(items, dtype=params.dtype, device=params.device)


def _with_params(problem: LeastSquares, params: Params) -> LeastSquares:
    """The same data, model, noise, mask and likelihood with other parameters."""
    return problem.with_params(params, jacobian="auto")
