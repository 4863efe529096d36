"""Normal equations by one compiled, fused kernel per row chunk.

For a chunk of rows ``c`` the kernel computes, in one ``torch.compile``'d graph,

    r_c = s_c ⊙ (f(x_c; u) - y_c),     J_c = ∂r_c/∂u   (forward mode),
    A  += J_cᵀ J_c,     g += J_cᵀ r_c,     cost += ½ r_c·r_c

where ``s_c`` are the square-root weights (ones with unit weights). When every free
parameter is a scalar (up to ``FUSED_MAX_PARAMS``), each column of ``J_c`` is its own
``jvp`` and the ``p(p+1)/2`` products, ``p`` gradient sums and the cost are explicit
reductions that inductor fuses with the model into one loop over the rows, so ``J_c`` is
never stored (about four times faster than forming it and multiplying by BLAS); the graph
is traced by ``make_fx`` first so that AOTAutograd's disk cache applies. Otherwise, or if
that kernel does not compile, ``J_c`` comes from ``jacfwd`` and ``J_cᵀJ_c`` from a matrix
product. Every chunk has the same number of rows so the graph is compiled once
(``dynamic=False``): the last partial chunk is padded by repeating its last row with
weight zero, which keeps the model finite there and adds nothing to ``A``, ``g`` or
``cost``.

Compiled kernels are cached in-process (keyed on the model function, the parameter layout,
the shapes, dtype and device of the chunk) and on disk by inductor's caches, under
``$INVERSEKIT_CACHE/inductor`` or ``~/.cache/inversekit/inductor`` unless
``TORCHINDUCTOR_CACHE_DIR`` is already set. Whatever goes wrong while compiling (no C++
compiler, an operation dynamo cannot trace) or a first result that disagrees with the eager
engine leaves the engine on the eager path, with the reason kept in :attr:`reason`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from torch.func import jacfwd, jvp

from inversekit.derivatives.forward import ChunkedJacobian, NormalEquations
from inversekit.errors import describe

# Rows per chunk are chosen so that one chunk's Jacobian and forward-mode intermediates
# (taken as 8 copies of rows x (p + 1) floats) fit this many bytes: about L2/L3-sized
# working sets, which measured fastest (65,536 rows for 11 parameters).
COMPILED_CHUNK_BYTES = 48 * 2**20
MIN_CHUNK_ROWS = 1024
# The one-loop kernel is used up to this many free (scalar) parameters, on chunks of
# about this many data points.
FUSED_MAX_PARAMS = 24
FUSED_CHUNK_POINTS = 2**18
# Step, in units of the velocity, of the differences for second directional derivatives.
GEODESIC_STEP = 1e-3
# Agreement required between the first compiled chunk and the eager engine, on this
# many rows.
CHECK_RTOL = 1e-10
CHECK_ROWS = 2048

_KERNELS: dict[tuple, tuple[Callable, Callable, object]] = {}
_VERIFIED: set[tuple] = set()  # kernels whose first result agreed with eager AD
_UNFUSABLE: set[tuple] = set()  # (model, layout) whose one-loop kernel failed to compile


def inductor_cache_dir() -> Path:
    """Where inductor's on-disk caches go (set before the first compile in the process)."""
    base = os.environ.get("INVERSEKIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "inversekit"
    )
    return Path(base) / "inductor"


def _enable_disk_cache() -> None:
    # Importing torch._dynamo pins inductor's cache directory (it writes the default into
    # the environment), so this must run before that import; a user's own choice, or a
    # torch.compile the user ran earlier in the process, wins.
    if "torch._dynamo" not in sys.modules:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True


def compile_unavailable() -> str | None:
    """Why ``torch.compile`` cannot be used here, or ``None`` when it can."""
    import shutil

    if not hasattr(torch, "compile"):
        return "torch.compile is not available in this torch build"
    _enable_disk_cache()
    import torch._dynamo as dynamo

    if not dynamo.is_dynamo_supported():
        return "torch.compile (dynamo) is not supported on this Python"
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        return "no C++ compiler found for inductor's CPU kernels"
    return None


