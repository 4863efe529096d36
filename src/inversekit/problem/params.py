"""Parameters: named values with bounds, fixed elements, ties and priors, and the packing
into one vector.

Solvers see one flat vector ``u`` of the free parameter elements in an *unconstrained*
space (bounded parameters pass through the bijections of :mod:`inversekit.problem.transforms`).
Models see a dict of physical tensors, one per parameter, shaped as the user gave them,
fixed elements at their values and tied parameters computed from the others.
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
from inversekit.problem.decimals import shortest_decimals
from inversekit.problem.param import Param
from inversekit.problem.priors import as_float64, check_prior, describe, is_gaussian
from inversekit.problem.ties import Tie, order_ties
from inversekit.problem.transforms import Bijection, ElementwiseBijection

__all__ = ["Param", "Params"]


def _as_tensor(name: str, value, dtype: torch.dtype, device) -> Tensor:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # the common case, checked in Python: a tensor op costs microseconds on a scalar
        if not math.isfinite(value):
            raise InputError(f"parameter '{name}': starting value contains non-finite entries")
        return torch.scalar_tensor(float(value), dtype=dtype, device=device)
    if value is None:
        raise InputError(f"parameter '{name}': a value is required (only a tied one may omit it)")
    try:
        t = torch.as_tensor(_decimal(value, dtype), dtype=dtype, device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"parameter '{name}': value {value!r} is not numeric ({exc})") from None
    if not bool(torch.isfinite(t).all()):
        raise InputError(f"parameter '{name}': starting value contains non-finite entries")
    return t.detach().clone()


def _scalar_bound(name: str, label: str, b) -> float | None:
    """A bound given as one number: ``None`` when open (``None`` or infinite)."""
    if b is None or (
        isinstance(b, int | float) and math.isinf(b) and (b > 0) == (label == "upper")
    ):
        return None
    if not (isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b)):
        raise InputError(f"parameter '{name}': {label} bound {b!r} is not a finite number")
    return float(b)


def _bound_tensor(name: str, label: str, b, value: Tensor) -> Tensor:
    """A bound given per element, broadcast to the value's shape (``±inf`` when open)."""
    open_end = -math.inf if label == "lower" else math.inf
    try:
        b = _decimal(_none_to(b, open_end), value.dtype)
        t = torch.as_tensor(b, dtype=value.dtype, device=value.device)
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"parameter '{name}': {label} bound {b!r} is not numeric") from None
    try:
        t = torch.broadcast_to(t, value.shape).clone()
    except RuntimeError:
        raise InputError(
            f"parameter '{name}': {label} bounds have shape {tuple(t.shape)}, which does not "
            f"broadcast to the value's shape {tuple(value.shape)}"
        ) from None
    if bool(torch.isnan(t).any()) or bool((t == -open_end).any()):
        raise InputError(f"parameter '{name}': {label} bounds contain NaN or a wrong-signed inf")
    return torch.where(torch.isinf(t), open_end, t)


def _decimal(value, dtype: torch.dtype):
    """float32 tensors and arrays in a float64 description at the decimals they were
    written as (see :mod:`.decimals`); anything else unchanged."""
    if dtype != torch.float64:
        return value
    if isinstance(value, np.ndarray) and value.dtype == np.float32:
        value = torch.from_numpy(value)
    return shortest_decimals(value) if isinstance(value, Tensor) else value


def _none_to(b, fill: float):
    """Nested lists of bounds with ``None`` (open) entries replaced by ``fill``."""
    if isinstance(b, list | tuple):
        return [_none_to(v, fill) for v in b]
    return fill if b is None else b


