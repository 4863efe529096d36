"""Weighted nonlinear least squares: a forward model plus data plus noise.

:class:`LeastSquares` is validated completely when it is built, so a bad input fails with
a message naming the culprit before any solver runs. The likelihood (Gaussian by default,
see :mod:`inversekit.problem.likelihoods`) turns model output and data into residuals whose
squares sum to the deviance; points can be excluded by ``mask=``, ``weights=0`` or
``sigma=inf``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from inversekit.derivatives.choice import make_jacobian
from inversekit.derivatives.forward import jacobian
from inversekit.derivatives.param_slots import ParamSlots
from inversekit.derivatives.point_memo import PointMemo
from inversekit.errors import InputError, ModelError
from inversekit.problem.evaluators import make_evaluator
from inversekit.problem.fingerprint import fingerprint
from inversekit.problem.likelihoods import Likelihood, make_likelihood
from inversekit.problem.model_calls import (
    call_model,
    check_model_and_params,
    prepare_input,
    to_tensor,
)
from inversekit.problem.noise import (
    GaussianNoise,
    first_where,
    gaussian_log_likelihood,
    make_noise,
    noise_given,
    not_finite,
)
from inversekit.problem.params import Params

Model = Callable[..., Tensor]

# Rows per chunk are chosen so one chunk's Jacobian (rows x p floats, plus forward-mode
# intermediates, taken as 8 copies) stays within this many bytes.
DEFAULT_CHUNK_BYTES = 256 * 2**20
# Data at least this large are checked chunk by chunk when the model looks rowwise.
CHUNKED_CHECK_MIN_POINTS = 1_000_000


class LeastSquares:
    """Weighted nonlinear least squares: minimise ``0.5 * chi2`` with ``chi2 = Σ w (f - y)²``
    (for the Gaussian likelihood; ``chi2 = Σ r²``, the deviance, for the others).

    Args:
        model: ``model(p, *inputs) -> Tensor`` with ``p`` a dict of physical parameter
            tensors; must return a tensor shaped like ``y``.
        params: the :class:`~inversekit.problem.params.Params` to fit.
        inputs: extra positional arguments for the model (e.g. ``(x,)``); floating arrays
            are converted to ``dtype`` tensors on ``y``'s device.
        y: observations, any shape.
        sigma, weights, inverse_covariance: at most one noise description (see
            :mod:`inversekit.problem.noise`). With none, weights are one and covariances are
            scaled by ``chi2/(n - p)``; with one, covariances are absolute. ``sigma=inf``
            or ``weights=0`` at a point excludes it, as ``mask`` does.
        mask: boolean, broadcast to ``y``'s shape: ``True`` where the point is USED,
            ``False`` where it is excluded (``mask=numpy.isfinite(y)`` drops missing
            values). Excluded points count nowhere: not in chi2, not in ``n_data`` or
            ``ndf``, not in the log-likelihood; their residuals and Jacobian rows are
            exactly 0, and ``y`` and the model output may be non-finite there.
        likelihood: ``"gaussian"`` (default), ``"poisson"`` (counts) or ``"student-t"``
            (robust, needs ``sigma``), or an object from
            :mod:`inversekit.problem.likelihoods` such as ``StudentT(nu=3)``.
        rowwise: whether output row ``i`` depends only on row ``i`` of each array input, so
            rows can be evaluated in chunks. ``None`` detects it by evaluating the model on
            a few rows.
        chunk_rows: rows per chunk when rowwise (default: from a 256 MB budget).
        dtype: floating dtype of the computation (float64 by default).
        jacobian: derivative engine: ``"eager"`` (forward-mode AD chunk by chunk),
            ``"compiled"`` (``torch.compile``'d fused accumulation, for large problems),
            ``"complex-step"`` (one batched complex evaluation, for small problems) or
            ``"auto"`` (complex step when ``n·p`` is small, compiled when it is large,
            eager in between or for more than 64 parameters). Engines that
            cannot be used fall back to eager; ``problem.jacobian.engine_name`` and
            ``.reason`` say which ran and why.
    """

    def __init__(
        self,
        model: Model,
        params: Params,
        inputs: Sequence = (),
        y=None,
        *,
        sigma=None,
        weights=None,
        inverse_covariance=None,
        mask=None,
        likelihood: str | Likelihood = "gaussian",
        rowwise: bool | None = None,
        chunk_rows: int | None = None,
        dtype: torch.dtype = torch.float64,
        jacobian: str = "auto",
    ):
        check_model_and_params(model, params)
        self.likelihood: Likelihood = make_likelihood(likelihood)
        # what with_params passes on (the data and noise as given: masks, zero weights)
        self._options = dict(
            sigma=sigma,
            weights=weights,
            inverse_covariance=inverse_covariance,
            mask=mask,
            likelihood=self.likelihood,
            rowwise=rowwise,
            chunk_rows=chunk_rows,
            dtype=dtype,
            jacobian=jacobian,
        )
        if y is None:
            raise InputError("y (the observations) is required")
        if not isinstance(inputs, tuple | list):
            inputs = (inputs,)
        y = to_tensor("y", y, dtype).detach()  # observations: no gradient flows into them
        if y.numel() == 0:
            raise InputError("y is empty")
        self.likelihood.check_noise(noise_given(sigma, weights, inverse_covariance))
        self.noise: GaussianNoise = make_noise(y, sigma, weights, inverse_covariance, mask)
        if self.likelihood.noise_known:  # the likelihood fixes the noise level
            self.noise.known = True
        # flat mask of the points used (None: all); residuals there are set to exactly 0
        self._used = self.noise.used
        y = self._finite_data(y, mask is not None)
        self.likelihood.check_data(y, self._used)
        self.model = model
        self.y = y
        self.dtype = dtype
        self.device = y.device
        self.params = params.to(dtype=dtype, device=y.device)
        self.inputs = tuple(prepare_input(i, v, dtype, y.device) for i, v in enumerate(inputs))
        self._check_sizes()
        self._check_priors()
        self.data_norm = self._data_norm()
        self.u0 = self.params.pack()
        self._model_nonfinite_unused = False  # the model output at the start, at excluded points
        self._log_likelihood_constant: float | None = None
        # rowwise None: detected when first asked; start: the model's output at u0, if made
        self._rowwise, start = self._check_model(rowwise)
        if rowwise and not self.noise.diagonal:
            raise InputError("rowwise=True cannot be used with a full inverse_covariance")
        self.chunks = self._make_chunks(chunk_rows)
        self._slots: ParamSlots | None = None  # parameter slots of the solvers' real calls
        unpack = self._point_unpack()
        # the solvers' gradient-free evaluations, chunk by chunk
        self._chunk_residuals = [
            self.residual_function(rows, unpack, inference=True) for rows in self.chunks
        ]
        # one-point memos (point, value): solvers ask again for what they just computed
        self._memo = PointMemo()  # residuals (unchunked problems)
        self._cost_memo = PointMemo()  # cost (chunked problems)
        self._ne_memo = PointMemo()  # normal equations
        # the first residuals, known already (but for the Gaussian priors' rows)
        if start is not None and self.chunks == [None] and not self.params.n_prior_rows:
            self._memo.put(self.u0, self._whitening(None)(start.detach(), self.y))
        self.jacobian = make_jacobian(self, jacobian)
        self._evaluator = None

    def with_params(self, params: Params, **changes) -> LeastSquares:
        """The same model, inputs, data, noise, mask and likelihood with other ``params``
        (e.g. some fixed, for a profile), and any constructor option in ``changes``."""
        return LeastSquares(self.model, params, self.inputs, self.y, **{**self._options, **changes})

    def evaluator(self):
        """The problem as Levenberg–Marquardt sees it, a function of float64 host points
        (see :mod:`inversekit.problem.evaluators`); made once."""
        if self._evaluator is None:
            self._evaluator = make_evaluator(self)
        return self._evaluator

    def host_slots(self) -> ParamSlots:
        """The parameter slots of the solvers' real model calls (scalar parameters)."""
        if self._slots is None:
            raise ValueError("parameter slots need every free parameter to be a scalar")
        return self._slots

    # --- validation -----------------------------------------------------------------
    def _finite_data(self, y: Tensor, masked: bool) -> Tensor:
        """``y``, refused where a used point is not finite, with its non-finite values at
        excluded points replaced by 0 (so that no residual there is ever NaN)."""
        used = self._used
        count, first = first_where(y, not_finite, used)
        if count:
            index = tuple(int(i) for i in torch.unravel_index(torch.tensor(first), y.shape))
            advice = "mask=mask & numpy.isfinite(y)" if masked else "mask=numpy.isfinite(y)"
            raise InputError(
                f"y contains {count} non-finite value(s) (first at index {index}); exclude "
                f"them with {advice} (or weights=0 / sigma=inf at those points)"
            )
        if used is not None and first_where(y, not_finite)[0]:
            y = torch.where(torch.isfinite(y), y, 0.0)  # only at excluded points
        return y

    def _data_norm(self) -> float:
        """The rounding scale of the residuals: ``‖y/σ‖`` for residuals ``(f - y)/σ`` (they
        carry rounding errors of a few ulp of y/σ), ``sqrt(Σ max(y, 1))`` for Poisson
        deviance residuals (``(f - y)/sqrt(y)`` to first order)."""
        y = self.y.reshape(-1)
        if self.likelihood.name == "poisson":
            ones = torch.clamp(y, min=1.0)
            if self._used is not None:
                ones = torch.where(self._used, ones, 0.0)
            return math.sqrt(float(ones.sum()))
        return self.noise.whitened_norm(y)

    def _check_sizes(self) -> None:
        p = self.params.n_free
        if p == 0:
            raise InputError("no free parameters: every parameter is fixed")
        n = self.noise.n_effective
        if p > n:
            raise InputError(
                f"more free parameters ({p}) than data points carrying weight ({n}); the "
                "problem is underdetermined"
            )

    def _check_priors(self) -> None:
        """Priors weigh against the data's likelihood, which needs the noise level."""
        names = self.params.prior_names
        if names and not self.noise_known:
            raise InputError(
                f"parameters {', '.join(names)} have priors, but no noise level was given: "
                "give sigma, weights or inverse_covariance (with unit weights the data's "
                "likelihood is unknown and cannot be weighed against a prior)"
            )

    @property
    def prior_rows(self) -> int:
        """Residual rows the Gaussian priors append after the data's (see
        :meth:`~inversekit.problem.params.Params.prior_residuals`)."""
        return self.params.n_prior_rows

    def prior_penalty(self, u: Tensor) -> float:
        """``Σ ((x - loc)/scale)²`` of the Gaussian priors at ``u`` (0 without them): the
        part of ``2 · cost`` that is not the data's chi2."""
        if not self.params.n_prior_rows:
            return 0.0
        with torch.no_grad():
            rows = self.params.prior_residuals(self.params.unpack(u))
        return float(torch.dot(rows, rows))

    def _check_model(self, rowwise: bool | None) -> tuple[bool | None, Tensor | None]:
        """Check the model's output at the start (dtype, shape, finite) and decide whether
        it is rowwise (``rowwise=None``: detect). Large rowwise data are checked chunk by
        chunk, so the check never holds the model's intermediates for all rows at once.
        Returns ``(rowwise, output at the start)``, the output ``None`` when chunked (the
        solver's first residuals, when all rows are one chunk)."""
        candidate = rowwise is not False and self._row_candidate()
        if candidate and self.y.numel() >= CHUNKED_CHECK_MIN_POINTS:
            probe = self._probe_rows()
            if probe is not None and self._check_in_chunks(*probe, trust=rowwise is True):
                return True, None
        out = call_model(
            self.model, self.params.unpack(self.u0), self.inputs, "the starting parameters"
        )
        self._check_output(out, tuple(self.y.shape), 0)
        if rowwise is not None:
            return bool(rowwise), out
        if candidate and self._default_chunk_rows() >= self.y.shape[0]:
            return None, out  # one chunk anyway: detect only if asked (model calls saved)
        probe = self._probe_rows() if candidate else None
        return probe is not None and _same(probe[1], out[probe[0]]), out

    @property
    def rowwise(self) -> bool:
        """Whether output row ``i`` depends only on row ``i`` of the array inputs (so rows
        can be evaluated in chunks): given, or detected on a few scattered rows."""
        if self._rowwise is None:
            probe = self._probe_rows()
            out = self.model_output(self.u0)
            self._rowwise = probe is not None and _same(probe[1], out[probe[0]])
        return self._rowwise

    def _check_output(self, out: Tensor, shape: tuple, first_row: int) -> None:
        if out.dtype != self.dtype:
            raise ModelError(
                f"the model returned dtype {out.dtype}, expected {self.dtype} (the dtype of y); "
                "create tensors inside the model with the dtype of the parameters"
            )
        if tuple(out.shape) != shape:
            raise ModelError(
                f"the model output has shape {tuple(out.shape)} but y has shape "
                f"{tuple(self.y.shape)}"
                + (f" (rows {first_row}...{first_row + shape[0] - 1})" if first_row else "")
            )
        row_size = self.y[0].numel() if self.y.dim() > 0 else 1
        used = self._used
        if used is not None:  # only the used points must be finite
            used = used[first_row * row_size : first_row * row_size + out.numel()]
        count, flat = first_where(out, not_finite, used)
        if count:
            first = [int(i) for i in torch.unravel_index(torch.tensor(flat), out.shape)]
            first[0] += first_row
            raise ModelError(
                f"the model output at the starting parameters has non-finite value(s) (first "
                f"at index {tuple(first)}); choose a start where the model is defined"
            )
        if used is not None and first_where(out, not_finite)[0]:
            self._model_nonfinite_unused = True  # allowed: those points are excluded
        self.likelihood.check_model(out, used, first_row)

    def _row_candidate(self) -> bool:
        """Whether rows could be evaluated apart: diagonal noise, and array inputs that all
        share y's leading dimension."""
        n_rows = self.y.shape[0] if self.y.dim() > 0 else 1
        arrays = [v for v in self.inputs if isinstance(v, Tensor) and v.dim() > 0]
        return (
            self.noise.diagonal
            and n_rows >= 4
            and bool(arrays)
            and all(v.shape[0] == n_rows for v in arrays)
        )

    def _probe_rows(self) -> tuple[Tensor, Tensor] | None:
        """``(rows, output)`` of the model on a few rows scattered through the data, or
        ``None`` if it cannot take them. Scattered, not a prefix: a prefix would pass models
        that depend on earlier rows only (a cumulative sum, a causal filter)."""
        n_rows = self.y.shape[0]
        rows = torch.unique(torch.tensor([1, n_rows // 3, n_rows // 2 + 1, n_rows - 2]))
        try:
            part = self.model(self.params.unpack(self.u0), *self._slice_inputs(rows))
        except Exception:  # noqa: BLE001 - a model that cannot take a subset is not rowwise
            return None
        if not isinstance(part, Tensor) or tuple(part.shape) != (len(rows), *self.y.shape[1:]):
            return None
        return rows, part

    def _check_in_chunks(self, rows: Tensor, part: Tensor, trust: bool) -> bool:
        """Check the output chunk by chunk; ``False`` (not rowwise) as soon as a probed row
        differs between its chunk and the probe (unless the user said ``rowwise=True``)."""
        n_rows = self.y.shape[0]
        step = self._default_chunk_rows()
        u = self.params.unpack(self.u0)
        for start in range(0, n_rows, step):
            chunk = slice(start, min(start + step, n_rows))
            try:
                out = self.model(u, *self._slice_inputs(chunk))
            except Exception:  # noqa: BLE001 - the whole-data check reports the error
                return False
            shape = (chunk.stop - start, *self.y.shape[1:])
            if not isinstance(out, Tensor) or tuple(out.shape) != shape:
                return False
            # the probe first: a model that is not rowwise may well fail a check on a chunk
            inside = (rows >= start) & (rows < chunk.stop)
            if not trust and not _same(part[inside], out[rows[inside] - start]):
                return False
            self._check_output(out, shape, start)
        return True

    def _make_chunks(self, chunk_rows: int | None) -> list[slice | None]:
        if chunk_rows is None and self.y.dim() > 0 and self._default_chunk_rows() >= len(self.y):
            return [None]  # one chunk: all rows at once, rowwise or not
        if not self.rowwise:
            return [None]
        n_rows = self.y.shape[0]
        if chunk_rows is None:
            chunk_rows = self._default_chunk_rows()
        if chunk_rows < 1:
            raise InputError(f"chunk_rows must be >= 1, got {chunk_rows}")
        return [slice(i, min(i + chunk_rows, n_rows)) for i in range(0, n_rows, chunk_rows)]

    def _default_chunk_rows(self) -> int:
        """Rows whose forward-mode work (rows x (p + 1), 8 copies) fits the chunk budget."""
        per_row = max(1, self.y[0].numel()) * (self.params.n_free + 1) * 8 * 8
        return max(1024, DEFAULT_CHUNK_BYTES // per_row)

    # --- evaluation -----------------------------------------------------------------
    def _slice_inputs(self, rows: slice | Tensor | None) -> tuple:
        if rows is None:
            return self.inputs
        return tuple(v[rows] if isinstance(v, Tensor) and v.dim() > 0 else v for v in self.inputs)

    def residual_function(
        self, rows: slice | None = None, unpack: Callable | None = None, inference: bool = False
    ) -> Callable[[Tensor], Tensor]:
        """``u -> whitened residuals`` of the given rows (all rows for ``None``), flat.

        ``unpack`` (default ``params.unpack``) turns ``u`` into the model's parameter dict.
        ``inference=True`` runs the model under ``torch.inference_mode`` (no autograd
        bookkeeping: a tenth less time per operation on tiny data) for gradient-free
        evaluations; the residuals are formed outside it, so they are ordinary tensors.
        """
        inputs = self._slice_inputs(rows)
        y = self.y if rows is None else self.y[rows]
        inner = self.y[0].numel() if self.y.dim() > 0 else 1
        flat = None if rows is None else slice(rows.start * inner, rows.stop * inner)
        unpack = self.params.unpack if unpack is None else unpack
        last = rows is None or rows.stop >= self.y.shape[0]
        if last and self.params.n_prior_rows:
            return self._with_prior_rows(inputs, y, flat, unpack, inference)
        if not self.likelihood.gaussian or self._used is not None:
            return self._general_residuals(inputs, y, flat, unpack, inference)

        # the plain Gaussian path, (f - y)/σ inline: tiny problems pay per operation
        def residuals(u: Tensor) -> Tensor:
            f = self.model(unpack(u), *inputs)
            return self.noise.whiten((f - y).reshape(-1), flat)

        def inference_residuals(u: Tensor) -> Tensor:
            with torch.inference_mode():
                f = self.model(unpack(u), *inputs)
            return self.noise.whiten((f - y).reshape(-1), flat)

        return inference_residuals if inference else residuals

    def _general_residuals(self, inputs, y, flat, unpack, inference: bool):
        """The residual function of the rows ``flat`` through :meth:`_whitening`."""
        whiten = self._whitening(flat)

        def residuals(u: Tensor) -> Tensor:
            with torch.inference_mode(inference):
                f = self.model(unpack(u), *inputs)
            return whiten(f, y)

        return residuals

    def _with_prior_rows(self, inputs, y, flat, unpack, inference: bool):
        """The residual function of the last rows with the Gaussian priors' rows appended
        (``½ Σ rows²`` is ``-log`` of their density: the fit is then the MAP)."""
        prior_residuals = self.params.prior_residuals
        whiten = self._whitening(flat)

        def residuals(u: Tensor) -> Tensor:
            values = unpack(u)
            with torch.inference_mode(inference):
                f = self.model(values, *inputs)
            return torch.cat([whiten(f, y), prior_residuals(values)])

        return residuals

    def _whitening(self, flat: slice | None) -> Callable[[Tensor, Tensor], Tensor]:
        """``(f, y) -> r`` (flat) for the data points ``flat`` (all for ``None``): the
        likelihood's residuals (the noise model's whitening for the Gaussian), exactly 0 at
        excluded points whatever ``f`` is there (``torch.where``, not a division by inf,
        which would give NaN for a non-finite model output)."""
        noise, likelihood = self.noise, self.likelihood
        used = self._used
        if used is not None and flat is not None:
            used = used[flat]
        if likelihood.gaussian:

            def data(f: Tensor, y: Tensor) -> Tensor:
                return noise.whiten((f - y).reshape(-1), flat)

        else:
            sigma = noise.sigma
            if sigma is not None and flat is not None:
                sigma = sigma[flat]

            def data(f: Tensor, y: Tensor) -> Tensor:
                return likelihood.residuals(f.reshape(-1), y.reshape(-1), sigma)

        if used is None:
            return data

        def masked(f: Tensor, y: Tensor) -> Tensor:
            return torch.where(used, data(f, y), 0.0)

        return masked

    def _point_unpack(self) -> Callable[[Tensor], dict[str, Tensor]]:
        """The unpacking used by the solvers' gradient-free evaluations: parameter slots
        refilled in place when every free parameter is a scalar (see
        :class:`~inversekit.problem.params.ParamSlots`), ``params.unpack`` otherwise."""
        params = self.params
        if not params.all_scalar:
            return params.unpack
        with torch.inference_mode(False):  # a normal tensor, writable in and out of it
            buffer = torch.empty(params.n_free, dtype=self.dtype, device=self.device)
        slots = self._slots = ParamSlots(params, buffer)
        shape = slots.buffer.shape

        def unpack(u: Tensor) -> dict[str, Tensor]:
            if u.shape != shape or u.requires_grad:
                return params.unpack(u)
            return slots.fill(u)

        return unpack

    def residuals(self, u: Tensor | None = None) -> Tensor:
        """Whitened residuals ``r`` (flat, length n) at ``u`` (default: the start), without
        gradient tracking (a fresh tensor the caller may modify)."""
        u = self.u0 if u is None else u
        if len(self._chunk_residuals) == 1:
            return self._memoised_residuals(u).clone()
        return self.residuals_view(u)

    def residuals_view(self, u: Tensor) -> Tensor:
        """As :meth:`residuals`, but possibly the memoised tensor itself (read only)."""
        if len(self._chunk_residuals) == 1:
            return self._memoised_residuals(u)
        with torch.no_grad():
            return torch.cat([residuals(u) for residuals in self._chunk_residuals])

    def cost(self, u: Tensor) -> float:
        """``0.5 * chi2`` at ``u``; chunked over rows, so it never holds all residuals."""
        if len(self._chunk_residuals) == 1:
            r = self._memoised_residuals(u)
            return 0.5 * float(torch.dot(r, r))
        total = self._cost_memo.get(u)
        if total is not None:
            return total
        ne = self._ne_memo.get(u)
        if ne is not None:
            return ne.cost  # the pass over the data that gave them summed the cost too
        total = 0.0
        with torch.no_grad():
            for residuals in self._chunk_residuals:
                r = residuals(u)
                total += 0.5 * float(torch.dot(r, r))
        self._cost_memo.put(u, total)
        return total

    def remember_residuals(self, u: Tensor, r: Tensor) -> None:
        """Take the whitened residuals ``r`` at ``u`` as known (an evaluator that computed
        them its own way hands them over; unchunked problems only)."""
        if len(self._chunk_residuals) == 1:
            self._memo.put(u, r)

    def _memoised_residuals(self, u: Tensor) -> Tensor:
        """Residuals of an unchunked problem, remembered for the last point asked.

        A solver asks for the cost at a trial point and then, once accepted, for the
        Jacobian there: the derivative engines reuse these residuals instead of calling the
        model again (a third of the model calls of a small fit).
        """
        r = self._memo.get(u)
        if r is None:
            # no autograd context needed: the model runs under inference mode and y and
            # the noise are detached, so r carries no graph whatever requires grad
            r = self._chunk_residuals[0](u)
            self._memo.put(u, r)
        return r

    def chi2(self, u: Tensor) -> float:
        """``Σ w (f - y)²`` of the data (unit weights when no noise was given; the Gaussian
        priors' rows left out)."""
        return 2.0 * self.cost(u) - self.prior_penalty(u)

    def normal_equations(self, u: Tensor):
        """``(JᵀWJ, JᵀWr, cost)`` at ``u``; see
        :class:`~inversekit.derivatives.forward.ChunkedJacobian`.

        Remembered for the last point asked: the uncertainty step at the solution reuses
        the solver's last pass instead of making one more over all the data.
        """
        ne = self._ne_memo.get(u)
        if ne is None:
            ne = self.jacobian.normal_equations(u)
            self._ne_memo.put(u, ne)
        return ne

    def log_likelihood(self, u: Tensor) -> float:
        """The data's log-likelihood at ``u`` (used points only).

        Gaussian, with the noise known: ``-chi2/2 + ½ log det W - n/2 log 2π``; with it
        unknown the noise variance is profiled out (``s² = chi2/n``):
        ``-n/2 (log(2π chi2/n) + 1)``. Other likelihoods: ``-chi2/2`` plus their constant
        (see :meth:`~inversekit.problem.likelihoods.Likelihood.log_likelihood_constant`),
        e.g. ``Σ (y log f - f - log y!)`` for Poisson.
        """
        noise = self.noise
        if not self.likelihood.gaussian:
            if self._log_likelihood_constant is None:
                self._log_likelihood_constant = self.likelihood.log_likelihood_constant(
                    self.y, self._used, noise.log_det_weights
                )
            return -0.5 * self.chi2(u) + self._log_likelihood_constant
        return gaussian_log_likelihood(
            self.chi2(u), noise.n_effective, noise.log_det_weights, noise.known
        )

    # --- the Fisher information (covariances of non-Gaussian likelihoods) -------------
    def fisher_rows(self, u: Tensor) -> Tensor | None:
        """Row scale ``s`` (flat, one per residual row) such that ``diag(s) J``, with ``J``
        the Jacobian of the residuals at ``u``, has ``(diag(s) J)ᵀ(diag(s) J)`` equal to the
        Fisher information; ``None`` for the Gaussian likelihood (``s = 1``: ``JᵀJ`` is
        it). Excluded points get 0, the Gaussian priors' rows 1."""
        if self.likelihood.gaussian:
            return None
        parts = [self._fisher_scale(u, rows) for rows in self.chunks]
        if self.params.n_prior_rows:
            parts.append(torch.ones(self.params.n_prior_rows, dtype=self.dtype, device=self.device))
        return torch.cat(parts)

    def _fisher_scale(self, u: Tensor, rows: slice | None) -> Tensor:
        """:meth:`fisher_rows` of the data rows ``rows`` (one model call on them)."""
        inner = self.y[0].numel() if self.y.dim() > 0 else 1
        flat = None if rows is None else slice(rows.start * inner, rows.stop * inner)
        y = self.y if rows is None else self.y[rows]
        sigma, used = self.noise.sigma, self._used
        if flat is not None:
            sigma = None if sigma is None else sigma[flat]
            used = None if used is None else used[flat]
        with torch.no_grad():
            f = self.model(self.params.unpack(u), *self._slice_inputs(rows))
            s = self.likelihood.fisher_scale(f.reshape(-1), y.reshape(-1), sigma)
            return s if used is None else torch.where(used, s, 0.0)

    def fisher_information(self, u: Tensor) -> Tensor:
        """The Fisher information ``I`` (p x p, in ``u``) at ``u``: ``JᵀWJ`` of the normal
        equations for the Gaussian likelihood, otherwise ``Σ (s J)ᵀ(s J)`` accumulated
        chunk by chunk (:meth:`fisher_rows`; forward mode, never the whole Jacobian)."""
        if self.likelihood.gaussian:
            return self.normal_equations(u).A
        p = u.numel()
        info = u.new_zeros(p, p)
        for rows in self.chunks:
            J, _ = jacobian(self.residual_function(rows), u.detach())
            s = self._fisher_scale(u, rows)
            if J.shape[0] > s.numel():  # the Gaussian priors' rows, scale 1
                s = torch.cat([s, s.new_ones(J.shape[0] - s.numel())])
            Js = s[:, None] * J
            info += Js.mT @ Js
        return info

    # --- the scalar-problem contract: value ½ r·r, gradient Jᵀr, Gauss–Newton products ---
    def value(self, u: Tensor) -> float:
        """``½ chi2`` at ``u`` (the scalar a general minimiser sees), plus ``-Σ log p(x)``
        of the priors that are not residual rows (non-Gaussian ones)."""
        if not self.params.other_prior_names:
            return self.cost(u)
        with torch.no_grad():
            other = self.params.log_prior(self.params.unpack(u), gaussian=False)
        return self.cost(u) - float(other)

    def gradient(self, u: Tensor) -> tuple[float, Tensor]:
        """``(value, gradient)`` at ``u`` by reverse mode (``Jᵀr`` plus the non-Gaussian
        priors' part), one row chunk at a time (memory ``O(chunk)``, never the whole
        Jacobian)."""
        total = 0.0
        grad = torch.zeros_like(u)
        if self.params.other_prior_names:
            with torch.enable_grad():
                x = u.detach().requires_grad_(True)
                minus_log = -self.params.log_prior(self.params.unpack(x), gaussian=False)
                (grad,) = torch.autograd.grad(minus_log, x)
                total = float(minus_log.detach())
        with torch.enable_grad():
            for rows in self.chunks:
                x = u.detach().requires_grad_(True)
                r = self.residual_function(rows)(x)
                half = 0.5 * torch.dot(r, r)
                (part,) = torch.autograd.grad(half, x)
                total += float(half.detach())
                grad += part
        return total, grad

    def hvp(self, u: Tensor, v: Tensor) -> Tensor:
        """The Gauss–Newton product ``JᵀJ v`` at ``u`` (the curvature least squares uses):
        ``J v`` by forward mode, then ``Jᵀ(J v)`` by reverse mode, chunk by chunk."""
        out = torch.zeros_like(u)
        for rows in self.chunks:
            fn = self.residual_function(rows)
            _, jv = torch.func.jvp(fn, (u.detach(),), (v,))
            _, pullback = torch.func.vjp(fn, u.detach())
            out += pullback(jv)[0]
        return out

    def unpack(self, u: Tensor) -> dict[str, Tensor]:
        """Every parameter as a physical tensor at ``u`` (fixed ones at their values)."""
        return self.params.unpack(u)

    @property
    def noise_known(self) -> bool:
        """Whether the noise level is known (given, or fixed by the likelihood: Poisson,
        Student-t): covariances absolute, else scaled by ``chi2/(n - p)``."""
        return self.noise.known

    @property
    def plain_gaussian_obstacle(self) -> str | None:
        """Why the residuals are not simply ``(f - y)/σ`` with a diagonal ``σ`` (``σ = inf``
        at excluded points), or ``None`` when they are. The fast paths (the compiled and
        complex-step engines, the host evaluator) whiten by ``σ`` themselves and ask here
        (the one place) whether they may."""
        if not self.likelihood.gaussian:
            return f"the {self.likelihood.spec} likelihood is differentiated by forward mode"
        if not self.noise.diagonal:
            return "a full inverse covariance is not whitened by the fast engines"
        if self.prior_rows:
            return "Gaussian priors' residual rows are differentiated by forward mode"
        if self._model_nonfinite_unused:
            return "the model is not finite at excluded points (residuals set to 0 by eager AD)"
        return None

    @property
    def plain_gaussian(self) -> bool:
        """Whether the residuals are ``(f - y)/σ`` and nothing else (see
        :attr:`plain_gaussian_obstacle`)."""
        return self.plain_gaussian_obstacle is None

    def fingerprint(self) -> dict:
        """The problem's identity for checkpoints (see :mod:`.fingerprint`): the data and
        noise (excluded points are ``σ = inf`` in it) and the likelihood."""
        noise = self.noise
        out = fingerprint("LeastSquares", self.params, self.model, self.y, noise.sigma, noise.chol)
        out["likelihood"] = self.likelihood.spec
        return out

    @property
    def n_data(self) -> int:
        """Number of data points that carry weight (excluded points left out)."""
        return self.noise.n_effective

    def model_output(self, u: Tensor) -> Tensor:
        """The model evaluated at ``u`` on every input (shaped like ``y``)."""
        with torch.no_grad():
            return self.model(self.params.unpack(u), *self.inputs)


def _same(a: Tensor, b: Tensor) -> bool:
    """Model outputs equal to rounding (the same rows evaluated in different company)."""
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-13, atol=0.0, equal_nan=True))


# END
