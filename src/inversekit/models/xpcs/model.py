"""Public XPCS two-time correlation functions: full grid, tiles and individual entries.

All three evaluate homodyne's discretised model (``docs/models/xpcs.md``)

    c2[k, i, j] = offset_k + contrast_k * g1[k, i, j]^2,
    g1 = max(exp(-(q^2 dt / 2) M_D[i, j]) * sinc^2((q L dt / 2 pi) cos(phi0 - phi_k) M_G[i, j]),
             1e-10)

where M_f[i, j] ~ |C_f[i] - C_f[j]| and C_f is the trapezoid cumulative sum of the rate
f (D or gamma_dot) over the data's own time grid, in frame steps, so that
dt M_f approximates the integral of f from t_i to t_j. ``c2`` returns
the whole (P, N, N) stack, :func:`c2_tile` a block of rows and columns and
:func:`c2_pairs` chosen (angle, t1, t2) entries; all agree entry for entry.

Parameters ``p`` (a dict of tensors):

    D0 [A^2/s], alpha [-], D_offset [A^2/s]                                  (both modes)
    gamma_dot_t0 [1/s], beta [-], gamma_dot_t_offset [1/s], phi0 [deg]      (laminar_flow)
    contrast [-], offset [-]: shape (P,) (one per angle) or () (shared)

Inputs: ``t`` (N,) seconds, strictly increasing (homodyne's grid is ``t = i dt``);
``phi`` (P,) degrees; keywords ``q`` [1/A], ``dt`` [s], ``L`` [A] (laminar flow only),
``mode`` ("static" or "laminar_flow") and ``backend``: "fused" (default; block-wise kernel
with analytic first derivatives for autograd and ``torch.func``) or "autograd" (plain
torch operations, differentiable to any order, builds full-size temporaries).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from inversekit.errors import InputError
from inversekit.models.xpcs import _kernel as K

Number = float | int
Params = Mapping[str, Tensor | Number]

_BACKENDS = ("fused", "autograd")


def c2(
    p: Params,
    t: Tensor,
    phi: Tensor,
    *,
    q: Tensor | Number,
    dt: Tensor | Number,
    L: Tensor | Number | None = None,
    mode: str = "static",
    backend: str = "fused",
) -> Tensor:
    """Two-time correlation ``c2`` on the full grid, shape (P, N, N).

    ``c2[k, i, j]`` is the correlation at angle ``phi[k]`` between frames at ``t[i]`` and
    ``t[j]``. The diagonal is the model's own value (homodyne replaces the data diagonal,
    see :func:`inversekit.models.xpcs.correct_diagonal`).
    """
    t_ = _times(t)
    n = t_.shape[0]
    return _evaluate(p, t_, phi, K.Grid(0, n, 0, n), q=q, dt=dt, L=L, mode=mode, backend=backend)


def c2_tile(
    p: Params,
    t: Tensor,
    phi: Tensor,
    rows: slice,
    cols: slice,
    *,
    q: Tensor | Number,
    dt: Tensor | Number,
    L: Tensor | Number | None = None,
    mode: str = "static",
    backend: str = "fused",
) -> Tensor:
    """``c2[:, rows, cols]`` without the rest of the grid, shape (P, len(rows), len(cols)).

    The integrals still run over the whole time grid ``t`` (they start at ``t[0]``), so a
    tile equals the same block of :func:`c2`. ``rows`` and ``cols`` are slices with step 1.
    """
    t_ = _times(t)
    n = t_.shape[0]
    r0, r1 = _slice_bounds("rows", rows, n)
    c0, c1 = _slice_bounds("cols", cols, n)
    return _evaluate(
        p, t_, phi, K.Grid(r0, r1, c0, c1), q=q, dt=dt, L=L, mode=mode, backend=backend
    )


def c2_pairs(
    p: Params,
    t: Tensor,
    phi: Tensor,
    i1: Tensor,
    i2: Tensor,
    angle: Tensor | int,
    *,
    q: Tensor | Number,
    dt: Tensor | Number,
    L: Tensor | Number | None = None,
    mode: str = "static",
    backend: str = "fused",
) -> Tensor:
    """Selected entries ``c2[angle[m], i1[m], i2[m]]``, shape (M,).

    ``i1``, ``i2`` index the time grid and ``angle`` the angles (an int selects one angle
    for every entry). A streaming solver can feed any subset of the P N^2 entries.
    """
    t_ = _times(t)
    n = t_.shape[0]
    phi_ = _angles(phi, t_)
    i1_ = _indices("i1", i1, n, t_.device)
    i2_ = _indices("i2", i2, n, t_.device)
    if i1_.shape != i2_.shape:
        raise InputError(f"i1 and i2 must have the same length; got {len(i1_)} and {len(i2_)}")
    if isinstance(angle, int):
        angle = torch.full_like(i1_, angle)
    k_ = _indices("angle", angle, phi_.shape[0], t_.device)
    if k_.shape != i1_.shape:
        raise InputError(f"angle must be an int or have the length of i1 ({len(i1_)})")
    layout = K.Pairs(i1_, i2_, k_)
    return _evaluate(p, t_, phi_, layout, q=q, dt=dt, L=L, mode=mode, backend=backend)


def parameter_names(mode: str) -> tuple[str, ...]:
    """Names of the scalar physical parameters of ``mode``, in kernel order."""
    return K.PHYSICAL[_mode(mode)]


# ---------------------------------------------------------------- evaluation


def _evaluate(
    p: Params,
    t: Tensor,
    phi: Tensor,
    layout: K.Grid | K.Pairs,
    *,
    q,
    dt,
    L,
    mode: str,
    backend: str,
) -> Tensor:
    mode = _mode(mode)
    if backend not in _BACKENDS:
        raise InputError(f"backend must be one of {_BACKENDS}; got {backend!r}")
    phi_ = _angles(phi, t)
    theta, contrast, offset = _parameters(p, mode, phi_.shape[0], t)
    t = t.to(theta.dtype)
    q_ = _positive("q", q)
    dt_ = _positive("dt", dt)
    L_ = None if L is None else _positive("L", L)
    if mode == "laminar_flow":
        if L_ is None:
            raise InputError("L (stator-rotor gap, Angstrom) is required in laminar_flow mode")
        sinc_prefactor = 0.5 / math.pi * q_ * L_ * dt_
    else:
        sinc_prefactor = 0.0
    setup = K.Setup(
        mode=mode,
        ts=K.floored_times(t),
        phi=phi_.to(theta.dtype),
        diffusion_prefactor=0.5 * q_**2 * dt_,
        sinc_prefactor=sinc_prefactor,
        layout=layout,
    )
    if backend == "fused":
        return K.C2.apply(theta, contrast, offset, setup)
    return K.literal(theta, contrast, offset, setup)


# ---------------------------------------------------------------- input checks


def _mode(mode: str) -> str:
    if mode not in K.MODES:
        raise InputError(f"mode must be one of {K.MODES}; got {mode!r}")
    return mode


def _times(t) -> Tensor:
    """Check the time grid: 1-D, finite, strictly increasing."""
    t_ = t if isinstance(t, Tensor) else torch.as_tensor(t, dtype=torch.float64)
    if not t_.is_floating_point():
        t_ = t_.to(torch.float64)
    if t_.ndim != 1 or t_.shape[0] < 1:
        raise InputError(f"t must be a non-empty 1-D time grid; got shape {tuple(t_.shape)}")
    if t_.requires_grad:
        raise InputError("t must not require grad: the time grid is data, not a parameter")
    if not bool(torch.isfinite(t_).all()):
        raise InputError("t must be finite; it contains NaN or infinity")
    if t_.shape[0] > 1 and not bool((t_[1:] > t_[:-1]).all()):
        i = int(torch.nonzero(t_[1:] <= t_[:-1])[0, 0])
        raise InputError(
            f"t must be strictly increasing; t[{i + 1}] = {float(t_[i + 1])!r} "
            f"<= t[{i}] = {float(t_[i])!r}"
        )
    return t_


def _angles(phi, t: Tensor) -> Tensor:
    phi_ = phi if isinstance(phi, Tensor) else torch.as_tensor(phi, dtype=torch.float64)
    phi_ = phi_.to(device=t.device)
    if not phi_.is_floating_point():
        phi_ = phi_.to(torch.float64)
    if phi_.ndim != 1 or phi_.shape[0] < 1:
        raise InputError(
            f"phi must be a non-empty 1-D array of angles; got shape {tuple(phi_.shape)}"
        )
    if phi_.requires_grad:
        raise InputError("phi must not require grad: the angles are data (fit phi0 instead)")
    if not bool(torch.isfinite(phi_).all()):
        raise InputError("phi must be finite; it contains NaN or infinity")
    return phi_


def _positive(name: str, value) -> float:
    """A positive finite scalar input (q, dt, L) as a Python float."""
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise InputError(f"{name} must not require grad: it is an input, not a parameter")
        if value.numel() != 1:
            raise InputError(f"{name} must be a scalar; got shape {tuple(value.shape)}")
        value = value.item()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number; got {type(value).__name__}") from None
    if not math.isfinite(number) or number <= 0.0:
        raise InputError(f"{name} must be positive and finite; got {number!r}")
    return number


def _indices(name: str, index, n: int, device: torch.device) -> Tensor:
    idx = index if isinstance(index, Tensor) else torch.as_tensor(index)
    if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.ndim != 1:
        raise InputError(
            f"{name} must be a 1-D integer tensor; got {idx.dtype}, shape {tuple(idx.shape)}"
        )
    idx = idx.to(device=device, dtype=torch.long)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise InputError(
            f"{name} must lie in [0, {n}); got values in [{int(idx.min())}, {int(idx.max())}]"
        )
    return idx


def _slice_bounds(name: str, s: slice, n: int) -> tuple[int, int]:
    if not isinstance(s, slice):
        raise InputError(f"{name} must be a slice; got {type(s).__name__}")
    start, stop, step = s.indices(n)
    if step != 1:
        raise InputError(f"{name} must have step 1; got {step}")
    if stop <= start:
        raise InputError(f"{name} selects no time points ({s} of {n})")
    return start, stop


def _parameters(p: Params, mode: str, n_angles: int, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Check ``p`` and return (theta, contrast, offset) in one floating dtype.

    The dtype is float64 unless the grid and every tensor parameter are float32.
    """
    if not isinstance(p, Mapping):
        raise InputError(
            f"p must be a mapping of parameter names to tensors; got {type(p).__name__}"
        )
    names = K.PHYSICAL[mode]
    expected = (*names, "contrast", "offset")
    missing = [k for k in expected if k not in p]
    if missing:
        raise InputError(
            f"{missing[0]} is missing from p (mode {mode!r} needs {', '.join(expected)})"
        )
    unknown = [k for k in p if k not in expected]
    if unknown:
        raise InputError(
            f"{unknown[0]} is not a parameter of mode {mode!r} (expected {', '.join(expected)})"
        )
    dtype = t.dtype if t.is_floating_point() else torch.float64
    for k in expected:
        v = p[k]
        if isinstance(v, Tensor):
            if not (v.is_floating_point() or v.dtype in (torch.int32, torch.int64)):
                raise InputError(f"{k} must be a real number or tensor; got dtype {v.dtype}")
            if v.is_floating_point():
                dtype = torch.promote_types(dtype, v.dtype)
        elif not isinstance(v, (int, float)):
            raise InputError(f"{k} must be a number or a tensor; got {type(v).__name__}")
    if dtype not in (torch.float32, torch.float64):
        dtype = torch.float64

    def scalar(k: str) -> Tensor:
        v = _as_tensor(p[k], dtype, t.device)
        if v.numel() != 1:
            raise InputError(f"{k} must be a scalar; got shape {tuple(v.shape)}")
        return v.reshape(())

    def per_angle(k: str) -> Tensor:
        v = _as_tensor(p[k], dtype, t.device)
        if v.ndim == 0:
            return v.expand(n_angles)
        if v.ndim != 1 or v.shape[0] != n_angles:
            raise InputError(
                f"{k} must have one value per angle: shape ({n_angles},) to match phi, or (); "
                f"got shape {tuple(v.shape)}"
            )
        return v

    theta = torch.stack([scalar(k) for k in names])
    return theta, per_angle("contrast"), per_angle("offset")


def _as_tensor(v, dtype: torch.dtype, device: torch.device) -> Tensor:
    if isinstance(v, Tensor):
        return v.to(dtype=dtype, device=device)
    return torch.tensor(float(v), dtype=dtype, device=device)