def chunk_rows_for(row_elements: int, p: int, budget: int = COMPILED_CHUNK_BYTES) -> int:
    """Rows per compiled chunk: a power of two so one kernel serves many problem sizes."""
    per_row = max(1, row_elements) * (p + 1) * 8 * 8
    rows = max(MIN_CHUNK_ROWS, budget // per_row)
    return 1 << (rows.bit_length() - 1)


def param_signature(params) -> tuple:
    """What of a Params layout the compiled graph bakes in (see ``Params.layout_signature``)."""
    return params.layout_signature()


def tensor_signature(t) -> tuple:
    if isinstance(t, Tensor):
        return ("T", tuple(t.shape), t.dtype, str(t.device))
    return ("O", id(t))


class EagerJacobian(ChunkedJacobian):
    """:class:`~inversekit.derivatives.forward.ChunkedJacobian` that says why it was chosen."""

    engine_name = "eager"

    def __init__(self, problem, reason: str = ""):
        super().__init__(problem)
        self.reason = reason


class CompiledJacobian:
    """Drop-in replacement for :class:`~inversekit.derivatives.forward.ChunkedJacobian`.

    Attributes:
        engine_name: ``"compiled"`` while the compiled kernels are in use, ``"eager"`` once
            the engine has fallen back.
        reason: why this engine is what it is (e.g. the compile error).
        chunk_rows: rows per compiled chunk.
        compile_seconds: wall time of the first compiled call (tracing + inductor, or a
            cache hit), ``None`` before it.
    """

    # One fused pass gives the cost with the normal equations at a few forward passes'
    # cost: solvers may ask for both at a trial point they expect to accept.
    speculative = True

    def __init__(self, problem, chunk_rows: int | None = None, check: bool = True):
        self.problem = problem
        self.eager = ChunkedJacobian(problem)
        self.n_jev = 0
        self.engine_name = "compiled"
        self.reason = "compiled, fused per-chunk JᵀJ accumulation"
        self.compile_seconds: float | None = None
        self._check = check
        self._fused = _fused(problem.params) and (
            (id(problem.model), param_signature(problem.params)) not in _UNFUSABLE
        )
        self._chunk_rows_option = chunk_rows
        if self._fused:
            self.reason = "compiled one-loop kernel (a jvp per parameter; JᵀJ, Jᵀr, cost fused)"
        # the kernel whitens (f - y)/σ itself: other residuals stay on the eager path
        unavailable = problem.plain_gaussian_obstacle or compile_unavailable()
        if unavailable is not None:
            self.fall_back(unavailable)
            return
        self._layout(chunk_rows)

    # --- data layout ----------------------------------------------------------------
    def _layout(self, chunk_rows: int | None) -> None:
        """Split y, weights and row-aligned inputs into equal chunks (last one padded)."""
        pr = self.problem
        y = pr.y
        n_rows = y.shape[0] if pr.rowwise else 1
        inner = y[0].numel() if pr.rowwise else y.numel()
        if not pr.rowwise:
            rows = n_rows
        elif chunk_rows is None and self._fused:
            # no Jacobian is stored: big chunks, fewer calls (each costs ~0.2 ms of guards)
            rows = min(1 << max(10, (FUSED_CHUNK_POINTS // inner).bit_length() - 1), n_rows)
        elif chunk_rows is None:
            rows = min(chunk_rows_for(inner, pr.params.n_free), n_rows)
        else:
            rows = min(chunk_rows, n_rows)
        self.chunk_rows = rows
        self._row_input = [pr.rowwise and isinstance(v, Tensor) and v.dim() > 0 for v in pr.inputs]
        sigma = pr.noise.sigma
        # no noise: one materialised chunk of ones, not an expanded view, because every
        # chunk must have the same strides or the kernel is compiled again for the last one
        ones = torch.ones((rows, *y.shape[1:]), dtype=y.dtype, device=y.device)
        sigma = None if sigma is None else sigma.reshape(y.shape)
        self._chunks: list[tuple[Tensor, Tensor, tuple]] = []
        if not pr.rowwise:
            weights = torch.ones_like(y) if sigma is None else sigma.contiguous()
            self._chunks.append((y, weights, tuple(pr.inputs)))
            return
        for start in range(0, n_rows, rows):
            stop = min(start + rows, n_rows)
            pad = rows - (stop - start)
            # padded rows get sigma = inf: no weight, and no derivative
            if sigma is None:
                weights = ones if pad == 0 else _padded(ones, 0, rows - pad, pad, weight=True)
            else:
                weights = _padded(sigma, start, stop, pad, weight=True).contiguous()
            parts = [_padded(y, start, stop, pad, weight=False), weights]
            arrays = tuple(
                _padded(v, start, stop, pad, weight=False) if row else v
                for v, row in zip(pr.inputs, self._row_input, strict=True)
            )
            self._chunks.append((parts[0], parts[1], arrays))

    @property
    def n_chunks(self) -> int:
        """Row chunks the data are evaluated in (one fused kernel call each)."""
        return len(self._chunks)

    def fall_back(self, reason: str) -> None:
        self.engine_name = "eager"
        self.reason = reason

    # --- kernels --------------------------------------------------------------------
    def _kernels(self) -> tuple[Callable, Callable]:
        pr = self.problem
        y, sigma, arrays = self._chunks[0]
        key = (
            id(pr.model),
            param_signature(pr.params),
            tensor_signature(y),
            tuple(tensor_signature(a) for a in arrays),
            pr.dtype,
            str(pr.device),
            self._fused,
        )
        self._key = key
        hit = _KERNELS.get(key)
        if hit is not None and hit[2] is pr.model:
            return hit[0], hit[1]
        _VERIFIED.discard(key)
        _enable_disk_cache()
        normal, geodesic = _make_kernels(pr.model, pr.params)
        if self._fused:
            normal = _Pretraced(_make_fused_normal(pr.model, pr.params), _fusion_options())
        else:
            normal = torch.compile(normal, dynamic=False, fullgraph=True)
        compiled = (normal, torch.compile(geodesic, dynamic=False, fullgraph=True))
        _KERNELS[key] = (*compiled, pr.model)
        return compiled

    def _first_call(self, u: Tensor) -> NormalEquations | None:
        """Compile (or load) the kernel, check it on the first chunk; ``None`` on failure."""
        try:
            normal, _ = self._kernels()
            y, sigma, arrays = self._chunks[0]
            t = time.perf_counter()
            with torch.no_grad():
                A, g, cost = _unpacked(normal(u, y, sigma, *arrays))
            self.compile_seconds = time.perf_counter() - t
        except Exception as exc:  # noqa: BLE001 - any compile failure means: stay eager
            if self._fused:  # torch cannot trace every model per parameter: try the other
                _KERNELS.pop(self._key, None)
                _UNFUSABLE.add((id(self.problem.model), param_signature(self.problem.params)))
                self._fused = False
                self._layout(self._chunk_rows_option)  # the jacfwd kernel holds J: smaller
                self.reason = f"compiled jacfwd kernel (one-loop kernel: {type(exc).__name__})"
                return self._first_call(u)
            self.fall_back(f"compilation failed ({describe(exc)})")
            return None
        # A kernel is checked once per process: what could go wrong is the compilation,
        # not the data it is later given.
        if self._check and self._key not in _VERIFIED:
            try:
                mismatch = self._check_kernel(normal, u, y, sigma, arrays)
            except Exception as exc:  # noqa: BLE001 - no reference, no trust: stay eager
                self.fall_back(f"kernel check failed ({describe(exc)})")
                return None
            if not mismatch <= CHECK_RTOL:
                self.fall_back(f"compiled kernel disagrees with eager AD (relative {mismatch:.2g})")
                return None
            _VERIFIED.add(self._key)
        return NormalEquations(A, g, float(cost))

    def _check_kernel(self, normal: Callable, u: Tensor, y: Tensor, sigma: Tensor, arrays) -> float:
        """Relative disagreement of the kernel with eager forward mode on the first chunk.

        For a rowwise chunk only its first ``CHECK_ROWS`` rows are compared (the kernel gets
        the chunk with the other rows' sigma set to inf): eager forward mode over a whole
        chunk would cost seconds, as much as the compilation it checks."""
        rows = CHECK_ROWS if self.problem.rowwise and len(y) > CHECK_ROWS else len(y)
        with torch.no_grad():
            masked = sigma.clone()
            masked[rows:] = math.inf
            got = _unpacked(normal(u, y, masked, *arrays))[:2]
        head = tuple(v[:rows] if row else v for v, row in zip(arrays, self._row_input, strict=True))
        want = _eager_chunk(self.problem, u, y[:rows], sigma[:rows], head)
        return relative_mismatch(got, want)

    # --- the ChunkedJacobian interface ----------------------------------------------
    def normal_equations(self, u: Tensor) -> NormalEquations:
        """``JᵀWJ``, ``JᵀWr`` and ``½ rᵀWr`` summed over padded chunks by the fused kernel."""
        if self.engine_name != "compiled":
            return self._eager_counted("normal_equations", u)
        u = u.detach()
        start = 0
        if self.compile_seconds is None:
            first = self._first_call(u)
            if first is None:
                return self._eager_counted("normal_equations", u)
            A, g, cost = first.A.clone(), first.g.clone(), first.cost
            start = 1
        else:
            p = u.numel()
            A, g, cost = u.new_zeros(p, p), u.new_zeros(p), 0.0
        normal, _ = self._kernels()
        try:
            with torch.no_grad():
                cost_t = u.new_zeros(())
                for y, sigma, arrays in self._chunks[start:]:
                    Ac, gc, cc = _unpacked(normal(u, y, sigma, *arrays))
                    A += Ac
                    g += gc
                    cost_t += cc
        except Exception as exc:  # noqa: BLE001 - e.g. dynamo's recompile limit: stay eager
            self.fall_back(f"compiled kernel failed ({describe(exc)})")
            return self._eager_counted("normal_equations", u)
        self.n_jev += 1
        return NormalEquations(A, g, cost + float(cost_t))

    def full(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """The whole whitened Jacobian and residuals (small problems only; eager)."""
        out = self.eager.full(u)
        self.n_jev += 1
        return out

    def geodesic_rhs(self, u: Tensor, v: Tensor) -> Tensor:
        """``Jᵀ r''(u)[v, v]`` chunk by chunk, ``J`` and ``r''`` from one fused kernel."""
        if self.engine_name != "compiled" or self.compile_seconds is None:
            return self.eager.geodesic_rhs(u, v)
        try:
            _, geodesic = self._kernels()
            out = torch.zeros_like(u)
            with torch.no_grad():
                for y, sigma, arrays in self._chunks:
                    out += geodesic(u.detach(), v.detach(), y, sigma, *arrays)
            return out
        except Exception as exc:  # noqa: BLE001 - a failed compile keeps the eager path
            self.fall_back(f"geodesic kernel failed ({describe(exc)})")
            return self.eager.geodesic_rhs(u, v)

    def _eager_counted(self, method: str, u: Tensor) -> NormalEquations:
        out = getattr(self.eager, method)(u)
        self.n_jev += 1
        return out


def _make_kernels(model: Callable, params) -> tuple[Callable, Callable]:
    """The per-chunk kernels ``(u, y, s, *inputs) -> (A, g, cost)`` and ``-> Jᵀr''[v,v]``."""

    def residuals(u: Tensor, y: Tensor, sigma: Tensor, inputs: tuple) -> Tensor:
        return ((model(params.unpack(u), *inputs) - y) / sigma).reshape(-1)

    def normal(u: Tensor, y: Tensor, sigma: Tensor, *inputs) -> tuple[Tensor, Tensor, Tensor]:
        def with_value(w: Tensor) -> tuple[Tensor, Tensor]:
            r = residuals(w, y, sigma, inputs)
            return r, r

        J, r = jacfwd(with_value, has_aux=True)(u)
        return J.mT @ J, J.mT @ r, 0.5 * torch.dot(r, r)

    def geodesic(u: Tensor, v: Tensor, y: Tensor, sigma: Tensor, *inputs) -> Tensor:
        def fn(w: Tensor) -> Tensor:
            return residuals(w, y, sigma, inputs)

        # r''[v, v] = D'(0) for the exact directional derivative D(t) = r'(u + t v)[v]
        # (one level of jvp: dynamo's fake-tensor tracing of nested jvp through
        # ``params.unpack`` fails). Central differences at t = ±τ, ±2τ with Richardson
        # extrapolation, (4 S(τ) - S(2τ)) / 3, leave O(τ⁴) truncation and eps/τ rounding.
        def directional(t: float) -> Tensor:
            return jvp(fn, (u + t * v,), (v,))[1]

        tau = GEODESIC_STEP
        s1 = (directional(tau) - directional(-tau)) / (2 * tau)
        s2 = (directional(2 * tau) - directional(-2 * tau)) / (4 * tau)
        second = (4 * s1 - s2) / 3
        return jacfwd(fn)(u).mT @ second

    return normal, geodesic


def _fused(params) -> bool:
    """Whether the one-loop kernel applies: scalar free parameters, not too many of them
    (its ``p(p+1)/2`` accumulators must stay in registers and its compile time short), and
    no ties (the kernel moves one parameter at a time, and a tie would not follow)."""
    return params.all_scalar and params.n_free <= FUSED_MAX_PARAMS and not params.tied_names


def _make_fused_normal(model: Callable, params) -> Callable:
    """The per-chunk kernel ``(u, y, s, *inputs) -> (upper(A) packed, g, cost)`` as one loop.

    Each column ``J[:, k]`` is its own ``jvp`` in which only parameter ``k`` carries a
    tangent, so the tangent arithmetic runs only through the operations that use it (one
    ``jvp`` over all parameters pushes every tangent through every operation). The
    ``p(p+1)/2`` products ``Σ J_i J_j``, the ``p`` sums ``Σ J_i r`` and the cost are explicit
    reductions that inductor fuses, with the model, into a single pass over the rows:
    ``J`` is never stored. On CPU this is about four times faster than forming ``J`` and
    calling a matrix product (1e7 rows, 11 parameters: 0.21 s against 0.81 s per pass).
    """
    free = params.free_names

    def normal(u: Tensor, y: Tensor, sigma: Tensor, *inputs) -> tuple[Tensor, Tensor, Tensor]:
        base = params.unpack(u)
        pieces = u.unbind(-1)
        columns, r = [], None
        for k, name in enumerate(free):
            bijection = params.bijections[name]

            def residuals(piece: Tensor, name=name, bijection=bijection) -> Tensor:
                values = dict(base)
                values[name] = bijection.forward(piece)
                return ((model(values, *inputs) - y) / sigma).reshape(-1)

            r, column = jvp(residuals, (pieces[k],), (torch.ones_like(pieces[k]),))
            columns.append(column)
        p = len(columns)
        upper = [(columns[i] * columns[j]).sum() for i in range(p) for j in range(i, p)]
        g = [(c * r).sum() for c in columns]
        return torch.stack(upper), torch.stack(g), 0.5 * (r * r).sum()

    return normal


class _Pretraced:
    """``fn`` traced by ``make_fx`` to a flat graph of aten operations, then compiled.

    Compared with ``torch.compile(fn)`` (dynamo tracing the ``jvp`` calls itself), tracing
    is quicker and the compiled graph can be cached on disk. Two ways to compile it:

    - ``direct=False``: ``torch.compile`` of the traced graph. AOTAutograd's disk cache
      applies (it skips graphs that contain ``jvp``), so a later process with a warm cache
      compiles the single-problem kernel in about 4 s instead of 7 s.
    - ``direct=True``: ``torch._inductor.compile`` once per argument layout (shapes,
      strides, dtypes, devices): a call then costs the kernel plus a dictionary look-up,
      instead of dynamo's guards (0.1–0.2 ms per call). For kernels called on many small
      chunks per pass (the batched fits: about 200 calls per fit of 10,000 problems).
      Inductor's generated code asserts the sizes and strides it was compiled for.

    A call with a non-tensor argument (which a trace would bake in as a constant) goes
    through ``torch.compile(fn)``."""

    def __init__(self, fn: Callable, options: dict, direct: bool = False):
        self.fn, self.options, self.direct = fn, options, direct
        self.graphs: dict[tuple, Callable] = {}
        self.dynamo: Callable | None = None

    def __call__(self, *args):
        if not all(isinstance(a, Tensor) for a in args):
            if self.dynamo is None:
                self.dynamo = torch.compile(
                    self.fn, dynamic=False, fullgraph=True, options=self.options
                )
            return self.dynamo(*args)
        layout = ()  # torch.compile guards the layout itself; a direct graph is looked up
        if self.direct:
            layout = tuple((a.shape, a.stride(), a.dtype, a.device) for a in args)
        graph = self.graphs.get(layout)
        if graph is None:
            graph = self.graphs[layout] = self._compile(args)
        return graph(*args)

    def _compile(self, args: tuple) -> Callable:
        gm = self._trace(args)
        if not self.direct:
            return torch.compile(gm, dynamic=False, fullgraph=True, options=self.options)
        from torch._inductor import compile as inductor_compile

        compiled = inductor_compile(gm, list(args), self.options)

        def call(*a):  # inductor returns several outputs as a list: give back a tuple
            out = compiled(*a)
            return tuple(out) if isinstance(out, list) else out

        return call

    def _trace(self, args: tuple) -> Callable:
        from torch.fx.experimental.proxy_tensor import make_fx

        with torch.no_grad():
            gm = make_fx(self.fn, tracing_mode="fake")(*args)
        for node in list(gm.graph.nodes):  # jvp leaves unused size checks
            if node.op == "call_function" and "is_same_size" in str(node.target) and not node.users:
                gm.graph.erase_node(node)
        gm.graph.eliminate_dead_code()
        gm.recompile()
        return gm


def _unpacked(out: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """``(A, g, cost)`` from a kernel's output, unpacking a fused kernel's triangle."""
    A, g, cost = out
    if A.dim() == 2:
        return A, g, cost
    p = g.numel()
    i, j = torch.triu_indices(p, p, device=A.device)
    full = A.new_zeros(p, p)
    full[i, j] = A
    full[j, i] = A
    return full, g, cost


def _fusion_options() -> dict:
    """Inductor options that let the fused kernel's many reductions share one loop: larger
    fusion limits, and horizontal fusion not refused for nodes more than 64 apart in the
    graph (inductor's default rule, lifted through its supported choices hook)."""
    import torch._inductor.config as inductor_config
    from torch._inductor.choices import InductorChoices

    class FuseFarNodes(InductorChoices):
        @staticmethod
        def can_fuse_horizontal(scheduler, node1, node2, shared_data_score) -> bool:
            return shared_data_score >= inductor_config.score_fusion_memory_threshold

        def uuid(self) -> str:  # part of inductor's cache key
            return "inversekit-fuse-far-nodes-1"

    return {
        "max_fusion_size": 1000,
        "cpp.max_horizontal_fusion_size": 1000,
        "inductor_choices_class": FuseFarNodes,
    }


def _padded(t: Tensor, start: int, stop: int, pad: int, weight: bool) -> Tensor:
    """Rows ``start:stop`` of ``t`` plus ``pad`` copies of the last row (or, for a
    ``weight``, the standard deviation ``inf``: padded rows carry no weight)."""
    part = t[start:stop]
    if pad == 0:
        return part
    filler = torch.full_like(t[:1], math.inf) if weight else t[stop - 1 : stop]
    return torch.cat([part, filler.expand(pad, *t.shape[1:])])


def _eager_chunk(
    problem, u: Tensor, y: Tensor, sigma: Tensor, arrays: tuple
) -> tuple[Tensor, Tensor]:
    """``(JᵀJ, Jᵀr)`` of one (padded) chunk by the eager forward-mode engine."""
    from inversekit.derivatives.forward import jacobian

    def fn(w: Tensor) -> Tensor:
        return ((problem.model(problem.params.unpack(w), *arrays) - y) / sigma).reshape(-1)

    J, r = jacobian(fn, u)
    return J.mT @ J, J.mT @ r


def relative_mismatch(got: tuple[Tensor, ...], want: tuple[Tensor, ...]) -> float:
    """Largest ``max|a - b| / max|b|`` over the pairs (``inf`` if not finite)."""
    worst = 0.0
    for a, b in zip(got, want, strict=True):
        if b.numel() == 0:
            continue
        scale = float(b.abs().max())
        diff = float((a - b).abs().max())
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst if math.isfinite(worst) else math.inf
