"""What machine and which versions a run was measured with."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Any

from benchmarks import envs
from benchmarks.paths import REPO


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _blas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        import numpy as np

        deps = np.show_config(mode="dicts")["Build Dependencies"]
        out["numpy"] = {k: deps[k].get("name") for k in ("blas", "lapack") if k in deps}
    except Exception:  # older numpy without mode="dicts": leave it out
        pass
    try:
        import torch

        out["torch_default_threads"] = torch.get_num_threads()
        out["torch_mkl"] = bool(torch.backends.mkl.is_available())
        out["torch_openmp"] = bool(torch.backends.openmp.is_available())
    except ImportError:
        pass
    return out


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, operating system, BLAS builds and default thread counts."""
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "blas": _blas(),
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """HEAD's short hash, with ``+dirty`` when ``src/`` has uncommitted changes."""
    git = ["git", "-C", str(REPO)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
        )
    except OSError:
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, Any]:
    """Versions of the project's environment and of every peer environment (or why it is
    missing)."""
    project = {"python": sys.version.split()[0], "git_commit": _git_commit()}
    for dist in ("inversekit", "torch", "numpy", "scipy"):
        project[dist] = _version(dist)
    peers = {}
    for name in envs.PEERS:
        ready, reason, found = envs.env_status(name)
        peers[name] = found if ready else {"missing": reason}
    return {"project": project, "peers": peers}
