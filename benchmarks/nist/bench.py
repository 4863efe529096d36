"""The ``nist`` benchmark: every StRD file, both starts, inversekit against scipy and lmfit.

Sides: inversekit at its defaults; scipy ``least_squares`` lm and trf with the analytic
Jacobian, lm with a torch-AD Jacobian, lmfit and nlsq, all at the libraries' *default*
options; scipy lm with 1e-15 tolerances as the reference of what float64 can reach. Quality
gate, per case: the parameters agree with the certified values to ``--gate-lre`` digits
(minimum log relative error over the parameters; default 6). Times are compared only on
cases where both sides pass. Lanczos1's certified RSS (1.4e-25) is out of float64's reach:
its RSS and standard errors score about 3 for every solver, its parameters do not.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks import fmt
from benchmarks.paths import nist_dir
from benchmarks.registry import Benchmark
from benchmarks.roofline import multiples
from benchmarks.runner import Case, Gate, Side, comparison_pair

CHILD = "benchmarks.nist.child"
SIDES = (
    Side("inversekit", CHILD, None, {"solver": "inversekit"}),
    Side("scipy-lm", CHILD, "scipy", {"solver": "scipy", "method": "lm", "jac": "analytic"}),
    Side("scipy-trf", CHILD, "scipy", {"solver": "scipy", "method": "trf", "jac": "analytic"}),
    Side("scipy-lm-ad", CHILD, "scipy", {"solver": "scipy", "method": "lm", "jac": "torch-ad"}),
    Side("lmfit", CHILD, "scipy", {"solver": "lmfit"}),
    Side("nlsq", CHILD, "nlsq", {"solver": "nlsq"}),
    Side(
        "scipy-lm-tight",
        CHILD,
        "scipy",
        {"solver": "scipy", "method": "lm", "jac": "analytic", "tight": True},
    ),
)
DESCRIPTIONS = {
    "inversekit": 'inversekit `fit` defaults (LM, jacobian="auto": complex step here)',
    "scipy-lm": "scipy least_squares lm, analytic J, defaults",
    "scipy-trf": "scipy least_squares trf, analytic J, defaults",
    "scipy-lm-ad": "scipy least_squares lm, torch-AD J (jacfwd), defaults",
    "lmfit": "lmfit leastsq, forward differences, defaults",
    "nlsq": "nlsq curve_fit (JAX AD, TRF), one CurveFit per file, defaults",
    "scipy-lm-tight": "scipy lm, analytic J, tolerances 1e-15 (reference)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("nist")
    group.add_argument("--files", help="comma-separated StRD names (default: every file)")
    group.add_argument(
        "--nist-reps", type=int, default=5, help="warm fits timed per case (default 5)"
    )
    group.add_argument(
        "--gate-lre", type=float, default=6.0, help="digits the parameters must reach (6)"
    )


def make_gate(min_lre: float) -> Gate:
    """Pass where the fit raised nothing and every parameter has ``min_lre`` digits."""

    def gate(item: str, quality_by_side: dict[str, dict[str, Any]]) -> dict[str, str | None]:
        verdicts: dict[str, str | None] = {}
        for side, q in quality_by_side.items():
            if q.get("error"):
                verdicts[side] = "raised " + q["error"][:120]
            elif q["lre_params"] < min_lre:
                verdicts[side] = f"LRE(params) {q['lre_params']:.1f} < {min_lre:g}"
            else:
                verdicts[side] = None
        return verdicts

    return gate


def plan(args: argparse.Namespace) -> tuple[list[Case], list[Side], Gate]:
    files = [f.strip() for f in args.files.split(",")] if args.files else None
    task = {"folder": str(nist_dir()), "files": files, "reps": args.nist_reps}
    sides = [s for s in SIDES if not args.sides or s.name in args.sides]
    return [Case("all", task)], sides, make_gate(args.gate_lre)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _description(side: str, run_sides: list[dict[str, Any]]) -> str:
    spec = next((s for s in run_sides if s["name"] == side), {})
    if spec.get("baseline_of"):  # a baseline twin: same adapter, an older tree
        base = spec["baseline_of"]
        return f"{DESCRIPTIONS.get(base, base)}; inversekit from `{spec['pythonpath']}`"
    return DESCRIPTIONS.get(side, "")


def side_summary(
    case: dict[str, Any], side: str, subject: str, run_sides: Sequence[dict[str, Any]] = ()
) -> list[str]:
    """One row of the summary table."""
    info = case["sides"][side]
    what = _description(side, list(run_sides))
    if info["status"] != "ok":
        return [side, what, f"**{info['status']}**: {info['reason']}"] + [""] * 9
    per_item = [(k, v[side]) for k, v in case["items"].items() if side in v]
    qs = [d["quality"] for _, d in per_item]
    passed = [(k, d) for k, d in per_item if d["gate"] is None]
    fit_ms = _median([d["figures"]["fit_s"]["median"] for _, d in passed])
    first_ms = _median([d["figures"]["first_s"]["median"] for _, d in passed])
    iters = [
        multiples(
            d["figures"]["fit_s"]["median"],
            d["quality"].get("n_iter"),
            d["figures"]["forward_s"]["median"],
            len(d["quality"]["b"]),
        )
        for _, d in passed
    ]
    per_fwd = _median([m["per_forward"] for m in iters if m["per_forward"] is not None])
    per_jac = _median([m["per_jacobian"] for m in iters if m["per_jacobian"] is not None])
    pair = comparison_pair(side, list(run_sides), subject)
    first = pair.split("/")[0]
    prefix = "" if first == subject else f"{first}/this: "
    if side == subject:
        ratio_cell = "(subject)"
    elif first not in case["sides"]:
        ratio_cell = f"– ({first} not run)"
    else:
        ratios = [
            r["fit_s"]
            for r in (case["ratios"][k].get(pair, {}) for k in case["items"])
            if r.get("fit_s") is not None
        ]
        ratio_cell = prefix + (
            f"{fmt.ratio(statistics.median(ratios))} [{fmt.ratio(min(ratios))}–"
            f"{fmt.ratio(max(ratios))}] ({len(ratios)})"
            if ratios
            else "– (no case passed by both)"
        )
    return [
        side,
        what,
        f"{len(passed)}/{len(per_item)}",
        str(sum(q["lre_params"] >= 6 for q in qs)),
        str(sum(q["lre_se"] >= 6 for q in qs)),
        str(sum(q["lre_rss"] >= 6 for q in qs)),
        str(sum(bool(q.get("success")) and q["lre_params"] < 4 for q in qs)),
        fmt.num(fit_ms * 1e3 if fit_ms else None),
        fmt.num(first_ms * 1e3 if first_ms else None),
        ratio_cell,
        f"{fmt.num(per_fwd)} / {fmt.num(per_jac)}",
        fmt.spread(info.get("peak_rss_mb"), digits=4),
    ]


def render(run: dict[str, Any]) -> str:
    """Summary table over all cases, then LRE and time per case and side."""
    case = run["cases"][0]
    subject = run["subject"]
    sides = [s["name"] for s in run["sides"]]
    header = [
        "side",
        "what",
        "cases passing gate",
        "params LRE ≥ 6",
        "SE LRE ≥ 6",
        "RSS LRE ≥ 6",
        '"success" but params LRE < 4',
        "median warm ms/fit (passing cases)",
        "median first-call ms",
        f"{subject}/side warm time: median [min–max] over cases both pass (n)",
        "LM iteration ÷ 1 forward / ÷ (p+1) forwards (median)",
        "peak RSS MB",
    ]
    out = [fmt.table(header, [side_summary(case, s, subject, run["sides"]) for s in sides])]
    out.append(
        "\nPer case: minimum LRE of the parameters / of the standard errors, and the median "
        "warm time per fit in ms. ✗ marks a case that misses the quality gate.\n"
    )
    rows = []
    for key, per_side in case["items"].items():
        row = [key]
        for s in sides:
            d = per_side.get(s)
            if d is None:
                row.append("–")
                continue
            q = d["quality"]
            mark = "✗ " if d["gate"] else ""
            t = d["figures"].get("fit_s", {}).get("median")
            row.append(f"{mark}{q['lre_params']:.1f} / {q['lre_se']:.1f} · {fmt.ms(t)}")
        rows.append(row)
    out.append(fmt.table(["case"] + sides, rows))
    return "\n".join(out)


BENCHMARK = Benchmark(
    name="nist",
    summary="NIST StRD: 19 files x 2 starts; LRE of parameters, SEs, RSS; ms per fit",
    plan=plan,
    render=render,
    add_arguments=add_arguments,
)
