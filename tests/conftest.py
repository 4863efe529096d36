"""Shared test fixtures: the reference data the tests read, kept in ``tests/data``.

Every file there is public reference data (NIST StRD, homodyne's exact XPCS output,
AstroPhot's problem files), copied into the repository so the suite runs on a fresh clone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


def data_dir() -> Path:
    """``tests/data``; a missing folder fails loudly (never a skip)."""
    if not DATA.is_dir():
        raise FileNotFoundError(f"test reference data not found at {DATA}")
    return DATA


@pytest.fixture
def data() -> Path:
    return data_dir()
