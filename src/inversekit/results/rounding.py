"""Values rounded to their uncertainty (the Particle Data Group's convention, simplified).

The uncertainty keeps two significant digits and the value is rounded to the same
decimal place: ``1.23456 +/- 0.0123`` is written ``1.235 +/- 0.012``. Rounding is half up
on the decimal digits of the shortest representation of the float (``repr``), so what is
printed is what a reader of the float would round by hand. Beyond ``1e6`` or below
``1e-5`` in the last kept place, both are written in scientific notation with the
value's exponent (``1.235e-08``, ``1.2e-10``). An uncertainty that is zero, infinite or
NaN gives no place to round to: the value then keeps six significant digits.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

DIGITS = 2  # significant digits of the uncertainty
FALLBACK = 6  # significant digits of a value whose uncertainty is 0, inf or NaN
_FIXED_PLACES = (-5, 6)  # last kept decimal place for which plain notation is used


def round_to_uncertainty(value: float, err: float) -> tuple[str, str]:
    """``(value, err)`` as strings: ``err`` to two significant digits, ``value`` to the
    same decimal place; ``round_to_uncertainty(1.23456, 0.0123) == ("1.235", "0.012")``.
    Both strings parse back with ``float``."""
    value, err = float(value), float(err)
    if not math.isfinite(value):
        return str(value), _plain(err)
    if not (math.isfinite(err) and err > 0):
        return f"{value:.{FALLBACK}g}", _plain(err)
    place = _place(err)
    v, e = _quantize(value, place), _quantize(err, place)
    if _FIXED_PLACES[0] <= place <= _FIXED_PLACES[1]:
        return _fixed(v, place), _fixed(e, place)
    exponent = _exponent(v) if v != 0 else _exponent(e)
    return _scientific(v, exponent, place), _scientific(e, _exponent(e), place)


def latex_uncertainty(value: float, err: float) -> str:
    """``$1.235 \\pm 0.012$``, or ``$(1.235 \\pm 0.012) \\times 10^{-8}$`` for values written
    in scientific notation by :func:`round_to_uncertainty`."""
    value, err = float(value), float(err)
    if not (math.isfinite(value) and math.isfinite(err) and err > 0):
        v, e = round_to_uncertainty(value, err)
        e = {"inf": "\\infty", "nan": "\\mathrm{nan}"}.get(e, e)
        return f"${v} \\pm {e}$" if err != 0 else f"${v}$"
    place = _place(err)
    v, e = _quantize(value, place), _quantize(err, place)
    if _FIXED_PLACES[0] <= place <= _FIXED_PLACES[1]:
        return f"${_fixed(v, place)} \\pm {_fixed(e, place)}$"
    exponent = _exponent(v) if v != 0 else _exponent(e)
    scale = Decimal(1).scaleb(exponent)
    decimals = max(exponent - place, 0)
    vm, em = f"{v / scale:.{decimals}f}", f"{e / scale:.{decimals}f}"
    return f"$({vm} \\pm {em}) \\times 10^{{{exponent}}}$"


def round_to_place(value: float, err: float) -> str:
    """``value`` rounded to the decimal place :func:`round_to_uncertainty` gives ``err``
    (an interval's end beside its value), six significant digits without one."""
    value, err = float(value), float(err)
    if not math.isfinite(value):
        return str(value)
    if not (math.isfinite(err) and err > 0):
        return f"{value:.{FALLBACK}g}"
    place = _place(err)
    v = _quantize(value, place)
    if _FIXED_PLACES[0] <= place <= _FIXED_PLACES[1]:
        return _fixed(v, place)
    return _scientific(v, _exponent(v) if v != 0 else _exponent(Decimal(repr(err))), place)


def _place(err: float) -> int:
    """Decimal exponent of the last digit kept of ``err`` (two significant digits; a
    carry such as 0.0996 -> 0.10 moves it)."""
    place = _exponent(Decimal(repr(err))) - (DIGITS - 1)
    if _quantize(err, place) >= Decimal(1).scaleb(place + DIGITS):
        place += 1
    return place


def _exponent(d: Decimal) -> int:
    return d.adjusted()


def _quantize(x: float, place: int) -> Decimal:
    return Decimal(repr(x)).quantize(Decimal(1).scaleb(place), rounding=ROUND_HALF_UP)


def _fixed(d: Decimal, place: int) -> str:
    return f"{d:.{max(-place, 0)}f}"


def _scientific(d: Decimal, exponent: int, place: int) -> str:
    mantissa = d.scaleb(-exponent)
    return f"{mantissa:.{max(exponent - place, 0)}f}e{exponent:+03d}"


def _plain(err: float) -> str:
    if err == 0:
        return "0"
    return str(err) if not math.isfinite(err) else f"{err:.{FALLBACK}g}"
