r"""Turning a surface-brightness function into pixel values.

A pixel value is the mean of the surface brightness :math:`I(x, y)` over the pixel's unit
square (pixel area 1, so also the flux in the pixel). :class:`Sampling` says how that mean
is approximated:

* every pixel gets an ``order`` x ``order`` Gauss–Legendre rule (``order = 1`` is the
  midpoint rule, AstroPhot's ``sampling_mode="midpoint"``);
* around the component centre, where cusped profiles (Sérsic n > 1) are steep, ``levels``
  nested blocks refine further: a ``size`` x ``size`` block of cells centred on the cell
  holding the centre is split ``factor`` x ``factor`` and each sub-cell gets the same
  Gauss–Legendre rule; the next level does the same inside the previous one. Cell sizes
  shrink as :math:`\text{factor}^{-\text{level}}` pixels.

The refinement is adaptive in where it goes (it follows the centre parameter) but has a
fixed cost and fixed tensor shapes: the block position is computed from the detached centre
and placed with ``gather``/``where``, never with Python-level indexing. So it is
differentiable, batched over parameter sets, and works under ``torch.func.jacfwd``/``vmap``.
Moving the centre across a cell edge moves the block; the image changes only by the
(small) quadrature error there, so the model stays continuous to that accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from inversekit.errors import InputError

Brightness = Callable[[Tensor, Tensor], Tensor]

# Cells per evaluation above which Gauss–Legendre nodes are visited one pair at a time.
_LOOP_ABOVE = 4096


@dataclass(frozen=True)
class Sampling:
    """How pixels are integrated; see the module docs.

    ``order``: Gauss–Legendre points per axis in each cell (1 = midpoint).
    ``levels``: nested refinement levels around the centre (0 = none).
    ``factor``: each refined cell is split into ``factor`` x ``factor`` sub-cells.
    ``size``: a refined block is ``size`` x ``size`` cells of the level above (odd).
    """

    order: int = 1
    levels: int = 0
    factor: int = 4
    size: int = 5

    def __post_init__(self) -> None:
        for name, lo, hi in (("order", 1, 16), ("levels", 0, 8), ("factor", 2, 16)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise InputError(
                    f"Sampling.{name} must be an integer in [{lo}, {hi}], got {value!r}"
                )
        if not isinstance(self.size, int) or self.size < 1 or self.size % 2 == 0:
            raise InputError(f"Sampling.size must be a positive odd integer, got {self.size!r}")


#: AstroPhot's reference mode: one sample at each pixel centre.
MIDPOINT = Sampling()
#: Integrated pixels: 3x3 Gauss–Legendre everywhere, three 4x refinements near the centre.
QUAD = Sampling(order=3, levels=3, factor=4, size=5)

_NAMED = {"midpoint": MIDPOINT, "quad": QUAD}


def as_sampling(sampling: str | Sampling) -> Sampling:
    """Accept a :class:`Sampling` or the shorthand ``"midpoint"`` / ``"quad"``."""
    if isinstance(sampling, Sampling):
        return sampling
    if isinstance(sampling, str) and sampling in _NAMED:
        return _NAMED[sampling]
    raise InputError(f"sampling must be a Sampling or one of {sorted(_NAMED)}, got {sampling!r}")


@dataclass(frozen=True)
class Grid:
    """A pixel lattice: ``height`` x ``width`` pixels, pixel ``[0, 0]`` centred at ``(x0, y0)``.

    Row ``i``, column ``j`` is centred at ``(x0 + j, y0 + i)`` and covers the unit square
    around it (numpy layout: rows are y, columns are x).
    """

    height: int
    width: int
    x0: float = 0.0
    y0: float = 0.0

    def padded(self, pad_y: int, pad_x: int) -> Grid:
        """The same lattice grown by ``pad_y`` rows and ``pad_x`` columns on every side."""
        return Grid(
            self.height + 2 * pad_y, self.width + 2 * pad_x, self.x0 - pad_x, self.y0 - pad_y
        )

    def axes(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        """Pixel-centre coordinates along x (width,) and y (height,)."""
        x = self.x0 + torch.arange(self.width, dtype=dtype, device=device)
        y = self.y0 + torch.arange(self.height, dtype=dtype, device=device)
        return x, y


@lru_cache(maxsize=64)
def _legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(order)
    return 0.5 * nodes, 0.5 * weights  # on [-1/2, 1/2], weights summing to 1


def _cell_means(f: Brightness, xc: Tensor, yc: Tensor, h: float, order: int) -> Tensor:
    """Means of ``f`` over square cells of side ``h`` centred on ``xc`` (..., N) x ``yc`` (..., M).

    Returns (..., M, N). With order 1 this is ``f`` at the cell centres.
    """
    if order == 1:
        return f(xc.unsqueeze(-2), yc.unsqueeze(-1))
    nodes, weights = _legendre(order)
    if xc.shape[-1] * yc.shape[-1] > _LOOP_ABOVE:
        # One pass per node pair over image-sized arrays: the same arithmetic as the
        # vectorised form below, but the working set stays cache-sized, which matters most
        # under forward-mode AD, where every array carries one tangent per parameter.
        total = None
        for ua, wa in zip(nodes, weights, strict=True):
            yy = (yc + ua * h).unsqueeze(-1)
            for ub, wb in zip(nodes, weights, strict=True):
                term = (wa * wb) * f((xc + ub * h).unsqueeze(-2), yy)
                total = term if total is None else total + term
        return total
    u = torch.as_tensor(nodes, dtype=xc.dtype, device=xc.device) * h
    w = torch.as_tensor(weights, dtype=xc.dtype, device=xc.device)
    xs = (xc.unsqueeze(-1) + u).flatten(-2)  # (..., N * order), node index fastest
    ys = (yc.unsqueeze(-1) + u).flatten(-2)
    values = f(xs.unsqueeze(-2), ys.unsqueeze(-1))
    values = values.unflatten(-1, (xc.shape[-1], order)).unflatten(-3, (yc.shape[-1], order))
    return torch.einsum("...iajb,a,b->...ij", values, w, w)


def insert_block(base: Tensor, block: Tensor, row0: Tensor, col0: Tensor) -> Tensor:
    """``base`` (..., H, W) with ``block`` (..., m, m) written at integer offsets ``row0, col0``.

    The offsets are integer tensors (batch shaped); parts of the block falling outside
    ``base`` are dropped. Uses ``gather`` and ``where`` so shapes never depend on values.
    """
    m = block.shape[-1]
    height, width = base.shape[-2:]
    rows = torch.arange(height, device=base.device) - row0.unsqueeze(-1)  # (..., H)
    cols = torch.arange(width, device=base.device) - col0.unsqueeze(-1)  # (..., W)
    inside = ((rows >= 0) & (rows < m)).unsqueeze(-1) & ((cols >= 0) & (cols < m)).unsqueeze(-2)
    index = rows.clamp(0, m - 1).unsqueeze(-1) * m + cols.clamp(0, m - 1).unsqueeze(-2)
    batch = torch.broadcast_shapes(base.shape[:-2], block.shape[:-2], index.shape[:-2])
    flat_block = block.expand(*batch, m, m).reshape(*batch, m * m)
    flat_index = index.expand(*batch, height, width).reshape(*batch, height * width)
    placed = torch.gather(flat_block, -1, flat_index).reshape(*batch, height, width)
    return torch.where(inside, placed, base)


def _cell_index(c: Tensor, edge0: float, h: float) -> Tensor:
    """Index of the cell of side ``h`` (lattice starting at ``edge0``) holding ``c``."""
    # Detached and clamped: the block position is a sampling choice, not a function to
    # differentiate, and NaN or huge centres must not overflow the integer cast.
    k = torch.floor((c.detach() - edge0) / h)
    return torch.nan_to_num(k, nan=0.0).clamp(-(2**40), 2**40).to(torch.int64)


def _refined_block(
    f: Brightness,
    cx: Tensor,
    cy: Tensor,
    edge_x: float,
    edge_y: float,
    h_parent: float,
    level: int,
    sampling: Sampling,
) -> tuple[Tensor, Tensor, Tensor]:
    """Refined means of the ``size`` x ``size`` parent cells around the centre.

    Returns the means (..., size, size) and the lattice indices (row, col) of the block's
    first parent cell; recurses while ``level < sampling.levels``.
    """
    s, k = sampling.size, sampling.factor
    half = s // 2
    h = h_parent / k
    first_col = _cell_index(cx, edge_x, h_parent) - half
    first_row = _cell_index(cy, edge_y, h_parent) - half
    offsets = torch.arange(s * k, dtype=cx.dtype, device=cx.device) + 0.5
    xc = edge_x + ((first_col * k).to(cx.dtype).unsqueeze(-1) + offsets) * h
    yc = edge_y + ((first_row * k).to(cy.dtype).unsqueeze(-1) + offsets) * h
    means = _cell_means(f, xc, yc, h, sampling.order)
    if level < sampling.levels:
        inner, inner_row, inner_col = _refined_block(
            f, cx, cy, edge_x, edge_y, h, level + 1, sampling
        )
        means = insert_block(means, inner, inner_row - first_row * k, inner_col - first_col * k)
    coarse = means.unflatten(-1, (s, k)).unflatten(-3, (s, k)).mean(dim=(-3, -1))
    return coarse, first_row, first_col


def pixel_means(f: Brightness, grid: Grid, sampling: Sampling, cx: Tensor, cy: Tensor) -> Tensor:
    """Pixel values (..., height, width) of the brightness ``f(x, y)`` on ``grid``.

    ``f`` takes x of shape (..., 1, N) and y of shape (..., M, 1) and returns (..., M, N);
    ``cx, cy`` (batch shaped) place the refinement blocks.
    """
    x, y = grid.axes(cx.dtype, cx.device)
    image = _cell_means(f, x, y, 1.0, sampling.order)
    if sampling.levels == 0:
        return image
    edge_x, edge_y = grid.x0 - 0.5, grid.y0 - 0.5
    block, row0, col0 = _refined_block(f, cx, cy, edge_x, edge_y, 1.0, 1, sampling)
    return insert_block(image, block, row0, col0)
