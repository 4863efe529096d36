"""Number formatting for the Markdown tables."""

from __future__ import annotations

from typing import Any


def num(value: float | None, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits; a dash when there is none."""
    if value is None or value != value:
        return "–"
    return f"{value:.{digits}g}"


def ms(seconds: float | None, digits: int = 3) -> str:
    """Seconds shown as milliseconds."""
    return "–" if seconds is None else num(seconds * 1e3, digits)


def spread(stats: dict[str, Any] | None, scale: float = 1.0, digits: int = 3) -> str:
    """``median [min–max]`` of a summary from :func:`benchmarks.runner.summarise`."""
    if not stats or stats.get("median") is None:
        return "–"
    med, lo, hi = (num(stats[k] * scale, digits) for k in ("median", "min", "max"))
    return med if lo == hi else f"{med} [{lo}–{hi}]"


def ratio(value: float | None) -> str:
    """A ratio such as ``1.37x``."""
    return "–" if value is None else f"{value:.3g}x"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)
