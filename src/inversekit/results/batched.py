"""Results of a batched fit: every field carries the batch dimension; ``result[b]`` is a
plain :class:`~inversekit.FitResult` of problem ``b``.

Uncertainties follow :mod:`inversekit.results.uncertainty` per problem: ``C_u = s² (JᵀWJ)⁻¹`` from
the eigendecomposition of the unit-curvature scaled ``JᵀWJ`` the solver ended with
(singular directions left out and their parameters flagged), ``s² = 1`` with the noise
given and ``chi2_b / (n_b - p)`` without, mapped to physical space by ``C_x = G C_u G``,
``G = diag(dx/du)``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch
from torch import Tensor

from inversekit.contracts import Summary
from inversekit.linalg.curvature import batched_eigh, eigen_inverse
from inversekit.linalg.rows import contiguous_rows, finite_rows, select_rows
from inversekit.problem.noise import gaussian_log_likelihood
from inversekit.results.archive import identical, to_archive
from inversekit.results.fit_result import FitResult
from inversekit.results.identifiability import (
    ROUNDING_LEVEL,
    SHORT,
    batched_identifiability,
    short_reason,
)
from inversekit.results.status import Status
from inversekit.results.uncertainty import directions, physical_uncertainty

_NEAR_NULL_RATIO = 1e-10
BATCHED_FORMAT = "inversekit.BatchedFitResult"


@dataclass
class BatchedFitResult:
    """Outcome of ``B`` independent fits; tensors have a leading ``B`` dimension.

    ``params``/``stderr`` map names to ``(B, *shape)`` tensors; ``x`` ``(B, p)`` and
    ``covariance``/``correlation`` ``(B, p, p)`` are over the free elements named by
    ``labels``; ``status`` is a list of :class:`~inversekit.Status`; ``notes[b]`` says why
    problem ``b`` was not attempted (``None`` when it was). Problems that were not
    attempted have status ``NONFINITE``, their start as ``params`` and NaN statistics.
    """

    params: dict[str, Tensor]
    x: Tensor
    labels: list[str]
    covariance: Tensor
    stderr: dict[str, Tensor]
    correlation: Tensor
    cost: Tensor
    chi2: Tensor
    reduced_chi2: Tensor
    ndf: Tensor
    n_data: Tensor
    status: list[Status]
    n_iter: Tensor
    n_fev: Tensor
    n_jev: Tensor
    time: float
    history: Tensor  # (B, steps + 1) cost after each step, NaN once a problem stopped
    covariance_scaled: bool
    condition_number: Tensor
    eigenvalues: Tensor  # (B, p) of the scaled JᵀWJ, for near-null diagnostics
    eigenvectors: Tensor  # (B, p, p)
    at_bounds: Tensor  # (B, p) bool
    unidentified: Tensor  # (B, p) bool
    log_likelihood: Tensor
    notes: list[str | None]
    solver: str = ""
    # (B, p) bool: free elements the data do not constrain, and (B, p) int8 why: the check
    # of inversekit.results.identifiability that named them (0 where none did)
    unconstrained: Tensor | None = None
    unconstrained_codes: Tensor | None = None

    def __len__(self) -> int:
        return len(self.status)

    @property
    def success(self) -> Tensor:
        """``(B,)`` bool: which problems converged."""
        return torch.tensor([s.success for s in self.status], dtype=torch.bool)

    @property
    def trustworthy(self) -> Tensor:
        """``(B,)`` bool: which problems converged with every free parameter constrained
        by the data (see :attr:`inversekit.FitResult.trustworthy`)."""
        if self.unconstrained is None:
            return self.success
        return self.success & ~self.unconstrained.any(1).cpu()

    def unconstrained_labels(self, b: int) -> dict[str, str]:
        """Problem ``b``'s free elements the data do not constrain, with why."""
        if self.unconstrained_codes is None:
            return {}
        codes = self.unconstrained_codes[b].tolist()
        return {lb: SHORT[c] for lb, c in zip(self.labels, codes, strict=True) if c}

    @property
    def failed(self) -> list[int]:
        """Indices of the problems that did not converge."""
        return [b for b, s in enumerate(self.status) if not s.success]

    def __getitem__(self, b: int) -> FitResult:
        """Problem ``b`` as a plain :class:`~inversekit.FitResult`."""
        if not -len(self) <= b < len(self):
            raise IndexError(f"problem index {b} out of range for a batch of {len(self)}")
        b = b % len(self)
        eig, V = self.eigenvalues[b], self.eigenvectors[b]  # eig relative to the largest
        near = eig < _NEAR_NULL_RATIO  # false throughout for problems not fitted (NaN)
        reasons = self.unconstrained_labels(b)
        one = FitResult(
            params={n: v[b] for n, v in self.params.items()},
            x=self.x[b],
            labels=list(self.labels),
            covariance=self.covariance[b],
            stderr={n: v[b] for n, v in self.stderr.items()},
            correlation=self.correlation[b],
            cost=float(self.cost[b]),
            chi2=float(self.chi2[b]),
            reduced_chi2=float(self.reduced_chi2[b]),
            ndf=int(self.ndf[b]),
            n_data=int(self.n_data[b]),
            status=self.status[b],
            n_iter=int(self.n_iter[b]),
            n_fev=int(self.n_fev[b]),
            n_jev=int(self.n_jev[b]),
            time=self.time,
            history=self.history[b, : int(self.n_iter[b]) + 1].tolist(),
            covariance_scaled=self.covariance_scaled,
            condition_number=float(self.condition_number[b]),
            near_null=directions(V[:, near], self.labels),
            at_bounds=[
                lb for lb, f in zip(self.labels, self.at_bounds[b].tolist(), strict=True) if f
            ],
            unidentified=[
                lb for lb, f in zip(self.labels, self.unidentified[b].tolist(), strict=True) if f
            ],
            log_likelihood=float(self.log_likelihood[b]),
            solver=self.solver,
            unconstrained=list(reasons),
            unconstrained_reasons=reasons,
            stderr_all={n: v[b] for n, v in self.stderr.items()}
            | {n: torch.zeros_like(v[b]) for n, v in self.params.items() if n not in self.stderr},
        )
        if reasons:
            one.message += "; " + "; ".join(
                f"WARNING: {k} not constrained by the data ({short_reason(v)})"
                for k, v in list(reasons.items())[:5]
            )
        return one

    def __iter__(self):
        return (self[b] for b in range(len(self)))

    def report(self) -> str:
        """Counts of each status, and the first few problems that failed with why."""
        counts = Counter(s.name for s in self.status)
        lines = [
            f"[[Batched fit: {self.solver}]]",
            f"    problems        {len(self)}   converged {int(self.success.sum())}",
            f"    time            {self.time:.4g} s   iterations (max) {int(self.n_iter.max())}",
            "    statuses        " + ", ".join(f"{k} {v}" for k, v in counts.most_common()),
        ]
        for b in self.failed[:10]:
            why = self.notes[b] or self.status[b].value
            lines.append(f"    problem {b}: {self.status[b].name}: {why}")
        if len(self.failed) > 10:
            lines.append(f"    ... {len(self.failed) - 10} more problems did not converge")
        lines += self._unconstrained_lines()
        return "\n".join(lines)

    def _unconstrained_lines(self) -> list[str]:
        """How many problems have parameters the data do not constrain, which parameters
        (counts), and the first few such problems with why."""
        if self.unconstrained is None or not bool(self.unconstrained.any()):
            return []
        mask = self.unconstrained.cpu()
        which = torch.nonzero(mask.any(1)).flatten().tolist()
        counts = mask.sum(0).tolist()
        per = ", ".join(f"{lb} in {c}" for lb, c in zip(self.labels, counts, strict=True) if c)
        lines = [
            "[[Warnings]]",
            f"    {len(which)} problems have parameters not constrained by the data ({per})",
        ]
        for b in which[:10]:
            why = "; ".join(f"{k} ({v})" for k, v in self.unconstrained_labels(b).items())
            lines.append(f"    problem {b}: {why}")
        if len(which) > 10:
            lines.append(f"    ... {len(which) - 10} more such problems")
        return lines

    def __str__(self) -> str:
        return self.report()

    def save(self, path) -> None:
        """Write to ``path`` (``.npz``); :func:`inversekit.load` reads it back bit-identically."""
        to_archive(self, path, BATCHED_FORMAT)

    def __eq__(self, other) -> bool:
        return isinstance(other, BatchedFitResult) and identical(self, other)


