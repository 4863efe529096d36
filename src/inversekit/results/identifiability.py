"""Which parameters the data do not constrain, and why.

A least-squares fit can end with a parameter the data say nothing about: a rate driven
into saturation (``b1 (1 - exp(-b2 x))`` with ``b2 x ≫ 1`` at every data point), a
component whose amplitude went to zero (its position and width then have no effect), a
sigmoid turned into a step. The solver still reports convergence and the covariance still
gives a number, ``b2 = 113 +/- 6e48``; the condition number after the unit-curvature
scaling can even look perfect, since that scaling divides the dead column by its own
norm. Five checks, each about one way this happens, name such parameters:

1. **Singular direction.** The parameter takes part in a direction of ``JᵀWJ`` whose
   eigenvalue is below ``p·eps`` of the largest (unit-curvature scaled): its variance is
   infinite (see :mod:`inversekit.linalg.curvature`).
2. **Derivative at rounding level.** The *effect* of a parameter is the change of the
   whitened model when it changes by its own size: ``e_k = ‖J_k‖ max(|x_k|, |x0_k|,
   |dx/du|)`` (physical column ``J_k``; the size is the largest of the value, the start
   ``x0_k`` the user gave, and the change of ``x`` per unit of the solver's coordinate, 1
   for an unbounded parameter, so that a value at zero, or at a bound, still has a
   scale). It is compared with the noise: ``N = max(‖r‖, √n)`` with the noise level given
   (``√n`` is the expected norm of the noise), ``N = ‖r‖`` without (the noise estimated
   from the residuals; ``√n`` would carry the data's units), and never below ``√eps
   (‖y_w‖ + ‖r‖)`` so that an exact fit still has a scale. ``e_k < √eps · N`` means a
   100% change of the parameter moves the model by less than ``1.5e-8`` of the noise: its
   relative standard error exceeds ``1/√eps ≈ 7e7`` whatever the correlations, and in
   ``JᵀWJ`` (squares) its diagonal is below ``eps`` times the noise's: the numbers
   computed for it are rounding. The condition number is then reported as infinite, since
   the unit-curvature scaling would hide the dead column.
3. **Near-degenerate direction.** The parameter has a weight of at least 0.1 in an
   eigenvector of the unit-curvature scaled ``JᵀWJ`` whose eigenvalue is below ``1e-10``
   of the largest (the ``near_null`` directions): a combination of parameters is then
   determined ``1e5`` times worse than each alone, which noisy data never pin down.
4. **Relative standard error beyond 10, where the linear model fails.** A standard error
   above :data:`RELATIVE_LIMIT` times the value is suspicious, but not by itself wrong: a
   background fitted at ``0.0003 +/- 0.005`` is well constrained near zero. The standard
   error is the width of the Gauss–Newton quadratic, which is honest when the model is
   close to linear in the parameter over that width. So ``χ²`` is evaluated at ``x_k +
   δ`` and ``x_k + 2δ`` (``δ`` the standard error, on the side away from any bound) and
   the second difference ``χ²(x+2δ) - 2χ²(x+δ) + χ²(x)`` compared with its linear value
   ``2‖J_k‖²δ²``; a ratio outside ``[1/2, 2]`` (the response flattens, as in a saturated
   exponential, or jumps, as for a step moved out of the data) means the standard error
   is meaningless and the parameter is named. Two model evaluations each, for at most
   :data:`MAX_LINEARITY_CHECKS` parameters (the widest relative errors first).
5. **Effect vanishing at a value the data allow.** If the data cannot exclude ``x_j = 0``
   at 95% (``|x_j| <= 1.96 σ_j``, and ``χ²`` at ``x_j = 0`` with the other parameters at
   their linear best response rises by at most twice ``1.96² s²``: a marginal interval
   that reaches zero only by extrapolation does not count) and another parameter's column
   vanishes when ``x_j`` does (an amplitude and the position and width of its component;
   a coupling and what it couples), that parameter is not constrained: the data are as
   well explained by ``x_j = 0``, where it has no effect at all. The test moves ``x_j``
   to ``2⁻³⁰ x_j`` (inside its bounds) and flags every other column that shrinks below
   ``2⁻¹⁵`` of its norm (a column proportional to ``x_j`` shrinks by ``2⁻³⁰``, one that
   does not depend on it stays; ``2⁻¹⁵`` is the geometric middle). Zero must be a value
   of ``x_j``, not a degenerate limit of the model: ``x_j``'s own column must keep its
   size within that factor there (an amplitude's does; a width's vanishes as the
   component shrinks to a point, and a width is not a candidate). It costs one Jacobian
   per such ``x_j``, for at most :data:`MAX_ZERO_CANDIDATES` of them, and only for
   problems whose covariance takes the whole Jacobian (at most 200 free parameters and
   ``1e7`` Jacobian elements); only parameters no other check named serve as ``x_j`` (a
   meaningless standard error says nothing about which values the data allow).

A named parameter keeps the status the solver gave; the result's message gets a warning,
its ``trustworthy`` is False and the report has a ``[[Warnings]]`` section. Parameters at
a bound are reported as such (``at_bounds``), not as unconstrained, unless a check above
names them too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from inversekit.linalg.curvature import column_norms
from inversekit.linalg.host import host64
from inversekit.results.uncertainty import jacobian_or_curvature

EPS = float(np.finfo(np.float64).eps)
ROUNDING = math.sqrt(EPS)  # check 2: effect below this fraction of the noise
ZERO_QUANTILE = 1.959963984540054  # check 5: the data allow 0 within 1.96 standard errors
SHRINK = 2.0**-30  # check 5: x_j moved to this fraction of itself
VANISHED = 2.0**-15  # check 5: a column shrinking below this fraction vanished with x_j
MAX_ZERO_CANDIDATES = 8  # check 5: Jacobians spent at most
# check 5 runs where the covariance itself takes the whole Jacobian (these sizes), so
# that a few more Jacobians cost little beside the fit
MAX_ZERO_PARAMS, MAX_ZERO_ELEMENTS = 200, 10_000_000
NEAR_NULL_RATIO = 1e-10  # check 3: eigenvalue relative to the largest
NEAR_NULL_WEIGHT = 0.1  # check 3: weight in the eigenvector that counts
RELATIVE_LIMIT = 10.0  # check 4: standard error beyond this many times |value|
LINEAR_BAND = (0.5, 2.0)  # check 4: second-difference ratio of a linear enough model
MAX_LINEARITY_CHECKS = 64  # check 4: parameters tested at most (two model calls each)

# reason codes (batched results store these per problem and parameter)
SINGULAR, ROUNDING_LEVEL, NEAR_NULL, NONLINEAR, VANISHES = 1, 2, 3, 4, 5
SHORT = {
    SINGULAR: "in a singular direction",
    ROUNDING_LEVEL: "derivative at rounding level",
    VANISHES: "effect vanishes where another parameter may be zero",
    NEAR_NULL: "near-degenerate combination",
    NONLINEAR: "standard error beyond 10x the value, model not linear over it",
}


@dataclass
class Identifiability:
    """The parameters the data do not constrain: ``codes[k]`` (0: constrained, else the
    first check of the module docstring that named element ``k``) and ``reasons`` (label
    to a sentence, ``"<short reason> (<numbers>)"``)."""

    codes: np.ndarray
    reasons: dict[str, str]

    @property
    def unconstrained(self) -> list[str]:
        return list(self.reasons)

    @property
    def rounding(self) -> bool:
        """Whether some derivative is at rounding level (the condition number is then inf)."""
        return bool((self.codes == ROUNDING_LEVEL).any())


def short_reason(reason: str) -> str:
    """The part of a reason before its numbers (what the status message shows)."""
    return reason.split(" (", 1)[0]


def noise_norm(chi2_all, n, known: bool, data_norm):
    """``N`` of check 2: the norm the noise has in the whitened residuals, for one problem
    (floats) or a batch (tensors): ``max(‖r‖, √n)`` with the noise known, ``‖r‖``
    without, never below ``√eps (‖y_w‖ + ‖r‖)``."""
    if isinstance(chi2_all, Tensor):
        r = torch.sqrt(chi2_all.clamp(min=0.0))
        noise = torch.maximum(r, torch.sqrt(n.to(r.dtype))) if known else r
        return torch.maximum(noise, ROUNDING * (data_norm + r))
    r = math.sqrt(max(chi2_all, 0.0))
    noise = max(r, math.sqrt(n)) if known else r
    return max(noise, ROUNDING * (data_norm + r))


def effects(norms_u, G, x, x0):
    """``e_k = ‖J_k‖ max(|x_k|, |x0_k|, |dx/du|)`` from the columns in ``u`` (``‖J_k‖
    |dx/du|``), the values ``x`` and the starts ``x0``, for NumPy arrays or torch tensors
    with leading batch axes. A coordinate whose ``dx/du`` vanished (a bound's tail) keeps
    its physical column through the other two scales."""
    if isinstance(norms_u, Tensor):
        g = G.abs()
        physical = torch.where(g > 0, norms_u / torch.where(g > 0, g, 1.0), 0.0)
        return torch.maximum(physical * torch.maximum(x.abs(), x0.abs()), norms_u)
    g = np.abs(G)
    with np.errstate(divide="ignore", invalid="ignore"):
        physical = np.where(g > 0, norms_u / np.where(g > 0, g, 1.0), 0.0)
    return np.maximum(physical * np.maximum(np.abs(x), np.abs(x0)), norms_u)


def chi2_rounding(chi2, scale):
    """A generous bound on the rounding error of a difference of ``χ²`` values whose
    residuals have the norm scale ``scale`` (``‖y_w‖ + ‖r‖``): residuals carry rounding
    of about ``eps·scale`` in norm, so ``χ² = ‖r‖²`` carries ``2‖r‖ eps·scale``; a factor
    1000 keeps check 4 away from it (for one problem or a batch)."""
    r = chi2**0.5
    return 1e3 * EPS * scale * (2.0 * r + EPS * scale)


def curvature_ratio(chi2_0, chi2_1, chi2_2, linear):
    """Check 4's ratio ``(χ²(x+2δ) - 2χ²(x+δ) + χ²(x)) / (2‖J_k‖²δ²)`` (``linear`` is the
    denominator); 1 for a model linear in the parameter."""
    return (chi2_2 - 2.0 * chi2_1 + chi2_0) / linear


def least_squares_identifiability(problem, u: Tensor, unc, x: np.ndarray) -> Identifiability:
    """The checks of the module docstring for one least-squares ``problem`` at its
    solution ``u`` (``unc``: its :class:`~inversekit.results.uncertainty.Uncertainty`,
    ``x`` the free physical values)."""
    params = problem.params
    labels = params.labels()
    p = len(labels)
    codes = np.zeros(p, dtype=np.int8)
    details: dict[int, str] = {}
    G, norms = unc.derivative, unc.column_norms
    chi2_all = 2.0 * problem.cost(u)  # the residual rows J spans (Gaussian priors included)
    N = noise_norm(chi2_all, problem.n_data, problem.noise_known, problem.data_norm)
    scale = problem.data_norm + math.sqrt(chi2_all)  # >= ‖f_w‖: the residuals' rounding scale
    cov = host64(unc.covariance)
    with np.errstate(invalid="ignore"):
        sd = np.where(unc.singular, np.inf, np.sqrt(np.clip(np.diagonal(cov), 0.0, None)))

    # 1. singular directions
    for k in np.flatnonzero(unc.singular):
        codes[k] = SINGULAR
        finite = np.isfinite(norms[k])
        details[k] = "standard error infinite" if finite else "derivative not finite there"
    # 2. derivatives at rounding level
    e = effects(norms, G, x, host64(params.physical(problem.u0)))
    for k in np.flatnonzero((e < ROUNDING * N) & (codes == 0)):
        codes[k] = ROUNDING_LEVEL
        details[k] = f"changing it by 100% moves the model by {e[k] / N:.1e} of the noise"
    # 3. near-degenerate directions
    for v, ev in zip(unc.null_directions.T, unc.null_eigenvalues, strict=True):
        members = np.flatnonzero(np.abs(v) >= NEAR_NULL_WEIGHT)
        for k in members:
            if codes[k] == 0:
                codes[k] = NEAR_NULL
                others = [labels[i] for i in members if i != k][:4]
                details[k] = (
                    f"with {', '.join(others) or 'itself'}: eigenvalue {ev:.1e} of the "
                    "largest, parameters scaled to unit curvature"
                )
    # 4. relative standard error beyond the limit where the model is not linear
    wide = np.flatnonzero(np.isfinite(sd) & (sd > RELATIVE_LIMIT * np.abs(x)) & (codes == 0))
    # two model evaluations each: the widest first, at most MAX_LINEARITY_CHECKS of them
    with np.errstate(divide="ignore"):
        wide = wide[np.argsort(-(sd[wide] / np.abs(x[wide])), kind="stable")]
    for k in wide[:MAX_LINEARITY_CHECKS]:
        rho = _linearity(problem, u, int(k), float(x[k]), float(sd[k]), norms[k] / G[k], scale)
        if rho is not None and not LINEAR_BAND[0] <= rho <= LINEAR_BAND[1]:
            codes[k] = NONLINEAR
            details[k] = (
                f"standard error {sd[k]:.2g} is {sd[k] / max(abs(x[k]), 1e-300):.2g} times "
                f"the value and chi2's curvature over it is {rho:.2g} of the linear model's"
            )
    # 5. effects vanishing where another parameter may be zero
    # the candidates x_j are parameters the other checks found constrained: a meaningless
    # standard error says nothing about which values the data allow
    allowed = (codes == 0) & np.isfinite(sd) & (x != 0) & (np.abs(x) <= ZERO_QUANTILE * sd)
    candidates = sorted(np.flatnonzero(allowed), key=lambda j: abs(x[j]) / sd[j])
    if p > MAX_ZERO_PARAMS or p * problem.n_data > MAX_ZERO_ELEMENTS:
        candidates = []  # a Jacobian per candidate would cost more than the fit's end game
    s2 = unc.scale
    for j in candidates[:MAX_ZERO_CANDIDATES] if p > 1 else []:
        moved = None if codes[j] else moved_point(params, u, int(j), float(x[j]) * SHRINK)
        if moved is None or not _zero_allowed(problem, u, int(j), x, cov, s2):
            continue  # named meanwhile, zero outside its bounds, or excluded by the data
        after = _norms_at(problem, moved)
        # x_j's own column in physical terms (its dx/du moved with it; the others' did not)
        own, own_after = norms[j] / abs(G[j]), after[j] / abs(_derivative_at(params, moved, j))
        if not VANISHED * own <= own_after <= own / VANISHED:
            continue  # x_j = 0 is a degenerate limit of the model (a width), not a value
        gone = (after <= VANISHED * norms) & (norms > 0) & (codes == 0)
        gone[j] = False
        for k in np.flatnonzero(gone):
            codes[k] = VANISHES
            details[k] = (
                f"no effect at {labels[j]} = 0, which the data allow: "
                f"{labels[j]} = {x[j]:.3g} +/- {sd[j]:.2g}"
            )
    reasons = {labels[k]: f"{SHORT[int(codes[k])]} ({details[k]})" for k in np.flatnonzero(codes)}
    return Identifiability(codes, reasons)


def moved_point(params, u: Tensor, k: int, value: float) -> Tensor | None:
    """``u`` with free element ``k`` moved to the physical ``value``; ``None`` when that
    lies outside its bounds (the bijection's inverse is not finite there)."""
    with torch.no_grad():
        x = params.physical(u).clone()
    x[k] = value
    return point_at(params, u, x, [k])


def point_at(params, u: Tensor, x: Tensor, elements) -> Tensor | None:
    """``u`` with the free ``elements`` moved to their physical values in ``x`` (the
    others kept bit for bit); ``None`` when one lies outside its bounds."""
    out = u.detach().clone()
    for name in params.free_names:
        sl = params.slices[name]
        inside = [k for k in elements if sl.start <= k < sl.stop]
        if not inside:
            continue
        with torch.no_grad():
            moved = params.bijections[name].inverse(x[sl].to(u.dtype))
        for k in inside:
            if not bool(torch.isfinite(moved[k - sl.start])):
                return None
            out[k] = moved[k - sl.start]
    return out


def _zero_allowed(problem, u: Tensor, j: int, x: np.ndarray, cov: np.ndarray, s2: float) -> bool:
    """Whether the data allow ``x_j = 0`` beyond the linear approximation: ``χ²`` at
    ``x_j → 0`` with the other parameters moved by their linear best response
    (``x - x_j C[:, j] / C_jj``, alone if that leaves their bounds) rises by at most twice
    the linear model's ``1.96² s²`` (the tolerance of check 4; that move is not a refit,
    so it overestimates the rise). A marginal interval reaching zero by extrapolation (an
    amplitude at ``x = 0`` far outside the data, strongly correlated with a rate: NIST's
    Nelson, a rise of 2000 s²) fails it."""
    params = problem.params
    target = torch.from_numpy(x - (x[j] / cov[j, j]) * cov[:, j])
    target[j] = x[j] * SHRINK
    moved = point_at(params, u, target, range(len(x)))
    if moved is None:
        moved = moved_point(params, u, j, float(x[j]) * SHRINK)
    try:
        rise = 2.0 * problem.cost(moved) - 2.0 * problem.cost(u)
    except Exception:  # noqa: BLE001 - a model undefined there: zero is not allowed
        return False
    return rise <= LINEAR_BAND[1] * ZERO_QUANTILE**2 * s2


def _derivative_at(params, u: Tensor, k: int) -> float:
    """``dx/du`` of free element ``k`` at ``u``."""
    with torch.no_grad():
        return float(params.derivative(u)[k])


def _norms_at(problem, u: Tensor) -> np.ndarray:
    """Column norms of the whitened Jacobian at ``u`` (from ``JᵀWJ`` for large problems,
    as the covariance does)."""
    J, A = jacobian_or_curvature(problem, u)
    return column_norms(J=J) if J is not None else column_norms(A=A)


def _linearity(problem, u, k, x, sd, physical_norm, scale) -> float | None:
    """Check 4's curvature ratio for free element ``k`` (value ``x``, standard error
    ``sd``, physical column norm ``‖J_k‖``), on the side away from its bounds; ``None``
    when it cannot be told (no room on either side, or the change is below rounding)."""
    linear = 2.0 * (physical_norm * sd) ** 2
    chi2_0 = 2.0 * problem.cost(u)
    if not linear > chi2_rounding(chi2_0, scale):
        return None
    for side in (1.0, -1.0) if x >= 0 else (-1.0, 1.0):
        one = moved_point(problem.params, u, k, x + side * sd)
        two = moved_point(problem.params, u, k, x + 2.0 * side * sd)
        if one is None or two is None:
            continue
        try:
            chi2_1, chi2_2 = 2.0 * problem.cost(one), 2.0 * problem.cost(two)
        except Exception:  # noqa: BLE001 - a model undefined over the standard error
            return math.nan
        ratio = curvature_ratio(chi2_0, chi2_1, chi2_2, linear)
        return ratio if math.isfinite(ratio) else math.nan
    return None


def identifiability_fields(problem, u: Tensor, unc) -> dict:
    """The :class:`~inversekit.FitResult` fields of these checks: ``unconstrained`` (the
    labels), ``unconstrained_reasons`` (label to reason) and, when a derivative is at
    rounding level, ``condition_number = inf`` (the scaled one would hide it)."""
    ident = least_squares_identifiability(problem, u, unc, host64(problem.params.physical(u)))
    fields: dict = {"unconstrained": ident.unconstrained, "unconstrained_reasons": ident.reasons}
    if ident.rounding:
        fields["condition_number"] = math.inf
    return fields


# --- a batch: the same checks per problem, vectorised over problems -------------------


def batched_identifiability(
    problem, idx: Tensor, u: Tensor, A: Tensor, chi2: Tensor, unc: dict
) -> Tensor:
    """``(k, p)`` int8 reason codes (0: constrained) of the problems ``idx`` of a batched
    least-squares ``problem`` at their solutions ``u`` (``(k, p)``), from their ``A = JᵀWJ``
    and ``chi2``, and ``unc``: the per-problem covariance pieces (``cov`` physical,
    ``singular``, ``relative`` eigenvalues and eigenvectors ``V`` of the scaled ``A``,
    ``G = dx/du`` and ``scale`` = s²). The checks of the module docstring, each a few
    tensor operations over all problems; checks 4 and 5 evaluate the problems where they
    apply, one parameter at a time."""
    params = problem.params
    k, p = u.shape
    dtype = u.dtype
    eps = torch.finfo(dtype).eps
    rounding = math.sqrt(eps)
    codes = torch.zeros(k, p, dtype=torch.int8, device=u.device)
    A = A.to(dtype)
    norms = torch.sqrt(torch.diagonal(A, dim1=1, dim2=2).clamp(min=0.0))
    G, cov, singular = unc["G"].to(dtype), unc["cov"].to(dtype), unc["singular"]
    x, x0 = physical(params, u), physical(params, problem.u0[idx].to(dtype))
    variance = torch.diagonal(cov, dim1=1, dim2=2).clamp(min=0.0)
    sd = torch.where(singular, math.inf, torch.sqrt(variance))
    sw, y = problem.sqrt_weights[idx].to(dtype), problem.y[idx].reshape(k, -1).to(dtype)
    data_norm = torch.linalg.vector_norm(sw * y, dim=1)
    n = problem.n_data[idx]
    known = problem.noise_known
    # 1. singular directions
    codes[singular] = SINGULAR
    # 2. derivatives at rounding level
    N = noise_norm(chi2, n, known, data_norm)
    N = torch.maximum(N, rounding * (data_norm + torch.sqrt(chi2.clamp(min=0.0))))
    dead = effects(norms, G, x, x0) < rounding * N[:, None]
    codes = torch.where((codes == 0) & dead, ROUNDING_LEVEL, codes)
    # 3. near-degenerate directions
    near = unc["relative"] < NEAR_NULL_RATIO  # (k, p) over the eigenvectors
    member = ((unc["V"].abs() >= NEAR_NULL_WEIGHT) & near[:, None, :]).any(-1)
    codes = torch.where((codes == 0) & member, NEAR_NULL, codes)
    # 4. relative standard error beyond the limit where the model is not linear
    scale = data_norm + torch.sqrt(chi2.clamp(min=0.0))
    g = G.abs()
    physical_norms = torch.where(g > 0, norms / torch.where(g > 0, g, 1.0), 0.0)
    for c in range(p):
        wide = torch.isfinite(sd[:, c]) & (sd[:, c] > RELATIVE_LIMIT * x[:, c].abs())
        rows = torch.nonzero((codes[:, c] == 0) & wide).flatten()
        if rows.numel() == 0:
            continue
        linear = 2.0 * (physical_norms[rows, c] * sd[rows, c]) ** 2
        testable = linear > 1e3 * eps * scale[rows] * (2.0 * chi2[rows].sqrt() + eps * scale[rows])
        ratio = torch.full_like(linear, math.nan)
        decided = torch.zeros_like(testable)
        first = torch.where(x[rows, c] >= 0, 1.0, -1.0).to(dtype)
        for side in (first, -first):
            one, ok1 = moved_points(params, u[rows], c, x[rows, c] + side * sd[rows, c])
            two, ok2 = moved_points(params, u[rows], c, x[rows, c] + 2.0 * side * sd[rows, c])
            ok = ok1 & ok2 & ~decided & testable
            if bool(ok.any()):
                sub = idx[rows][ok]
                chi2_1 = 2.0 * problem.costs(one[ok], sub).to(dtype)
                chi2_2 = 2.0 * problem.costs(two[ok], sub).to(dtype)
                ratio[ok] = curvature_ratio(chi2[rows][ok], chi2_1, chi2_2, linear[ok])
                decided |= ok
        outside = ~((ratio >= LINEAR_BAND[0]) & (ratio <= LINEAR_BAND[1]))  # NaN: outside
        codes[rows[decided & outside], c] = NONLINEAR
    # 5. effects vanishing where another parameter may be zero
    s2 = unc["scale"].to(dtype)
    allowed = (codes == 0) & torch.isfinite(sd) & (x != 0) & (x.abs() <= ZERO_QUANTILE * sd)
    # one pass over the candidate problems per column: the columns with most candidates
    counts = allowed.sum(0)
    columns = [int(j) for j in torch.argsort(-counts, stable=True) if int(counts[j]) > 0]
    for j in columns[:MAX_ZERO_CANDIDATES] if p > 1 else []:
        rows = torch.nonzero(allowed[:, j] & (codes[:, j] == 0)).flatten()
        if rows.numel() == 0:
            continue
        moved, ok = moved_points(params, u[rows], j, x[rows, j] * SHRINK)
        # the data allow x_j = 0 beyond the linear model (see _zero_allowed)
        Cj = cov[rows, :, j]
        target = x[rows] - (x[rows, j] / Cj[:, j])[:, None] * Cj
        target[:, j] = x[rows, j] * SHRINK
        both, ok_all = points_at(params, u[rows], target)
        both = torch.where(ok_all[:, None], both, moved)
        rise = torch.full_like(s2[rows], math.inf)
        if bool(ok.any()):
            rise[ok] = 2.0 * problem.costs(both[ok], idx[rows][ok]).to(dtype) - chi2[rows][ok]
        ok &= torch.nan_to_num(rise, nan=math.inf) <= LINEAR_BAND[1] * ZERO_QUANTILE**2 * s2[rows]
        if not bool(ok.any()):
            continue
        rows, moved = rows[ok], moved[ok]
        after = torch.sqrt(
            torch.diagonal(problem.batched_normal_equations(moved, idx[rows])[0], dim1=1, dim2=2)
            .to(dtype)
            .clamp(min=0.0)
        )
        own = norms[rows, j] / G[rows, j].abs()
        own_after = after[:, j] / derivative(params, moved)[:, j].abs()
        value = (own_after >= VANISHED * own) & (own_after <= own / VANISHED)
        gone = (after <= VANISHED * norms[rows]) & (norms[rows] > 0) & (codes[rows] == 0)
        gone[:, j] = False
        gone &= value[:, None]
        codes[rows] = torch.where(gone, VANISHES, codes[rows])
    return codes


def physical(params, u: Tensor) -> Tensor:
    """``(k, p)``: the free physical values of every problem from ``u``."""
    parts = [params.bijections[n].forward(u[:, params.slices[n]]) for n in params.free_names]
    return torch.cat(parts, dim=1)


def derivative(params, u: Tensor) -> Tensor:
    """``(k, p)``: ``dx/du`` of every free element, per problem."""
    parts = [params.bijections[n].derivative(u[:, params.slices[n]]) for n in params.free_names]
    return torch.cat(parts, dim=1)


def moved_points(params, u: Tensor, c: int, values: Tensor) -> tuple[Tensor, Tensor]:
    """``(u', ok)``: every problem's ``u`` (``(k, p)``) with free element ``c`` moved to the
    physical ``values`` (``(k,)``); ``ok`` False (and ``u`` kept) where that lies outside
    the bounds."""
    x = physical(params, u)
    x[:, c] = values
    out, _ = points_at(params, u, x, columns=[c])
    ok = torch.isfinite(out[:, c])
    out[:, c] = torch.where(ok, out[:, c], u[:, c])
    return out, ok


def points_at(params, u: Tensor, x: Tensor, columns=None) -> tuple[Tensor, Tensor]:
    """``(u', ok)``: every problem's ``u`` with the free elements ``columns`` (default all)
    moved to the physical values ``x`` (``(k, p)``); ``ok`` says where all of them lie
    inside their bounds (non-finite entries of ``u'`` mark those that do not)."""
    out = u.detach().clone()
    with torch.no_grad():
        for n in params.free_names:
            sl = params.slices[n]
            inside = [c for c in (columns or range(u.shape[1])) if sl.start <= c < sl.stop]
            if inside:
                moved = params.bijections[n].inverse(x[:, sl])
                for c in inside:
                    out[:, c] = moved[:, c - sl.start]
    cols = list(columns or range(u.shape[1]))
    return out, torch.isfinite(out[:, cols]).all(1)
