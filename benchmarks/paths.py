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


def shared_dir() -> Path:
    """The project's shared folder: ``$INVERSEKIT_SHARED`` or ``<repo>/../shared``."""
    override = os.environ.get("INVERSEKIT_SHARED")
    return Path(override).expanduser().resolve() if override else REPO.parent / "shared"


def nist_dir() -> Path:
    """Folder holding the NIST StRD ``.dat`` files."""
    return shared_dir() / "data" / "nist_strd"


def peer_envs_dir() -> Path:
    """Folder of the peers' virtual environments: ``$INVERSEKIT_PEER_ENVS`` or
    ``benchmarks/.peer-envs``."""
    override = os.environ.get("INVERSEKIT_PEER_ENVS")
    return Path(override).expanduser().resolve() if override else BENCH_DIR / ".peer-envs"
