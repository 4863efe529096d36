"""Run the sides of a benchmark alternately in fresh processes and compare them honestly.

A *benchmark* is a list of cases (identical inputs for every side) and a list of sides
(inversekit and its peers, each a child module run in some environment). For every case the
runner starts one fresh child per side per round, in the order A B C, A B C, ...: the first
``warmup`` rounds of the first case are discarded (cold file caches, first imports), the next
``repeats`` rounds are kept. Every figure a child reports is summarised over the kept rounds
as median, min and max; each side's result then goes through the benchmark's quality gate, and
the subject (inversekit) is compared with every peer, pair by pair, only where both passed.
A side whose environment is missing is reported as missing with the reason.

Before/after: :func:`with_baseline` gives every project-interpreter side of the subject a
twin ``<side>@<rev>`` that runs the same child adapter with an older source tree's ``src``
first on ``PYTHONPATH``; the twin is compared with its own side (``<side>/<side>@<rev>``),
and a child that imported inversekit from anywhere else is reported as failed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import envs
from benchmarks.child import THREAD_VARS
from benchmarks.paths import REPO

Quality = dict[str, Any]
#: ``gate(item, quality_by_side) -> {side: None if passed else reason}``
Gate = Callable[[str, dict[str, Quality]], dict[str, str | None]]


@dataclass(frozen=True)
class Side:
    """One contender: a child module run in the project's interpreter (``env=None``) or in a
    peer's environment, with its own options."""

    name: str
    module: str
    env: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: a source folder put first on ``PYTHONPATH`` (an older tree's ``src``), and the side
    #: this one is the baseline twin of
    pythonpath: str | None = None
    baseline_of: str | None = None


def tree_label(src: str | Path) -> str:
    """A short name for the source tree ``src``: its git commit (``+dirty`` where files under
    ``src`` differ from it), else the folder's name."""
    src = Path(src)

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(
                ["git", "-C", str(src), *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    rev = git("rev-parse", "--short=7", "HEAD")
    if not rev:
        return src.resolve().parent.name
    return rev + ("+dirty" if git("status", "--porcelain", "--", ".") else "")


def with_baseline(sides: list[Side], src: str | Path | None, subject: str) -> list[Side]:
    """``sides`` with, after each project-interpreter side of ``subject`` (its name starts
    with it), a twin ``<name>@<rev>`` that imports inversekit from the tree ``src``."""
    if not src:
        return sides
    src_path = Path(src).expanduser().resolve()
    if not (src_path / "inversekit" / "__init__.py").is_file():
        raise FileNotFoundError(f"{src_path} holds no inversekit package (give the tree's src)")
    label = tree_label(src_path)
    out: list[Side] = []
    for side in sides:
        out.append(side)
        if side.env is None and side.name.startswith(subject) and side.baseline_of is None:
            out.append(
                Side(
                    f"{side.name}@{label}",
                    side.module,
                    None,
                    dict(side.options),
                    pythonpath=str(src_path),
                    baseline_of=side.name,
                )
            )
    return out


def comparison_pair(side: str, sides: list[dict[str, Any]], subject: str) -> str:
    """The ratio a table shows for ``side``: ``<base>/<side>`` for a baseline twin (the same
    adapter on the current tree over the older one), else ``<subject>/<side>``."""
    base = next((s.get("baseline_of") for s in sides if s["name"] == side), None)
    return f"{base or subject}/{side}"


@dataclass(frozen=True)
class Case:
    """One set of inputs, identical for every side (``task`` is JSON; large arrays travel as
    ``.npz`` files named in it)."""

    key: str
    task: dict[str, Any]


@dataclass
class RunConfig:
    """How to run: thread count for every side, rounds kept and discarded, time limit."""

    threads: int = 1
    repeats: int = 3
    warmup: int = 1
    timeout_s: float = 1800.0
    subject: str = "inversekit"
    log: Callable[[str], None] = print


def resolve_python(side: Side) -> tuple[str | None, str]:
    """The interpreter that runs ``side``, or ``(None, why it is missing)``."""
    if side.env is None:
        return sys.executable, ""
    ready, reason, _ = envs.env_status(side.env)
    if not ready:
        return None, f"peer environment '{side.env}': {reason}"
    return str(envs.env_python(side.env)), ""


def child_env(
    threads: int, cache_dir: Path | None = None, src: str | None = None
) -> dict[str, str]:
    """Environment of a child: the same explicit thread count for every library, the
    repository root on ``PYTHONPATH`` so the child can import ``benchmarks``, and, given
    ``cache_dir``, a private empty compile cache (inversekit's and inductor's), so that
    every child's first call pays the same compilation as a new user's. Given ``src`` (an
    older tree's ``src``), that folder comes first on ``PYTHONPATH``, ahead of the project
    venv's editable install of this tree, so ``import inversekit`` finds the older code."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["INVERSEKIT_CACHE"] = str(cache_dir)
        env["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir / "inductor")
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if src:
        env["PYTHONPATH"] = str(src) + os.pathsep + env["PYTHONPATH"]
    env["JAX_PLATFORMS"] = "cpu"
    if threads == 1:
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"  # one Eigen thread per op
    env.pop("PYTHONSTARTUP", None)
    return env


def run_child(
    python: str, side: Side, case: Case, round_no: int, cfg: RunConfig, workdir: Path
) -> dict[str, Any]:
    """Run one fresh child; return what it wrote, or ``{"error": ...}``."""
    stem = f"{side.name}-{round_no}"
    task_path, out_path = workdir / f"{stem}.task.json", workdir / f"{stem}.out.json"
    out_path.unlink(missing_ok=True)
    task = {
        "case": case.task,
        "options": side.options,
        "side": side.name,
        "round": round_no,
        "threads": cfg.threads,
    }
    task_path.write_text(json.dumps(task))
    cmd = [python, "-m", side.module, str(task_path), str(out_path)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            env=child_env(cfg.threads, workdir / f"{stem}.cache", side.pythonpath),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=cfg.timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {cfg.timeout_s:.0f} s", "process_s": cfg.timeout_s}
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0 or not out_path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {
            "error": f"child exited with {proc.returncode}: " + " | ".join(tail),
            "process_s": elapsed,
        }
    out = json.loads(out_path.read_text())
    out["process_s"] = elapsed
    if side.pythonpath and "error" not in out:
        found = out.get("inversekit_file")
        if not found or not Path(found).resolve().is_relative_to(Path(side.pythonpath).resolve()):
            return {
                "error": f"imported inversekit from {found}, not from {side.pythonpath}",
                "process_s": elapsed,
            }
    return out


def summarise(values: list[float]) -> dict[str, Any]:
    """Median, min and max of the finite values (``None`` where there are none)."""
    vals = [float(v) for v in values if v is not None and v == v]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "n": len(vals),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` where both are finite and ``b`` is not zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def run_case(
    case: Case,
    sides: list[Side],
    gate: Gate,
    cfg: RunConfig,
    warmup: int,
    order_log: list[str],
) -> dict[str, Any]:
    """All rounds of one case, then per-item summaries, gates and ratios."""
    pythons: dict[str, str] = {}
    side_info: dict[str, dict[str, Any]] = {}
    for side in sides:
        python, reason = resolve_python(side)
        if python is None:
            side_info[side.name] = {"status": "missing", "reason": reason}
        else:
            pythons[side.name] = python
            side_info[side.name] = {"status": "ok", "reason": "", "env": side.env or "project"}

    outputs: dict[str, list[dict[str, Any]]] = {name: [] for name in pythons}
    load_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="ik-bench-") as tmp:
        for round_no in range(warmup + cfg.repeats):
            kept = round_no >= warmup
            for side in sides:
                if side.name not in pythons or side_info[side.name]["status"] == "failed":
                    continue
                order_log.append(f"{case.key}:{round_no}:{side.name}")
                out = run_child(pythons[side.name], side, case, round_no, cfg, Path(tmp))
                label = "" if kept else " (warm-up, discarded)"
                if "error" in out:
                    side_info[side.name].update(status="failed", reason=out["error"])
                    cfg.log(f"  {case.key} {side.name}: failed: {out['error'][:200]}")
                    continue
                cfg.log(f"  {case.key} {side.name} round {round_no}: {out['wall_s']:.2f} s{label}")
                if kept:
                    outputs[side.name].append(out)

    for name, outs in outputs.items():
        info = side_info[name]
        if not outs:
            continue
        info["peak_rss_mb"] = summarise([o["peak_rss_mb"] for o in outs])
        info["base_rss_mb"] = summarise([o.get("base_rss_mb") for o in outs])
        info["above_base_mb"] = summarise(
            [o["peak_rss_mb"] - o["base_rss_mb"] for o in outs if o.get("base_rss_mb") is not None]
        )
        info["wall_s"] = summarise([o["wall_s"] for o in outs])
        info["cpu_s"] = summarise([o["cpu_s"] for o in outs])
        info["threads"] = outs[0]["threads"]
        info["versions"] = outs[0]["versions"]
        info["info"] = outs[0].get("info", {})
        info["inversekit_file"] = outs[0].get("inversekit_file")

    items = _items(outputs, side_info, gate)
    return {
        "key": case.key,
        "task": case.task,
        "sides": side_info,
        "items": items,
        "ratios": _ratios(
            items,
            [s.name for s in sides],
            cfg.subject,
            [(s.baseline_of, s.name) for s in sides if s.baseline_of],
        ),
        "loadavg_start": load_start,
        "loadavg_end": list(os.getloadavg()),
    }


def _items(
    outputs: dict[str, list[dict[str, Any]]], side_info: dict[str, dict[str, Any]], gate: Gate
) -> dict[str, dict[str, Any]]:
    keys: list[str] = []
    for name, outs in outputs.items():
        if side_info[name]["status"] != "ok":
            continue
        for out in outs:
            keys.extend(k for k in out["items"] if k not in keys)
    items: dict[str, dict[str, Any]] = {}
    for key in keys:
        per_side: dict[str, dict[str, Any]] = {}
        for name, outs in outputs.items():
            if side_info[name]["status"] != "ok":
                continue
            rounds = [o["items"][key] for o in outs if key in o["items"]]
            if not rounds:
                continue
            figs = sorted({f for r in rounds for f in r.get("figures", {})})
            per_side[name] = {
                "figures": {f: summarise([r["figures"].get(f) for r in rounds]) for f in figs},
                "quality": rounds[0].get("quality", {}),
                # False flags a solver whose result changed between fresh processes
                "same_result_every_round": all(
                    r.get("quality") == rounds[0].get("quality") for r in rounds[1:]
                ),
            }
        verdicts = gate(key, {name: d["quality"] for name, d in per_side.items()})
        for name, d in per_side.items():
            d["gate"] = verdicts.get(name)
        items[key] = per_side
    return items


def _ratios(
    items: dict[str, dict[str, Any]],
    side_names: list[str],
    subject: str,
    extra_pairs: list[tuple[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{item: {"subject/peer": {figure: ratio of medians} or {"none": why}}}``, and the
    same for each ``(side, baseline twin)`` of ``extra_pairs``."""
    wanted = [(subject, peer) for peer in side_names if peer != subject]
    wanted += [p for p in extra_pairs or [] if p not in wanted and p[0] in side_names]
    out: dict[str, dict[str, Any]] = {}
    for key, per_side in items.items():
        pairs: dict[str, Any] = {}
        for first, peer in wanted:
            pair = f"{first}/{peer}"
            a, b = per_side.get(first), per_side.get(peer)
            if a is None or b is None:
                pairs[pair] = {"none": f"{first if a is None else peer} has no result"}
            elif a["gate"] or b["gate"]:
                who = first if a["gate"] else peer
                pairs[pair] = {"none": f"{who} failed the quality gate"}
            else:
                pairs[pair] = {
                    f: ratio(a["figures"][f]["median"], b["figures"][f]["median"])
                    for f in a["figures"]
                    if f in b["figures"]
                }
        out[key] = pairs
    return out


def run_benchmark(
    name: str, cases: list[Case], sides: list[Side], gate: Gate, cfg: RunConfig
) -> dict[str, Any]:
    """Every case of one benchmark; the warm-up rounds are spent on the first case only."""
    order: list[str] = []
    load_start = list(os.getloadavg())
    t0 = time.time()
    results = []
    for i, case in enumerate(cases):
        cfg.log(f"{name}: case {case.key}")
        results.append(run_case(case, sides, gate, cfg, cfg.warmup if i == 0 else 0, order))
    return {
        "benchmark": name,
        "threads": cfg.threads,
        "repeats": cfg.repeats,
        "warmup": cfg.warmup,
        "subject": cfg.subject,
        "sides": [
            {
                "name": s.name,
                "env": s.env or "project",
                "module": s.module,
                "options": s.options,
                "pythonpath": s.pythonpath,
                "baseline_of": s.baseline_of,
            }
            for s in sides
        ],
        "loadavg_start": load_start,
        "loadavg_end": list(os.getloadavg()),
        "elapsed_s": time.time() - t0,
        "order": order,
        "cases": results,
    }