def batched_result(problem, summary: Summary, run, *, solver: str) -> BatchedFitResult:
    """Statistics and uncertainties of every problem at the solver's final state
    (``summary``: points, costs, per-problem counts and statuses, ``JᵀWJ`` at the points)."""
    B, p = summary.u.shape
    idx = problem.valid_indices()
    valid = problem.valid.to(summary.u.device)
    cost = torch.full((B,), math.nan, dtype=summary.u.dtype, device=summary.u.device)
    unc = _Uncertainty.nan(B, p, summary.u)
    if idx.numel():
        rows = contiguous_rows(idx)
        A = summary.curvature[rows]
        if A.dtype != torch.float64:  # float32 JᵀJ would square float32's rounding
            J, _ = problem.jacobians(summary.u[rows], idx)
            J = J.to(torch.float64)
            A = J.mT @ J
        cost[rows] = summary.cost[rows]
        # Non-finite normal equations (status NONFINITE) would make eigh raise: leave NaN.
        ok = finite_rows(A, cost[rows][:, None])
        unc.fill(*select_rows(ok, idx, A, 2.0 * cost[rows], summary.u[rows]), problem)
    chi2 = 2.0 * cost
    n = problem.n_data
    ndf = n - p
    reduced = torch.where(ndf > 0, chi2 / ndf.clamp(min=1), math.nan)
    u = torch.where(valid[:, None], summary.u, math.nan)
    params = {k: v.detach() for k, v in problem.unpack(u).items()}
    for k, v in problem.start_values.items():  # problems not attempted: report their start
        params[k] = torch.where(valid.reshape((B,) + (1,) * (v.dim() - 1)), params[k], v)
    x = torch.cat([params[k].reshape(B, -1) for k in problem.params.free_names], dim=1)
    return BatchedFitResult(
        params=params,
        x=x,
        labels=problem.params.labels(),
        covariance=unc.covariance,
        stderr=_split(problem.params, unc.stderr),
        correlation=unc.correlation,
        cost=cost,
        chi2=chi2,
        reduced_chi2=reduced,
        ndf=ndf,
        n_data=n,
        status=[run.status if s is None else s for s in summary.statuses],
        n_iter=summary.n_iter.clone(),
        n_fev=summary.n_fev.clone(),
        n_jev=summary.n_jev.clone(),
        time=run.time,
        history=summary.history,
        covariance_scaled=not problem.noise_known,
        condition_number=unc.condition,
        eigenvalues=unc.eig,
        eigenvectors=unc.V,
        at_bounds=unc.pinned,
        unidentified=unc.singular & ~unc.pinned,
        log_likelihood=_log_likelihood(problem, chi2),
        notes=list(problem.notes),
        solver=solver,
        unconstrained=unc.codes != 0,
        unconstrained_codes=unc.codes,
    )


