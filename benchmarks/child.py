"""What every benchmark child process shares: the task file in, the result file out.

A child is started by the runner as ``python -m benchmarks.<module> TASK.json OUT.json`` in a
fresh process, inside the project's environment or a peer's. Its module calls
:func:`serve` with a function that does the work and returns ``{"items": {...}}``; this
module adds the peak resident set size (measured by the child itself), the CPU time, the
thread settings in force, the versions of the numeric libraries and the file inversekit was
imported from (``inversekit_file``), and turns an exception
into an ``"error"`` entry instead of a crash. Only the standard library is imported here.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def max_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``, the high-water mark of this
    process's own address space. ``getrusage(RUSAGE_SELF).ru_maxrss`` is not used there: the
    kernel carries it across ``exec``, so a child started by a large parent would report at
    least the parent's size. Elsewhere ``ru_maxrss`` is the fallback.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    scale = 2**20 if sys.platform == "darwin" else 1024.0  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Probe:
    """Handed to the work function: it marks the resident set once the inputs are loaded, so
    that the memory a solver needs can be reported above the data."""

    def __init__(self) -> None:
        self.base_rss_mb: float | None = None
        self.peak_rss_mb: float | None = None

    def mark_base(self) -> None:
        """Record the resident set now (after imports and data loading)."""
        self.base_rss_mb = max_rss_mb()

    def mark_peak(self) -> None:
        """Record the peak now, once the timed work is done, so that scoring afterwards
        (which may allocate) does not count against the solver."""
        self.peak_rss_mb = max_rss_mb()


_threads = 1


def import_torch() -> Any:
    """Import torch with the harness's thread count. Sides that do not use torch never
    import it, so its memory does not count against them."""
    import torch

    torch.set_num_threads(_threads)
    return torch


def import_nlsq() -> Any:
    """Import nlsq with JAX on the CPU in float64 and its per-iteration logging silenced
    (it installs a root stderr handler; terminal output must not be timed)."""
    import logging

    import jax

    jax.config.update("jax_enable_x64", True)
    import nlsq

    logging.disable(29)
    return nlsq


def require_inversekit() -> Any:
    """Import inversekit (and torch, with the harness's thread count) and check that the API
    the benchmarks call is there."""
    import_torch()
    import inversekit as ik

    missing = [n for n in ("Params", "Param", "LeastSquares", "fit") if not hasattr(ik, n)]
    if missing:
        raise AttributeError(f"inversekit has no {', '.join(missing)} yet")
    return ik


def _library_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("numpy", "scipy", "torch", "lmfit", "jax", "nlsq", "inversekit"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = str(getattr(mod, "__version__", "?"))
    return out


def _thread_report(threads: int) -> dict[str, Any]:
    report: dict[str, Any] = {"requested": threads}
    report.update({k: os.environ.get(k) for k in THREAD_VARS})
    torch = sys.modules.get("torch")
    if torch is not None:
        report["torch"] = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_info

        report["blas"] = [
            {k: d.get(k) for k in ("internal_api", "num_threads")} for d in threadpool_info()
        ]
    except ImportError:
        pass
    return report


def serve(work: Callable[[dict[str, Any], Probe], dict[str, Any]]) -> None:
    """Run ``work(task, probe)`` for the task file in ``sys.argv[1]``; write ``sys.argv[2]``.

    ``task`` holds ``case`` (the inputs, shared by all sides), ``options`` (this side's),
    ``side``, ``round`` and ``threads``. ``work`` returns ``{"items": {key: {"figures": {...},
    "quality": {...}}}, ...}``; extra keys are kept.
    """
    task_path, out_path = sys.argv[1], sys.argv[2]
    with open(task_path) as fh:
        task = json.load(fh)
    global _threads
    threads = _threads = int(task.get("threads", 1))
    probe = Probe()
    t0 = time.perf_counter()
    try:
        out = work(task, probe)
    except Exception as exc:  # reported as this side's failure, never a harness crash
        tb = traceback.format_exc(limit=4)
        out = {"error": f"{type(exc).__name__}: {exc}"[:500], "traceback": tb[-2000:]}
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = cpu_seconds()
    out["peak_rss_mb"] = probe.peak_rss_mb if probe.peak_rss_mb is not None else max_rss_mb()
    out["base_rss_mb"] = probe.base_rss_mb
    out["threads"] = _thread_report(threads)
    out["versions"] = _library_versions()
    inversekit = sys.modules.get("inversekit")
    if inversekit is not None:  # which tree ran: the runner checks it for a baseline twin
        out["inversekit_file"] = getattr(inversekit, "__file__", None)
    with open(out_path, "w") as fh:
        json.dump(out, fh, allow_nan=True)


def time_calls(
    fn: Callable[[], Any], reps: int
) -> tuple[Any, float, list[float], list[float], Any]:
    """Call ``fn`` once (timed as the first call) and ``reps`` more times.

    Returns ``(first result, first-call seconds, the later calls' wall seconds, their CPU
    seconds, the last result)``. CPU time above wall time means several threads worked;
    below it, the process waited for a core (a loaded machine). The last result lets a
    benchmark check that the timed repeats did the same work as the scored first call.
    """
    t = time.perf_counter()
    first = last = fn()
    t_first = time.perf_counter() - t
    wall, cpu = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        last = fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return first, t_first, wall, cpu, last
