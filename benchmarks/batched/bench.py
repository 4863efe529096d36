"""The ``batched`` benchmark: 10,000 four-parameter fits in one call vs a curve_fit loop.

Sides: inversekit (``BatchedLeastSquares`` at its defaults, ``jacobian="auto"``),
inversekit with ``jacobian="compiled"`` (the first call in each fresh process compiles
into an empty cache; the warm figure is a later call in the same process), and a loop of
``scipy.optimize.curve_fit`` (analytic Jacobian) at its defaults and with tight tolerances
(ftol = xtol = 1e-14, the accuracy reference). Throughput is problems per second of wall
time; ratios are inversekit's time over the peer's, so 0.1 means ten times the throughput.

Quality gate: for every problem where both the side and the tight curve_fit run report
convergence, every parameter agrees to ``--gate-params`` (1e-6) relative, or the side's
chi-square is not higher than the reference's (to 1e-12 relative, the rounding of the sum:
it found the minimum at least as exactly; a parameter
near zero, such as a small background offset, can differ by more than 1e-6 relative
while both chi-squares agree to 1e-14); the counts of problems where either did not
converge, and of those decided by chi-square, are reported. curve_fit at its default tolerances
(ftol = xtol = 1.5e-8) stops short of the minimum by a few 1e-6 on some problems: it is the
throughput users get, so its gate is only that its fits converge, and its distance from the
tight run is shown beside it.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from benchmarks import fmt
from benchmarks.batched.problem import data_file
from benchmarks.paths import RUNS_DIR
from benchmarks.registry import Benchmark
from benchmarks.runner import Case, Gate, Side, comparison_pair

CHILD = "benchmarks.batched.child"
REFERENCE = "curve_fit-tight"
CHI2_RTOL = 1e-12
LENIENT = ("curve_fit",)  # the peer at its defaults: timed as used, accuracy shown, not gated
SIDES = (
    Side("inversekit", CHILD, None, {"solver": "inversekit", "jacobian": "auto"}),
    Side("inversekit-compiled", CHILD, None, {"solver": "inversekit", "jacobian": "compiled"}),
    Side("curve_fit", CHILD, "scipy", {"solver": "curve_fit"}),
    Side(REFERENCE, CHILD, "scipy", {"solver": "curve_fit", "tight": True}),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("batched")
    group.add_argument("--problems", type=int, default=10_000, help="problems B (10000)")
    group.add_argument(
        "--batched-fits", type=int, default=2, help="warm calls per process after the first (2)"
    )
    group.add_argument(
        "--gate-params", type=float, default=1e-6, help="parameters vs tight curve_fit (1e-6)"
    )


def compare(path: str, reference: str) -> dict[str, Any]:
    """Worst relative parameter difference where both converged, and the failure counts."""
    with np.load(path) as a, np.load(reference) as b:
        p, ok, q, ok_ref = a["params"], a["ok"], b["params"], b["ok"]
        # no higher, to the rounding of a sum of n squares
        lower = a["chi2"] <= b["chi2"] * (1 + CHI2_RTOL)
    both = ok & ok_ref
    rel = np.abs(p[both] - q[both]) / np.maximum(np.abs(q[both]), 1e-300)
    worst = rel.max(axis=1) if rel.size else np.zeros(0)
    return {
        "worst_rel": float(worst.max()) if worst.size else float("nan"),
        "beyond": worst,
        "lower_chi2": lower[both],
        "problems_compared": int(both.sum()),
        "not_converged_side": int((~ok).sum()),
        "not_converged_reference": int((~ok_ref).sum()),
        "not_converged_either": int((~both).sum()),
    }


def make_gate(rtol: float) -> Gate:
    def gate(item: str, quality_by_side: dict[str, dict[str, Any]]) -> dict[str, str | None]:
        ref = quality_by_side.get(REFERENCE)
        verdicts: dict[str, str | None] = {}
        for side, q in quality_by_side.items():
            if ref is None:
                verdicts[side] = f"no {REFERENCE} run to compare with"
                continue
            cmp = compare(q["file"], ref["file"])
            beyond = cmp.pop("beyond") > rtol
            lower = cmp.pop("lower_chi2")
            cmp["beyond_gate_lower_chi2"] = int((beyond & lower).sum())
            q["vs_reference"] = cmp
            worse = int((beyond & ~lower).sum())
            if side in LENIENT:
                verdicts[side] = None if cmp["not_converged_side"] == 0 else "fits failed"
            elif cmp["problems_compared"] == 0:
                verdicts[side] = "no problem converged on both sides"
            elif worse:
                verdicts[side] = (
                    f"{worse} problems differ from {REFERENCE} by more than {rtol:g} relative "
                    "with a higher chi-square"
                )
            else:
                verdicts[side] = None
        return verdicts

    return gate


def plan(args: argparse.Namespace) -> tuple[list[Case], list[Side], Gate]:
    task = {
        "data": str(data_file(args.problems, RUNS_DIR / "data")),
        "fits": args.batched_fits,
        "outdir": str(RUNS_DIR / "batched"),
    }
    sides = [s for s in SIDES if not args.sides or s.name in args.sides]
    return [Case(f"B={args.problems}", task)], sides, make_gate(args.gate_params)


def render(run: dict[str, Any]) -> str:
    """One row per side."""
    sides = [s["name"] for s in run["sides"]]
    subject = run["subject"]
    header = [
        "side",
        "quality gate",
        "warm s: median [min–max]",
        "problems / s (warm)",
        "first call s",
        f"{subject}/side warm (first)",
        "not converged: side / reference / either",
        "worst rel. parameter diff vs tight curve_fit (beyond 1e-6 with chi2 not higher)",
        "iterations max / mean",
        "peak RSS above data MB",
        "engine",
    ]
    rows = []
    for case in run["cases"]:
        per_side = case["items"].get(case["key"], {})
        for side in sides:
            info = case["sides"][side]
            if info["status"] != "ok":
                rows.append([side, f"**{info['status']}**: {info['reason'][:300]}"] + [""] * 9)
                continue
            d = per_side[side]
            q, figs = d["quality"], d["figures"]
            cmp = q.get("vs_reference", {})
            if side == subject:
                ratio_cell = "(subject)"
            else:
                pair = comparison_pair(side, run["sides"], subject)
                first = pair.split("/")[0]
                r = case["ratios"][case["key"]].get(pair, {})
                ratio_cell = ("" if first == subject else f"{first}/this: ") + (
                    r["none"]
                    if "none" in r
                    else f"{fmt.ratio(r.get('fit_s'))} ({fmt.ratio(r.get('first_s'))})"
                )
            iters = (
                f"{q['iterations_max']} / {q['iterations_mean']:.1f}"
                if "iterations_max" in q
                else "–"
            )
            rows.append(
                [
                    side,
                    "passed" if d["gate"] is None else f"**failed**: {d['gate']}",
                    fmt.spread(figs["fit_s"]),
                    fmt.num(figs["fits_per_s"]["median"], 4),
                    fmt.spread(figs["first_s"]),
                    ratio_cell,
                    f"{cmp.get('not_converged_side', '–')} / "
                    f"{cmp.get('not_converged_reference', '–')} / "
                    f"{cmp.get('not_converged_either', '–')}",
                    f"{fmt.num(cmp.get('worst_rel'))} ({cmp.get('beyond_gate_lower_chi2', '–')})",
                    iters,
                    fmt.spread(info.get("above_base_mb"), digits=4),
                    q.get("engine", "–"),
                ]
            )
    return fmt.table(header, rows)


BENCHMARK = Benchmark(
    name="batched",
    summary="10,000 Gaussian + background fits (4 params, 100 points) in one call vs curve_fit",
    plan=plan,
    render=render,
    add_arguments=add_arguments,
)
