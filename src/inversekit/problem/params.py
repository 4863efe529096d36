"""Parameters: named values with bounds, fixed flags, and the packing into one vector.

Solvers see one flat vector ``u`` of the free parameter elements in an *unconstrained*
space (bounded parameters pass through the bijections of :mod:`inversekit.problem.transforms`).
Models see a dict of physical tensors, one per parameter, shaped as the user gave them.
:class:`Params` converts between the two and gives ``dx/du``, with which covariances are
mapped to physical space by the delta method, ``C_x = G C_u G``, ``G = diag(dx/du)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from torch import Tensor

from inversekit.errors import InputError
from inversekit.problem.transforms import Bijection

Bounds = tuple[float | None, float | None]


class Param:
    """One model parameter.

    Args:
        value: starting value, a Python number, array or tensor of any shape.
        bounds: ``(lower, upper)`` physical limits; either may be ``None`` (open). The value
            must lie strictly inside. The same bounds apply to every element of a tensor.
        fixed: if true the parameter is passed to the model but never fitted.
    """

    def __init__(self, value: float | Tensor, bounds: Bounds | None = None, fixed: bool = False):
        self.value = value
        self.bounds = bounds
        self.fixed = bool(fixed)

    def __repr__(self) -> str:
        extra = "" if self.bounds is None else f", bounds={self.bounds}"
        extra += ", fixed=True" if self.fixed else ""
        return f"Param({self.value!r}{extra})"


def _as_tensor(name: str, value, dtype: torch.dtype, device) -> Tensor:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # the common case, checked in Python: a tensor op costs microseconds on a scalar
        if not math.isfinite(value):
            raise InputError(f"parameter '{name}': starting value contains non-finite entries")
        return torch.scalar_tensor(float(value), dtype=dtype, device=device)
    try:
        t = torch.as_tensor(value, dtype=dtype, device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"parameter '{name}': value {value!r} is not numeric ({exc})") from None
    if not bool(torch.isfinite(t).all()):
        raise InputError(f"parameter '{name}': starting value contains non-finite entries")
    return t.clone()


def _check_bounds(name: str, bounds) -> Bounds:
    if bounds is None:
        return (None, None)
    if not isinstance(bounds, tuple | list) or len(bounds) != 2:
        raise InputError(
            f"parameter '{name}': bounds must be a pair (lower, upper), got {bounds!r}"
        )
    # an infinite bound is no bound
    lo = None if bounds[0] is None or bounds[0] == -math.inf else bounds[0]
    hi = None if bounds[1] is None or bounds[1] == math.inf else bounds[1]
    for label, b in (("lower", lo), ("upper", hi)):
        if b is not None and not (isinstance(b, int | float) and math.isfinite(b)):
            raise InputError(f"parameter '{name}': {label} bound {b!r} is not a finite number")
    if lo is not None and hi is not None and not lo < hi:
        raise InputError(f"parameter '{name}': lower bound {lo} must be < upper bound {hi}")
    return (None if lo is None else float(lo), None if hi is None else float(hi))


def _check_inside(name: str, value: Tensor, lo: float | None, hi: float | None) -> None:
    if lo is None and hi is None:
        return
    if lo is not None and bool((value <= lo).any()):
        raise InputError(
            f"parameter '{name}': starting value {_short(value)} is not strictly above its "
            f"lower bound {lo}; start inside the bounds"
        )
    if hi is not None and bool((value >= hi).any()):
        raise InputError(
            f"parameter '{name}': starting value {_short(value)} is not strictly below its "
            f"upper bound {hi}; start inside the bounds"
        )


def _short(t: Tensor) -> str:
    return f"{t.item():g}" if t.numel() == 1 else f"(tensor of shape {tuple(t.shape)})"


class Params(Mapping):
    """An ordered collection of named :class:`Param` objects.

    ``Params(a=Param(1.0), w=Param(2.0, bounds=(0, None)))`` or ``Params({"a": ...})``.
    Bare numbers are accepted as free unbounded parameters. Values are stored as float64
    tensors (or ``dtype``) on ``device``; :meth:`to` moves them to the data's device.
    """

    def __init__(
        self,
        items: Mapping[str, Param | float | Tensor] | None = None,
        *,
        dtype: torch.dtype = torch.float64,
        device=None,
        **kwargs,
    ):
        entries = dict(items or {})
        entries.update(kwargs)
        self._params: dict[str, Param] = {}
        self.values: dict[str, Tensor] = {}
        self.bijections: dict[str, Bijection] = {}
        for name, p in entries.items():
            if not isinstance(name, str) or not name:
                raise InputError(f"parameter names must be non-empty strings, got {name!r}")
            p = p if isinstance(p, Param) else Param(p)
            lo, hi = _check_bounds(name, p.bounds)
            value = _as_tensor(name, p.value, dtype, device)
            if not p.fixed:
                _check_inside(name, value, lo, hi)
            self._params[name] = p
            self.values[name] = value
            self.bijections[name] = Bijection(lo, hi)
        self.dtype = dtype
        self.device = value.device if entries else torch.device("cpu" if device is None else device)
        self._layout()

    def _layout(self) -> None:
        self.free_names = [n for n, p in self._params.items() if not p.fixed]
        self.slices: dict[str, slice] = {}
        start = 0
        for n in self.free_names:
            size = self.values[n].numel()
            self.slices[n] = slice(start, start + size)
            start += size
        self.n_free = start
        self.all_scalar = all(self.values[n].dim() == 0 for n in self.free_names)
        # which elements of u pass through a bijection (bounded parameters), or None
        bounded = [
            flag
            for n in self.free_names
            for flag in [self.bijections[n].kind != "free"] * self.values[n].numel()
        ]
        self.bounded: np.ndarray | None = np.array(bounded) if any(bounded) else None
        # every free parameter scalar and unbounded: u is the physical vector itself, and
        # packing, unpacking and the delta method need one tensor operation, not one each
        self.identity = self.all_scalar and self.bounded is None

    # Mapping protocol: params["b1"] gives the Param
    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={p!r}" for n, p in self._params.items())
        return f"Params({inner})"

    def to(self, dtype: torch.dtype | None = None, device=None) -> Params:
        """A copy with every value converted to ``dtype`` on ``device``."""
        dtype = dtype or self.dtype
        if dtype == self.dtype and (device is None or torch.device(device) == self.device):
            return self._copy()  # nothing to convert: the values were checked already
        items = {
            n: Param(self.values[n].to(dtype=dtype, device=device), p.bounds, p.fixed)
            for n, p in self._params.items()
        }
        return Params(items, dtype=dtype, device=device)

    def _copy(self) -> Params:
        """A copy sharing nothing mutable with ``self`` (values cloned), without re-checking."""
        out = Params.__new__(Params)
        out._params = dict(self._params)
        out.values = {n: v.clone() for n, v in self.values.items()}
        out.bijections = dict(self.bijections)
        out.dtype, out.device = self.dtype, self.device
        out._layout()
        return out

    def with_values(self, values: Mapping[str, Tensor | float]) -> Params:
        """A copy whose starting values are replaced by ``values`` (others kept)."""
        items = {
            n: Param(values.get(n, self.values[n]), p.bounds, p.fixed)
            for n, p in self._params.items()
        }
        return Params(items, dtype=self.dtype, device=self.device)

    # --- packing --------------------------------------------------------------------
    def pack(self, values: Mapping[str, Tensor] | None = None) -> Tensor:
        """Unconstrained flat vector ``u`` of the free elements of ``values`` (default: start)."""
        values = self.values if values is None else values
        if self.identity and values is self.values and self.free_names:
            return torch.stack([values[n] for n in self.free_names])
        parts = [
            self.bijections[n].inverse(
                torch.as_tensor(values[n], dtype=self.dtype, device=self.device).reshape(-1)
            )
            for n in self.free_names
        ]
        if not parts:
            return torch.zeros(0, dtype=self.dtype, device=self.device)
        return torch.cat(parts)

    def unpack(self, u: Tensor) -> dict[str, Tensor]:
        """Dict of physical tensors, fixed ones included, from the unconstrained vector ``u``.

        Differentiable in ``u``; works under ``torch.func`` transforms (vmap, jvp).
        """
        if self.all_scalar:
            # one unbind instead of a slice + reshape per parameter: most of the time of a
            # tiny model call goes to this per-operation overhead
            return self.from_scalars(u.unbind(-1))
        out = dict(self.values)
        for n in self.free_names:
            piece = u[..., self.slices[n]]
            shape = u.shape[:-1] + self.values[n].shape
            out[n] = self.bijections[n].forward(piece).reshape(shape)
        return out

    def from_scalars(self, pieces) -> dict[str, Tensor]:
        """The model's dict from one unconstrained tensor per scalar free parameter (in
        ``free_names`` order; any shape, e.g. a batch), fixed values included."""
        out = dict(self.values)
        if self.identity:
            out.update(zip(self.free_names, pieces, strict=True))
            return out
        for n, piece in zip(self.free_names, pieces, strict=True):
            out[n] = self.bijections[n].forward(piece)
        return out

    def physical(self, u: Tensor) -> Tensor:
        """Flat vector of the free elements in physical space."""
        if self.identity:
            return u.clone()
        return self._map_free(u, "forward")

    def derivative(self, u: Tensor) -> Tensor:
        """Flat ``dx/du`` for every free element (the diagonal of the delta-method Jacobian)."""
        if self.identity:
            return torch.ones_like(u)
        return self._map_free(u, "derivative")

    def _map_free(self, u: Tensor, method: str) -> Tensor:
        parts = [getattr(self.bijections[n], method)(u[self.slices[n]]) for n in self.free_names]
        return torch.cat(parts) if parts else u.new_zeros(0)

    def distance_to_bounds(self, x: Tensor) -> Tensor:
        """Flat distance from each free physical element to its nearest bound."""
        if self.identity:
            return torch.full_like(x, math.inf)
        parts = [self.bijections[n].distance_to_bound(x[self.slices[n]]) for n in self.free_names]
        return torch.cat(parts) if parts else x.new_zeros(0)

    def labels(self) -> list[str]:
        """One label per free element: ``"b1"`` for scalars, ``"c[0, 2]"`` for tensors."""
        out = []
        for n in self.free_names:
            shape = self.values[n].shape
            if len(shape) == 0:
                out.append(n)
                continue
            for idx in (
                torch.cartesian_prod(*[torch.arange(s) for s in shape])
                .reshape(-1, len(shape))
                .tolist()
            ):
                out.append(f"{n}[{', '.join(map(str, idx))}]")
        return out

    def split(self, flat: Tensor) -> dict[str, Tensor]:
        """Reshape a flat per-free-element vector into a dict of parameter-shaped tensors."""
        if self.all_scalar:
            return dict(zip(self.free_names, flat.unbind(), strict=True))
        return {n: flat[self.slices[n]].reshape(self.values[n].shape) for n in self.free_names}
