"""A synthetic benchmark that checks the harness itself, in seconds and without peers.

Its sides are stand-ins whose behaviour is set by options: how long a "fit" sleeps, which
figure to report in which round, how many MiB to allocate, how large an error to report
(the quality gate passes errors up to 1e-3), whether to raise. ``python -m benchmarks run
synthetic`` runs a fast, a slow, a sloppy and a missing side; the harness tests use the
same child with other options. Run as a module, this file is the child.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks import fmt
from benchmarks.child import Probe, serve
from benchmarks.registry import Benchmark
from benchmarks.runner import Case, Gate, Side

CHILD = "benchmarks.synthetic"
TOLERANCE = 1e-3


def work(task: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """Sleep, allocate, raise or report scripted figures, as the side's options say."""
    opts = task["options"]
    probe.mark_base()
    if opts.get("raise"):
        raise RuntimeError(opts["raise"])
    block = None
    if opts.get("allocate_mb"):
        import numpy as np

        block = np.ones(int(opts["allocate_mb"] * 2**20) // 8)  # written, so resident
    t = time.perf_counter()
    time.sleep(float(opts.get("sleep", 0.0)))
    fit_s = time.perf_counter() - t
    if "values" in opts:
        fit_s = float(opts["values"][task["round"] % len(opts["values"])])
    quality = {"error": float(opts.get("error", 0.0)), "allocated": block is not None}
    return {"items": {"fit": {"figures": {"fit_s": fit_s}, "quality": quality}}}


def gate(item: str, quality_by_side: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """Pass where the reported error is at most ``TOLERANCE``."""
    return {
        side: None if q["error"] <= TOLERANCE else f"error {q['error']:g} > {TOLERANCE:g}"
        for side, q in quality_by_side.items()
    }


SIDES = (
    Side("fast", CHILD, None, {"sleep": 0.02}),
    Side("slow", CHILD, None, {"sleep": 0.08}),
    Side("sloppy", CHILD, None, {"sleep": 0.005, "error": 0.1}),
    Side("absent", CHILD, "absent", {}),
)


def plan(args: argparse.Namespace) -> tuple[list[Case], list[Side], Gate]:
    sides = [s for s in SIDES if not args.sides or s.name in args.sides]
    return [Case("fit", {})], sides, gate


def render(run: dict[str, Any]) -> str:
    """One row per side."""
    case = run["cases"][0]
    rows = []
    for s in run["sides"]:
        info = case["sides"][s["name"]]
        d = case["items"].get("fit", {}).get(s["name"])
        if info["status"] != "ok" or d is None:
            rows.append([s["name"], f"**{info['status']}**: {info['reason']}", "", "", ""])
            continue
        r = case["ratios"]["fit"].get(f"{run['subject']}/{s['name']}", {})
        rows.append(
            [
                s["name"],
                "passed" if d["gate"] is None else f"**failed**: {d['gate']}",
                fmt.spread(d["figures"]["fit_s"], scale=1e3),
                r.get("none", fmt.ratio(r.get("fit_s"))) if r else "(subject)",
                fmt.spread(info["peak_rss_mb"]),
            ]
        )
    header = ["side", "quality gate", "fit ms", f"{run['subject']}/side", "peak RSS MB"]
    return fmt.table(header, rows)


BENCHMARK = Benchmark(
    name="synthetic",
    summary="stand-in sides (fast, slow, sloppy, missing) that check the harness itself",
    plan=plan,
    render=render,
    subject="fast",
)


if __name__ == "__main__":
    serve(work)
