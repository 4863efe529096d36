"""L-BFGS-B: SciPy's limited-memory quasi-Newton minimiser with bounds, on torch gradients.

The solver drives SciPy's reverse-communication routine ``scipy.optimize._lbfgsb.setulb``
(the one ``scipy.optimize.minimize(method="L-BFGS-B")`` runs) itself: ``setulb`` returns
whenever it wants the value and gradient at its point (task ``FG``), has a new iterate
(``NEW_X``), has converged or has failed, and keeps everything it knows in the NumPy arrays
it is handed (``wa``, ``iwa``, ``task``, ``lsave``, ``isave``, ``dsave``, ``ln_task``). So
the whole optimiser state is a handful of float64/int32 host arrays: one :meth:`LBFGSB.step`
is one L-BFGS-B iteration (``setulb`` is run, answering its ``FG`` requests with
``problem.gradient``, until it reports a new iterate or stops), and a checkpoint of those
arrays resumes to the same iterates bit for bit.

Coordinates (option ``bounds``):

- ``"native"`` (default): each bounded parameter's elements are optimised in physical
  coordinates, with their bounds handed to L-BFGS-B, which projects onto them (an active
  bound is reached exactly, and the projected-gradient test is the KKT test). Unbounded
  elements are optimised in ``u`` (where they equal their physical values). The problem is
  still evaluated through its unconstrained point: a physical ``x`` is mapped to
  ``u = inverse(x)`` and the gradient is taken back by the chain rule,
  ``∂f/∂x = (∂f/∂u) / (dx/du)``, with ``dx/du`` from the parameters' bijections at the same
  ``u`` (in the problem's dtype, so that the factor ``autograd`` multiplied in is divided
  out again to rounding). The bijection is singular on the bound itself (``u = ±∞``,
  ``dx/du = 0``), so the bounds L-BFGS-B sees are pulled inside by a margin of
  ``16 ε`` relative (``ε`` the problem dtype's epsilon; relative to the larger of the
  bound's magnitude and, for a one-sided bound, the starting distance from it; for a
  two-sided one, the larger bound's magnitude): every point asked about is then strictly
  inside, ``u`` finite and ``dx/du`` non-zero, and a solution on a bound ends within
  ``16 ε`` relative of it (``3.6e-15`` in float64). The model never sees the bound itself,
  as with every other solver.
- ``"transform"``: every element is optimised in the unconstrained ``u``, with no bounds
  (the bijections keep the physical values inside). An active bound is then approached
  only asymptotically (``u → ±∞``, where ``dx/du → 0``), so the gradient test stops before
  the bound is reached: use ``"native"`` when a bound may be active.

Stopping is L-BFGS-B's: ``ftol`` (``(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol``,
:attr:`Status.FTOL`) and ``gtol`` (largest projected-gradient component ``<= gtol``,
:attr:`Status.GTOL`), both in the optimised coordinates. A line search that cannot
reduce ``f`` (rounding near the minimum, an inaccurate gradient, or a badly scaled problem,
see below) stops with :attr:`Status.STALLED` and SciPy's words in the result's message.
A trial point where the value or gradient is not finite is a rejected trial, never an
iterate (as for the other solvers): the line search is told a value above the iterate's
(see :func:`_rejected`) and backtracks; if the line search then fails, the run stops with
:attr:`Status.NONFINITE`. Either failure returns the last iterate. Budgets (``max_iter``
iterations, ``max_time``, ``max_evals`` gradient evaluations) are the loop's, checked
between iterations; a line search within one iteration makes at most ``max_line_search``
evaluations. SciPy reports convergence on the call after the iterate that met the test,
so a converged run's iteration count is one more than SciPy's ``nit``; its evaluations
(``n_fev``, each a value and gradient) are SciPy's ``nfev``, and its iterates are SciPy's
bit for bit.

L-BFGS-B is not invariant to the scaling of the parameters: its line search works on
``f`` alone, which resolves changes only down to ``ε|f|``, so along the shallow directions
of a badly scaled problem it stops seeing progress. With ``scaling="auto"`` (the default)
a least-squares problem is therefore solved in coordinates scaled to unit Gauss–Newton
curvature at the start (``√diag(JᵀWJ)``, relative scales only, one Jacobian pass).
Measured on NIST StRD at the defaults: 37 of the 38 cases reach the certified values to
at least 6 digits (median 9.9; MGH17 from its first start ends on a plateau, as a local
method may); without the scaling, 27 of 38, Misra1a-d, Hahn1, Nelson and Roszman1
(cond(JᵀJ) of 1e13 and more, parameters over 4 to 9 orders of magnitude) ending one to a
few digits from the certified values. Levenberg–Marquardt remains the solver for least
squares (ten digits on all 38, in fewer evaluations); a general objective's coordinates
are used as they are.

The defaults stop where floating point does, not at SciPy's ``ftol=2.2e-9`` (which stops
Rosenbrock 2e-6 from its minimum): ``ftol=0``, ``gtol=1e-10``; a run whose line search
then fails at the rounding of ``f`` after iterations that had stopped making progress
ends with :attr:`Status.PRECISION` (converged), one that fails while still progressing
with :attr:`Status.STALLED`.

The state is float64 NumPy on the host whatever the problem's dtype and device; points go
to the problem as its tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from inversekit.contracts import (
    BatchedLeastSquaresProblem,
    LeastSquaresProblem,
    SavedState,
    ScalarProblem,
    Summary,
    implements,
)
from inversekit.errors import InputError
from inversekit.linalg.host import host64
from inversekit.results.status import Status

# setulb's task codes (task[0]); task[1] says more (see scipy's task_messages)
_NEW_X, _FG, _CONVERGENCE, _ERROR, _ABNORMAL = 1, 3, 4, 7, 8
# fresh starts of setulb after a stalled line search (see LBFGSB._restart)
MAX_RESTARTS = 5
_GTOL_CODE, _FTOL_CODE = 401, 402
# L-BFGS-B's nbd codes: no bound, lower only, both, upper only
_FREE, _LOWER, _BOTH, _UPPER = 0, 1, 2, 3
# native bounds are pulled inside by this many epsilons (relative; see the module docstring)
BOUND_MARGIN_EPS = 16.0

_ARRAYS = {  # setulb's work arrays and their dtypes
    "x": np.float64,
    "g": np.float64,
    "wa": np.float64,
    "iwa": np.int32,
    "task": np.int32,
    "lsave": np.int32,
    "isave": np.int32,
    "dsave": np.float64,
    "ln_task": np.int32,
}


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class LBFGSB:
    """L-BFGS-B options. Immutable; pass to :func:`inversekit.fit`.

    Args:
        max_iter: iteration budget (SciPy's ``maxiter``).
        max_time: wall-time budget in seconds (``None``: unlimited).
        max_evals: budget of value-and-gradient evaluations (``None``: unlimited).
        ftol: stop when the relative reduction of ``f`` in an iteration is at most
            ``ftol`` (``factr = ftol / ε``; off by default: SciPy's ``2.2e-9`` stops
            Rosenbrock 2e-6 from its minimum and small-residual fits, whose ``f`` is below
            1 where the test becomes absolute, digits short).
        gtol: stop when every projected-gradient component is at most ``gtol`` in
            magnitude (SciPy's ``pgtol``, default ``1e-5``). Absolute: with the default
            scaling of least squares the components are ``J_iᵀr/‖J_i‖``. A run that can
            reduce ``f`` no further in floating point before meeting it ends with
            :attr:`Status.PRECISION` (the line search's last trial changed ``f`` by no more
            than its rounding).
        history: number of correction pairs kept (SciPy's ``maxcor``, L-BFGS-B's ``m``).
        max_line_search: evaluations allowed in one line search (SciPy's ``maxls``, 20):
            40 lets the line search back off from regions where the model overflows.
        bounds: ``"native"`` (bounded parameters in physical coordinates with their
            bounds given to L-BFGS-B) or ``"transform"`` (everything in the unconstrained
            coordinates, no bounds); see the module docstring.
        scaling: ``"auto"``: for a least-squares problem every coordinate is scaled to unit
            Gauss–Newton curvature at the start (``√diag(JᵀWJ)``, one Jacobian pass), which
            makes the run independent of the parameters' units; ``"none"``: the
            coordinates as they are (always the case for a general objective).
    """

    max_iter: int = 15000
    max_time: float | None = None
    max_evals: int | None = None
    ftol: float = 0.0
    gtol: float = 1e-10
    history: int = 10
    max_line_search: int = 40
    bounds: str = "native"
    scaling: str = "auto"
    name: str = "L-BFGS-B"

    def __post_init__(self):
        for field in ("ftol", "gtol"):
            value = getattr(self, field)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise InputError(
                    f"L-BFGS-B option `{field}` must be a finite number >= 0, got {value!r}"
                )
        for field in ("max_iter", "history", "max_line_search"):
            if not _positive_int(getattr(self, field)):
                raise InputError(
                    f"L-BFGS-B option `{field}` must be a positive integer, "
                    f"got {getattr(self, field)!r}"
                )
        if self.max_evals is not None and not _positive_int(self.max_evals):
            raise InputError(
                f"L-BFGS-B option `max_evals` must be a positive integer, got {self.max_evals!r}"
            )
        if self.max_time is not None and not (
            isinstance(self.max_time, int | float) and self.max_time > 0
        ):
            raise InputError(
                f"L-BFGS-B option `max_time` must be > 0 seconds, got {self.max_time!r}"
            )
        if self.scaling not in ("auto", "none"):
            raise InputError(
                f"L-BFGS-B option `scaling` must be 'auto' or 'none', got {self.scaling!r}"
            )
        if self.bounds not in ("native", "transform"):
            raise InputError(
                f"L-BFGS-B option `bounds` must be 'native' or 'transform', got {self.bounds!r}"
            )

    # --- solver contract ------------------------------------------------------------
    def accepts(self, problem) -> str | None:
        u0 = getattr(problem, "u0", None)
        if isinstance(problem, BatchedLeastSquaresProblem) or (
            isinstance(u0, Tensor) and u0.dim() != 1
        ):
            return (
                "L-BFGS-B minimises one scalar function; a batched problem (points of shape "
                "(B, p)) is not accepted: fit its problems one by one, or use "
                "Levenberg–Marquardt (ik.LM), which runs the batch at once"
            )
        if not isinstance(problem, ScalarProblem):
            return (
                "L-BFGS-B needs a scalar problem with value(u), gradient(u) and a starting "
                "point u0 (ik.Objective or ik.LeastSquares)"
            )
        return None

    def init(self, problem) -> LBFGSBState:
        coords = _Coordinates.build(problem, self.bounds, self.scaling)
        n, m = coords.n, self.history
        state = LBFGSBState(
            x=coords.x0.copy(),
            f=0.0,
            g=np.zeros(n),
            wa=np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m),
            iwa=np.zeros(3 * n, dtype=np.int32),
            task=np.zeros(2, dtype=np.int32),
            lsave=np.zeros(4, dtype=np.int32),
            isave=np.zeros(44, dtype=np.int32),
            dsave=np.zeros(29),
            ln_task=np.zeros(2, dtype=np.int32),
            coords=coords,
            u=coords.point(coords.x0),
        )
        self._setulb(state)  # START: checks the input and asks for f and g at x0
        if state.task[0] != _FG:
            raise InputError(f"L-BFGS-B refused its input ({_text(state)})")
        f, g, u = coords.evaluate(problem, state.x)
        state = replace(state, f=f, g=g, u=u, n_fev=1)
        if not _finite(f, g):
            what = "value" if not math.isfinite(f) else "gradient"
            message = f"the objective's {what} is not finite at the start"
            return replace(state, status=Status.NONFINITE, message=message)
        return state

    def step(self, problem, state: LBFGSBState) -> LBFGSBState:
        """One L-BFGS-B iteration: ``setulb`` is run, and its requests for the value and
        gradient answered, until it reports a new iterate, converges or fails. Works on
        copies: ``state`` is left as it was."""
        new = state.copy()
        rejected = []  # what was not finite at each rejected trial point of this step
        last = (state.x, state.f, state.g, state.u)  # the last point evaluated
        trial_change = math.inf  # |f(trial) - f(iterate)| at the line search's last trial
        while True:
            self._setulb(new)
            code = int(new.task[0])
            if code == _FG:
                if np.array_equal(new.x, last[0]):
                    # a line-search step below x's resolution: the point is evaluated already
                    f, g, u = last[1:]
                else:
                    f, g, u = new.coords.evaluate(problem, new.x)
                    new.n_fev += 1
                    last = (new.x.copy(), f, g, u)
                if not _finite(f, g):  # never accepted: the line search backtracks
                    rejected.append("value" if not math.isfinite(f) else "gradient")
                    f, g = _rejected(state, new.x), state.g
                else:
                    trial_change = abs(f - state.f)
                new.f, new.g[...], new.u = f, g, u
                continue
            if code == _NEW_X:
                new.n_iter += 1
                new.last_reduction = state.f - new.f
                if rejected and np.array_equal(new.x, state.x):
                    # driven back to the iterate itself by non-finite trial points
                    new.status = Status.NONFINITE
                    new.message = f"{_text(new)}; {_nonfinite(rejected)}"
                return new
            if code == _CONVERGENCE:
                which = int(new.task[1])
                new.status = Status.GTOL if which == _GTOL_CODE else Status.FTOL
                if new.status is Status.FTOL and self.ftol == 0:  # f did not change at all:
                    # the line search backed off to the iterate itself, from non-finite
                    # trial points or below f's rounding
                    if not rejected and self._may_restart(state):
                        return self._restart(state)
                    new.status = Status.NONFINITE if rejected else Status.PRECISION
                    if rejected:
                        new.message = f"{new.message}; {_nonfinite(rejected)}"
                new.message = _text(new)
                return new
            # a failed line search, an error or a stop: the last iterate is the answer
            if rejected:  # the line search was driven back by non-finite values
                status, message = Status.NONFINITE, f"{_text(new)}; {_nonfinite(rejected)}"
            elif new.task[0] == _ABNORMAL and _at_rounding(state, trial_change):
                status = Status.PRECISION
                message = f"{_text(new)}; f changes by rounding only"
            elif new.task[0] == _ABNORMAL and self._may_restart(state):
                return self._restart(state)
            else:
                status, message = _failure(new), _text(new)
            return replace(state, n_fev=new.n_fev, status=status, message=message)

    def terminate(self, problem, state: LBFGSBState) -> Status | None:
        return state.status

    def cost(self, state: LBFGSBState) -> float:
        return state.f

    def n_evals(self, state: LBFGSBState) -> int:
        return state.n_fev

    def point(self, problem, state: LBFGSBState) -> Tensor:
        return state.u

    def summary(self, problem, state: LBFGSBState) -> Summary:
        # every evaluation is a value-and-gradient pass
        return Summary(
            u=state.u, cost=state.f, n_fev=state.n_fev, n_jev=state.n_fev, message=state.message
        )

    def save(self, state: LBFGSBState) -> SavedState:
        out: dict = {k: getattr(state, k).copy() for k in _ARRAYS}
        out.update(
            f=float(state.f),
            n_fev=int(state.n_fev),
            n_iter=int(state.n_iter),
            last_reduction=float(state.last_reduction),
            restarts=int(state.restarts),
            f_at_restart=float(state.f_at_restart),
            status=None if state.status is None else state.status.name,
            message=state.message,
            bounds=self.bounds,
            history=self.history,
            scaling=self.scaling,
        )
        return out

    def restore(self, problem, saved: SavedState) -> LBFGSBState:
        for key, mine in (
            ("bounds", self.bounds),
            ("history", self.history),
            ("scaling", self.scaling),
        ):
            if saved[key] != mine:
                raise InputError(
                    f"this L-BFGS-B checkpoint was written with option `{key}`="
                    f"{saved[key]!r}; resume it with the same {key} (not {mine!r})"
                )
        coords = _Coordinates.build(problem, self.bounds, self.scaling)
        arrays = {k: np.array(saved[k], dtype=dtype) for k, dtype in _ARRAYS.items()}
        if arrays["x"].shape != (coords.n,):
            raise InputError(
                f"this L-BFGS-B checkpoint holds {arrays['x'].size} free parameter "
                f"elements, the problem has {coords.n}"
            )
        status = saved["status"]
        return LBFGSBState(
            **arrays,
            f=float(saved["f"]),
            coords=coords,
            u=coords.point(arrays["x"]),
            n_fev=int(saved["n_fev"]),
            n_iter=int(saved["n_iter"]),
            last_reduction=float(saved["last_reduction"]),
            restarts=int(saved.get("restarts", 0)),
            f_at_restart=float(saved.get("f_at_restart", math.inf)),
            status=None if status is None else Status[status],
            message=str(saved["message"]),
        )

    # --- fresh starts ---------------------------------------------------------------
    def _may_restart(self, state: LBFGSBState) -> bool:
        """Whether a stalled line search gets a fresh start: at most ``MAX_RESTARTS``, and
        only when ``f`` went down since the last one (so restarts cannot loop)."""
        return state.restarts < MAX_RESTARTS and state.f < state.f_at_restart

    def _restart(self, state: LBFGSBState) -> LBFGSBState:
        """The iterate with ``setulb``'s memory cleared: its correction pairs, fitted to
        where the run came from, can send the line search along a direction it cannot
        use (it then stops short of the minimum, a classic failure on curved valleys
        and after bounds become active); a fresh start takes the steepest descent
        direction from the same point."""
        new = state.copy()
        for key in ("wa", "iwa", "task", "lsave", "isave", "dsave", "ln_task"):
            getattr(new, key)[...] = 0
        self._setulb(new)  # START: asks for f and g at x, which new holds already
        if new.task[0] != _FG:
            return replace(state, status=_failure(new), message=_text(new))
        return replace(new, restarts=state.restarts + 1, f_at_restart=state.f)

    # --- maths ----------------------------------------------------------------------
    def _setulb(self, state: LBFGSBState) -> None:
        """One call of SciPy's routine: it updates ``state``'s arrays in place."""
        # imported here: scipy.optimize costs 20 MB and a tenth of a second to import,
        # which users of the other solvers need not pay
        from scipy.optimize import _lbfgsb

        c = state.coords
        _lbfgsb.setulb(
            self.history,
            state.x,
            c.lower,
            c.upper,
            c.nbd,
            state.f,
            state.g,
            self.ftol / np.finfo(float).eps,  # factr
            self.gtol,  # pgtol
            state.wa,
            state.iwa,
            state.task,
            state.lsave,
            state.isave,
            state.dsave,
            self.max_line_search,
            state.ln_task,
        )


@dataclass
class LBFGSBState:
    """L-BFGS-B's state: SciPy's arrays plus the solver's counters.

    Between steps ``x`` is the current iterate, ``f`` and ``g`` the value and gradient
    there (in the optimised coordinates, see the module docstring) and ``u`` the point as
    the problem's tensor; ``wa`` ... ``ln_task`` are ``setulb``'s memory (the correction
    pairs, the line search's state, the pending task).
    """

    x: np.ndarray
    f: float
    g: np.ndarray
    wa: np.ndarray
    iwa: np.ndarray
    task: np.ndarray
    lsave: np.ndarray
    isave: np.ndarray
    dsave: np.ndarray
    ln_task: np.ndarray
    coords: _Coordinates
    u: Tensor
    n_fev: int = 0
    n_iter: int = 0
    last_reduction: float = math.inf  # how much the last iteration reduced f
    restarts: int = 0  # fresh starts after a stalled line search (see LBFGSB._restart)
    f_at_restart: float = math.inf  # f when the last fresh start was made
    status: Status | None = None
    message: str = ""

    def copy(self) -> LBFGSBState:
        return replace(self, **{k: getattr(self, k).copy() for k in _ARRAYS})


@dataclass(frozen=True)
class _Coordinates:
    """The coordinates L-BFGS-B works in and the bounds it is given (see the module
    docstring): ``x`` equals ``u`` except, in native mode, on bounded elements, where it
    is the physical value."""

    problem_dtype: torch.dtype
    device: torch.device
    bijections: tuple  # (slice, Bijection) of each bounded parameter (native mode)
    bounded: np.ndarray | None  # mask of the bounded elements (native mode)
    x0: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    nbd: np.ndarray
    scale: np.ndarray | None = None  # L-BFGS-B sees scale * x (see LBFGSB's scaling)

    @property
    def n(self) -> int:
        return self.x0.size

    @classmethod
    def build(cls, problem, mode: str, scaling: str = "none") -> _Coordinates:
        coords = cls._unscaled(problem, mode)
        if scaling == "none" or not implements(problem, LeastSquaresProblem):
            return coords
        c = _unit_curvature_scale(problem, coords)
        return replace(
            coords,
            x0=coords.x0 * c,
            lower=coords.lower * c,
            upper=coords.upper * c,
            scale=c,
        )

    @classmethod
    def _unscaled(cls, problem, mode: str) -> _Coordinates:
        params = problem.params
        u0 = host64(problem.u0).copy()
        n = u0.size
        lower, upper, nbd = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int32)
        pairs, bounded = [], None
        x0 = u0
        if mode == "native" and params.bounded is not None:
            bounded = params.bounded.copy()
            x0 = host64(params.physical(problem.u0)).copy()
            x0[~bounded] = u0[~bounded]
            eps = torch.finfo(problem.dtype).eps * BOUND_MARGIN_EPS
            for name in params.free_names:
                b = params.bijections[name]
                if b.kind == "free":
                    continue
                sl = params.slices[name]
                pairs.append((sl, b))
                start = x0[sl]
                if b.kind == "both":
                    margin = eps * max(abs(b.lower), abs(b.upper))
                    lower[sl], upper[sl], nbd[sl] = b.lower + margin, b.upper - margin, _BOTH
                elif b.kind == "lower":
                    margin = eps * np.maximum(abs(b.lower), np.abs(start - b.lower))
                    lower[sl], nbd[sl] = b.lower + margin, _LOWER
                else:
                    margin = eps * np.maximum(abs(b.upper), np.abs(b.upper - start))
                    upper[sl], nbd[sl] = b.upper - margin, _UPPER
            # a start within the margin of a bound starts on the pulled-in bound
            x0 = np.where(nbd == _LOWER, np.maximum(x0, lower), x0)
            x0 = np.where(nbd == _UPPER, np.minimum(x0, upper), x0)
            x0 = np.where(nbd == _BOTH, np.clip(x0, lower, upper), x0)
        return cls(problem.dtype, problem.device, tuple(pairs), bounded, x0, lower, upper, nbd)

    def point(self, x: np.ndarray) -> Tensor:
        """The problem's unconstrained point ``u`` for L-BFGS-B's ``x``."""
        u = x / self.scale if self.scale is not None else x.copy()
        for sl, b in self.bijections:
            u[sl] = b.inverse(torch.from_numpy(x[sl])).numpy()
        return torch.as_tensor(u, dtype=self.problem_dtype, device=self.device)

    def evaluate(self, problem, x: np.ndarray) -> tuple[float, np.ndarray, Tensor]:
        """``(f, ∂f/∂x, u)`` at L-BFGS-B's ``x``."""
        u = self.point(x)
        f, grad = problem.gradient(u)
        g = host64(grad).copy()
        if self.bounded is not None:
            g[self.bounded] /= host64(problem.params.derivative(u))[self.bounded]
        if self.scale is not None:
            g /= self.scale
        return float(f), g, u


def _unit_curvature_scale(problem, coords: _Coordinates) -> np.ndarray:
    """``√diag(JᵀWJ)`` at the start in L-BFGS-B's (unscaled) coordinates (physical ones
    for natively bounded elements: ``dx/du`` divided out), divided by its geometric mean.
    A coordinate without curvature keeps the mean scale, so it is still moved."""
    u0 = problem.u0
    d = host64(problem.normal_equations(u0).A).diagonal().copy()
    if coords.bounded is not None:
        dxdu = host64(problem.params.derivative(u0))
        d[coords.bounded] /= dxdu[coords.bounded] ** 2
    c = np.sqrt(d)
    good = np.isfinite(c) & (c > 0)
    if not good.any():
        return np.ones_like(c)
    # relative scales only (geometric mean 1): L-BFGS-B's first trial moves a unit
    # distance, which then stays what it is in the unscaled coordinates on average
    mean = float(np.exp(np.log(c[good]).mean()))
    return np.where(good, c / mean, 1.0)


def _finite(f: float, g: np.ndarray) -> bool:
    return math.isfinite(f) and bool(np.isfinite(g).all())


def _rejected(state: LBFGSBState, x: np.ndarray) -> float:
    """What the line search is told at a trial point ``x`` where the value or gradient is
    not finite: a value above the iterate's by the size of the linear model's predicted
    change, ``f + |g·(x - x_k)|`` (with the iterate's gradient ``g``). The point can never
    be accepted (no sufficient decrease), and the line search's interpolation, whose
    quadratic then has its minimum a quarter of the way to ``x``, backtracks."""
    change = abs(float(state.g @ (x - state.x)))
    return state.f + max(change, abs(state.f) * np.finfo(float).eps * 16, np.finfo(float).tiny)


def _at_rounding(state: LBFGSBState, trial_change: float) -> bool:
    """Whether a failed line search met the rounding of ``f`` at a minimum: its last trial
    changed ``f`` by at most 64 ulp (Levenberg–Marquardt's resolution of a cost, without
    the residuals' part, which a general objective does not have), and the iteration
    before had already slowed to a relative reduction below ``1e-10``. A line search that
    fails after iterations that still made progress (a badly scaled problem whose ``f``
    cannot resolve the shallow directions) stays a failure."""
    eps = np.finfo(float).eps
    f = abs(state.f)
    return trial_change <= 64.0 * eps * f and state.last_reduction <= 1e-10 * f


def _nonfinite(what: list[str]) -> str:
    kinds = " or ".join(sorted(set(what)))
    return (
        f"the objective's {kinds} was not finite at {len(what)} of the line search's trial points"
    )


def _text(state: LBFGSBState) -> str:
    """SciPy's words for ``setulb``'s task."""
    from scipy.optimize._lbfgsb_py import status_messages, task_messages

    code, detail = int(state.task[0]), int(state.task[1])
    text = f"{status_messages.get(code, code)}: {task_messages.get(detail, detail)}"
    if code == _ABNORMAL and not task_messages.get(detail):
        text += "the line search found no point with a sufficient decrease"
    return text


def _failure(state: LBFGSBState) -> Status:
    """The status of a run ``setulb`` ended without converging (abnormal line search,
    warning, error)."""
    return Status.FAILED if state.task[0] == _ERROR else Status.STALLED
