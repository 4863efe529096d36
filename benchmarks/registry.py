"""The benchmarks the command line knows, by name."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.runner import Case, Gate, Side


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: its command-line options, its plan (cases, sides and quality gate for
    the parsed options) and how its run renders as Markdown."""

    name: str
    summary: str
    plan: Callable[[argparse.Namespace], tuple[list[Case], list[Side], Gate]]
    render: Callable[[dict[str, Any]], str]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    subject: str = "inversekit"


def benchmarks() -> dict[str, Benchmark]:
    """Every benchmark, by name."""
    from benchmarks.batched.bench import BENCHMARK as batched
    from benchmarks.large_lsq.bench import BENCHMARK as large_lsq
    from benchmarks.nist.bench import BENCHMARK as nist
    from benchmarks.synthetic import BENCHMARK as synthetic
    from benchmarks.xpcs.bench import BENCHMARK as xpcs_kernel

    return {b.name: b for b in (nist, large_lsq, batched, xpcs_kernel, synthetic)}
