"""The contracts between inversekit's layers, written down as ``typing.Protocol``s.

Code depends on these, not on ``hasattr`` probes or another module's private attributes.
A point ``u`` is always a vector in the *unconstrained* space of the problem's free
parameter elements (bounded parameters pass through smooth bijections); the *physical*
values a model sees are ``problem.unpack(u)``. A batched problem holds ``B`` independent
problems and its points are ``(B, p)``: batching is a leading dimension, not another
contract.

- :class:`ScalarProblem`: a differentiable scalar ``value(u)`` with its gradient and
  Hessian-vector products; what any minimiser needs.
- :class:`LeastSquaresProblem`: whitened residuals ``r(u)`` with ``cost = ½ r·r`` and the
  normal equations ``(JᵀWJ, JᵀWr, cost)`` accumulated in chunks. Every least-squares
  problem is also a scalar problem (``value = cost``, gradient ``Jᵀr``, Gauss–Newton
  products ``JᵀJ v``), so any minimiser solves least squares.
- :class:`BatchedLeastSquaresProblem`: ``B`` least-squares problems of one model, asked
  about any subset ``idx`` of them at once.
- :class:`DerivativeEngine`: how a least-squares problem gets its Jacobian products.
- :class:`Solver`: an iterative algorithm as ``init`` / ``step`` / ``terminate`` over an
  explicit state, driven by the one loop (:mod:`inversekit.optimize.loop`), which owns
  budgets, checks, progress, callbacks, checkpoints and the result.
- :class:`SamplerKernel`: a Markov kernel, ``init`` / ``step(generator, state)``; the
  sampling driver owns warm-up, chains, storage and checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:  # the contracts name types of other layers, never import them at run time
    from inversekit.problem.params import Params
    from inversekit.results.status import Status

State = TypeVar("State")
# What a solver's state becomes in a checkpoint: arrays and JSON-able scalars only.
SavedState = Mapping[str, "np.ndarray | float | int | str | bool | None"]


def implements(obj: object, contract: type) -> bool:
    """Whether ``obj`` meets the runtime-checkable ``contract``; the verdict for one of
    the library's own classes is remembered (a Protocol ``isinstance`` probes every member:
    tens of microseconds, which a small fit of a few milliseconds would pay several
    times)."""
    key = (type(obj), contract)
    verdict = _VERDICTS.get(key)
    if verdict is None:
        verdict = isinstance(obj, contract)
        if type(obj).__module__.startswith("inversekit."):
            # the library's own classes set their members in __init__: one instance
            # decides for all; a duck-typed user object is probed each time
            _VERDICTS[key] = verdict
    return verdict


_VERDICTS: dict[tuple[type, type], bool] = {}


@runtime_checkable
class ScalarProblem(Protocol):
    """A differentiable scalar function of the unconstrained point ``u`` (shape ``(p,)``)."""

    params: Params
    dtype: torch.dtype
    device: torch.device
    u0: Tensor  # the starting point

    def value(self, u: Tensor) -> float:
        """The function at ``u``."""
        ...

    def gradient(self, u: Tensor) -> tuple[float, Tensor]:
        """``(value, d value / du)`` at ``u``."""
        ...

    def hvp(self, u: Tensor, v: Tensor) -> Tensor:
        """A curvature-vector product at ``u``: the Hessian's for a general function, the
        Gauss–Newton matrix's ``JᵀWJ v`` for least squares."""
        ...

    def unpack(self, u: Tensor) -> dict[str, Tensor]:
        """Every parameter (fixed ones included) as a physical tensor at ``u``."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """JSON-able identity of the problem (type, parameter layout, data digest): a
        checkpoint written for one problem is refused for another."""
        ...


@runtime_checkable
class DerivativeEngine(Protocol):
    """Jacobian products of a least-squares problem's whitened residuals."""

    engine_name: str  # which engine runs (after any fall-back)
    reason: str  # why it was chosen
    n_jev: int  # Jacobian passes over all data so far
    speculative: bool  # its normal equations cost little more than a cost pass

    def normal_equations(self, u: Tensor) -> Any:
        """``NormalEquations(A = JᵀWJ, g = JᵀWr, cost)`` at ``u``."""
        ...

    def full(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """``(J, r)``: the whole whitened Jacobian and residuals (small problems only)."""
        ...

    def geodesic_rhs(self, u: Tensor, v: Tensor) -> Tensor:
        """``Jᵀ r''(u)[v, v]``, the right-hand side of geodesic acceleration."""
        ...


@runtime_checkable
class LeastSquaresProblem(ScalarProblem, Protocol):
    """Weighted least squares, ``cost(u) = ½ r(u)·r(u)`` with whitened residuals ``r``."""

    n_data: int  # data points carrying weight
    noise_known: bool  # covariances absolute (noise given) or scaled by reduced chi2
    jacobian: DerivativeEngine

    def residuals(self, u: Tensor) -> Tensor:
        """Whitened residuals at ``u``, flat."""
        ...

    def cost(self, u: Tensor) -> float:
        """``½ chi2`` at ``u``."""
        ...

    def normal_equations(self, u: Tensor) -> Any:
        """``(JᵀWJ, JᵀWr, cost)`` at ``u``, accumulated chunk by chunk."""
        ...

    def log_likelihood(self, u: Tensor) -> float:
        """The noise model's log-likelihood at ``u``."""
        ...

    def fisher_rows(self, u: Tensor) -> Tensor | None:
        """Row scale ``s`` making ``(diag(s) J)ᵀ(diag(s) J)`` the Fisher information, with
        ``J`` the residuals' Jacobian (``None``: ``JᵀJ`` is it, the Gaussian case)."""
        ...

    def fisher_information(self, u: Tensor) -> Tensor:
        """The Fisher information (p x p) at ``u``, accumulated chunk by chunk."""
        ...


@runtime_checkable
class BatchedLeastSquaresProblem(Protocol):
    """``B`` independent least-squares problems of one model; points are ``(k, p)`` for
    the problems ``idx`` (a ``(k,)`` index tensor)."""

    params: Params
    dtype: torch.dtype
    device: torch.device
    batch_size: int
    u0: Tensor  # (B, p)
    n_data: Tensor  # (B,)
    noise_known: bool
    notes: list[str | None]  # why a problem was not attempted (None: it was)
    speculative: bool  # normal equations cost little more than costs (ask for them early)

    def valid_indices(self) -> Tensor: ...
    def costs(self, u: Tensor, idx: Tensor) -> Tensor: ...
    def residuals(self, u: Tensor, idx: Tensor) -> Tensor: ...
    def batched_normal_equations(self, u: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]: ...
    def vjp(self, u: Tensor, idx: Tensor, w: Tensor) -> Tensor: ...
    def unpack(self, u: Tensor) -> dict[str, Tensor]: ...
    def fingerprint(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Summary:
    """What a solver reports about its final state; the loop adds its own statistics and
    the problem's (chi2, covariance, ...) to make the result.

    For a batched problem ``u`` is ``(B, p)`` and ``cost``, ``n_fev``, ``n_jev``,
    ``n_iter`` are per-problem tensors and ``statuses`` a per-problem list.
    """

    u: Tensor
    cost: float | Tensor
    n_fev: int | Tensor
    n_jev: int | Tensor
    message: str = ""  # the solver's own words on why it stopped
    statuses: list | None = None  # batched: per-problem Status (None: still running)
    n_iter: Tensor | None = None  # batched: per-problem iterations
    history: Tensor | None = None  # batched: (B, steps + 1) costs
    curvature: Tensor | None = None  # batched: JᵀWJ at the final points, if at hand


@runtime_checkable
class Solver(Protocol[State]):
    """An iterative solver: a small immutable options object plus its maths.

    The loop calls ``init`` once, then ``step`` until ``terminate`` returns a
    :class:`~inversekit.Status` or a budget runs out. ``save``/``restore`` turn a state
    into arrays and JSON-able scalars and back (checkpoints; never pickle); ``restore``
    must give a state from which the run continues exactly as it would have.
    """

    name: str
    max_iter: int
    max_time: float | None
    max_evals: int | None

    def accepts(self, problem: object) -> str | None:
        """``None`` if this solver can solve ``problem``, else why not (checked before any
        model call)."""
        ...

    def init(self, problem: Any) -> State: ...
    def step(self, problem: Any, state: State) -> State: ...
    def terminate(self, problem: Any, state: State) -> Status | None: ...
    def cost(self, state: State) -> float:
        """The cost at the state's point (a batch: the sum over running problems)."""
        ...

    def n_evals(self, state: State) -> int:
        """Model evaluations so far (the ``max_evals`` budget)."""
        ...

    def point(self, problem: Any, state: State) -> Tensor:
        """The state's point ``u`` as the problem's tensor (callbacks unpack it)."""
        ...

    def summary(self, problem: Any, state: State) -> Summary: ...
    def save(self, state: State) -> SavedState: ...
    def restore(self, problem: Any, saved: SavedState) -> State: ...


@runtime_checkable
class SamplerKernel(Protocol[State]):
    """A Markov kernel: ``init(problem, position) -> state``, ``step(generator, state) ->
    (state, info)``; diagnostics go in ``info``, never in the state."""

    def init(self, problem: Any, position: Tensor) -> State: ...
    def step(self, generator: torch.Generator, state: State) -> tuple[State, Mapping[str, Any]]: ...
