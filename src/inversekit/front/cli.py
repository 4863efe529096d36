"""Command line: ``inversekit demo`` (also ``python -m inversekit demo``)."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="inversekit", description="Fit differentiable physical forward models to data."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every iteration")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit a simulated three-peak spectrum and plot it")
    demo.add_argument("--output", default="inversekit-demo.png", help="figure path (PNG)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    commands.add_parser("models", help="list the shipped forward models")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    if args.command == "demo":
        from inversekit.front.demo import run_demo

        result = run_demo(args.output, progress=False if args.no_progress else None)
        return 0 if result.success else 1
    if args.command == "models":
        from inversekit.models import available

        for name, info in sorted(available().items()):
            names = ", ".join(p.name for p in info.parameters)
            print(f"{name:24s} {info.summary}\n{'':24s} parameters: {names}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
