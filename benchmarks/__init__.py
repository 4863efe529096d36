"""Benchmark harness: inversekit side by side with established peers.

Run ``python -m benchmarks list`` to see the benchmarks, ``python -m benchmarks run NAME``
to measure one, ``python -m benchmarks envs PEER`` to create a peer's virtual environment,
and ``python -m benchmarks report`` to regenerate ``benchmarks/RESULTS.md``.

This package is imported inside the peers' virtual environments too (the child adapters are
run as ``python -m benchmarks.<module>`` with the repository root on ``PYTHONPATH``), so its
top level imports nothing beyond the standard library.
"""
