"""CUDA check for large batches: run on a machine with an NVIDIA GPU.

    PYTHONPATH=src python3 benchmarks/device/cuda_check.py [--batch 100000] [--skip-raw]

1. (unless ``--skip-raw``) torch's own batched calls at the sizes that matter, each family
   in a fresh process (a cuSOLVER failure can leave the context unusable): ``eigh`` of
   3x3..5x5 float64 batches around CUDA's 65,535 grid limit and at 100,000 (the reported
   crash in ``cusolverDnXsyevBatched``), and ``cholesky_ex`` + ``cholesky_solve`` of 8x8;
   then the time ``batched_eigh`` takes per piece;
2. ``python -m pytest -q -m cuda tests/test_cuda.py``;
3. a batched fit of ``--batch`` Gaussian-peak problems on CUDA and on the CPU (after a
   small warm-up fit on each), timed, with their agreement: the largest relative and
   stderr-scaled parameter differences and the status counts.

Exits non-zero if the tests fail or the two fits disagree.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RAW_EIGH = """
import sys, time, torch
p = int(sys.argv[1])
for B in (32768, 65535, 65536, 100000, 1000000):
    g = torch.Generator().manual_seed(B)
    J = torch.randn(B, p + 3, p, generator=g, dtype=torch.float64)
    A = (J.mT @ J).cuda()
    try:
        torch.cuda.synchronize(); t = time.perf_counter()
        e, V = torch.linalg.eigh(A)
        torch.cuda.synchronize()
        ok = bool(torch.isfinite(e).all())
        print(f"  eigh {p}x{p} B={B:>7}: ok ({time.perf_counter() - t:.4f} s, finite={ok})")
    except Exception as exc:
        print(f"  eigh {p}x{p} B={B:>7}: FAILED {type(exc).__name__}: {str(exc)[:160]}")
        break  # the context may be unusable after a cuSOLVER failure
"""

RAW_CHOLESKY = """
import time, torch
p = 8
for B in (65536, 100000, 1000000):
    g = torch.Generator().manual_seed(B)
    J = torch.randn(B, p + 3, p, generator=g, dtype=torch.float64)
    A = (J.mT @ J).cuda()
    b = torch.randn(B, p, 1, generator=g, dtype=torch.float64).cuda()
    for name, call in (
        ("cholesky_ex", lambda: torch.linalg.cholesky_ex(A)),
        ("cholesky_solve", lambda: torch.cholesky_solve(b, torch.linalg.cholesky_ex(A)[0])),
    ):
        try:
            torch.cuda.synchronize(); t = time.perf_counter()
            out = call()
            torch.cuda.synchronize()
            print(f"  {name} {p}x{p} B={B:>7}: ok ({time.perf_counter() - t:.4f} s)")
        except Exception as exc:
            print(f"  {name} {p}x{p} B={B:>7}: FAILED {type(exc).__name__}: {str(exc)[:160]}")
            raise SystemExit(0)
