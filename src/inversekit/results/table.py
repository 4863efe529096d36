"""A result's parameters as a table: CSV, JSON, LaTeX or a pandas DataFrame.

One row per parameter element (:mod:`.rows`). Columns: ``name``, ``value``, ``stderr``,
``relative_error`` (``stderr/|value|``), ``lower_bound``, ``upper_bound``, ``fixed``,
``tied`` (the tie's definition, empty if not tied), ``prior``, ``note`` (at a bound, not
identifiable, not constrained by the data) and, once :meth:`FitResult.intervals` ran,
``level``, ``profile_lower``, ``profile_upper``, ``delta_lower``, ``delta_upper``.

Exports are *rounded* by default: the standard error to two significant digits and the
value and interval ends to the same decimal place (:mod:`.rounding`); ``rounded=False``
gives every float at full precision (``repr``, which reads back bit for bit). Fixed
elements have standard error 0 and keep six significant digits.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from inversekit.results.rounding import latex_uncertainty, round_to_place, round_to_uncertainty
from inversekit.results.rows import parameter_rows

COLUMNS = [
    "name",
    "value",
    "stderr",
    "relative_error",
    "lower_bound",
    "upper_bound",
    "fixed",
    "tied",
    "prior",
    "note",
]
INTERVAL_COLUMNS = ["level", "profile_lower", "profile_upper", "delta_lower", "delta_upper"]
_NUMERIC = {"value", "stderr", "relative_error", "lower_bound", "upper_bound", *INTERVAL_COLUMNS}
_ROUNDED_LIKE_VALUE = ("profile_lower", "profile_upper", "delta_lower", "delta_upper")


@dataclass
class Table:
    """Rows of plain Python values (floats, strings, bools) under ``columns``."""

    columns: list[str]
    rows: list[dict] = field(default_factory=list)

    def to_csv(self, path=None, rounded: bool = True) -> str:
        """The table as CSV text (non-finite floats as ``inf``/``-inf``/``nan``); also
        written to ``path`` when given."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self._cells(rounded):
            writer.writerow([_csv_cell(row[c]) for c in self.columns])
        return _written(buffer.getvalue(), path)

    def to_json(self, path=None, rounded: bool = True) -> str:
        """The table as a JSON list of objects (rounded values as numbers; non-finite
        floats as ``null``, which strict JSON requires); also written to ``path``."""
        rows = [
            {c: _json_cell(row[c], c in _NUMERIC) for c in self.columns}
            for row in self._cells(rounded)
        ]
        return _written(json.dumps(rows, indent=1), path)

    def to_latex(self, path=None) -> str:
        """A ``tabular`` of name, value ``$v \\pm e$`` (rounded), bounds and flags."""
        lines = [
            "\\begin{tabular}{llll}",
            "\\hline",
            "Parameter & Value & Bounds & Note \\\\",
            "\\hline",
        ]
        for row in self.rows:
            if row["fixed"]:
                value = f"${row['value']:.6g}$ (fixed)"
            else:
                value = latex_uncertainty(row["value"], row["stderr"])
            note = f"tied: ${_latex_text(row['tied'])}$" if row["tied"] else row["note"]
            bounds = _bounds_text(row["lower_bound"], row["upper_bound"])
            name = _latex_text(row["name"])
            lines.append(f"{name} & {value} & {bounds} & {_latex_text(note)} \\\\")
        lines += ["\\hline", "\\end{tabular}"]
        return _written("\n".join(lines) + "\n", path)

    def to_pandas(self, rounded: bool = False):
        """A ``pandas.DataFrame`` (full-precision floats unless ``rounded``); needs pandas."""
        try:
            import pandas as pd  # noqa: PLC0415 - an optional dependency
        except ImportError:
            raise ImportError(
                "Table.to_pandas needs pandas, which is not installed (pip install pandas); "
                "to_csv, to_json and to_latex work without it"
            ) from None
        return pd.DataFrame(list(self._cells(rounded)), columns=self.columns)

    def __str__(self) -> str:
        cells = [[str(row[c]) for c in self.columns] for row in self._cells(True)]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
        return "\n".join(lines)

    def _cells(self, rounded: bool):
        for row in self.rows:
            if not rounded:
                yield dict(row)
                continue
            out = dict(row)
            value, err = row["value"], row["stderr"]
            out["value"], out["stderr"] = round_to_uncertainty(value, err)
            rel = row["relative_error"]
            out["relative_error"] = f"{rel:.3g}" if math.isfinite(rel) else str(rel)
            for c in _ROUNDED_LIKE_VALUE:
                if c in row:
                    out[c] = round_to_place(row[c], err)
            yield out


def result_table(result) -> Table:
    """The table of a :class:`~inversekit.FitResult` (see the module docstring)."""
    intervals = result.confidence_intervals
    columns = COLUMNS + (INTERVAL_COLUMNS if intervals else [])
    rows = []
    for r in parameter_rows(result):
        rel = abs(r.stderr / r.value) if r.value != 0 and r.kind != "fixed" else math.nan
        row = {
            "name": r.label,
            "value": r.value,
            "stderr": r.stderr,
            "relative_error": rel,
            "lower_bound": r.lower,
            "upper_bound": r.upper,
            "fixed": r.kind == "fixed",
            "tied": r.tie,
            "prior": r.prior,
            "note": r.note,
        }
        if intervals:
            got = intervals.get(r.label, {})
            for c in INTERVAL_COLUMNS:
                row[c] = float(got.get(c, math.nan))
        rows.append(row)
    return Table(columns, rows)


def _csv_cell(v) -> str:
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return str(v)


def _json_cell(v, numeric: bool):
    if isinstance(v, str) and numeric:
        try:  # a rounded number is written as one
            f = float(v)
        except ValueError:
            return v
        return f if math.isfinite(f) else None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _bounds_text(lo: float, hi: float) -> str:
    if math.isinf(lo) and math.isinf(hi):
        return ""
    left = "-\\infty" if math.isinf(lo) else f"{lo:g}"
    right = "\\infty" if math.isinf(hi) else f"{hi:g}"
    return f"$[{left}, {right}]$"


def _latex_text(s: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("_", "\\_"), ("%", "\\%"), ("&", "\\&")):
        s = s.replace(a, b)
    return s


def _written(text: str, path) -> str:
    if path is not None:
        Path(path).write_text(text)
    return text
