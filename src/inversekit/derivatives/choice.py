"""Which derivative engine a least-squares problem gets (``jacobian=`` option), and why."""

from __future__ import annotations

from inversekit.derivatives.compiled import CompiledJacobian, EagerJacobian
from inversekit.derivatives.complex_step import ComplexStepJacobian
from inversekit.errors import InputError

JACOBIAN_ENGINES = ("auto", "eager", "compiled", "complex-step")
# "auto" compiles when n·p (data points x free parameters) reaches this: below it a cold
# compile (about 10-25 s) costs more than it saves over a fit.
AUTO_COMPILE_MIN_WORK = 10_000_000
# ... and uses the complex step up to this n·p, where per-call overhead of forward-mode AD
# dominates (about 10x faster on the NIST problems). Measured: at n·p = 1.1e6 (11 parameters,
# 1e5 points) the p x n complex batch is already slower than forward mode (0.21 s against
# 0.13 s per normal equations), being bound by memory traffic rather than dispatch.
AUTO_COMPLEX_MAX_WORK = 200_000
AUTO_MAX_PARAMS = 64  # both fast engines push all p directions at once


def make_jacobian(problem, option: str = "auto"):
    """The derivative engine named by ``option`` for ``problem`` (see :class:`LeastSquares`)."""
    if option not in JACOBIAN_ENGINES:
        raise InputError(f"jacobian must be one of {JACOBIAN_ENGINES}, got {option!r}")
    if option == "eager":
        return EagerJacobian(problem, reason="requested")
    if option == "complex-step":
        return ComplexStepJacobian(problem)
    if option == "compiled":
        return CompiledJacobian(problem)
    p = problem.params.n_free
    work = problem.y.numel() * p
    if p > AUTO_MAX_PARAMS:
        return EagerJacobian(problem, reason=f"auto: {p} parameters > {AUTO_MAX_PARAMS}")
    if work <= AUTO_COMPLEX_MAX_WORK:
        engine = ComplexStepJacobian(problem)
    elif work < AUTO_COMPILE_MIN_WORK:
        return EagerJacobian(problem, reason=f"auto: medium size, n·p = {work}")
    elif not problem.rowwise:
        return EagerJacobian(problem, reason="auto: not rowwise, so no chunked compiled kernel")
    else:
        engine = CompiledJacobian(problem)
    engine.reason = f"auto (n·p = {work}): {engine.reason}"
    return engine
