"""Loading any saved result: :func:`load` reads what ``result.save(path)`` wrote, single
or batched, bit-identically and without pickle (see :mod:`.archive`)."""

from __future__ import annotations

from inversekit.errors import InputError
from inversekit.results.archive import from_archive
from inversekit.results.batched import BATCHED_FORMAT, BatchedFitResult
from inversekit.results.fit_result import FORMAT, FitResult


def load(path) -> FitResult | BatchedFitResult:
    """Read a result written by ``FitResult.save`` or ``BatchedFitResult.save``."""
    fmt, fields = from_archive(path)
    if fmt == FORMAT:
        return FitResult(**fields)
    if fmt == BATCHED_FORMAT:
        return BatchedFitResult(**fields)
    raise InputError(f"{path} is not an inversekit result file (format {fmt!r})")