def _bounds(name: str, p: Param, value: Tensor) -> tuple[Tensor, Tensor, bool]:
    """``(lower, upper, uniform)``: per-element bounds as tensors of the value's shape
    (``±inf`` open), and whether every element has the same ones."""
    bounds = p.bounds if p.bounds is not None else (None, None)
    if not isinstance(bounds, tuple | list) or len(bounds) != 2:
        raise InputError(
            f"parameter '{name}': bounds must be a pair (lower, upper), got {bounds!r}"
        )
    uniform = True
    ends = []
    for label, b in zip(("lower", "upper"), bounds, strict=True):
        if b is None or isinstance(b, int | float):
            f = _scalar_bound(name, label, b)
            fill = (-math.inf if label == "lower" else math.inf) if f is None else f
            ends.append(torch.full(value.shape, fill, dtype=value.dtype, device=value.device))
        else:
            ends.append(_bound_tensor(name, label, b, value))
            uniform = False
    lower, upper = ends
    if p.log_scale:
        if bool(((lower < 0) & torch.isfinite(lower)).any()):
            raise InputError(
                f"parameter '{name}': log_scale needs a positive parameter, but its lower "
                "bound is negative"
            )
        lower = torch.clamp(lower, min=0.0)  # log scale: positive, so 0 is the implicit bound
    if bool((lower >= upper).any()):
        i = int(torch.nonzero((lower >= upper).reshape(-1))[0])
        raise InputError(
            f"parameter '{name}': lower bound {float(lower.reshape(-1)[i])} must be < upper "
            f"bound {float(upper.reshape(-1)[i])}" + (f" (element {i})" if value.dim() else "")
        )
    if not uniform and lower.numel():
        flat_lo, flat_hi = lower.reshape(-1), upper.reshape(-1)
        uniform = bool((flat_lo == flat_lo[0]).all()) and bool((flat_hi == flat_hi[0]).all())
    return lower, upper, uniform


def _fixed_mask(name: str, fixed, value: Tensor) -> Tensor:
    """The fixed elements as a boolean tensor of the value's shape."""
    if isinstance(fixed, bool | np.bool_):
        return torch.full(value.shape, bool(fixed), dtype=torch.bool, device=value.device)
    try:
        t = torch.as_tensor(fixed, device=value.device)
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"parameter '{name}': fixed must be a bool or a boolean mask") from None
    if t.dtype != torch.bool:
        if t.is_floating_point() or not bool(((t == 0) | (t == 1)).all()):
            raise InputError(
                f"parameter '{name}': fixed must be a bool or a boolean mask, got values "
                f"{t.tolist()}"
            )
        t = t.bool()
    try:
        return torch.broadcast_to(t, value.shape).clone()
    except RuntimeError:
        raise InputError(
            f"parameter '{name}': the fixed mask has shape {tuple(t.shape)}, which does not "
            f"broadcast to the value's shape {tuple(value.shape)}"
        ) from None


def _short(t: Tensor) -> str:
    return f"{t.item():g}" if t.numel() == 1 else f"(tensor of shape {tuple(t.shape)})"


def _check_inside(name: str, value: Tensor, lower: Tensor, upper: Tensor, free: Tensor) -> None:
    low = free & (value <= lower)
    high = free & (value >= upper)
    for bad, side, bound in ((low, "above its lower", lower), (high, "below its upper", upper)):
        if bool(bad.any()):
            i = int(torch.nonzero(bad.reshape(-1))[0])
            where = f" (element {i})" if value.dim() else ""
            raise InputError(
                f"parameter '{name}': starting value {float(value.reshape(-1)[i]):g}{where} is "
                f"not strictly {side} bound {float(bound.reshape(-1)[i]):g}; start inside the "
                "bounds"
            )


