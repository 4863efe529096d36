"""Numerical core of the XPCS two-time model: rates, integrals and the fused c2 kernel.

Notation (homodyne's discretisation, ``docs/models/xpcs.md``):

    ts        = max-floored time grid (t = 0 replaced by half the first step)
    D[i]      = max(D0 ts[i]^alpha + D_offset, 1e-10)              diffusion rate, A^2/s
    G[i]      = max(gdot0 ts[i]^beta + gdot_offset, 1e-10)          shear rate, 1/s
    C_f[i]    = sum_{k<i} (f[k] + f[k+1]) / 2                       trapezoid, in frame steps
    M_f[i,j]  = sqrt((C_f[i] - C_f[j])^2 + 1e-12)                   smooth |integral|
    g1_d      = exp(max(-w M_D, -700)),            w  = q^2 dt / 2
    x_k       = s_k M_G,  s_k = sp cos(phi0 - phi_k),  sp = q L dt / (2 pi)
    g1        = max(g1_d sinc(x_k)^2, 1e-10),      sinc(x) = sin(x) / x
    c2        = offset_k + contrast_k g1^2

Every (i, j) entry depends on the parameters only through the two integrals
``C_D[i] - C_D[j]`` and ``C_G[i] - C_G[j]`` and the per-angle factor ``s_k``: the kernel
computes the length-N cumulative integrals once, then sweeps the output in blocks small
enough to stay in cache, so no (P, N, N) temporary is ever built.

Derivatives are analytic. For a block, the rows of ``F`` are the partial derivatives of c2
with respect to the physical parameters, contrast_k and offset_k; a Jacobian-vector product
is then one matrix product ``T @ F`` per block, which also serves a whole batch of tangents
(``torch.func.jacfwd``) at once, and a vector-Jacobian product is ``G @ F^T``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

# Constants of homodyne's discretisation.
SMOOTH_ABS = 1e-12  # added to the squared integral before the square root
RATE_FLOOR = 1e-10  # floor on D(t), gamma_dot(t) and g1
LOG_CLIP = -700.0  # lower clip of the diffusion exponent
TAYLOR_BELOW = 1e-4  # |x| below which homodyne's sinc uses its Taylor polynomial
TIME_FLOOR_MIN = 1e-8  # lower bound of the t = 0 replacement

# Output elements handled per block: about a megabyte per work buffer on a CPU (mostly
# cache-resident, yet enough work per operation for two threads), large enough on a GPU
# to amortise kernel launches.
_BLOCK_CPU = 131072
_BLOCK_GPU = 1 << 22

MODES = ("static", "laminar_flow")
PHYSICAL = {
    "static": ("D0", "alpha", "D_offset"),
    "laminar_flow": (
        "D0",
        "alpha",
        "D_offset",
        "gamma_dot_t0",
        "beta",
        "gamma_dot_t_offset",
        "phi0",
    ),
}


@dataclass(frozen=True, eq=False)
class Grid:
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of the (N, N) time grid, all angles."""

    r0: int
    r1: int
    c0: int
    c1: int

    def shape(self, n_angles: int) -> tuple[int, ...]:
        return (n_angles, self.r1 - self.r0, self.c1 - self.c0)

    def blocks(self, size: int) -> Iterator[tuple[int, int]]:
        """Tile-local row ranges holding about ``size`` elements each."""
        n_rows = self.r1 - self.r0
        step = max(1, size // max(1, self.c1 - self.c0))
        for a in range(0, n_rows, step):
            yield a, min(a + step, n_rows)


@dataclass(frozen=True, eq=False)
class Pairs:
    """Individual entries ``c2[angle[m], i1[m], i2[m]]``."""

    i1: Tensor
    i2: Tensor
    angle: Tensor

    def shape(self, n_angles: int) -> tuple[int, ...]:
        return (self.i1.shape[0],)

    def blocks(self, size: int) -> Iterator[tuple[int, int]]:
        n = self.i1.shape[0]
        for a in range(0, n, size):
            yield a, min(a + size, n)


@dataclass(frozen=True, eq=False)
class Setup:
    """Everything about an evaluation that is not fitted: mode, time grid, angles,
    prefactors and which entries to compute. Built and checked by the public functions."""

    mode: str
    ts: Tensor  # floored time grid (N,)
    phi: Tensor  # scattering angles (P,), degrees
    diffusion_prefactor: float  # w = q^2 dt / 2
    sinc_prefactor: float  # sp = q L dt / (2 pi); 0 in static mode
    layout: Grid | Pairs

    @property
    def n_angles(self) -> int:
        return self.phi.shape[0]

    @property
    def n_physical(self) -> int:
        return len(PHYSICAL[self.mode])

    @property
    def block(self) -> int:
        return _BLOCK_GPU if self.ts.device.type == "cuda" else _BLOCK_CPU


# ---------------------------------------------------------------- length-N quantities


def floored_times(t: Tensor) -> Tensor:
    """Replace times below ``eps`` by ``eps``, with ``eps = max(|t[1] - t[0]| / 2, 1e-8)``.

    Homodyne infers the step from the grid itself, so only ``t = 0`` is affected on a grid
    ``t = i dt`` and ``0^alpha`` is never evaluated for negative exponents.
    """
    n = t.shape[0]
    step = abs(float(t[min(1, n - 1)] - t[0]))
    eps = step * 0.5 if step * 0.5 > TIME_FLOOR_MIN else TIME_FLOOR_MIN
    return torch.where(t > eps, t, torch.full_like(t, eps))


def power_law_rate(scale: Tensor, exponent: Tensor, shift: Tensor, ts: Tensor) -> Tensor:
    """``max(scale ts^exponent + shift, 1e-10)``; the floor is a ``where`` (zero gradient)."""
    raw = scale * ts**exponent + shift
    return torch.where(raw > RATE_FLOOR, raw, torch.full_like(raw, RATE_FLOOR))


def cumulative_trapezoid(f: Tensor) -> Tensor:
    """``C[..., 0] = 0``, ``C[..., i] = sum_{k<i} (f[k] + f[k+1]) / 2`` in units of frames."""
    steps = 0.5 * (f[..., :-1] + f[..., 1:])
    return torch.cat([torch.zeros_like(f[..., :1]), torch.cumsum(steps, dim=-1)], dim=-1)


def integrals(theta: Tensor, setup: Setup) -> tuple[Tensor, Tensor | None]:
    """Cumulative integrals ``C_D`` and (laminar flow) ``C_G`` on the grid, differentiable."""
    ts = setup.ts
    c_d = cumulative_trapezoid(power_law_rate(theta[0], theta[1], theta[2], ts))
    if setup.mode == "static":
        return c_d, None
    return c_d, cumulative_trapezoid(power_law_rate(theta[3], theta[4], theta[5], ts))


def _rate_derivatives(scale: Tensor, exponent: Tensor, shift: Tensor, ts: Tensor) -> Tensor:
    """d rate / d (scale, exponent, shift) on the grid, (3, N); zero where floored."""
    power = ts**exponent
    active = (scale * power + shift > RATE_FLOOR).to(ts.dtype)
    return torch.stack([power, scale * power * torch.log(ts), torch.ones_like(ts)]) * active


def integral_derivatives(theta: Tensor, setup: Setup) -> tuple[Tensor, Tensor | None]:
    """d C_D / d (D0, alpha, D_offset) and d C_G / d (gdot0, beta, gdot_offset), each (3, N)."""
    ts = setup.ts
    d_d = cumulative_trapezoid(_rate_derivatives(theta[0], theta[1], theta[2], ts))
    if setup.mode == "static":
        return d_d, None
    return d_d, cumulative_trapezoid(_rate_derivatives(theta[3], theta[4], theta[5], ts))


def shear_factors(theta: Tensor, setup: Setup) -> tuple[Tensor, Tensor]:
    """``s_k = sp cos(phi0 - phi_k)`` (angles in degrees) and ``d s_k / d phi0``, each (P,)."""
    angle = torch.deg2rad(theta[6] - setup.phi)
    s = setup.sinc_prefactor * torch.cos(angle)
    ds = -setup.sinc_prefactor * torch.sin(angle) * (math.pi / 180.0)
    return _away_from_zero(s), ds


def _away_from_zero(s: Tensor) -> Tensor:
    """Move |s| below ``tiny`` to ``tiny``.

    ``sin(x) / x`` needs ``x != 0``; with ``M_G >= 1e-6`` any ``s`` below ``tiny`` gives
    ``|x| < 1e-12`` where sinc is 1 to the last bit, so the value is unchanged.
    """
    tiny = torch.finfo(s.dtype).tiny * 1e8
    return torch.where(s.abs() < tiny, torch.full_like(s, tiny), s)


# ---------------------------------------------------------------- literal equations


def literal(theta: Tensor, contrast: Tensor, offset: Tensor, setup: Setup) -> Tensor:
    """MODEL.md's equations as written, with plain differentiable torch operations.

    Used by ``backend="autograd"``, for the fused kernel's second derivatives, and as the
    independent check of the fused kernel; it materialises full-size temporaries.
    """
    c_d, c_g = integrals(theta, setup)
    layout = setup.layout
    if isinstance(layout, Grid):

        def difference(c: Tensor) -> Tensor:
            return c[layout.r0 : layout.r1, None] - c[None, layout.c0 : layout.c1]

        def per_angle(v: Tensor) -> Tensor:
            return v[:, None, None]
    else:

        def difference(c: Tensor) -> Tensor:
            return c[layout.i1] - c[layout.i2]

        def per_angle(v: Tensor) -> Tensor:
            return v[layout.angle]

    m_d = torch.sqrt(difference(c_d) ** 2 + SMOOTH_ABS)
    g1 = torch.exp(torch.clamp(-setup.diffusion_prefactor * m_d, LOG_CLIP, 0.0))
    if c_g is not None:
        m_g = torch.sqrt(difference(c_g) ** 2 + SMOOTH_ABS)
        s = setup.sinc_prefactor * torch.cos(torch.deg2rad(theta[6] - setup.phi))
        x = per_angle(s) * m_g
        g1 = g1 * _sinc_homodyne(x) ** 2
    elif isinstance(layout, Grid):
        g1 = g1.expand(setup.n_angles, *g1.shape)
    g1 = torch.where(g1 > RATE_FLOOR, g1, torch.full_like(g1, RATE_FLOOR))
    return per_angle(offset) + per_angle(contrast) * g1**2


def _sinc_homodyne(x: Tensor) -> Tensor:
    """Unnormalised sinc with homodyne's two branches (Taylor below |x| = 1e-4)."""
    near = 1.0 - x**2 / 6.0 + x**4 / 120.0
    safe = torch.where(x.abs() > 1e-12, x, torch.ones_like(x))
    return torch.where(x.abs() < TAYLOR_BELOW, near, torch.sin(x) / safe)


# ---------------------------------------------------------------- block helpers


class _Buffers:
    """Reusable flat work buffers, one block in size each."""

    def __init__(self, count: int, size: int, like: Tensor) -> None:
        self._flat = torch.empty((count, size), dtype=like.dtype, device=like.device)

    def get(self, index: int, shape: tuple[int, ...]) -> Tensor:
        n = math.prod(shape)
        return self._flat[index, :n].view(shape)


def _difference(
    c: Tensor, layout: Grid | Pairs, a: int, b: int, out: Tensor, col: int = 0
) -> Tensor:
    """``c[i] - c[j]`` for the block's entries (grid: tile rows ``a:b``, tile columns
    from ``col``), written into ``out``."""
    if isinstance(layout, Grid):
        rows = c[..., layout.r0 + a : layout.r0 + b, None]
        return torch.sub(rows, c[..., None, layout.c0 + col : layout.c1], out=out)
    return torch.sub(c[..., layout.i1[a:b]], c[..., layout.i2[a:b]], out=out)


def _block_shape(layout: Grid | Pairs, a: int, b: int, col: int = 0) -> tuple[int, ...]:
    if isinstance(layout, Grid):
        return (b - a, layout.c1 - layout.c0 - col)
    return (b - a,)


def _smooth_abs_(d: Tensor) -> Tensor:
    """In place: ``sqrt(d^2 + 1e-12)``."""
    return d.square_().add_(SMOOTH_ABS).sqrt_()


def _diffusion_factor_(m_d: Tensor, w: float) -> Tensor:
    """In place: ``exp(clip(-w M_D, -700, 0))``; the upper clip is idle since w, M_D > 0."""
    return m_d.mul_(-w).clamp_(min=LOG_CLIP).exp_()


# ---------------------------------------------------------------- values


def values(theta: Tensor, contrast: Tensor, offset: Tensor, setup: Setup) -> Tensor:
    """c2 for ``setup.layout``, computed block by block without autograd.

    On a square tile on the diagonal (the full grid) only the upper triangle is computed
    and mirrored: ``C[i] - C[j]`` changes sign exactly, so c2 is exactly symmetric.
    """
    layout = setup.layout
    c_d, c_g = integrals(theta, setup)
    laminar = c_g is not None
    s = shear_factors(theta, setup)[0] if laminar else None
    out = torch.empty(layout.shape(setup.n_angles), dtype=theta.dtype, device=theta.device)
    buf = _Buffers(4 if laminar else 1, setup.block, theta)
    w = setup.diffusion_prefactor
    symmetric = isinstance(layout, Grid) and layout.r0 == layout.c0 and layout.r1 == layout.c1
    for a, b, col in _value_blocks(layout, setup.block, symmetric):
        shape = _block_shape(layout, a, b, col)
        d = _difference(c_d, layout, a, b, buf.get(0, shape), col)
        g1d = _diffusion_factor_(_smooth_abs_(d), w)
        if laminar:
            m_g = _smooth_abs_(_difference(c_g, layout, a, b, buf.get(1, shape), col))
            x, g1 = buf.get(2, shape), buf.get(3, shape)
        else:
            g1 = g1d.clamp_(min=RATE_FLOOR).square_()
        for k, dest in _destinations(layout, out, a, b, setup.n_angles, col):
            o, c = _angle_terms(k, offset, contrast)
            if laminar:
                torch.mul(m_g, s[k], out=x)
                # sin(x)/x equals homodyne's Taylor branch (|x| < 1e-4) to rounding; x != 0.
                torch.sin(x, out=g1).div_(x).square_().mul_(g1d)
                g1.clamp_(min=RATE_FLOOR).square_()
            torch.addcmul(o, g1, c, out=dest)
            if symmetric:  # mirror the block's part right of its diagonal square
                out[k, b:, a:b].copy_(dest[:, b - a :].t())
    return out


def _value_blocks(
    layout: Grid | Pairs, size: int, symmetric: bool
) -> Iterator[tuple[int, int, int]]:
    """(rows a:b, first column) blocks: the upper triangle of a diagonal square tile
    (a block's columns start at its first row), otherwise whole tile rows or pairs."""
    if not symmetric:
        for a, b in layout.blocks(size):
            yield a, b, 0
        return
    n, a = layout.r1 - layout.r0, 0
    while a < n:
        b = min(n, a + max(1, size // (n - a)))
        yield a, b, a
        a = b


def _angle_terms(k: int | Tensor, *per_angle: Tensor) -> list[Tensor]:
    """Per-angle quantities for one angle (grid: 0-d) or gathered per entry (pairs)."""
    return [v[k] for v in per_angle]


def _angles(layout: Grid | Pairs, a: int, b: int, n_angles: int) -> Iterator[int | Tensor]:
    """Angle selectors of a block: each angle in turn on a grid; for pairs one index
    tensor that gathers every entry's own angle."""
    if isinstance(layout, Grid):
        yield from range(n_angles)
    else:
        yield layout.angle[a:b]


def _destinations(
    layout: Grid | Pairs, out: Tensor, a: int, b: int, n_angles: int, col: int = 0
) -> Iterator[tuple[int | Tensor, Tensor]]:
    """(angle selector, view of ``out``) for each angle of a block."""
    for k in _angles(layout, a, b, n_angles):
        yield k, (out[k, a:b, col:] if isinstance(layout, Grid) else out[a:b])


# ---------------------------------------------------------------- derivative rows


class _Derivatives:
    """Writes, block by block, the rows of F = d c2 / d (physical..., contrast, offset).

    Row order: the physical parameters in ``PHYSICAL[mode]`` order, then contrast_k and
    offset_k of the entry's own angle. With ``slope = 2 c_k g1`` where g1 is above its
    floor (0 below),

        d c2 / d(C_D[i] - C_D[j]) = -w slope g1 R_D,         R_D = (C_D[i] - C_D[j]) / M_D
        d c2 / d x                = 2 slope g1_d sinc sinc',  x = s_k M_G
        d c2 / d(C_G[i] - C_G[j]) = (d c2 / d x) s_k R_G,     d c2 / d s_k = (d c2 / d x) M_G

    and the chain rule through ``C_f[i] - C_f[j]`` gives the physical rows.
    """

    def __init__(self, theta: Tensor, contrast: Tensor, offset: Tensor, setup: Setup) -> None:
        self.setup = setup
        self.contrast = contrast
        self.c_d, self.c_g = integrals(theta, setup)
        self.dc_d, self.dc_g = integral_derivatives(theta, setup)
        self.laminar = self.c_g is not None
        if self.laminar:
            self.s, self.ds = shear_factors(theta, setup)
        self.n_rows = setup.n_physical + 2
        self.buf = _Buffers(10, setup.block, theta)
        self.deltas = _Buffers(2, 3 * setup.block, theta)
        self.rows = torch.empty((self.n_rows, setup.block), dtype=theta.dtype, device=theta.device)
        self.rows[-1].fill_(1.0)  # d c2 / d offset_k

    def _shared(self, c: Tensor, dc: Tensor, a: int, b: int, slot: int):
        """(C[i] - C[j]) / M, M and the derivative differences (3, n) for one integral."""
        layout, buf = self.setup.layout, self.buf
        shape = _block_shape(layout, a, b)
        n = math.prod(shape)
        d = _difference(c, layout, a, b, buf.get(slot, shape)).view(n)
        m = _smooth_abs_(buf.get(slot + 1, (n,)).copy_(d))
        delta = _difference(dc, layout, a, b, self.deltas.get(slot // 2, (3, *shape)))
        return d.div_(m), m, delta.view(3, n)

    def block(self, a: int, b: int) -> Iterator[tuple[int | Tensor, Tensor]]:
        """Yield (angle selector, F of shape (n_rows, block size)) for each angle."""
        layout, buf, w = self.setup.layout, self.buf, self.setup.diffusion_prefactor
        n = math.prod(_block_shape(layout, a, b))
        rows, p = self.rows[:, :n], self.setup.n_physical
        r_d, g1d, delta_d = self._shared(self.c_d, self.dc_d, a, b, 0)
        g1d = _diffusion_factor_(g1d, w)
        if self.laminar:
            r_g, m_g, delta_g = self._shared(self.c_g, self.dc_g, a, b, 2)
        zero = torch.zeros((), dtype=g1d.dtype, device=g1d.device)
        for k in _angles(layout, a, b, self.setup.n_angles):
            if self.laminar:
                s_k, ds_k, c_k = self._per_angle(k, self.s, self.ds, self.contrast)
                x = torch.mul(m_g, s_k, out=buf.get(4, (n,)))
                sinc = torch.sin(x, out=buf.get(5, (n,))).div_(x)
                dsinc = torch.cos(x, out=buf.get(6, (n,))).sub_(sinc).div_(x)
                self._taylor_(x, dsinc, k, a, b)
                g1 = torch.mul(sinc, sinc, out=buf.get(7, (n,))).mul_(g1d)
            else:
                (c_k,) = self._per_angle(k, self.contrast)
                g1 = g1d
            torch.clamp(g1, min=RATE_FLOOR, out=rows[p]).square_()  # d c2 / d contrast_k
            # slope / (2 c_k): g1 where above the floor, 0 where the floor holds it
            live = torch.threshold(g1, RATE_FLOOR, 0.0, out=buf.get(8, (n,)))
            base_d = _scaled_product(zero, live, g1, -2.0 * w * c_k, buf.get(9, (n,)))
            torch.mul(delta_d, base_d.mul_(r_d), out=rows[0:3])
            if self.laminar:
                live.mul_(g1d).mul_(sinc)
                dc2_dx = _scaled_product(zero, live, dsinc, 4.0 * c_k, dsinc)
                _scaled_product(zero, dc2_dx, m_g, ds_k, rows[6])
                base_g = _scaled_product(zero, dc2_dx, r_g, s_k, dc2_dx)
                torch.mul(delta_g, base_g, out=rows[3:6])
            yield k, rows

    def _per_angle(self, k: int | Tensor, *values: Tensor) -> list[float] | list[Tensor]:
        """Angle k's values: Python numbers on a grid (cheap scalar arithmetic), gathered
        tensors for pairs."""
        if isinstance(k, int):
            return [float(v[k]) for v in values]
        return [v[k] for v in values]

    def _taylor_(self, x: Tensor, dsinc: Tensor, k: int | Tensor, a: int, b: int) -> None:
        """Replace sinc' by homodyne's Taylor derivative where |x| < 1e-4.

        The quotient ``(cos x - sinc x) / x`` cancels there. On a grid the entries with
        ``|x| < 1e-4`` (``M_G`` below ``1e-4 / |s_k|``) lie in a band around
        ``C_G[i] = C_G[j]``; since C_G is non-decreasing, a binary search bounds the
        columns that can hold them and only that sub-block is tested.
        """
        layout = self.setup.layout
        if isinstance(layout, Grid):
            width = layout.c1 - layout.c0
            cols = self._taylor_columns(abs(float(self.s[k])), a, b)
            if cols is None:
                return
            x = x.view(-1, width)[:, cols[0] : cols[1]]
            dsinc = dsinc.view(-1, width)[:, cols[0] : cols[1]]
        small = x.abs() < TAYLOR_BELOW
        dsinc.copy_(torch.where(small, x * (x * x / 30.0 - 1.0 / 3.0), dsinc))

    def _taylor_columns(self, s_abs: float, a: int, b: int) -> tuple[int, int] | None:
        layout, c_g = self.setup.layout, self.c_g
        limit = TAYLOR_BELOW / s_abs * (1.0 + 1e-6)  # M_G bound, with rounding margin
        if limit * limit <= SMOOTH_ABS:
            return None  # M_G >= 1e-6 everywhere
        reach = math.sqrt(limit * limit - SMOOTH_ABS) * (1.0 + 1e-6)
        ends = torch.stack([c_g[layout.r0 + a] - reach, c_g[layout.r0 + b - 1] + reach])
        cols = c_g[layout.c0 : layout.c1]
        j0 = int(torch.searchsorted(cols, ends[0:1], right=False))
        j1 = int(torch.searchsorted(cols, ends[1:2], right=True))
        return (j0, j1) if j1 > j0 else None


def _scaled_product(zero: Tensor, u: Tensor, v: Tensor, scale, out: Tensor) -> Tensor:
    """``out = scale * u * v`` in one pass (``scale`` a number or a per-entry tensor)."""
    if isinstance(scale, Tensor):
        return torch.mul(u, v, out=out).mul_(scale)
    return torch.addcmul(zero, u, v, value=scale, out=out)


def tangent(
    theta: Tensor,
    contrast: Tensor,
    offset: Tensor,
    d_theta: Tensor,
    d_contrast: Tensor,
    d_offset: Tensor,
    setup: Setup,
) -> Tensor:
    """Jacobian-vector products for a batch of tangents: (B, *layout shape).

    ``d_theta`` is (B, n_physical), ``d_contrast`` and ``d_offset`` are (B, P). Each block
    of the output is one matrix product ``[d_theta, d_contrast_k, d_offset_k] @ F``
    written in place; tangents wrapped by an outer vectorising transform (autograd's
    ``is_grads_batched`` machinery) take an out-of-place route instead.
    """
    layout, p = setup.layout, setup.n_physical
    jac = _Derivatives(theta, contrast, offset, setup)
    if _wrapped(d_theta, d_contrast, d_offset):
        return _tangent_out_of_place(jac, d_theta, d_contrast, d_offset)
    n_batch = d_theta.shape[0]
    out = torch.empty(
        (n_batch, *layout.shape(setup.n_angles)), dtype=theta.dtype, device=theta.device
    )
    per_angle = _per_angle_tangents(d_theta, d_contrast, d_offset, setup)
    for a, b in layout.blocks(setup.block):
        for k, rows in jac.block(a, b):
            if isinstance(layout, Grid):
                torch.mm(per_angle[k], rows, out=out[:, k, a:b].view(n_batch, -1))
            else:
                dest = out[:, a:b]
                torch.mm(d_theta, rows[:p], out=dest)
                dest.addcmul_(d_contrast[:, k], rows[p]).add_(d_offset[:, k])
    return out


def _per_angle_tangents(d_theta, d_contrast, d_offset, setup: Setup) -> list[Tensor]:
    """For a grid: the (B, n_rows) tangent matrix of each angle."""
    if not isinstance(setup.layout, Grid):
        return []
    return [
        torch.cat([d_theta, d_contrast[:, k : k + 1], d_offset[:, k : k + 1]], dim=1)
        for k in range(setup.n_angles)
    ]


def _tangent_out_of_place(jac: _Derivatives, d_theta, d_contrast, d_offset) -> Tensor:
    setup = jac.setup
    layout, p = setup.layout, setup.n_physical
    per_angle = _per_angle_tangents(d_theta, d_contrast, d_offset, setup)
    pieces: dict = {}
    for a, b in layout.blocks(setup.block):
        for k, rows in jac.block(a, b):
            if isinstance(layout, Grid):
                piece = per_angle[k] @ rows
                piece = piece.reshape(piece.shape[0], *_block_shape(layout, a, b))
                pieces.setdefault(k, []).append(piece)
            else:
                piece = d_theta @ rows[:p] + d_contrast[:, k] * rows[p] + d_offset[:, k]
                pieces.setdefault(0, []).append(piece)
    if isinstance(layout, Grid):
        return torch.stack([torch.cat(pieces[k], dim=1) for k in range(setup.n_angles)], dim=1)
    return torch.cat(pieces[0], dim=1)


def cotangent(
    theta: Tensor, contrast: Tensor, offset: Tensor, grad: Tensor, setup: Setup
) -> tuple[Tensor, Tensor, Tensor]:
    """Vector-Jacobian products for a batch of cotangents ``grad`` (B, *layout shape).

    Returns gradients with respect to theta (B, n_physical), contrast and offset (B, P),
    accumulated block by block as ``grad_block @ F^T``.
    """
    layout = setup.layout
    n_batch, p, n_angles = grad.shape[0], setup.n_physical, setup.n_angles
    jac = _Derivatives(theta, contrast, offset, setup)
    zeros = grad.new_zeros((n_batch, n_angles, p + 2)) if isinstance(layout, Grid) else None
    per_angle = [] if zeros is None else [zeros[:, k] for k in range(n_angles)]
    g_theta = grad.new_zeros((n_batch, p))
    g_contrast = grad.new_zeros((n_batch, n_angles))
    g_offset = grad.new_zeros((n_batch, n_angles))
    for a, b in layout.blocks(setup.block):
        for k, rows in jac.block(a, b):
            if isinstance(layout, Grid):
                g = grad[:, k, a:b].reshape(n_batch, -1)
                per_angle[k] = per_angle[k] + g @ rows.t()
            else:
                g = grad[:, a:b]
                g_theta = g_theta + g @ rows[:p].t()
                g_contrast = g_contrast.index_add(1, k, g * rows[p])
                g_offset = g_offset.index_add(1, k, g)
    if isinstance(layout, Grid):
        acc = torch.stack(per_angle, dim=1)
        g_theta = acc[:, :, :p].sum(dim=1)
        g_contrast, g_offset = acc[:, :, p], acc[:, :, p + 1]
    return g_theta, g_contrast, g_offset


# ---------------------------------------------------------------- autograd plumbing


def _literal_jvp(theta, contrast, offset, d_theta, d_contrast, d_offset, setup: Setup):
    """J T for a batch of tangents by forward-mode AD of :func:`literal` (any order)."""

    def one(dt: Tensor, dc: Tensor, do: Tensor) -> Tensor:
        f = lambda a, b, c: literal(a, b, c, setup)  # noqa: E731
        return torch.func.jvp(f, (theta, contrast, offset), (dt, dc, do))[1]

    return torch.func.vmap(one)(d_theta, d_contrast, d_offset)


def _literal_vjp(theta, contrast, offset, grad, setup: Setup):
    """J^T G for a batch of cotangents by reverse-mode AD of :func:`literal` (any order)."""

    def one(g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        pullback = torch.func.vjp(lambda a, b, c: literal(a, b, c, setup), theta, contrast, offset)[
            1
        ]
        return pullback(g)

    return torch.func.vmap(one)(grad)


_SECOND_ORDER = (
    "this nesting of torch.func transforms is not supported for second derivatives of the "
    "fused XPCS kernel (supported: hessian, jvp of jvp, jvp of grad, create_graph); "
    "evaluate the model with backend='autograd'"
)


def _second_order(f, *args):
    """Run a second-derivative rule of the literal equations; nestings that torch.func
    cannot run inside a custom function's derivative raise a clear error."""
    try:
        return f(*args)
    except RuntimeError as exc:
        if "escaped" in str(exc) or "INTERNAL ASSERT" in str(exc):
            raise RuntimeError(_SECOND_ORDER) from exc
        raise


def _zeros_for_none(values, like) -> tuple:
    return tuple(torch.zeros_like(x) if v is None else v for v, x in zip(values, like, strict=True))


_FUNCTORCH = torch._C._functorch
_WRAPPER_CHECKS = tuple(
    getattr(_FUNCTORCH, name)
    for name in ("is_functorch_wrapped_tensor", "is_legacy_batchedtensor")
    if hasattr(_FUNCTORCH, name)
)


def _wrapped(*xs: Tensor) -> bool:
    """Whether any tensor is wrapped by a vectorising or differentiating transform
    (torch.func wrappers, or the batched tensors of autograd's ``vectorize=True``):
    such tensors cannot be written through ``out=`` into plain buffers."""
    return any(check(x) for x in xs for check in _WRAPPER_CHECKS)


def _first(x: Tensor, dim: int | None, size: int) -> Tensor:
    """Put the vmap batch dimension first (broadcasting an unbatched input)."""
    if dim is None:
        return x.unsqueeze(0).expand(size, *x.shape)
    return x.movedim(dim, 0)


def _select(x: Tensor, dim: int | None, i: int) -> Tensor:
    return x if dim is None else x.select(dim, i)


class C2(torch.autograd.Function):
    """c2 as one autograd node: analytic JVP and VJP, batched by matrix products."""

    @staticmethod
    def forward(theta: Tensor, contrast: Tensor, offset: Tensor, setup: Setup) -> Tensor:
        return values(theta, contrast, offset, setup)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        theta, contrast, offset, setup = inputs
        ctx.setup = setup
        ctx.save_for_backward(theta, contrast, offset)
        ctx.save_for_forward(theta, contrast, offset)

    @staticmethod
    def jvp(ctx, d_theta, d_contrast, d_offset, _):
        theta, contrast, offset = ctx.saved_tensors
        d_theta = torch.zeros_like(theta) if d_theta is None else d_theta
        d_contrast = torch.zeros_like(contrast) if d_contrast is None else d_contrast
        d_offset = torch.zeros_like(offset) if d_offset is None else d_offset
        out = C2Tangent.apply(
            theta, contrast, offset, d_theta[None], d_contrast[None], d_offset[None], ctx.setup
        )
        return out[0]

    @staticmethod
    def backward(ctx, grad):
        theta, contrast, offset = ctx.saved_tensors
        g = C2Cotangent.apply(theta, contrast, offset, grad[None], ctx.setup)
        return g[0][0], g[1][0], g[2][0], None

    @staticmethod
    def vmap(info, in_dims, theta, contrast, offset, setup):
        # Batched parameter sets: one evaluation per set (each is a full grid anyway).
        out = [
            C2.apply(
                *(
                    _select(x, d, i)
                    for x, d in zip((theta, contrast, offset), in_dims[:3], strict=True)
                ),
                setup,
            )
            for i in range(info.batch_size)
        ]
        return torch.stack(out), 0


class C2Tangent(torch.autograd.Function):
    """Jacobian-vector products of :class:`C2` for tangents with a leading batch
    dimension; under vmap the vmapped tangents join that dimension, so a whole
    ``jacfwd`` is one matrix product per block."""

    @staticmethod
    def forward(theta, contrast, offset, d_theta, d_contrast, d_offset, setup):
        return tangent(theta, contrast, offset, d_theta, d_contrast, d_offset, setup)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.setup = inputs[-1]
        ctx.save_for_backward(*inputs[:-1])
        ctx.save_for_forward(*inputs[:-1])

    # Second derivatives (Hessians, forward over forward) come from the literal equations.

    @staticmethod
    def backward(ctx, grad):
        inputs = ctx.saved_tensors
        pullback = _second_order(torch.func.vjp, lambda *x: _literal_jvp(*x, ctx.setup), *inputs)[1]
        return (*_second_order(pullback, grad), None)

    @staticmethod
    def jvp(ctx, *tangents):
        inputs = ctx.saved_tensors
        tangents = _zeros_for_none(tangents[:-1], inputs)
        return _second_order(
            torch.func.jvp, lambda *x: _literal_jvp(*x, ctx.setup), inputs, tangents
        )[1]

    @staticmethod
    def vmap(info, in_dims, theta, contrast, offset, d_theta, d_contrast, d_offset, setup):
        args, dims = (theta, contrast, offset, d_theta, d_contrast, d_offset), in_dims[:6]
        if any(d is not None for d in dims[:3]):
            out = [
                C2Tangent.apply(*(_select(x, d, i) for x, d in zip(args, dims, strict=True)), setup)
                for i in range(info.batch_size)
            ]
            return torch.stack(out), 0
        size = info.batch_size
        merged = [_first(x, d, size).flatten(0, 1) for x, d in zip(args[3:], dims[3:], strict=True)]
        out = C2Tangent.apply(theta, contrast, offset, *merged, setup)
        return out.unflatten(0, (size, -1)), 0


class C2Cotangent(torch.autograd.Function):
    """Vector-Jacobian products of :class:`C2` for cotangents with a leading batch
    dimension; under vmap the vmapped cotangents join that dimension."""

    @staticmethod
    def forward(theta, contrast, offset, grad, setup):
        return cotangent(theta, contrast, offset, grad, setup)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.setup = inputs[-1]
        ctx.save_for_backward(*inputs[:-1])
        ctx.save_for_forward(*inputs[:-1])

    # Second derivatives (Hessians, forward over reverse) come from the literal equations.

    @staticmethod
    def backward(ctx, *grads):
        # autograd materialises missing output gradients as zeros
        inputs = ctx.saved_tensors
        pullback = _second_order(torch.func.vjp, lambda *x: _literal_vjp(*x, ctx.setup), *inputs)[1]
        return (*_second_order(pullback, grads), None)

    @staticmethod
    def jvp(ctx, *tangents):
        inputs = ctx.saved_tensors
        tangents = _zeros_for_none(tangents[:-1], inputs)
        return _second_order(
            torch.func.jvp, lambda *x: _literal_vjp(*x, ctx.setup), inputs, tangents
        )[1]

    @staticmethod
    def vmap(info, in_dims, theta, contrast, offset, grad, setup):
        args, dims = (theta, contrast, offset, grad), in_dims[:4]
        if any(d is not None for d in dims[:3]):
            outs = [
                C2Cotangent.apply(
                    *(_select(x, d, i) for x, d in zip(args, dims, strict=True)), setup
                )
                for i in range(info.batch_size)
            ]
            return tuple(torch.stack(o) for o in zip(*outs, strict=True)), (0, 0, 0)
        size = info.batch_size
        g = C2Cotangent.apply(
            theta, contrast, offset, _first(grad, dims[3], size).flatten(0, 1), setup
        )
        return tuple(x.unflatten(0, (size, -1)) for x in g), (0, 0, 0)
