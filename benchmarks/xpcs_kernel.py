"""Speed of inversekit's XPCS c2 kernel: forward and full Jacobian (torch.func.jacfwd).

The case mirrors homodyne's own kernel benchmark (``shared/peers/homodyne/bench_kernel.py``):
laminar flow, P = 3 angles (0, 45, 90 deg), N frames over a 10 s window (dt = 10/N,
t = i dt), q = 0.0054 1/A, L = 2e6 A, homodyne's benchmark truth as parameters; the
Jacobian is taken with respect to all 2P + 7 parameters as one flat vector, giving a
(P N^2, 2P + 7) matrix as homodyne's ``jax.jacfwd`` does. Times are medians of
``repeats`` calls after one warm-up call.

    python benchmarks/xpcs_kernel.py [--n-times 1000] [--n-angles 3] [--repeats 5]
                                     [--threads 1,2] [--mode laminar_flow]

On virtual machines where first-touching fresh memory is slow, most of the Jacobian's
time can be page faults on its 13 x 3M output; ``THP_MEM_ALLOC_ENABLE=1`` (read by PyTorch
at start-up) backs large tensors with huge pages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.func import jacfwd

from inversekit.models import xpcs

Q = 0.0054
L = 2.0e6
WINDOW = 10.0
TRUTH = {
    "D0": 1.0e4,
    "alpha": 0.2,
    "D_offset": 100.0,
    "gamma_dot_t0": 2.0e-4,
    "beta": 0.1,
    "gamma_dot_t_offset": 1.0e-5,
    "phi0": 5.0,
}


def _case(n_times: int, n_angles: int, mode: str):
    dt = WINDOW / n_times
    t = dt * torch.arange(n_times, dtype=torch.float64)
    phi = torch.linspace(0.0, 90.0, n_angles, dtype=torch.float64)
    names = xpcs.parameter_names(mode)
    contrast = torch.linspace(0.28, 0.32, n_angles, dtype=torch.float64)
    offset = torch.linspace(0.99, 1.01, n_angles, dtype=torch.float64)
    theta = torch.cat(
        [contrast, offset, torch.tensor([TRUTH[k] for k in names], dtype=torch.float64)]
    )

    def model(vector: torch.Tensor) -> torch.Tensor:
        p = {k: vector[2 * n_angles + i] for i, k in enumerate(names)}
        p["contrast"] = vector[:n_angles]
        p["offset"] = vector[n_angles : 2 * n_angles]
        return xpcs.c2(p, t, phi, q=Q, dt=dt, L=L, mode=mode)

    return model, theta


def _median_seconds(f, x, repeats: int) -> tuple[float, float]:
    """Median wall seconds and median process CPU seconds of ``f(x)``."""
    f(x)  # warm-up: allocator, thread pool
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        f(x)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def time_inversekit(
    n_times: int = 1000,
    n_angles: int = 3,
    repeats: int = 5,
    mode: str = "laminar_flow",
    threads: int | None = None,
) -> dict:
    """Median wall seconds of c2 forward and of its full Jacobian (jacfwd).

    Returns a dict with ``forward_s``, ``jacobian_s`` (wall), ``forward_cpu_s``,
    ``jacobian_cpu_s`` (process CPU time, less sensitive to other load on a shared
    machine), the case (mode, sizes, points, parameters) and ``threads``; ``threads`` sets
    ``torch.set_num_threads`` for the measurement (default: leave it as it is).
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        model, theta = _case(n_times, n_angles, mode)
        jacobian = jacfwd(lambda v: model(v).reshape(-1))
        with torch.no_grad():
            forward_s, forward_cpu_s = _median_seconds(model, theta, repeats)
        jacobian_s, jacobian_cpu_s = _median_seconds(jacobian, theta, repeats)
        shape = tuple(jacobian(theta).shape)
    finally:
        torch.set_num_threads(previous)
    return {
        "load_average": _load_average(),
        "mode": mode,
        "n_times": n_times,
        "n_angles": n_angles,
        "points": n_angles * n_times * n_times,
        "n_params": theta.numel(),
        "jacobian_shape": shape,
        "repeats": repeats,
        "threads": threads if threads is not None else previous,
        "forward_s": forward_s,
        "jacobian_s": jacobian_s,
        "forward_cpu_s": forward_cpu_s,
        "jacobian_cpu_s": jacobian_cpu_s,
    }


def _load_average() -> float | None:
    """1-minute load average after the run (other jobs on a shared machine skew timings)."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-times", type=int, default=1000)
    parser.add_argument("--n-angles", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--mode", default="laminar_flow", choices=("static", "laminar_flow"))
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    args = parser.parse_args()
    for n in (int(s) for s in args.threads.split(",")):
        row = time_inversekit(args.n_times, args.n_angles, args.repeats, args.mode, threads=n)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(
                f"{row['mode']} P={row['n_angles']} N={row['n_times']} "
                f"({row['points']:,} points, {row['n_params']} params) threads={n}: "
                f"forward {row['forward_s']:.4f} s, jacobian {row['jacobian_s']:.4f} s "
                f"(CPU {row['forward_cpu_s']:.4f} s, {row['jacobian_cpu_s']:.4f} s; "
                f"load average {row['load_average']})",
                flush=True,
            )


if __name__ == "__main__":
    main()