class Params(Mapping):
    """An ordered collection of named :class:`Param` objects.

    ``Params(a=Param(1.0), w=Param(2.0, bounds=(0, None)))`` or ``Params({"a": ...})``.
    Bare numbers are accepted as free unbounded parameters. Values are stored as float64
    tensors (or ``dtype``) on ``device``; :meth:`to` moves them to the data's device.
    ``params["w"]`` is the (changeable) :class:`Param`; ``params.values["w"]`` its value.
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
        self.dtype = dtype
        self._device = device
        self._params: dict[str, Param] = {}
        for name, p in entries.items():
            if not isinstance(name, str) or not name:
                raise InputError(f"parameter names must be non-empty strings, got {name!r}")
            self._params[name] = (p if isinstance(p, Param) else Param(p))._adopt(self)
        self._rebuild()

    # --- checking and layout --------------------------------------------------------
    def _rebuild(self) -> None:
        """Check every parameter and derive the packing (called again after a change)."""
        values, lower, upper, fixed, bijections, priors, ties = {}, {}, {}, {}, {}, {}, {}
        device = self._device
        for name, p in self._params.items():
            if p.tie is not None:
                if p.bounds is not None or p.fixed is not False or p.log_scale:
                    raise InputError(
                        f"parameter '{name}': a tied parameter takes its value from the tie; "
                        "give it no bounds, fixed or log_scale"
                    )
                ties[name] = Tie(p.tie, name)
                if p.value is not None:
                    values[name] = _as_tensor(name, p.value, self.dtype, device)
                continue
            value = _as_tensor(name, p.value, self.dtype, device)
            device = value.device if device is None else device
            simple = _simple(name, p, value)
            if simple is not None:  # the common case, checked in Python (see _simple)
                values[name], lower[name], upper[name], fixed[name] = simple[:4]
                if simple[4] is not None:
                    bijections[name] = simple[4]
                continue
            lo, hi, uniform = _bounds(name, p, value)
            mask = _fixed_mask(name, p.fixed, value)
            if p.prior is not None:
                priors[name] = as_float64(p.prior)
                lo, hi = check_prior(name, priors[name], value, lo, hi)
                uniform = uniform and _uniform(lo) and _uniform(hi)
            _check_inside(name, value, lo, hi, ~mask)
            values[name], lower[name], upper[name], fixed[name] = value, lo, hi, mask
            free = ~mask.reshape(-1)
            if bool(free.any()):
                bijections[name] = _bijection(lo, hi, uniform, free, p.log_scale)
        for name, p in self._params.items():
            if p.prior is not None and name in ties:
                priors[name] = as_float64(p.prior)
        self.values, self.lower, self.upper, self.fixed = values, lower, upper, fixed
        self.bijections = bijections
        self.device = torch.device("cpu" if device is None else device)
        self._priors = priors
        self._ties = ties
        start = dict(values)  # the tied values at the start are filled in here
        self.tied_names = order_ties(ties, start) if ties else []
        self.values.update({n: start[n] for n in self.tied_names})
        for name in ties:
            if name in priors:
                check_prior(name, priors[name], self.values[name], *_open(self.values[name]))
        self._layout()

    def _layout(self) -> None:
        names = [n for n in self._params if n in self.bijections]
        self.free_names = names
        self.slices: dict[str, slice] = {}
        # parameters with some elements fixed: flat indices of the free ones, and the
        # permutation that puts [free elements, fixed elements] back in element order
        self._free_index: dict[str, Tensor] = {}
        self._order: dict[str, Tensor] = {}
        self._rest: dict[str, Tensor] = {}
        start = 0
        for n in names:
            if self.values[n].dim() == 0:  # a free scalar: one element, nothing to index
                self.slices[n] = slice(start, start + 1)
                start += 1
                continue
            free = ~self.fixed[n].reshape(-1)
            size = int(free.sum())
            if size < free.numel():
                index = torch.nonzero(free).reshape(-1)
                rest = torch.nonzero(~free).reshape(-1)
                self._free_index[n] = index
                self._order[n] = torch.argsort(torch.cat([index, rest]))
                self._rest[n] = self.values[n].reshape(-1)[rest]  # the fixed elements' values
            self.slices[n] = slice(start, start + size)
            start += size
        self.n_free = start
        self._signature: tuple | None = None  # see layout_signature
        self.fixed_names = [
            n for n in self._params if n not in self.bijections and n not in self._ties
        ]
        self.all_scalar = all(self.values[n].dim() == 0 for n in names)
        bounded = [
            flag
            for n in names
            for flag in _bounded_flags(
                self.bijections[n], self.slices[n].stop - self.slices[n].start
            )
        ]
        self.bounded: np.ndarray | None = np.array(bounded) if any(bounded) else None
        # every free parameter scalar and unbounded and nothing tied: u is the physical
        # vector itself, and packing, unpacking and the delta method need one tensor
        # operation, not one each
        self.identity = self.all_scalar and self.bounded is None and not self._ties
        self._prior_layout()

    def _prior_layout(self) -> None:
        self.prior_names = list(self._priors)
        self.gaussian_prior_names = [n for n, d in self._priors.items() if is_gaussian(d)]
        self.other_prior_names = [n for n in self.prior_names if n not in self.gaussian_prior_names]
        # Gaussian rows: (x - loc)/scale over the fitted elements (free ones; all of a tie)
        self._rows: list[tuple[str, Tensor, Tensor, Tensor | None]] = []
        n_rows = 0
        for n in self.gaussian_prior_names:
            if n in self.fixed_names:
                continue  # a fixed parameter's prior is a constant
            shape = self.values[n].shape
            d = self._priors[n]
            loc = torch.broadcast_to(d.loc, shape).reshape(-1).to(self.dtype).to(self.device)
            scale = torch.broadcast_to(d.scale, shape).reshape(-1).to(self.dtype).to(self.device)
            index = self._free_index.get(n)
            if index is not None:
                loc, scale = loc[index], scale[index]
            self._rows.append((n, loc, scale, index))
            n_rows += loc.numel()
        self.n_prior_rows = n_rows

    # --- Mapping protocol: params["b1"] gives the Param --------------------------------
    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __setitem__(self, name: str, p: Param | float | Tensor) -> None:
        """Add or replace a parameter (checked at once; an invalid one is not kept)."""
        old = self._params.get(name)
        self._params[name] = (p if isinstance(p, Param) else Param(p))._adopt(self)
        try:
            self._rebuild()
        except InputError:
            if old is None:
                del self._params[name]
            else:
                self._params[name] = old
            self._rebuild()
            raise

    def add(self, name: str, value=None, **fields) -> Param:
        """Add a parameter, lmfit style: ``params.add("a", 1.0, bounds=(0, None))``."""
        self[name] = Param(value, **fields)
        return self._params[name]

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={p!r}" for n, p in self._params.items())
        return f"Params({inner})"

    def __str__(self) -> str:
        """A table: name, value, bounds, and how each parameter is treated."""
        rows = [("name", "value", "lower", "upper", "fit as", "unit")]
        for n, p in self._params.items():
            v = self.values.get(n)
            value = _brief(v) if v is not None else ""
            lo = _brief(self.lower[n]) if n in self.lower else ""
            hi = _brief(self.upper[n]) if n in self.upper else ""
            rows.append((n, value, lo, hi, self.treatment(n), p.unit))
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )

    def treatment(self, name: str) -> str:
        """How parameter ``name`` enters the fit: ``free``, ``fixed``, ``2 of 3 fixed``,
        ``tied: = 2 * a``, ``log scale``, ``prior Normal(0.5, 0.1)``."""
        p = self._params[name]
        if name in self._ties:
            words = [f"tied: = {self._ties[name].text}"]
        elif name in self.fixed_names:
            words = ["fixed"]
        elif name in self._free_index:
            mask = self.fixed[name]
            words = [f"{int(mask.sum())} of {mask.numel()} fixed"]
        else:
            words = ["free"]
        if p.log_scale:
            words.append("log scale")
        if name in self._priors:
            words.append(f"prior {describe(self._priors[name])}")
        return ", ".join(words)

    def valuesdict(self) -> dict[str, float | Tensor]:
        """Every parameter's value (lmfit's name): floats for scalars, tensors otherwise."""
        return {n: float(v) if v.dim() == 0 else v.clone() for n, v in self.values.items()}

    # --- copies -----------------------------------------------------------------------
    def to(self, dtype: torch.dtype | None = None, device=None) -> Params:
        """A copy with every value converted to ``dtype`` on ``device``."""
        dtype = dtype or self.dtype
        if dtype == self.dtype and (device is None or torch.device(device) == self.device):
            return self._copy()  # nothing to convert: the values were checked already
        items = {}
        for n, p in self._params.items():
            value = p.value if n in self._ties else self.values[n].to(dtype=dtype, device=device)
            items[n] = p.copy(value=value, bounds=_moved_bounds(p.bounds, device))
        return Params(items, dtype=dtype, device=device)

    def _copy(self) -> Params:
        """A copy sharing nothing mutable with ``self`` (values cloned), without re-checking."""
        out = Params.__new__(Params)
        out.__dict__.update(self.__dict__)
        out._params = {n: p._adopt(out) for n, p in self._params.items()}
        out.values = {n: v.clone() for n, v in self.values.items()}
        return out

    def with_values(self, values: Mapping[str, Tensor | float]) -> Params:
        """A copy whose starting values are replaced by ``values`` (others kept; tied
        parameters follow their ties)."""
        items = {
            n: p.copy(value=values.get(n, self.values.get(n)) if n not in self._ties else p.value)
            for n, p in self._params.items()
        }
        return Params(items, dtype=self.dtype, device=self.device)

    # --- packing --------------------------------------------------------------------
    def pack(self, values: Mapping[str, Tensor] | None = None) -> Tensor:
        """Unconstrained flat vector ``u`` of the free elements of ``values`` (default: start)."""
        values = self.values if values is None else values
        if self.identity and values is self.values and self.free_names:
            return torch.stack([values[n] for n in self.free_names])
        parts = []
        for n in self.free_names:
            x = torch.as_tensor(values[n], dtype=self.dtype, device=self.device).reshape(-1)
            index = self._free_index.get(n)
            parts.append(self.bijections[n].inverse(x if index is None else x[index]))
        if not parts:
            return torch.zeros(0, dtype=self.dtype, device=self.device)
        return torch.cat(parts)

    def unpack(self, u: Tensor) -> dict[str, Tensor]:
        """Dict of physical tensors, fixed and tied ones included, from the unconstrained
        vector ``u`` (leading batch axes allowed).

        Differentiable in ``u``; works under ``torch.func`` transforms (vmap, jvp).
        """
        if self.all_scalar:
            # one unbind instead of a slice + reshape per parameter: most of the time of a
            # tiny model call goes to this per-operation overhead
            return self.from_scalars(u.unbind(-1))
        out = dict(self.values)
        lead = u.shape[:-1]
        for n in self.free_names:
            x = self.bijections[n].forward(u[..., self.slices[n]])
            order = self._order.get(n)
            if order is not None:  # put the fixed elements back between the free ones
                rest = self._rest[n]
                x = torch.cat([x, rest.to(x.dtype).expand(*lead, rest.numel())], -1)[..., order]
            out[n] = x.reshape(lead + self.values[n].shape)
        return self._tie(out)

    def from_scalars(self, pieces) -> dict[str, Tensor]:
        """The model's dict from one unconstrained tensor per scalar free parameter (in
        ``free_names`` order; any shape, e.g. a batch), fixed and tied values included."""
        out = dict(self.values)
        if self.identity:
            out.update(zip(self.free_names, pieces, strict=True))
            return out
        for n, piece in zip(self.free_names, pieces, strict=True):
            out[n] = self.bijections[n].forward(piece)
        return self._tie(out)

    def _tie(self, out: dict[str, Tensor]) -> dict[str, Tensor]:
        for n in self.tied_names:
            out[n] = self._ties[n].fn(out)
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

    # --- labels and reshaping -------------------------------------------------------
    def element_labels(self, name: str) -> list[str]:
        """One label per element of parameter ``name``: ``"b1"``, or ``"c[0, 2]"``."""
        shape = self.values[name].shape
        if len(shape) == 0:
            return [name]
        return [f"{name}[{', '.join(map(str, idx))}]" for idx in np.ndindex(*shape)]

    def labels(self) -> list[str]:
        """One label per free element: ``"b1"`` for scalars, ``"c[0, 2]"`` for tensors."""
        out = []
        for n in self.free_names:
            labels = self.element_labels(n)
            index = self._free_index.get(n)
            out += labels if index is None else [labels[i] for i in index.tolist()]
        return out

    def fixed_labels(self) -> list[str]:
        """Labels of the fixed elements (wholly fixed parameters and fixed elements of
        partly fixed ones), in parameter order."""
        out = []
        for n in self._params:
            if n in self._ties:
                continue
            mask = self.fixed[n].reshape(-1).tolist()
            out += [label for label, f in zip(self.element_labels(n), mask, strict=True) if f]
        return out

    def tie_text(self, name: str) -> str:
        """How tied parameter ``name`` is defined (the expression, or the function's name)."""
        return self._ties[name].text

    def prior(self, name: str):
        """The prior of parameter ``name`` (a distribution), or ``None``."""
        return self._priors.get(name)

    def prior_text(self, name: str) -> str:
        """A short description of parameter ``name``'s prior, ``""`` without one."""
        return describe(self._priors[name]) if name in self._priors else ""

    def split(self, flat: Tensor, fill: float = 0.0) -> dict[str, Tensor]:
        """Reshape a flat per-free-element vector into a dict of parameter-shaped tensors
        (elements that are fixed get ``fill``)."""
        if self.all_scalar:
            return dict(zip(self.free_names, flat.unbind(), strict=True))
        out = {}
        for n in self.free_names:
            piece = flat[self.slices[n]]
            index = self._free_index.get(n)
            if index is not None:
                full = piece.new_full((self.values[n].numel(),), fill)
                full[index.to(piece.device)] = piece
                piece = full
            out[n] = piece.reshape(self.values[n].shape)
        return out

    def fully_fixed(self, name: str) -> bool:
        """Whether every element of ``name`` is fixed (it has no free element)."""
        return name in self.fixed_names

    @property
    def partly_fixed(self) -> list[str]:
        """Parameters with some, not all, elements fixed."""
        return list(self._free_index)

    # --- priors -----------------------------------------------------------------------
    def prior_residuals(self, values: Mapping[str, Tensor]) -> Tensor | None:
        """The Gaussian priors' residual rows ``(x - loc)/scale`` at the physical
        ``values`` (leading batch axes allowed), flat over the last axis; ``None`` without
        Gaussian priors. ``½ Σ rows²`` is ``-log`` of their density up to a constant."""
        if not self._rows:
            return None
        parts = []
        for n, loc, scale, index in self._rows:
            x = values[n]
            lead = x.shape[: x.dim() - self.values[n].dim()]
            x = x.reshape(*lead, -1)
            if index is not None:
                x = x[..., index]
            parts.append((x - loc) / scale)
        return torch.cat(parts, -1)

    def log_prior(self, values: Mapping[str, Tensor], gaussian: bool = True) -> Tensor:
        """``Σ log p(x)`` of the priors at the physical ``values`` (fixed parameters left
        out); ``gaussian=False`` leaves out the Gaussian ones (those that are residual rows)."""
        total = torch.zeros((), dtype=self.dtype, device=self.device)
        for n, d in self._priors.items():
            if n in self.fixed_names or (not gaussian and is_gaussian(d)):
                continue
            density = d.log_prob(values[n])
            index = self._free_index.get(n)
            if index is not None:
                density = torch.broadcast_to(density, self.values[n].shape).reshape(-1)[index]
            total = total + density.sum()
        return total

    def layout_signature(self) -> tuple:
        """What of the layout a compiled graph bakes in: names, shapes, fixed masks and
        small fixed values, bijection kinds and bounds, ties (made once per layout)."""
        if self._signature is None:
            self._signature = self._make_signature()
        return self._signature

    def _make_signature(self) -> tuple:
        sig = []
        for n in self._params:
            v = self.values[n]
            mask = self.fixed.get(n)
            small = v.numel() <= 64
            fixed_values = (
                tuple(v.reshape(-1).tolist())
                if small and mask is not None and bool(mask.any())
                else None
            )
            bounds = (
                (
                    tuple(self.lower[n].reshape(-1).tolist()),
                    tuple(self.upper[n].reshape(-1).tolist()),
                )
                if n in self.lower and small
                else None
            )
            sig.append(
                (
                    n,
                    tuple(v.shape),
                    None if mask is None else tuple(mask.reshape(-1).tolist()),
                    getattr(self.bijections.get(n), "kind", None),
                    bounds,
                    fixed_values,
                    self._ties[n].text if n in self._ties else None,
                    id(self._ties[n].fn) if n in self._ties else None,
                )
            )
        return tuple(sig)


def _simple(name: str, p: Param, value: Tensor):
    """``(value, lower, upper, fixed, bijection)`` of a scalar parameter with number bounds,
    a bool ``fixed`` and no prior, checked with Python floats: building a problem from
    scalars is then as quick as it was before per-element descriptions (tensor operations
    on scalars cost microseconds each). ``None`` for any other parameter."""
    bounds = p.bounds if p.bounds is not None else (None, None)
    if (
        value.dim() != 0
        or p.prior is not None
        or not isinstance(p.fixed, bool)
        or not isinstance(bounds, tuple | list)
        or len(bounds) != 2
        or not all(b is None or isinstance(b, int | float) for b in bounds)
    ):
        return None
    lo = _scalar_bound(name, "lower", bounds[0])
    hi = _scalar_bound(name, "upper", bounds[1])
    if p.log_scale:
        if lo is not None and lo < 0:
            raise InputError(
                f"parameter '{name}': log_scale needs a positive parameter, but its lower "
                "bound is negative"
            )
        lo = 0.0 if lo is None else lo
    if lo is not None and hi is not None and not lo < hi:
        raise InputError(f"parameter '{name}': lower bound {lo} must be < upper bound {hi}")
    if not p.fixed:
        x = float(value)
        if lo is not None and x <= lo:
            raise InputError(
                f"parameter '{name}': starting value {x:g} is not strictly above its lower "
                f"bound {lo:g}; start inside the bounds"
            )
        if hi is not None and x >= hi:
            raise InputError(
                f"parameter '{name}': starting value {x:g} is not strictly below its upper "
                f"bound {hi:g}; start inside the bounds"
            )
    dtype, device = value.dtype, value.device
    lower = torch.scalar_tensor(-math.inf if lo is None else lo, dtype=dtype, device=device)
    upper = torch.scalar_tensor(math.inf if hi is None else hi, dtype=dtype, device=device)
    mask = torch.scalar_tensor(p.fixed, dtype=torch.bool, device=device)
    bijection = None if p.fixed else Bijection(lo, hi, p.log_scale)
    return value, lower, upper, mask, bijection


def _brief(t: Tensor) -> str:
    """A value or bound for a table: the number, or its range for a tensor."""
    if t.numel() == 1:
        return f"{float(t):.6g}"
    flat = t.reshape(-1)
    lo, hi = float(flat.min()), float(flat.max())
    shape = "x".join(map(str, t.shape))
    return f"{lo:.4g}" if lo == hi else f"[{lo:.4g} .. {hi:.4g}] ({shape})"


def _uniform(t: Tensor) -> bool:
    flat = t.reshape(-1)
    return flat.numel() == 0 or bool((flat == flat[0]).all())


def _open(value: Tensor) -> tuple[Tensor, Tensor]:
    return torch.full_like(value, -math.inf), torch.full_like(value, math.inf)


def _bijection(lo: Tensor, hi: Tensor, uniform: bool, free: Tensor, log_scale: bool):
    """The bijection of a parameter's free elements: one pair of float bounds when all
    share them (the fast path), per-element bounds otherwise."""
    if uniform:
        lo0, hi0 = float(lo.reshape(-1)[0]), float(hi.reshape(-1)[0])
        return Bijection(
            None if math.isinf(lo0) else lo0, None if math.isinf(hi0) else hi0, log_scale
        )
    return ElementwiseBijection(lo.reshape(-1)[free], hi.reshape(-1)[free], log_scale)


def _bounded_flags(bijection, size: int) -> list[bool]:
    if isinstance(bijection, ElementwiseBijection):
        return (~bijection.free).tolist()
    return [bijection.kind != "free"] * size


def _moved_bounds(bounds, device):
    """Bounds with any tensor moved to ``device`` (numbers unchanged)."""
    if bounds is None or device is None:
        return bounds
    return tuple(b.to(device) if isinstance(b, Tensor) else b for b in bounds)
