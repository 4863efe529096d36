"""Batched least squares: many independent problems of one model, solved as one.

Problem ``b`` of ``B`` minimises ``½ chi2_b = ½ Σ_i w_bi (f(p_b; x_b)_i - y_bi)²`` with the
*same* model ``f`` and data shape for every ``b``. The user writes ``f`` for one problem;
it is evaluated for a chunk of problems at once, either in broadcast form (scalar
parameters shaped ``(k, 1)``, see :mod:`inversekit.derivatives.broadcast`) or mapped with
``torch.func.vmap`` over the leading batch dimension of the data, the starts and any
per-problem inputs, so Python runs once per batch iteration, not once per problem.

Each problem has its own Jacobian ``J_b`` (n x p, forward mode), its
own normal equations ``(J_bᵀJ_b, J_bᵀr_b)`` and, in the solver, its own damping, scaling,
stopping and status. A problem whose data, weights or start are not finite (or whose
model is not finite at its start) is marked invalid up front with a note saying why;
the others are solved as usual. Structurally wrong input (shapes) raises
:class:`~inversekit.InputError` naming the array.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor
from torch.func import jacfwd, vmap

from inversekit.derivatives.broadcast import CHECK_PROBLEMS
from inversekit.errors import InputError, ModelError
from inversekit.linalg.rows import contiguous_rows, finite_rows
from inversekit.problem.fingerprint import fingerprint
from inversekit.problem.likelihoods import Likelihood, make_likelihood
from inversekit.problem.model_calls import check_model_and_params, prepare_input, to_tensor
from inversekit.problem.noise import make_mask
from inversekit.problem.params import Params

Model = Callable[..., Tensor]

# How a chunk of problems shares model calls (the ``batching`` option).
BATCHINGS = ("auto", "broadcast", "vmap")

# Data points per vectorised pass when chunk_problems is not given: one pass's forward-mode
# intermediates (points x (p + 1) doubles) then stay within the CPU's L2/L3 cache.
CHUNK_POINTS = 2**16


class BatchedLeastSquares:
    """``B`` independent weighted least-squares problems sharing one model and data shape.

    Args:
        model: ``model(p, *inputs) -> Tensor`` for ONE problem: ``p`` maps names to that
            problem's physical parameter tensors; the output is shaped like ``y[b]``. It
            must be vmap-compatible (no ``.item()``, no Python branching on tensor values).
        params: :class:`~inversekit.Params`. Each value is either 0-d (the same start, or
            fixed value, for every problem) or has the batch size ``B`` as its leading
            dimension (one per problem; a vector parameter of length k is ``(B, k)``).
            Bounds and ``fixed`` apply to every problem.
        inputs: extra positional model arguments; shared by all problems unless listed in
            ``batched_inputs``.
        y: observations, shape ``(B, *data_shape)``.
        sigma, weights: at most one; broadcast to ``y``'s shape (e.g. ``(n,)`` shared or
            ``(B, n)`` per problem). With neither, covariances are scaled by
            ``chi2_b / (n - p)`` per problem; with one, they are absolute. A zero weight or
            ``sigma = inf`` excludes a point (``y`` may then be non-finite there).
        mask: boolean, broadcast to ``y``'s shape: ``True`` where the point is used,
            ``False`` where it is excluded (weight zero; ``y`` may be non-finite there, the
            model must still be finite).
        likelihood: ``"gaussian"`` only (other likelihoods: one problem at a time with
            :class:`~inversekit.LeastSquares`).
        start: optional per-problem starting values ``{name: (B, ...)}`` that replace the
            values in ``params``. Unlike ``params`` they may contain non-finite or
            out-of-bounds rows: those problems are reported as failed, not raised.
        batched_inputs: indices into ``inputs`` of arrays with a leading ``B`` dimension
            (one per problem, e.g. per-star pixel coordinates).
        chunk_problems: problems per vectorised pass. Passes over a few tens of thousands
            of data points stay in cache and are several times faster than one pass over a
            huge batch; ``None`` picks about ``CHUNK_POINTS`` data points per pass.
        dtype: floating dtype (float64 by default).
        jacobian: the derivative engine, the option of :class:`~inversekit.LeastSquares`
            with the same values: ``"eager"`` (forward-mode AD), ``"compiled"`` (the
            broadcast form ``torch.compile``'d: residuals, Jacobian and ``JᵀJ`` fused) or
            ``"auto"`` (eager, compiled from ``B·n·p`` = 1e7). ``"complex-step"`` is not
            available for batched problems and is refused.
        batching: how a chunk of problems shares model calls (see
            :mod:`inversekit.derivatives.broadcast`): ``"broadcast"`` (one call for the
            chunk, every scalar parameter a ``(k, 1)`` tensor; needs a model that
            broadcasts), ``"vmap"`` (the model mapped over problems: any vmap-compatible
            model) or ``"auto"`` (broadcast when it checks out against vmap, else vmap).
            ``engine_name`` and ``engine_reason`` say which ran and why.
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
        mask=None,
        likelihood: str | Likelihood = "gaussian",
        start: Mapping[str, Tensor] | None = None,
        batched_inputs: Sequence[int] = (),
        chunk_problems: int | None = None,
        dtype: torch.dtype = torch.float64,
        jacobian: str = "auto",
        batching: str = "auto",
    ):
        check_model_and_params(model, params)
        spec = make_likelihood(likelihood)
        if not spec.gaussian:
            raise InputError(
                f"BatchedLeastSquares supports likelihood='gaussian' only, got {spec.spec!r}; "
                "fit such problems one at a time with LeastSquares"
            )
        if y is None:
            raise InputError("y (the observations, shape (B, ...)) is required")
        y = to_tensor("y", y, dtype)
        if y.dim() < 1 or y.shape[0] == 0 or y[0].numel() == 0:
            raise InputError(
                f"y must have shape (B, *data_shape) with B >= 1 problems and at least one "
                f"data point each, got shape {tuple(y.shape)}"
            )
        self.model = model
        self.dtype, self.device = dtype, y.device
        self.batch_size = B = y.shape[0]
        per_problem = max(1, y[0].numel())
        if chunk_problems is not None and not (
            isinstance(chunk_problems, int) and chunk_problems >= 1
        ):
            raise InputError(f"chunk_problems must be a positive integer, got {chunk_problems!r}")
        self.chunk_problems = chunk_problems or max(1, CHUNK_POINTS // per_problem)
        self.notes: list[str | None] = [None] * B
        self._setup_params(params, start)
        self._setup_data(y, sigma, weights, mask)
        self._setup_inputs(inputs, batched_inputs)
        unchecked = self._check_model()
        self._choose_engine(jacobian, batching)
        self._check_outputs(unchecked)

    # --- validation -----------------------------------------------------------------
    def _batch_value(self, label: str, value: Tensor, per_problem_shape=None) -> Tensor:
        """``value`` broadcast to ``(B, *shape)``; 0-d values are shared by every problem."""
        B = self.batch_size
        if value.dim() == 0:
            return value.expand(B).clone()
        if value.shape[0] != B:
            raise InputError(
                f"{label} has shape {tuple(value.shape)}: give a 0-d value shared by all "
                f"problems or a leading batch dimension of {B} (y.shape[0])"
            )
        if per_problem_shape is not None and tuple(value.shape[1:]) != tuple(per_problem_shape):
            raise InputError(
                f"{label} has shape {tuple(value.shape)}, expected {(B, *per_problem_shape)}"
            )
        return value.clone()

    def _setup_params(self, params: Params, start) -> None:
        params = params.to(dtype=self.dtype, device=self.device)
        unsupported = [
            (params.tied_names, "tied"),
            (params.partly_fixed, "partly fixed"),
            (params.prior_names, "with priors"),
            (
                [n for n, b in params.bijections.items() if b.kind == "elementwise"],
                "with per-element bounds",
            ),
        ]
        for names, what in unsupported:
            if names:
                raise InputError(
                    f"BatchedLeastSquares does not support parameters {what} ({', '.join(names)}); "
                    "fit such problems one at a time with LeastSquares"
                )
        values = {n: self._batch_value(f"params['{n}']", params.values[n]) for n in params.values}
        for n, v in dict(start or {}).items():
            if n not in values:
                raise InputError(f"start['{n}']: no parameter of that name in params")
            t = to_tensor(f"start['{n}']", v, self.dtype, self.device)
            values[n] = self._batch_value(f"start['{n}']", t, values[n].shape[1:])
        # One problem's layout: a template whose values are inside the bounds (x(u=0)).
        template = {}
        for n, p in params.items():
            if n in params.bijections:
                zero = torch.zeros(values[n].shape[1:], dtype=self.dtype)
                mid = params.bijections[n].forward(zero)
            else:  # a fixed parameter: any value serves the layout
                mid = values[n][0].detach().cpu()
            template[n] = p.copy(value=mid.to(self.device))
        self.params = Params(template, dtype=self.dtype, device=self.device)
        if self.params.n_free == 0:
            raise InputError("no free parameters: every parameter is fixed")
        self.start_values = values
        fixed = list(params.fixed_names)
        self.fixed_values = {n: values[n] for n in fixed}
        self.u0 = self._pack(values)
        bad = ~torch.isfinite(self.u0).all(dim=1)
        for b in torch.nonzero(bad).flatten().tolist():
            self._invalidate(b, "start is non-finite or not strictly inside the bounds")
        for n, v in self.fixed_values.items():
            bad = ~torch.isfinite(v.reshape(self.batch_size, -1)).all(dim=1)
            for b in torch.nonzero(bad).flatten().tolist():
                self._invalidate(b, f"fixed parameter '{n}' is non-finite")

    def _pack(self, values: Mapping[str, Tensor]) -> Tensor:
        """``(B, p)`` unconstrained starts; non-finite where a start is outside its bounds."""
        B = self.batch_size
        parts = []
        for n in self.params.free_names:
            x = values[n].reshape(B, -1)
            with torch.no_grad():  # log of a negative distance: NaN marks that problem bad
                parts.append(self.params.bijections[n].inverse(x))
        return torch.cat(parts, dim=1)

    def _setup_data(self, y: Tensor, sigma, weights, mask) -> None:
        B = self.batch_size
        if sigma is not None and weights is not None:
            raise InputError("give at most one of sigma, weights")
        used = make_mask(mask, y)
        self.noise_known = sigma is not None or weights is not None
        if sigma is None and weights is None:
            sw = torch.ones_like(y)
        elif sigma is not None:
            s = self._like_y("sigma", sigma, y)
            if bool((s <= 0).any()):
                first = tuple(int(i) for i in torch.nonzero(s <= 0)[0])
                raise InputError(f"sigma must be > 0 everywhere; sigma{list(first)} <= 0")
            sw = 1.0 / s
        else:
            w = self._like_y("weights", weights, y)
            if bool((w < 0).any()):
                raise InputError("weights must be >= 0 (they are 1/sigma²)")
            sw = torch.sqrt(w)
        self.sqrt_weights = sw.reshape(B, -1)
        if used is not None:
            self.sqrt_weights = torch.where(used.reshape(B, -1), self.sqrt_weights, 0.0)
        y2 = y.reshape(B, -1)
        if used is not None or sigma is not None or weights is not None:
            # y at excluded points (mask, weight 0, sigma inf) may be anything: 0 keeps it finite
            idle = (self.sqrt_weights == 0) & ~torch.isfinite(y2)
            if bool(idle.any()):
                y2 = torch.where(idle, 0.0, y2)
                y = y2.reshape(y.shape)
        self.y = y
        rows_ok = finite_rows(y2, self.sqrt_weights)  # one pass; elements only where needed
        if not bool(rows_ok.all()):
            bad = torch.nonzero(~rows_ok).flatten()
            fy, fw = torch.isfinite(y2[bad]), torch.isfinite(self.sqrt_weights[bad])
            for label, ok in (("y", fy), ("sigma/weights", fw)):
                for i in torch.nonzero(~ok.all(dim=1)).flatten().tolist():
                    n_bad = int((~ok[i]).sum())
                    self._invalidate(int(bad[i]), f"{label} has {n_bad} non-finite value(s)")
            # invalid problems keep finite placeholders so vectorised passes stay finite
            both = fy & fw
            y2, sw2 = y2.clone(), self.sqrt_weights.clone()
            y2[bad] = torch.where(both, y2[bad], 0.0)
            sw2[bad] = torch.where(both, sw2[bad], 0.0)
            self.y, self.sqrt_weights = y2.reshape(y.shape), sw2
        self.n_data = (self.sqrt_weights > 0).sum(dim=1)
        # per problem ‖y/σ‖, the rounding scale of the residuals (see cost_resolution)
        self.data_norm = torch.linalg.vector_norm(self.y.reshape(B, -1) * self.sqrt_weights, dim=1)
        for b in torch.nonzero(self.n_data < self.params.n_free).flatten().tolist():
            self._invalidate(
                b,
                f"{int(self.n_data[b])} data points carry weight, fewer than the "
                f"{self.params.n_free} free parameters",
            )

    def _like_y(self, name: str, value, y: Tensor) -> Tensor:
        """``value`` broadcast to y's shape: a view, read only (the weights made from it are
        new tensors)."""
        t = to_tensor(name, value, self.dtype, self.device)
        try:
            return torch.broadcast_to(t, y.shape)
        except RuntimeError:
            raise InputError(
                f"{name} has shape {tuple(t.shape)}, which does not broadcast to y's shape "
                f"{tuple(y.shape)}"
            ) from None

    def _setup_inputs(self, inputs, batched_inputs) -> None:
        if not isinstance(inputs, tuple | list):
            inputs = (inputs,)
        self.inputs = tuple(
            prepare_input(i, v, self.dtype, self.device) for i, v in enumerate(inputs)
        )
        self.batched_inputs = tuple(sorted(set(int(i) for i in batched_inputs)))
        for i in self.batched_inputs:
            if not 0 <= i < len(self.inputs):
                raise InputError(f"batched_inputs: no inputs[{i}] ({len(self.inputs)} inputs)")
            v = self.inputs[i]
            if not isinstance(v, Tensor) or v.dim() == 0 or v.shape[0] != self.batch_size:
                shape = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                raise InputError(
                    f"inputs[{i}] is listed in batched_inputs but has shape {shape}; its "
                    f"leading dimension must be the batch size {self.batch_size}"
                )

    def _check_model(self) -> Tensor:
        """Check the model at the start on a few problems, vmapped: that it runs, returns
        y's dtype and each problem's shape (errors of the model, reported at once). Problems
        whose start output is not finite are marked, scanning in index order until
        ``CHECK_PROBLEMS`` problems with finite outputs are found: the engine is checked on
        those. Returns the problems left for :meth:`_check_outputs`, which checks them
        through the chosen engine (one broadcast model call instead of a vmapped one)."""
        idx = self.valid_indices()
        checked, finite = 0, 0
        while finite < CHECK_PROBLEMS and checked < idx.numel():
            sub = idx[checked : checked + CHECK_PROBLEMS]
            out = self._start_output(sub)
            bad = ~torch.isfinite(out.reshape(out.shape[0], -1)).all(dim=1)
            for b in sub[bad].tolist():
                self._invalidate(b, "the model output at the start is non-finite")
            finite += int((~bad).sum())
            checked += sub.numel()
        return idx[checked:]

    def _start_output(self, idx: Tensor) -> Tensor:
        """The model's output at the start for problems ``idx`` (vmapped), checked."""
        try:
            out = self._map(self._forward, self.u0[idx], self.batch_args(idx))
        except Exception as exc:  # noqa: BLE001 - the user's model may raise anything
            raise ModelError(
                f"the model raised {type(exc).__name__} when vmapped over the batch: {exc}. "
                "The model must be written for one problem with torch operations only "
                "(no .item(), no Python branching on tensor values)"
            ) from exc
        if not isinstance(out, Tensor) or out.dtype != self.dtype:
            raise ModelError(f"the model must return a {self.dtype} tensor")
        if tuple(out.shape[1:]) != tuple(self.y.shape[1:]):
            raise ModelError(
                f"the model output for one problem has shape {tuple(out.shape[1:])} but each "
                f"problem's y has shape {tuple(self.y.shape[1:])} (y is {tuple(self.y.shape)})"
            )
        return out

    def _check_outputs(self, idx: Tensor) -> None:
        """Mark the problems ``idx`` (those :meth:`_check_model` left) whose start output is
        not finite, evaluating them through the chosen engine (y and the weights are finite
        here, so the residuals are finite exactly where the outputs are)."""
        if idx.numel():
            try:
                r = self.residuals(self.u0[idx], idx)
            except Exception as exc:  # noqa: BLE001 - the user's model may raise anything
                raise ModelError(
                    f"the model raised {type(exc).__name__} at the start on problems "
                    f"{int(idx[0])}...{int(idx[-1])} (not on the first ones): {exc}"
                ) from exc
            bad = ~finite_rows(r)
            for b in idx[bad].tolist():
                self._invalidate(b, "the model output at the start is non-finite")

    def _choose_engine(self, option: str, batching: str) -> None:
        from inversekit.derivatives.broadcast import BroadcastForm
        from inversekit.derivatives.choice import AUTO_COMPILE_MIN_WORK, JACOBIAN_ENGINES

        if option not in JACOBIAN_ENGINES:
            raise InputError(f"jacobian must be one of {JACOBIAN_ENGINES}, got {option!r}")
        if option == "complex-step":
            raise InputError(
                'jacobian="complex-step" is not available for batched problems; use "eager", '
                '"compiled" or "auto"'
            )
        if batching not in BATCHINGS:
            raise InputError(f"batching must be one of {BATCHINGS}, got {batching!r}")
        if option == "compiled" and batching == "vmap":
            raise InputError('jacobian="compiled" compiles the broadcast form; batching="vmap" '
                             "cannot be compiled")  # fmt: skip
        self.form: BroadcastForm | None = None
        self.engine_name, self.engine_reason = "vmap", "requested"
        if batching == "vmap":
            return
        work = self.batch_size * self.y[0].numel() * self.params.n_free
        compiled = option == "compiled" or (option == "auto" and work >= AUTO_COMPILE_MIN_WORK)
        if compiled:
            from inversekit.derivatives.compiled import compile_unavailable

            why = compile_unavailable()
            if why is not None:
                compiled = False
                self.engine_reason = f"{why}; "
        form = BroadcastForm(self, compiled=compiled)
        why = form.check(self.valid_indices(), self._vmap_residuals)
        if why is not None and form.compiled is False and compiled:
            # the compiled kernel failed or disagreed: the eager broadcast form may still do
            self.engine_reason = f"{why}; "
            why = form.check(self.valid_indices(), self._vmap_residuals)
        if why is not None:
            if batching == "broadcast":
                raise ModelError(f'batching="broadcast" was asked for, but {why}')
            self.engine_reason = f"{self.engine_reason if compiled else ''}{why}; vmap"
            return
        self.form = form
        self.engine_name = "broadcast-compiled" if form.compiled else "broadcast"
        prefix = self.engine_reason if compiled and not form.compiled else ""
        self.engine_reason = f"{prefix}{option} (B·n·p = {work}): checked against vmap"

    def _invalidate(self, b: int, why: str) -> None:
        self.notes[b] = why if self.notes[b] is None else f"{self.notes[b]}; {why}"

    # --- evaluation -----------------------------------------------------------------
    def valid_indices(self) -> Tensor:
        """Indices of the problems whose inputs passed validation."""
        ok = torch.tensor([n is None for n in self.notes], dtype=torch.bool)
        return torch.nonzero(ok).flatten().to(self.device)

    @property
    def valid(self) -> Tensor:
        """``(B,)`` bool: which problems passed validation."""
        return torch.tensor([n is None for n in self.notes], dtype=torch.bool)

    def batch_args(self, idx: Tensor) -> tuple:
        """Per-problem arguments (fixed values, y, √w, batched inputs) of problems ``idx``."""
        rows = contiguous_rows(idx)  # a run of consecutive problems: views, not copies
        fixed = {n: v[rows] for n, v in self.fixed_values.items()}
        inputs = tuple(v[rows] for i, v in enumerate(self.inputs) if i in self.batched_inputs)
        return (fixed, self.y[rows], self.sqrt_weights[rows], *inputs)

    def _in_dims(self) -> tuple:
        return (0, 0, 0, 0) + (0,) * len(self.batched_inputs)

    def _map(self, fn, u: Tensor, args: tuple, *extra: Tensor):
        """``fn(u_b, *extra_b, *args_b)`` for every problem of the subset, vectorised."""
        dims = (0,) * (1 + len(extra)) + self._in_dims()[1:]
        return vmap(fn, in_dims=dims, chunk_size=self.chunk_problems)(u, *extra, *args)

    def _unpack(self, u: Tensor, fixed: dict[str, Tensor]) -> dict[str, Tensor]:
        """One problem's physical parameter dict from its unconstrained vector ``u``."""
        out = {}
        for n in self.params:
            if n in fixed:
                out[n] = fixed[n]
            else:
                piece = u[self.params.slices[n]]
                shape = self.params.values[n].shape
                out[n] = self.params.bijections[n].forward(piece).reshape(shape)
        return out

    def model_args(self, batched: tuple) -> tuple:
        it = iter(batched)
        return tuple(next(it) if i in self.batched_inputs else v for i, v in enumerate(self.inputs))

    def _forward(self, u, fixed, y, sw, *batched) -> Tensor:
        return self.model(self._unpack(u, fixed), *self.model_args(batched))

    def _residual(self, u, fixed, y, sw, *batched) -> Tensor:
        """One problem's whitened residuals ``√w (f - y)``, flat."""
        f = self._forward(u, fixed, y, sw, *batched)
        return sw * (f - y).reshape(-1)

    def residuals(self, u: Tensor, idx: Tensor) -> Tensor:
        """``(k, n)`` whitened residuals of problems ``idx`` at ``u`` (``(k, p)``)."""
        if self.form is not None:
            return self.form.residuals(u, idx)
        return self._vmap_residuals(u, idx)

    def _vmap_residuals(self, u: Tensor, idx: Tensor) -> Tensor:
        with torch.no_grad():
            return self._map(self._residual, u, self.batch_args(idx))

    @property
    def speculative(self) -> bool:
        """Whether a pass giving the normal equations costs little more than one giving the
        cost (the compiled broadcast form): the solver then asks for the normal equations at
        its trial points, and an accepted step needs no second pass."""
        return self.form is not None and self.form.compiled

    def costs(self, u: Tensor, idx: Tensor) -> Tensor:
        """``(k,)`` ``½ chi2`` of problems ``idx`` at ``u``."""
        if self.form is not None:
            return self.form.costs(u, idx)
        r = self.residuals(u, idx)
        return 0.5 * (r * r).sum(dim=1)

    def vjp(self, u: Tensor, idx: Tensor, w: Tensor) -> Tensor:
        """``(k, p)``: ``J_bᵀ w_b`` of problems ``idx`` at ``u``, by one reverse-mode pass
        (the problems are independent, so the gradient of ``Σ_b w_b·r_b`` is all of them)."""
        with torch.enable_grad():
            x = u.detach().requires_grad_(True)
            if self.form is not None:
                r = self.form.residual(x, *self.form.args(idx))
            else:
                r = self._map(self._residual, x, self.batch_args(idx))
            (out,) = torch.autograd.grad(r, x, w)
        return out

    def jacobians(self, u: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """``(J, r)``: whitened Jacobians ``(k, n, p)`` and residuals ``(k, n)`` at ``u``."""
        if self.form is not None:
            return self.form.jacobians(u, idx)
        return self._map(self._jacobian, u, self.batch_args(idx))

    def _jacobian(self, u: Tensor, *args) -> tuple[Tensor, Tensor]:
        def with_value(*a):
            r = self._residual(*a)
            return r, r

        return jacfwd(with_value, argnums=0, has_aux=True)(u, *args)

    def batched_normal_equations(self, u: Tensor, idx: Tensor) -> tuple:
        """``(JᵀWJ (k, p, p), JᵀWr (k, p), ½ chi2 (k,))`` of problems ``idx`` at ``u``,
        formed inside each vectorised chunk, so the ``(k, n, p)`` Jacobians are never
        gathered."""
        if self.form is not None:
            return self.form.normal_equations(u, idx)

        def one(u, *args):
            J, r = self._jacobian(u, *args)
            return J.mT @ J, J.mT @ r, 0.5 * (r * r).sum()

        return self._map(one, u, self.batch_args(idx))

    def unpack(self, u: Tensor) -> dict[str, Tensor]:
        """Physical parameters of every problem, ``{name: (B, *shape)}``, from ``(B, p)``."""
        out = self.params.unpack(u)
        out.update(self.fixed_values)
        return out

    def fingerprint(self) -> dict:
        """The problem's identity for checkpoints (see :mod:`.fingerprint`)."""
        fixed = [self.fixed_values[n] for n in sorted(self.fixed_values)]
        return fingerprint(
            "BatchedLeastSquares", self.params, self.model, self.y, self.sqrt_weights, *fixed
        )
