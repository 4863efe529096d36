"""The ``xpcs-kernel`` benchmark: the XPCS c2 kernel and its full Jacobian, no optimizer.

Case (as in homodyne's own ``bench_kernel.py`` and ``benchmarks/xpcs_kernel.py``): laminar
flow, P = 3 angles (0, 45, 90 deg) x N = 1000 frames over a 10 s window (3e6 points),
q = 0.0054 1/A, L = 2e6 A, homodyne's benchmark truth, 2P + 7 = 13 parameters. Sides:
inversekit (torch, ``torch.func.jacfwd``) and homodyne 2.23.3 (JAX, jitted ``jax.jacfwd``).
Each fresh child times ``--kernel-repeats`` calls after a warm-up and reports the medians.

Quality gate: every side reproduces ``tests/data/xpcs/reference_c2.npz`` (homodyne's
outputs on four small cases) to max |dc2| < ``--gate-c2`` (1e-12); the sides got identical
parameters and their c2 on the benchmark case agree to max |dc2| < ``--gate-c2``; their
Jacobians agree column by column to ``--gate-jac-rtol`` (1e-8) relative to the column's
largest entry, on every ``--jac-stride``-th row (and the first 100 rows) and on the column
norms of the whole matrix.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from benchmarks import fmt
from benchmarks.paths import RUNS_DIR, xpcs_reference
from benchmarks.registry import Benchmark
from benchmarks.runner import Case, Gate, Side

CHILD = "benchmarks.xpcs.child"
SIDES = (
    Side("inversekit", CHILD, None, {"kernel": "inversekit"}),
    Side("homodyne", CHILD, "homodyne", {"kernel": "homodyne"}),
)
Q, L, WINDOW = 0.0054, 2.0e6, 10.0
TRUTH = (1.0e4, 0.2, 100.0, 2.0e-4, 0.1, 1.0e-5, 5.0)


def _linspace(a: float, b: float, n: int) -> list[float]:
    return [a] if n == 1 else [a + (b - a) * i / (n - 1) for i in range(n)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("xpcs-kernel")
    group.add_argument("--n-times", type=int, default=1000, help="frames N (1000)")
    group.add_argument("--n-angles", type=int, default=3, help="angles P (3)")
    group.add_argument("--kernel-repeats", type=int, default=5, help="timed calls per process (5)")
    group.add_argument("--gate-c2", type=float, default=1e-12, help="max |dc2| (1e-12)")
    group.add_argument(
        "--gate-jac-rtol", type=float, default=1e-8, help="Jacobian, per column (1e-8)"
    )
    group.add_argument(
        "--jac-stride", type=int, default=149, help="Jacobian rows compared: every k-th (149)"
    )


def _compare(a: str, b: str, c2_tol: float, jac_rtol: float) -> tuple[str | None, dict]:
    """Compare two sides' ``.npz`` files; ``(None or why they disagree, the differences)``."""
    import numpy as np

    with np.load(a) as za, np.load(b) as zb:
        if za["theta"].shape != zb["theta"].shape or not np.array_equal(za["theta"], zb["theta"]):
            return "the sides were given different parameters", {}
        if za["c2"].shape != zb["c2"].shape or za["jac_rows"].shape != zb["jac_rows"].shape:
            return f"shapes differ: c2 {za['c2'].shape} vs {zb['c2'].shape}", {}
        dc2 = float(np.max(np.abs(za["c2"] - zb["c2"])))
        scale = np.maximum(np.maximum(za["jac_colmax"], zb["jac_colmax"]), 1e-300)
        drows = float(np.max(np.max(np.abs(za["jac_rows"] - zb["jac_rows"]), axis=0) / scale))
        na, nb = za["jac_colnorm"], zb["jac_colnorm"]
        dnorm = float(np.max(np.abs(na - nb) / np.maximum(np.maximum(na, nb), 1e-300)))
    diff = {"max_abs_dc2": dc2, "jac_rows_rel": drows, "jac_colnorm_rel": dnorm}
    why = []
    if not dc2 < c2_tol:
        why.append(f"c2 differs by {dc2:.2e}")
    if not drows < jac_rtol:
        why.append(f"Jacobian rows differ by {drows:.2e} (rel. to column max)")
    if not dnorm < jac_rtol:
        why.append(f"Jacobian column norms differ by {dnorm:.2e}")
    return ("; ".join(why) or None), diff


def make_gate(c2_tol: float, jac_rtol: float) -> Gate:
    """Pass where a side reproduces the reference c2 and agrees with every other side."""

    def gate(item: str, quality_by_side: dict[str, dict[str, Any]]) -> dict[str, str | None]:
        verdicts: dict[str, str | None] = {}
        for side, q in quality_by_side.items():
            errs = q.get("max_abs_err_vs_reference") or {}
            worst = max(errs.values()) if errs else math.inf
            if not q.get("finite", False):
                verdicts[side] = "non-finite c2 or Jacobian"
            elif not worst < c2_tol:
                verdicts[side] = f"c2 differs from reference_c2.npz by {worst:.2e}"
            else:
                verdicts[side] = None
        sides = sorted(quality_by_side)
        for i, a in enumerate(sides):
            for b in sides[i + 1 :]:
                try:
                    why, diff = _compare(
                        quality_by_side[a]["file"], quality_by_side[b]["file"], c2_tol, jac_rtol
                    )
                except (OSError, KeyError, ValueError) as exc:
                    why, diff = f"cannot compare: {exc}", {}
                quality_by_side[a].setdefault("vs", {})[b] = diff
                quality_by_side[b].setdefault("vs", {})[a] = diff
                if why:
                    for s, other in ((a, b), (b, a)):
                        verdicts[s] = "; ".join(x for x in (verdicts[s], f"vs {other}: {why}") if x)
        return verdicts

    return gate