"""


def raw_calls() -> None:
    print("== torch's batched calls on CUDA, unsplit (before the fix)", flush=True)
    env = dict(os.environ)
    for code, args in ((RAW_EIGH, ["3"]), (RAW_EIGH, ["4"]), (RAW_EIGH, ["5"]), (RAW_CHOLESKY, [])):
        r = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        print(r.stdout, end="")
        if r.returncode != 0:
            print(f"  (process exited {r.returncode}: {r.stderr.strip()[-300:]})")
    sys.stdout.flush()


def piece_time() -> None:
    import torch

    from inversekit.linalg.curvature import EIGH_BATCH_LIMIT, batched_eigh

    print(f"== batched_eigh on CUDA (EIGH_BATCH_LIMIT = {EIGH_BATCH_LIMIT})")
    for B in (EIGH_BATCH_LIMIT, 100_000, 1_000_000):
        g = torch.Generator().manual_seed(B)
        J = torch.randn(B, 8, 5, generator=g, dtype=torch.float64)
        A = (J.mT @ J).cuda()
        batched_eigh(A)
        torch.cuda.synchronize()
        t = time.perf_counter()
        batched_eigh(A)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
        pieces = -(-B // EIGH_BATCH_LIMIT)
        print(f"  5x5 B={B:>7}: {dt:.4f} s in {pieces} piece(s), {dt / pieces * 1e3:.2f} ms each")
    sys.stdout.flush()


def run_tests() -> int:
    print("== python -m pytest -q -m cuda tests/test_cuda.py", flush=True)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py", "-rs"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    sys.stdout.flush()
    return r.returncode


def compare_fits(B: int) -> bool:
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from test_cuda import NAMES, batched_peak_fit, peaks

    print(f"== batched fit of {B:,} Gaussian peaks (60 points, 5 parameters, float64)")
    print(f"   torch {torch.__version__}, {torch.cuda.get_device_name(0)}, ", end="")
    print(f"{torch.get_num_threads()} CPU threads", flush=True)
    x, y, start = peaks(B, seed=7)
    wx, wy, wstart = peaks(1000, seed=8)
    fits, times = {}, {}
    for device in ("cuda", "cpu"):
        batched_peak_fit(wx, wy, wstart, 0.05, device)  # warm-up: first-call costs
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fits[device] = batched_peak_fit(x, y, start, 0.05, device)
        if device == "cuda":
            torch.cuda.synchronize()
        times[device] = time.perf_counter() - t
        r = fits[device]
        print(
            f"  {device:>4}: {times[device]:7.2f} s, {int(r.success.sum()):,} succeeded, "
            f"iterations mean {float(r.n_iter.double().mean()):.2f} max {int(r.n_iter.max())}"
        )
        for status, n in Counter(s.name for s in r.status).most_common():
            print(f"        {status:<12} {n:,}")
    gpu, cpu = fits["cuda"], fits["cpu"]
    print(f"  CPU / CUDA time: {times['cpu'] / times['cuda']:.1f}x")
    same = sum(a == b for a, b in zip(gpu.status, cpu.status, strict=True))
    print(f"  same status: {same:,} of {B:,}")
    both = gpu.success.cpu() & cpu.success
    worst_rel = worst_z = 0.0
    for k in NAMES:
        a, b = gpu.params[k].cpu()[both], cpu.params[k][both]
        diff = (a - b).abs()
        rel = diff / torch.clamp(b.abs(), min=1e-300)
        z = diff / cpu.stderr[k][both]
        worst_rel, worst_z = max(worst_rel, float(rel.max())), max(worst_z, float(z.max()))
        q = float(torch.quantile(rel, 0.999))
        print(
            f"  {k:>3}: max |diff| {float(diff.max()):.2e}, max rel {float(rel.max()):.2e} "
            f"(99.9% {q:.2e}), max |diff|/stderr {float(z.max()):.2e}"
        )
    chi2 = float(((gpu.chi2.cpu() - cpu.chi2).abs() / cpu.chi2).max())
    print(f"  chi2 max rel diff {chi2:.2e}")
    ok = bool(both.all()) and same >= 0.999 * B and worst_z < 1e-6 and chi2 < 1e-10
    print(f"  agreement: {'OK' if ok else 'FAILED'}", flush=True)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--skip-raw", action="store_true", help="skip torch's unsplit calls")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    if not torch.cuda.is_available():
        print("CUDA is not available: nothing to check")
        return 2
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
    if not args.skip_raw:
        raw_calls()
    piece_time()
    tests = run_tests()
    fits = compare_fits(args.batch)
    print(f"== tests {'passed' if tests == 0 else 'FAILED'}", end="; ")
    print(f"fits {'agree' if fits else 'DISAGREE'}")
    return 0 if tests == 0 and fits else 1


if __name__ == "__main__":
    sys.exit(main())
