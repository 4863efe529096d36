"""Command line: ``python -m benchmarks {list,run,envs,report}``.

python -m benchmarks list
python -m benchmarks run nist large-lsq --sizes 1e5,1e6 --threads 1 --publish
python -m benchmarks run nist --baseline-src ../baseline/src   # this tree vs an older one
python -m benchmarks envs scipy nlsq          # or: envs --status
python -m benchmarks report                   # regenerate benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime

from benchmarks import envs, report
from benchmarks.machine import machine_info, versions
from benchmarks.registry import benchmarks
from benchmarks.runner import RunConfig, run_benchmark, with_baseline


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run")
    parser.add_argument("names", nargs="+", help="benchmarks to run (see: list)")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads for torch and BLAS on every side (1)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="kept rounds per side (3)")
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds first (1)")
    parser.add_argument("--sides", default="", help="comma-separated subset of sides")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="limit per child process, s (1800)"
    )
    parser.add_argument(
        "--baseline-src",
        default=None,
        metavar="SRC",
        help="also run every inversekit side with inversekit imported from the tree SRC "
        "(e.g. a worktree's src/), as a side <side>@<commit>, compared with its own side",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="copy the run to benchmarks/results/ and regenerate RESULTS.md",
    )
    for bench in benchmarks().values():
        bench.add_arguments(parser)
    return parser


def cmd_list() -> int:
    for name, bench in benchmarks().items():
        print(f"{name:10s} {bench.summary}")
    print("\npeer environments:")
    for name in envs.PEERS:
        ready, reason, found = envs.env_status(name)
        print(f"  {name:10s} {'ready ' + str(found) if ready else 'missing: ' + reason}")
    return 0


def cmd_run(argv: list[str]) -> int:
    args = _run_parser().parse_args(argv)
    args.sides = [s for s in args.sides.split(",") if s]
    known = benchmarks()
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    command = "python -m benchmarks run " + shlex.join(argv)
    machine, vers = machine_info(), versions()
    for name in args.names:
        bench = known[name]
        cases, sides, gate = bench.plan(args)
        sides = with_baseline(sides, args.baseline_src, bench.subject)
        cfg = RunConfig(
            threads=args.threads,
            repeats=args.repeats,
            warmup=args.warmup,
            timeout_s=args.timeout,
            subject=bench.subject,
        )
        run = run_benchmark(name, cases, sides, gate, cfg)
        run.update(
            command=command,
            date=datetime.now().astimezone().isoformat(timespec="seconds"),
            machine=machine,
            versions=vers,
        )
        path = report.save_run(run)
        print(report.render_run(run))
        print(f"run written to {path}")
        if args.publish:
            print(f"published to {report.publish(path)}")
    if args.publish:
        print(f"regenerated {report.write_results_md()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "list":
        return cmd_list()
    if command == "run":
        return cmd_run(rest)
    if command == "envs":
        return envs.main(rest)
    if command == "report":
        print(f"regenerated {report.write_results_md()}")
        return 0
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