def plan(args: argparse.Namespace) -> tuple[list[Case], list[Side], Gate]:
    n, P = args.n_times, args.n_angles
    theta = [*_linspace(0.28, 0.32, P), *_linspace(0.99, 1.01, P), *TRUTH]
    task = {
        "mode": "laminar_flow",
        "n_times": n,
        "n_angles": P,
        "window": WINDOW,
        "q": Q,
        "L": L,
        "phi": _linspace(0.0, 90.0, P),
        "theta": theta,
        "repeats": args.kernel_repeats,
        "stride": args.jac_stride,
        "reference": str(xpcs_reference()),
        "outdir": str(RUNS_DIR / "xpcs-kernel"),
    }
    sides = [s for s in SIDES if not args.sides or s.name in args.sides]
    return [Case(f"laminar P={P} N={n}", task)], sides, make_gate(args.gate_c2, args.gate_jac_rtol)


def render(run: dict[str, Any]) -> str:
    """One row per side: forward and Jacobian medians, ratios, gate and agreement."""
    sides = [s["name"] for s in run["sides"]]
    subject = run["subject"]
    header = [
        "case",
        "side",
        "quality gate",
        "forward s: median [min–max]",
        "Jacobian s: median [min–max]",
        f"{subject}/side forward",
        f"{subject}/side Jacobian",
        "CPU s forward / Jacobian",
        "first call (compile) s forward / Jacobian",
        "max abs Δc2 vs reference_c2.npz",
        "vs other side: max abs Δc2 / Jacobian rel. diff",
        "peak RSS MB",
    ]
    rows = []
    for case in run["cases"]:
        # a case where no side produced a result still gets its rows (missing / failed)
        for item, per_side in (case["items"] or {case["key"]: {}}).items():
            for side in sides:
                info = case["sides"][side]
                if info["status"] != "ok" or side not in per_side:
                    reason = info["reason"] or "no result"
                    rows.append([item, side, f"**{info['status']}**: {reason[:300]}"] + [""] * 9)
                    continue
                d = per_side[side]
                q, f = d["quality"], d["figures"]
                if side == subject:
                    r_fwd = r_jac = "(subject)"
                else:
                    r = case["ratios"][item].get(f"{subject}/{side}", {})
                    r_fwd = r.get("none") or fmt.ratio(r.get("forward_s"))
                    r_jac = r.get("none") or fmt.ratio(r.get("jacobian_s"))
                ref = q.get("max_abs_err_vs_reference") or {}
                vs = "; ".join(
                    f"{o}: {fmt.num(x.get('max_abs_dc2'))} / "
                    f"{fmt.num(max(x.get('jac_rows_rel', math.nan), x.get('jac_colnorm_rel', 0)))}"
                    for o, x in (q.get("vs") or {}).items()
                    if x
                )
                first = "– (warm-up call untimed)"
                if "forward_first_s" in f:
                    first = f"{fmt.spread(f['forward_first_s'])} / "
                    first += fmt.spread(f.get("jacobian_first_s"))
                cpu = f"{fmt.spread(f.get('forward_cpu_s'))} / "
                cpu += fmt.spread(f.get("jacobian_cpu_s"))
                rows.append(
                    [
                        item,
                        side,
                        "passed" if d["gate"] is None else f"**failed**: {d['gate']}",
                        fmt.spread(f["forward_s"]),
                        fmt.spread(f["jacobian_s"]),
                        r_fwd,
                        r_jac,
                        cpu,
                        first,
                        fmt.num(max(ref.values()) if ref else None),
                        vs or "–",
                        fmt.spread(info.get("peak_rss_mb"), digits=4),
                    ]
                )
    loads = "; ".join(
        f"{c['key']}: {c['loadavg_start'][0]:.2f} → {c['loadavg_end'][0]:.2f}"
        for c in run["cases"]
        if "loadavg_start" in c
    )
    reps = run["cases"][0]["task"].get("repeats") if run["cases"] else None
    note = (
        f"\n\nEach process times {reps} calls of each kernel after one warm-up call and reports "
        "their medians; the table shows the median [min–max] of those over the kept processes. "
        f"1-minute load average: {loads}."
    )
    return fmt.table(header, rows) + note


BENCHMARK = Benchmark(
    name="xpcs-kernel",
    summary="XPCS c2 kernel (laminar flow, 3 angles x 1000^2 times): forward and full "
    "Jacobian vs homodyne's JAX kernel",
    plan=plan,
    render=render,
    add_arguments=add_arguments,
)
