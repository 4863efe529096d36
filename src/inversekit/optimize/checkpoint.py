"""Checkpoints: a run's state on disk, written atomically, read back without pickle.

A checkpoint is a NumPy ``.npz`` archive: the solver's state arrays under ``state/<key>``
and one JSON document holding the format tag, the solver's name, the problem's
fingerprint, the loop's own state (iterations, elapsed time, cost history, status) and the
solver's scalar state. It is written to a temporary file in the same folder, flushed to
disk and renamed over the target, so a run killed at any moment leaves either the previous
checkpoint or the new one, never a torn file. Loading uses ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inversekit.errors import InputError
from inversekit.results.status import Status

FORMAT = "inversekit.checkpoint/1"  # the layout version: another one is refused


@dataclass
class Checkpoint:
    """What a checkpoint holds (see the module docstring)."""

    solver: str
    problem: dict[str, Any]
    state: dict[str, Any]
    n_iter: int
    elapsed: float
    history: list[float] = field(default_factory=list)
    status: str | None = None  # the run had ended with this status


def write(path, ck: Checkpoint) -> None:
    """Write ``ck`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    for key, value in ck.state.items():
        if isinstance(value, np.ndarray):
            arrays[f"state/{key}"] = value
        else:
            scalars[key] = value
    meta = {
        "format": FORMAT,
        "solver": ck.solver,
        "problem": ck.problem,
        "scalars": scalars,
        "n_iter": ck.n_iter,
        "elapsed": ck.elapsed,
        "history": ck.history,
        "status": ck.status,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path, *, solver: str, problem: dict[str, Any]) -> Checkpoint:
    """The checkpoint at ``path``, checked against the ``solver`` name and the
    ``problem`` fingerprint it is to resume; a missing, corrupt or foreign file is refused
    with an :class:`~inversekit.InputError` naming it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"checkpoint file {path} does not exist")
    if not path.is_file():
        raise InputError(f"checkpoint file {path} is not a file")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            state = {k[len("state/") :]: data[k].copy() for k in data.files if k != "meta"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(
            f"checkpoint file {path} is corrupt or not an inversekit checkpoint "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(meta, dict) or not str(meta.get("format", "")).startswith(
        FORMAT.split("/")[0]
    ):
        raise InputError(f"checkpoint file {path} is not an inversekit checkpoint")
    if meta["format"] != FORMAT:
        raise InputError(
            f"checkpoint file {path} has layout {meta['format']!r}; this version of inversekit "
            f"reads {FORMAT!r}"
        )
    if meta.get("solver") != solver:
        raise InputError(
            f"checkpoint file {path} was written by solver {meta.get('solver')!r}, not by "
            f"{solver!r}; resume with the solver that wrote it"
        )
    if meta.get("problem") != problem:
        saved = meta.get("problem") or {}
        what = [k for k in problem if saved.get(k) != problem[k]]
        raise InputError(
            f"checkpoint file {path} was written for another problem (differs in: "
            f"{', '.join(what) or 'its description'}); it cannot resume this one"
        )
    try:
        state.update(meta["scalars"])
        status = meta["status"]
        if status is not None and status not in Status.__members__:
            raise KeyError(status)
        return Checkpoint(
            solver=meta["solver"],
            problem=meta["problem"],
            state=state,
            n_iter=int(meta["n_iter"]),
            elapsed=float(meta["elapsed"]),
            history=[float(c) for c in meta["history"]],
            status=status,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"checkpoint file {path} is incomplete ({type(exc).__name__}: {exc})"
        ) from None
