"""Command line: ``inversekit demo`` and ``inversekit models`` (also ``python -m inversekit``)."""

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
    models = commands.add_parser(
        "models", help="print the shipped forward models and their parameter tables"
    )
    models.add_argument(
        "name",
        nargs="?",
        help="one model (xpcs.static) or a family (xpcs); default: every model",
    )
    models.add_argument("--names", action="store_true", help="names and summaries only")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    if args.command == "demo":
        from inversekit.front.demo import run_demo

        result = run_demo(args.output, progress=False if args.no_progress else None)
        return 0 if result.success else 1
    if args.command == "models":
        return _models(args.name, args.names)
    return 2


def _models(name: str | None, names_only: bool) -> int:
    """Print the parameter table of model ``name``, of a family (the part before the dot)
    or of every model; exit status 2 for an unknown name."""
    from inversekit.models import available

    found = available()
    chosen = sorted(n for n in found if name is None or n == name or n.split(".", 1)[0] == name)
    if not chosen:
        families = sorted({n.split(".", 1)[0] for n in found})
        print(
            f"inversekit models: unknown model {name!r}; known models: {', '.join(sorted(found))}"
            f" (or a family: {', '.join(families)})",
            file=sys.stderr,
        )
        return 2
    if names_only:
        width = max(len(n) for n in chosen)
        for n in chosen:
            print(f"{n:{width}s}  {found[n].summary}")
        return 0
    print("\n\n".join(found[n].describe() for n in chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
