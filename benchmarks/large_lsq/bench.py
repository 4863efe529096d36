"""The ``large-lsq`` benchmark: 11 parameters on 1e5, 1e6, 1e7 points, sigma given.

Sides: inversekit at its defaults (every fresh process starts with an empty compile cache,
so its first call includes a cold compilation; ``inversekit-warm-cache`` has the cache
filled by an earlier process, as a user's second run would) against
``scipy.optimize.least_squares`` lm (MINPACK) and trf, both with the analytic Jacobian and
default tolerances, and nlsq (JAX autodiff, one ``CurveFit`` reused, so "first call"
includes its compilation). One fresh process per side
and round per N. Quality gate: the final chi-square equals the best chi-square reached by
any side to ``--gate-rtol`` relative (default 1e-6), so a side that stops early is reported
as failed, not as fast.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from benchmarks import fmt
from benchmarks.large_lsq.problem import NAMES, data_file
from benchmarks.paths import RUNS_DIR
from benchmarks.registry import Benchmark
from benchmarks.roofline import multiples
from benchmarks.runner import Case, Gate, Side, comparison_pair

CHILD = "benchmarks.large_lsq.child"
SIDES = (
    Side("inversekit", CHILD, None, {"solver": "inversekit"}),
    Side("inversekit-warm-cache", CHILD, None, {"solver": "inversekit", "prime_cache": True}),
    Side("scipy-lm", CHILD, "scipy", {"solver": "scipy", "method": "lm"}),
    Side("scipy-trf", CHILD, "scipy", {"solver": "scipy", "method": "trf"}),
    Side("nlsq", CHILD, "nlsq", {"solver": "nlsq"}),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("large-lsq")
    group.add_argument(
        "--sizes", default="1e5,1e6,1e7", help="comma-separated N (default 1e5,1e6,1e7)"
    )
    group.add_argument(
        "--fits",
        type=int,
        default=None,
        help="warm fits per process after the first (default 2, 1 from N=1e7 on)",
    )
    group.add_argument(
        "--gate-rtol", type=float, default=1e-6, help="chi2 tolerance vs the best side (1e-6)"
    )


def make_gate(rtol: float) -> Gate:
    """Pass where chi2 is within ``rtol`` of the smallest chi2 any side reached."""

    def gate(item: str, quality_by_side: dict[str, dict[str, Any]]) -> dict[str, str | None]:
        chi2s = {
            s: q["chi2"]
            for s, q in quality_by_side.items()
            if isinstance(q.get("chi2"), float) and math.isfinite(q["chi2"])
        }
        best = min(chi2s.values()) if chi2s else None
        verdicts: dict[str, str | None] = {}
        for side, q in quality_by_side.items():
            c = chi2s.get(side)
            warm = q.get("last_warm_chi2")
            if c is None or best is None:
                verdicts[side] = "no finite chi2"
            elif warm is not None and not abs(warm - c) <= rtol * c:
                verdicts[side] = f"a timed repeat reached chi2 {warm:.10g}, the first call {c:.10g}"
            elif (c - best) / best > rtol:
                verdicts[side] = f"chi2 {c:.10g} above best {best:.10g} by {(c - best) / best:.1e}"
            else:
                verdicts[side] = None
        return verdicts

    return gate


def plan(args: argparse.Namespace) -> tuple[list[Case], list[Side], Gate]:
    cases = []
    for token in args.sizes.split(","):
        n = int(float(token))
        fits = args.fits if args.fits is not None else (2 if n < 10**7 else 1)
        cases.append(Case(f"n={n}", {"data": str(data_file(n, RUNS_DIR / "data")), "fits": fits}))
    sides = [s for s in SIDES if not args.sides or s.name in args.sides]
    return cases, sides, make_gate(args.gate_rtol)


def case_rows(
    case: dict[str, Any], sides: list[str], subject: str, run_sides: Sequence[dict[str, Any]] = ()
) -> list[list[str]]:
    """One row per side for one N (a baseline twin's ratio is over its own side)."""
    item_key = case["key"]
    per_side = case["items"].get(item_key, {})
    rows = []
    for side in sides:
        info = case["sides"][side]
        if info["status"] != "ok":
            rows.append(
                [case["key"], side, f"**{info['status']}**: {info['reason'][:300]}"] + [""] * 11
            )
            continue
        d = per_side[side]
        q, figs = d["quality"], d["figures"]
        roof = multiples(
            figs["fit_s"]["median"], q.get("n_iter"), figs["forward_s"]["median"], len(NAMES)
        )
        if side == subject:
            ratio_cell = "(subject)"
        else:
            pair = comparison_pair(side, list(run_sides), subject)
            first = pair.split("/")[0]
            r = case["ratios"][item_key].get(pair, {})
            ratio_cell = ("" if first == subject else f"{first}/this: ") + (
                f"{r['none']}"
                if "none" in r
                else f"{fmt.ratio(r.get('fit_s'))} (first {fmt.ratio(r.get('first_s'))})"
            )
        rows.append(
            [
                case["key"],
                side,
                "passed" if d["gate"] is None else f"**failed**: {d['gate']}",
                fmt.spread(figs["fit_s"]),
                fmt.spread(figs.get("fit_cpu_s")),
                fmt.spread(figs["first_s"]),
                ratio_cell,
                fmt.spread(info.get("above_base_mb"), digits=4),
                fmt.spread(info.get("peak_rss_mb"), digits=4),
                f"{q['n_iter']} / {q['nfev']} / {q['njev']}",
                f"{q['chi2']:.10g}",
                fmt.num(q["max_rel_err_vs_truth"]),
                f"{fmt.ms(figs['forward_s']['median'])} ms",
                f"{fmt.num(roof['per_forward'])} / {fmt.num(roof['per_jacobian'])}",
            ]
        )
    return rows


def render(run: dict[str, Any]) -> str:
    """One table for all N."""
    sides = [s["name"] for s in run["sides"]]
    subject = run["subject"]
    header = [
        "N",
        "side",
        "quality gate",
        "warm fit s: median [min–max]",
        "CPU s per warm fit",
        "first call s",
        f"{subject}/side warm (first)",
        "peak RSS above data MB",
        "peak RSS MB",
        "iterations / nfev / njev",
        "final chi2",
        "max rel err vs truth",
        "1 forward pass",
        "iteration ÷ 1 forward / ÷ (p+1)=12 forwards",
    ]
    rows = [row for case in run["cases"] for row in case_rows(case, sides, subject, run["sides"])]
    loads = "; ".join(
        f"{case['key']}: {case['loadavg_start'][0]:.2f} → {case['loadavg_end'][0]:.2f}"
        for case in run["cases"]
        if "loadavg_start" in case
    )
    return fmt.table(header, rows) + (f"\n\n1-minute load average per N: {loads}." if loads else "")


BENCHMARK = Benchmark(
    name="large-lsq",
    summary="3 Gaussians + linear background (11 params) on 1e5-1e7 points vs scipy lm/trf",
    plan=plan,
    render=render,
    add_arguments=add_arguments,
)
