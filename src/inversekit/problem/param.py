"""One model parameter as the user describes it: :class:`Param`.

A :class:`Param` is a plain description (value, bounds, which elements are fixed, log
scale, tie, prior, unit); :class:`~inversekit.problem.params.Params` checks it and turns a
collection of them into the packing the solvers use. A ``Param`` that belongs to a
``Params`` can be changed in place the way lmfit users expect::

    params["b"].fixed = True                 # or params["b"].set(vary=False)
    params["b"].set(value=2.0, bounds=(0, 5))

and the change is checked at once: an invalid one raises :class:`~inversekit.InputError`
and leaves the parameter as it was.
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor

from inversekit.errors import InputError

# the fields that describe a parameter (changing one re-checks the owning Params)
FIELDS = ("value", "bounds", "fixed", "log_scale", "tie", "prior", "unit", "description")
# lmfit's names for the same things, accepted by Param.set
ALIASES = {"vary": "fixed", "min": "bounds", "max": "bounds", "expr": "tie"}


class Param:
    """One model parameter.

    Args:
        value: starting value, a Python number, array or tensor of any shape. May be
            omitted for a tied parameter (its value follows from the tie).
        bounds: ``(lower, upper)`` physical limits, each ``None`` (open), a number, or an
            array/tensor broadcasting against the value (one bound per element; ``±inf``
            entries are open). Free elements must start strictly inside.
        fixed: ``True`` to pass the parameter to the model without fitting it, or a boolean
            mask broadcasting against the value to fix some elements only.
        log_scale: fit the parameter on a logarithmic scale (it must be positive): the
            solver moves ``log x``, so a value spanning decades is fitted in relative terms.
        tie: a function of the parameter dict, ``lambda p: 2 * p["sigma1"]``, or an
            expression string, ``"2 * sigma1"`` (see :mod:`inversekit.problem.ties`): the
            parameter is computed from the others and not fitted.
        prior: a ``torch.distributions`` distribution over the physical value (or
            :class:`~inversekit.LogUniform`); a fit then gives the MAP point (see
            :mod:`inversekit.problem.priors`).
        unit, description: shown in reports and tables.
    """

    # slots: a misspelt attribute (``p.vlaue = 2``) is an error, not a silent no-op
    __slots__ = (*FIELDS, "_owner")

    def __init__(
        self,
        value: float | Tensor | None = None,
        bounds=None,
        fixed=False,
        *,
        log_scale: bool = False,
        tie=None,
        prior=None,
        unit: str = "",
        description: str = "",
    ):
        self.value = value
        self.bounds = bounds
        self.fixed = fixed
        self.log_scale = bool(log_scale)
        self.tie = tie
        self.prior = prior
        self.unit = unit
        self.description = description

    # --- lmfit's names, as properties ---------------------------------------------------
    @property
    def vary(self) -> bool:
        """lmfit's name: whether the parameter is fitted (``not fixed``; a mask: any)."""
        return not self.fixed if isinstance(self.fixed, bool) else bool((~_mask(self.fixed)).any())

    @vary.setter
    def vary(self, value) -> None:
        self.set(vary=value)

    @property
    def min(self):
        """lmfit's name: the lower bound."""
        return None if self.bounds is None else self.bounds[0]

    @min.setter
    def min(self, value) -> None:
        self.set(min=value)

    @property
    def max(self):
        """lmfit's name: the upper bound."""
        return None if self.bounds is None else self.bounds[1]

    @max.setter
    def max(self, value) -> None:
        self.set(max=value)

    @property
    def expr(self):
        """lmfit's name: the tie."""
        return self.tie

    @expr.setter
    def expr(self, value) -> None:
        self.set(expr=value)

    # --- changes after construction -------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        owner = getattr(self, "_owner", None)
        if name not in FIELDS or owner is None or owner() is None:
            object.__setattr__(self, name, value)
            return
        self.set(**{name: value})

    def set(self, **changes) -> Param:
        """Change several fields at once (lmfit's ``vary``, ``min``, ``max`` and ``expr``
        are understood); the owning :class:`~inversekit.Params` re-checks the result and,
        if it is invalid, raises :class:`~inversekit.InputError` and keeps the old fields."""
        fields = self._translate(changes)
        old = {k: getattr(self, k, None) for k in fields}
        for k, v in fields.items():
            object.__setattr__(self, k, v)
        owner = getattr(self, "_owner", None)
        params = owner() if owner is not None else None
        if params is not None:
            try:
                params._rebuild()
            except InputError:
                for k, v in old.items():
                    object.__setattr__(self, k, v)
                params._rebuild()
                raise
        return self

    def _translate(self, changes: dict) -> dict:
        fields = {}
        lo, hi = (self.bounds if self.bounds is not None else (None, None))[:2]
        for key, value in changes.items():
            if key not in FIELDS and key not in ALIASES:
                known = ", ".join([*FIELDS, *ALIASES])
                raise InputError(f"Param.set: unknown field {key!r} (known: {known})")
            if key == "vary":
                fields["fixed"] = not value if isinstance(value, bool) else ~_mask(value)
            elif key == "min":
                lo = value
                fields["bounds"] = (lo, hi)
            elif key == "max":
                hi = value
                fields["bounds"] = (lo, hi)
            elif key == "expr":
                fields["tie"] = value
            else:
                fields[key] = value
        if fields.get("tie") is not None and self.tie is None:
            # a parameter becoming tied takes its value from the tie: what described how
            # it was fitted no longer applies (unless given in the same call: then checked)
            for k, free in (("bounds", None), ("fixed", False), ("log_scale", False)):
                fields.setdefault(k, free)
        return fields

    def copy(self, **changes) -> Param:
        """A new, unowned Param with the same fields, ``changes`` applied."""
        out = Param.__new__(Param)
        for k in FIELDS:
            object.__setattr__(out, k, changes.get(k, getattr(self, k, None)))
        return out

    def _adopt(self, owner) -> Param:
        """This Param's copy owned by ``owner`` (a Params): changes to it re-check it."""
        out = self.copy()
        object.__setattr__(out, "_owner", weakref.ref(owner))
        return out

    def __repr__(self) -> str:
        extra = "" if self.bounds is None else f", bounds={self.bounds}"
        if self.fixed is True:
            extra += ", fixed=True"
        elif self.fixed is not False:
            extra += ", fixed=<mask>"
        extra += ", log_scale=True" if self.log_scale else ""
        extra += f", tie={self.tie!r}" if self.tie is not None else ""
        extra += f", prior={self.prior!r}" if self.prior is not None else ""
        return f"Param({self.value!r}{extra})"


def _mask(value) -> Tensor:
    return torch.as_tensor(value).bool()