def _split(params, flat: Tensor) -> dict[str, Tensor]:
    B = flat.shape[0]
    return {
        n: flat[:, params.slices[n]].reshape((B, *params.values[n].shape))
        for n in params.free_names
    }


def _log_likelihood(problem, chi2: Tensor) -> Tensor:
    """Gaussian log-likelihood per problem (noise variance profiled out when unknown)."""
    n = problem.n_data.to(chi2.dtype)
    sw = problem.sqrt_weights
    logdet = 2.0 * torch.log(torch.where(sw > 0, sw, 1.0)).sum(1)  # zero weights add log 1
    return gaussian_log_likelihood(chi2, n, logdet, problem.noise_known)


class _Uncertainty:
    """Per-problem covariance and diagnostics, filled for the problems that were fitted."""

    @classmethod
    def nan(cls, B: int, p: int, like: Tensor) -> _Uncertainty:
        self = cls()
        nan = math.nan
        self.covariance = like.new_full((B, p, p), nan)
        self.correlation = like.new_full((B, p, p), nan)
        self.stderr = like.new_full((B, p), nan)
        self.condition = like.new_full((B,), nan)
        self.eig = like.new_full((B, p), nan)
        self.V = like.new_full((B, p, p), nan)
        self.pinned = torch.zeros(B, p, dtype=torch.bool, device=like.device)
        self.singular = torch.zeros(B, p, dtype=torch.bool, device=like.device)
        self.codes = torch.zeros(B, p, dtype=torch.int8, device=like.device)
        return self

    def fill(self, idx: Tensor, A: Tensor, chi2: Tensor, u: Tensor, problem) -> None:
        """As :func:`inversekit.results.uncertainty.least_squares_uncertainty`, for rows ``idx``,
        from each problem's ``A = JᵀWJ`` at the solution (which the solver already has).

        ``A`` is scaled to unit diagonal before its eigendecomposition, so the inverse is
        accurate to about ``cond(scaled J)² · eps``: fine in float64 for the conditioning
        of most batched models (a single-problem fit of a small problem uses the SVD of
        ``J`` instead). For float32 data ``A`` is formed from ``J`` in float64.
        """
        if idx.numel() == 0:
            return
        p = A.shape[2]
        d = torch.diagonal(A, dim1=1, dim2=2)
        s = torch.where(d > 0, torch.rsqrt(torch.where(d > 0, d, 1.0)), 1.0)
        eig, V = batched_eigh(A * s[:, :, None] * s[:, None, :])
        inverse, condition, singular, relative = eigen_inverse(eig, V, s)
        ndf = (problem.n_data[idx] - p).to(chi2.dtype)
        scale = (
            torch.ones_like(chi2)
            if problem.noise_known
            else torch.where(ndf > 0, chi2 / ndf.clamp(min=1), math.nan)
        )
        G = _derivative(problem.params, u)
        distance = _distance(problem.params, u)
        cov, stderr, pinned, corr = physical_uncertainty(inverse, scale, G, singular, distance)
        dtype = self.covariance.dtype  # the problem's (A may be float64 for float32 data)
        pieces = {"G": G, "cov": cov, "singular": singular, "relative": relative, "V": V}
        codes = batched_identifiability(problem, idx, u, A, chi2, {**pieces, "scale": scale})
        # a derivative at rounding level: the scaled condition number would hide it
        condition = torch.where((codes == ROUNDING_LEVEL).any(1), math.inf, condition)
        rows = contiguous_rows(idx)
        self.covariance[rows], self.correlation[rows] = cov.to(dtype), corr.to(dtype)
        self.stderr[rows], self.condition[rows] = stderr.to(dtype), condition.to(dtype)
        self.eig[rows], self.V[rows] = relative.to(dtype), V.to(dtype)
        self.pinned[rows], self.singular[rows] = pinned, singular
        self.codes[rows] = codes


def _derivative(params, u: Tensor) -> Tensor:
    """``(k, p)``: ``dx/du`` of every free element, per problem."""
    parts = [params.bijections[n].derivative(u[:, params.slices[n]]) for n in params.free_names]
    return torch.cat(parts, dim=1)


def _distance(params, u: Tensor) -> Tensor:
    """``(k, p)``: distance of every free physical element to its nearest bound."""
    parts = []
    for n in params.free_names:
        bij = params.bijections[n]
        parts.append(bij.distance_to_bound(bij.forward(u[:, params.slices[n]])))
    return torch.cat(parts, dim=1)
