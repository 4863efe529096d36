"""Shared test fixtures: the path of the shared reference data beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``<repo>/../shared`` (or ``$INVERSEKIT_SHARED``); a missing folder fails loudly."""
    path = Path(os.environ.get("INVERSEKIT_SHARED", REPO.parent / "shared"))
    if not path.is_dir():
        raise FileNotFoundError(f"shared reference data not found at {path}")
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()
