"""Batched Levenberg–Marquardt: the LM of :mod:`.levenberg_marquardt`, one problem per row.

Every problem ``b`` runs the single-problem algorithm — step ``(A_b + λ_b D_b) δ_b = -g_b``
with Marquardt scaling ``D_b`` (running max of ``diag A_b``), acceptance ratio, ``λ`` up/
down, the "floor" regime and the MINPACK stopping tests — with its own ``λ_b``, ``D_b``,
counters and status. Geodesic acceleration is tried, as in the single-problem solver, only
where the plain step falls short of the linear model, and its second derivative comes from
the secant difference (``Jᵀ r'' ≈ 2 (Jᵀ r(u + δ) - g - Aδ)``, one reverse-mode product for
those problems), so iteration paths can differ slightly from a single-problem fit whose
engine takes ``r''`` another way (a secant of the residuals themselves, or finite
differences); the minimum and the stopping tests are the same. The model is
Gauss–Newton's: the single-problem solver's secant augmentation (``secant``) is not used,
so on problems with large residuals a batched fit can take more iterations than a single
one to the same minimum. All
problems are advanced together with batched tensor operations; one loop iteration is one
accepted (or finally rejected) step of every problem still running. A problem that has
stopped is frozen: it is left out of every later evaluation.

With the compiled broadcast form, whose fused pass gives the normal equations for little
more than the cost, every trial point gets its normal equations at once (one pass per
accepted step). The small per-problem systems are solved by an unrolled Cholesky over the
batch for up to ``UNROLLED_MAX_PARAMS`` parameters, and the state is read and written
through slices while the running problems form a contiguous run.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import Tensor

from inversekit.contracts import BatchedLeastSquaresProblem, SavedState, Summary, implements
from inversekit.linalg.damped import batched_damped_solve
from inversekit.linalg.rows import contiguous_rows, finite_rows, select_rows
from inversekit.optimize.levenberg_marquardt.gauss_newton import (
    MIN_DAMPING,
    StopInputs,
    batch_stops,
    cost_resolution,
    initial_scale,
)
from inversekit.optimize.levenberg_marquardt.solver import LevenbergMarquardt
from inversekit.results.status import Status

# A second difference below this multiple of eps·max|r| is rounding, not curvature.
_UNRESOLVED = 1e3


@dataclass(frozen=True)
class BatchedLevenbergMarquardt(LevenbergMarquardt):
    """Options as :class:`~inversekit.LevenbergMarquardt` (same names, same defaults).

    ``max_iter`` and ``max_time`` bound the whole batch; problems still running when a
    budget runs out get ``MAX_ITER`` / ``MAX_TIME``.
    """

    name: str = "BatchedLM"

    @classmethod
    def from_lm(cls, lm: LevenbergMarquardt, **kwargs) -> BatchedLevenbergMarquardt:
        """The batched solver with the options of a single-problem ``lm`` (and ``kwargs``)."""
        opts = {f: getattr(lm, f) for f in lm.__dataclass_fields__ if f != "name"}
        return cls(**opts, **kwargs)

    # --- solver contract ------------------------------------------------------------
    def init(self, problem) -> BatchedLMState:
        B, p = problem.u0.shape
        u = torch.where(torch.isfinite(problem.u0), problem.u0, 0.0)
        st = BatchedLMState.empty(u, p, self.lambda0)
        st.status = [None if note is None else Status.NONFINITE for note in problem.notes]
        idx = problem.valid_indices()
        st.running[idx] = True
        if idx.numel():
            st.store(idx, problem.batched_normal_equations(u[idx], idx))
            st.D[idx] = initial_scale(st.A[idx])
            st.n_fev[idx] = 1
            st.n_jev[idx] = 1
            st.stop(idx[~st.finite(idx)], Status.NONFINITE)
        st.history.append(st.costs.clone())
        return st

    def step(self, problem, st: BatchedLMState) -> BatchedLMState:
        stepping = st.running.clone()
        st.n_iter[stepping] += 1
        lam = st.lam.clone()
        rejections = torch.zeros_like(st.n_iter)
        last_pred = torch.full_like(st.costs, math.inf)
        while bool(stepping.any()):
            idx = torch.nonzero(stepping).flatten()
            done = self._one_trial(problem, st, idx, lam, last_pred)
            rejections[idx[~done]] += 1
            stepping[idx[done]] = False
            out = idx[~done][rejections[idx[~done]] >= self.max_rejections]
            if out.numel():
                st.lam[out] = lam[out]
                eps = torch.finfo(problem.dtype).eps
                noise = cost_resolution(st.costs[out], problem.data_norm[out], eps)
                precision = last_pred[out] <= noise
                st.stop(out[precision], Status.PRECISION)
                st.stop(out[~precision], Status.STALLED)
                stepping[out] = False
        self._check_stops(st)
        st.history.append(st.costs.clone())
        return st

    def terminate(self, problem, st: BatchedLMState) -> Status | None:
        if bool(st.running.any()):
            return None
        counts = Counter(s for s in st.status if s is not None)
        return counts.most_common(1)[0][0] if counts else Status.NONFINITE

    def accepts(self, problem) -> str | None:
        if not implements(problem, BatchedLeastSquaresProblem):
            return "BatchedLM needs a batched least-squares problem (ik.BatchedLeastSquares)"
        return None

    def cost(self, st: BatchedLMState) -> float:
        return st.cost

    def n_evals(self, st: BatchedLMState) -> int:
        return int(st.n_fev.max()) if st.n_fev.numel() else 0

    def point(self, problem, st: BatchedLMState) -> Tensor:
        return st.u

    def summary(self, problem, st: BatchedLMState) -> Summary:
        h = torch.stack(st.history, dim=1)
        steps = torch.arange(h.shape[1], device=h.device)
        history = torch.where(steps[None, :] <= st.n_iter[:, None], h, torch.nan)
        return Summary(
            u=st.u,
            cost=st.costs,
            n_fev=st.n_fev,
            n_jev=st.n_jev,
            statuses=list(st.status),  # None: still running when the loop stopped the run
            n_iter=st.n_iter,
            history=history,
            curvature=st.A,
        )

    def save(self, st: BatchedLMState) -> SavedState:
        return st.save()

    def restore(self, problem, saved: SavedState) -> BatchedLMState:
        return BatchedLMState.restore(saved, problem.u0)

    # --- one trial for the problems still looking for a step ------------------------
    def _one_trial(self, problem, st, idx: Tensor, lam: Tensor, last_pred: Tensor) -> Tensor:
        """Try one damped step for each problem in ``idx``; returns which are done.

        Mirrors one pass of :meth:`LevenbergMarquardt.step`'s rejection loop: a failed
        solve raises ``λ``; the plain step is evaluated and, where it falls short of the
        linear model, its geodesic acceleration too; an accepted trial updates the state;
        a rejected trial in the floor regime stops that problem with ``PRECISION``.
        """
        done = torch.zeros(idx.numel(), dtype=torch.bool, device=idx.device)
        delta, pred, ok = self._trial(st, idx, lam[idx])
        ok &= self._short_enough(problem, delta)  # else damped, like a failed solve
        lam[idx[~ok]] *= self.lambda_up
        if not bool(ok.any()):
            return done
        tried, delta, pred = select_rows(ok, idx, delta, pred)
        rows = contiguous_rows(tried)
        last_pred[rows] = pred
        cost = st.costs[rows].clone()
        u_new = st.u[rows] + delta
        cost_new, spec = self._trial_costs(problem, st, tried, u_new)
        st.n_fev[rows] += 1
        noise = cost_resolution(cost, problem.data_norm[rows], torch.finfo(problem.dtype).eps)
        floor = pred <= noise
        moved = torch.zeros_like(floor)  # moved to the accelerated point: spec not there
        if self.geodesic:
            finite = torch.isfinite(cost_new)
            need = ~floor & ~(finite & (cost - cost_new >= self.geodesic_below * pred))
            if bool(need.any()):
                moved = self._accelerate(problem, st, tried, need, delta, u_new, cost_new, lam)
        actual = cost - cost_new
        good = ((pred > 0) & (actual >= self.accept * pred)) | (floor & (actual >= -noise))
        good &= torch.isfinite(cost_new)
        accepted = torch.zeros_like(good)
        if bool(good.any()):
            ne = self._normal_equations(problem, st, tried, u_new, good, spec, moved)
            finite = finite_rows(ne[0], ne[1])
            accepted[good] = finite
            a = good.clone()
            a[good] = finite
            ne = select_rows(finite, *ne)
            i, u, d, act, prd, fl = select_rows(a, tried, u_new, delta, actual, pred, floor)
            self._accept(st, i, u, d, ne, act, prd, lam, fl)
        refused = ~accepted
        at_floor = tried[refused & floor]
        st.lam[at_floor] = lam[at_floor]
        st.stop(at_floor, Status.PRECISION)
        lam[tried[refused & ~floor]] *= self.lambda_up
        done[ok] = accepted | (refused & floor)
        return done

    @staticmethod
    def _trial_costs(problem, st, tried: Tensor, u_new: Tensor):
        """Costs at the trial points ``u_new`` of problems ``tried``, and the speculative
        normal equations ``(A, g, cost)`` there (``None`` when not speculative).

        Where a normal-equation pass costs little more than a cost pass (the compiled
        form: one fused kernel), every trial point gets its normal equations at once, so an
        accepted step costs one pass instead of two. Unlike the single-problem solver, which
        does this only after a well-modelled step, the batch does it for every problem:
        splitting the trials into likely and unlikely ones would cost two passes over
        padded subsets, while a rejected trial only wastes the Jacobian part of its pass,
        and LM's damping makes rejections rare (none of the 107,000 trials of the
        10,000-problem benchmark)."""
        if not problem.speculative:
            return problem.costs(u_new, tried), None
        A, g, cost_new = problem.batched_normal_equations(u_new, tried)
        st.n_jev[tried] += 1
        return cost_new, (A, g, cost_new.clone())  # cost_new may be changed by acceleration

    @staticmethod
    def _normal_equations(problem, st, tried, u_new, good, spec, moved) -> tuple:
        """``(A, g, cost)`` at the accepted points ``u_new[good]``: the speculative ones,
        except where the point ``moved`` to its acceleration, which get a new pass."""
        if spec is None:
            u, idx = select_rows(good, u_new, tried)
            st.n_jev[idx] += 1
            return problem.batched_normal_equations(u, idx)
        A, g, cost = spec
        missing = good & moved
        if bool(missing.any()):
            A[missing], g[missing], cost[missing] = problem.batched_normal_equations(
                u_new[missing], tried[missing]
            )
            st.n_jev[tried[missing]] += 1
        return select_rows(good, A, g, cost)

    def _trial(self, st, idx: Tensor, lam: Tensor):
        """Damped steps ``δ`` of problems ``idx``, predicted reductions
        ``-(gᵀδ + ½ δᵀAδ)``, and which solves succeeded (``ok``)."""
        rows = contiguous_rows(idx)
        A, g, D = st.A[rows], st.g[rows], st.D[rows]
        delta, ok = batched_damped_solve(A, -g, D, lam)
        pred = -((g * delta).sum(1) + 0.5 * (delta * (A @ delta[..., None])[..., 0]).sum(1))
        return delta, pred, ok

    def _accelerate(self, problem, st, tried, need, delta, u_new, cost_new, lam) -> Tensor:
        """Geodesic acceleration for the problems ``tried[need]``, in place; returns which
        of ``tried`` moved to their accelerated point.

        As :meth:`LevenbergMarquardt._accelerated`, with the secant second difference
        ``r''[δ, δ] ≈ 2 (r(u + δ) - r - J δ)`` projected on the Jacobian:

            Jᵀ r''[δ, δ] ≈ 2 (Jᵀ r(u + δ) - g - A δ)

        so only ``Jᵀ r(u + δ)`` is new: one reverse-mode product per problem, for these
        few problems only, instead of their Jacobians. Where ``u + δ + a/2`` is better than
        ``u + δ`` it replaces ``delta``, ``u_new`` and ``cost_new``.
        """
        moved = torch.zeros_like(need)
        pos = torch.nonzero(need).flatten()
        sub = tried[pos]
        d = delta[pos]
        A, g = st.A[sub], st.g[sub]
        r1 = problem.residuals(u_new[pos], sub)
        jt_r1 = problem.vjp(st.u[sub], sub, r1)
        Ad = (A @ d[..., None])[..., 0]
        rhs = 2.0 * (jt_r1 - g - Ad)
        # the difference is rounding, not curvature, when it is this small next to its terms
        eps = torch.finfo(g.dtype).eps
        noise = _UNRESOLVED * eps * torch.maximum(jt_r1.abs().amax(1), (g.abs() + Ad.abs()).amax(1))
        resolved = rhs.abs().amax(1) > noise
        D = st.D[sub]
        accel, ok = batched_damped_solve(A, -rhs, D, lam[sub])
        sd = torch.sqrt(D)
        size = torch.linalg.vector_norm(sd * accel, dim=1)
        ok &= resolved & (2 * size <= self.geodesic_ratio * torch.linalg.vector_norm(sd * d, dim=1))
        ok &= self._short_enough(problem, d + 0.5 * accel)
        if not bool(ok.any()):
            return moved
        pos, sub, step = pos[ok], sub[ok], d[ok] + 0.5 * accel[ok]
        u_acc = st.u[sub] + step
        cost_acc = problem.costs(u_acc, sub)
        st.n_fev[sub] += 1
        better = torch.isfinite(cost_acc) & ~(cost_acc >= cost_new[pos])
        pos = pos[better]
        delta[pos], u_new[pos], cost_new[pos] = step[better], u_acc[better], cost_acc[better]
        moved[pos] = True
        return moved

    def _short_enough(self, problem, steps: Tensor) -> Tensor:
        """Which rows of ``steps`` move no bounded parameter by more than
        ``max_bounded_step`` (see :class:`LevenbergMarquardt`)."""
        bounded = problem.params.bounded
        if bounded is None:
            return torch.ones(steps.shape[0], dtype=torch.bool, device=steps.device)
        mask = torch.as_tensor(bounded, device=steps.device)
        return steps[:, mask].abs().amax(1) <= self.max_bounded_step

    def _accept(self, st, idx, u_new, delta, ne, actual, pred, lam, floor) -> None:
        """Move problems ``idx`` to their accepted trial points (as ``LM._accepted``)."""
        rows = contiguous_rows(idx)
        step_norm = torch.linalg.vector_norm(torch.sqrt(st.D[rows]) * delta, dim=1)
        cost_before = st.costs[rows].clone()
        st.u[rows] = u_new
        st.store(rows, ne)
        st.D[rows] = torch.maximum(st.D[rows], torch.diagonal(st.A[rows], dim1=1, dim2=2))
        st.lam[rows] = torch.clamp(lam[rows] / self.lambda_down, min=MIN_DAMPING)
        st.actual[rows], st.pred[rows], st.cost_before[rows] = actual, pred, cost_before
        st.previous_step_norm[rows] = st.step_norm[rows]
        st.step_norm[rows] = step_norm
        st.floor_steps[rows] = torch.where(floor, st.floor_steps[rows] + 1, 0)

    # --- per-problem stopping tests (as LM.terminate) --------------------------------
    def _check_stops(self, st: BatchedLMState) -> None:
        """The stopping tests of :mod:`.gauss_newton` for every running problem."""
        idx = torch.nonzero(st.running).flatten()
        if idx.numel() == 0:
            return
        rows = contiguous_rows(idx)
        inputs = StopInputs(
            cost=st.costs[rows],
            A=st.A[rows],
            g=st.g[rows],
            floor_steps=st.floor_steps[rows],
            step_norm=st.step_norm[rows],
            previous_step_norm=st.previous_step_norm[rows],
            actual=st.actual[rows],
            pred=st.pred[rows],
            cost_before=st.cost_before[rows],
            size=torch.linalg.vector_norm(torch.sqrt(st.D[rows]) * st.u[rows], dim=1),
        )
        for met, status in batch_stops(inputs, self):
            if bool(met.any()):
                st.stop(idx[met], status)


BatchedLM = BatchedLevenbergMarquardt

# The tensors of a batched state (per problem), as a checkpoint holds them.
_TENSOR_FIELDS = (
    "u", "costs", "A", "g", "D", "lam", "n_fev", "n_jev", "n_iter", "actual", "pred",
    "cost_before", "step_norm", "previous_step_norm", "floor_steps", "running",
)  # fmt: skip


@dataclass
class BatchedLMState:
    """Iterates of every problem: row ``b`` is problem ``b`` (frozen once it stops)."""

    u: Tensor  # (B, p) unconstrained point
    costs: Tensor  # (B,) ½ chi2
    A: Tensor  # (B, p, p) JᵀJ
    g: Tensor  # (B, p) Jᵀr
    D: Tensor  # (B, p) Marquardt scale
    lam: Tensor  # (B,) damping
    n_fev: Tensor  # (B,) model evaluations (trial costs)
    n_jev: Tensor  # (B,) Jacobian evaluations
    n_iter: Tensor
    actual: Tensor
    pred: Tensor
    cost_before: Tensor
    step_norm: Tensor
    previous_step_norm: Tensor
    floor_steps: Tensor
    running: Tensor  # (B,) bool: still iterating
    status: list[Status | None] = field(default_factory=list)
    history: list[Tensor] = field(default_factory=list)

    @classmethod
    def empty(cls, u: Tensor, p: int, lam0: float) -> BatchedLMState:
        B = u.shape[0]

        def full(v, dtype=u.dtype):
            return torch.full((B,), v, dtype=dtype, device=u.device)

        inf = math.inf
        return cls(
            u=u.clone(), costs=full(0.0), A=u.new_zeros(B, p, p), g=u.new_zeros(B, p),
            D=u.new_ones(B, p), lam=full(lam0),
            n_fev=full(0, torch.long), n_jev=full(0, torch.long), n_iter=full(0, torch.long),
            actual=full(inf), pred=full(inf), cost_before=full(inf), step_norm=full(inf),
            previous_step_norm=full(inf), floor_steps=full(0, torch.long),
            running=full(False, torch.bool),
        )  # fmt: skip

    @property
    def cost(self) -> float:
        """Total cost of the problems with a finite cost (what the iteration loop logs)."""
        c = self.costs[torch.isfinite(self.costs)]
        return float(c.sum())

    def save(self) -> SavedState:
        """Arrays and scalars of a checkpoint (tensors as host NumPy arrays)."""
        out = {f: getattr(self, f).detach().cpu().numpy() for f in _TENSOR_FIELDS}
        out["history"] = torch.stack(self.history, dim=1).cpu().numpy()
        out["status"] = json.dumps([None if s is None else s.name for s in self.status])
        return out

    @classmethod
    def restore(cls, saved: SavedState, like: Tensor) -> BatchedLMState:
        """The state :meth:`save` wrote, on the device of ``like`` (the problem's start)."""
        values = {f: torch.from_numpy(saved[f]).to(like.device) for f in _TENSOR_FIELDS}
        history = torch.from_numpy(saved["history"]).to(like.device)
        status = [None if s is None else Status[s] for s in json.loads(saved["status"])]
        return cls(**values, status=status, history=list(history.unbind(1)))

    def store(self, idx: Tensor, ne) -> None:
        """Normal equations ``ne = (A, g, cost)`` of problems ``idx``."""
        self.A[idx], self.g[idx], self.costs[idx] = ne

    def finite(self, idx: Tensor) -> Tensor:
        """Which of problems ``idx`` have finite normal equations."""
        return finite_rows(self.A[idx], self.g[idx])

    def stop(self, idx: Tensor, status: Status) -> None:
        """Freeze problems ``idx`` with ``status``."""
        self.running[idx] = False
        for b in idx.tolist():
            self.status[b] = status
