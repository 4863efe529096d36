"""Where the harness finds its inputs and puts its outputs."""

from __future__ import annotations

import os
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RUNS_DIR = BENCH_DIR / "runs"
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
NOTES_DIR = BENCH_DIR / "notes"
CONSTRAINTS = REPO / "constraints.txt"


# Public reference data kept in the repository (the tests read them too).
TEST_DATA = REPO / "tests" / "data"


def nist_dir() -> Path:
    """Folder holding the NIST StRD ``.dat`` files (in the repository)."""
    return TEST_DATA / "nist_strd"


def xpcs_reference() -> Path:
    """homodyne's exact two-time correlation outputs (in the repository)."""
    return TEST_DATA / "xpcs" / "reference_c2.npz"


def peer_envs_dir() -> Path:
    """Folder of the peers' virtual environments: ``$INVERSEKIT_PEER_ENVS`` or
    ``benchmarks/.peer-envs``."""
    override = os.environ.get("INVERSEKIT_PEER_ENVS")
    return Path(override).expanduser().resolve() if override else BENCH_DIR / ".peer-envs"
