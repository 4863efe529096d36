"""The 19 NIST StRD models, written once against an array namespace, with Jacobians.

``f(x, b, xp)`` evaluates a model with ``xp`` = numpy or torch (``b`` is indexable, ``b[0]``
is NIST's ``b1``; it may be a list of 0-d tensors or a 1-d array). ``jac(x, b)`` is the
hand-written Jacobian ``df/db`` in NumPy, shape ``(n, p)``. Nelson fits ``log(y)``.
Each model carries a pattern that must match the file's model text, so that a file is never
paired with the wrong model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PI = np.pi


def f_exp_sat(x, b, xp):  # Misra1a
    return b[0] * (1 - xp.exp(-b[1] * x))


def j_exp_sat(x, b):
    e = np.exp(-b[1] * x)
    return np.column_stack([1 - e, b[0] * x * e])


def f_chwirut(x, b, xp):  # Chwirut1, Chwirut2
    return xp.exp(-b[0] * x) / (b[1] + b[2] * x)


def j_chwirut(x, b):
    e = np.exp(-b[0] * x)
    d = b[1] + b[2] * x
    return np.column_stack([-x * e / d, -e / d**2, -x * e / d**2])


def f_danwood(x, b, xp):
    return b[0] * x ** b[1]


def j_danwood(x, b):
    p = x ** b[1]
    return np.column_stack([p, b[0] * p * np.log(x)])


def f_enso(x, b, xp):
    pi = xp.pi
    a0 = 2 * pi * x / 12
    a1 = 2 * pi * x / b[3]
    a2 = 2 * pi * x / b[6]
    return (
        b[0]
        + b[1] * xp.cos(a0)
        + b[2] * xp.sin(a0)
        + b[4] * xp.cos(a1)
        + b[5] * xp.sin(a1)
        + b[7] * xp.cos(a2)
        + b[8] * xp.sin(a2)
    )


def j_enso(x, b):
    a0 = 2 * PI * x / 12
    a1 = 2 * PI * x / b[3]
    a2 = 2 * PI * x / b[6]
    c1, s1, c2, s2 = np.cos(a1), np.sin(a1), np.cos(a2), np.sin(a2)
    one = np.ones_like(x)
    # d a / d b4 = -a/b4
    d4 = (-b[4] * s1 + b[5] * c1) * (-a1 / b[3])
    d7 = (-b[7] * s2 + b[8] * c2) * (-a2 / b[6])
    return np.column_stack([one, np.cos(a0), np.sin(a0), d4, c1, s1, d7, c2, s2])


def f_gauss(x, b, xp):  # Gauss1-3
    return (
        b[0] * xp.exp(-b[1] * x)
        + b[2] * xp.exp(-((x - b[3]) ** 2) / b[4] ** 2)
        + b[5] * xp.exp(-((x - b[6]) ** 2) / b[7] ** 2)
    )


def j_gauss(x, b):
    e0 = np.exp(-b[1] * x)
    u1, u2 = x - b[3], x - b[6]
    g1 = np.exp(-(u1**2) / b[4] ** 2)
    g2 = np.exp(-(u2**2) / b[7] ** 2)
    return np.column_stack(
        [
            e0,
            -b[0] * x * e0,
            g1,
            b[2] * g1 * 2 * u1 / b[4] ** 2,
            b[2] * g1 * 2 * u1**2 / b[4] ** 3,
            g2,
            b[5] * g2 * 2 * u2 / b[7] ** 2,
            b[5] * g2 * 2 * u2**2 / b[7] ** 3,
        ]
    )


def f_rat33(x, b, xp):  # Hahn1
    return (b[0] + b[1] * x + b[2] * x**2 + b[3] * x**3) / (
        1 + b[4] * x + b[5] * x**2 + b[6] * x**3
    )


def j_rat33(x, b):
    N = b[0] + b[1] * x + b[2] * x**2 + b[3] * x**3
    D = 1 + b[4] * x + b[5] * x**2 + b[6] * x**3
    one = np.ones_like(x)
    return np.column_stack(
        [one / D, x / D, x**2 / D, x**3 / D, -N * x / D**2, -N * x**2 / D**2, -N * x**3 / D**2]
    )


def f_kirby2(x, b, xp):
    return (b[0] + b[1] * x + b[2] * x**2) / (1 + b[3] * x + b[4] * x**2)


def j_kirby2(x, b):
    N = b[0] + b[1] * x + b[2] * x**2
    D = 1 + b[3] * x + b[4] * x**2
    return np.column_stack([1 / D, x / D, x**2 / D, -N * x / D**2, -N * x**2 / D**2])


def f_lanczos(x, b, xp):  # Lanczos1-3
    return b[0] * xp.exp(-b[1] * x) + b[2] * xp.exp(-b[3] * x) + b[4] * xp.exp(-b[5] * x)


def j_lanczos(x, b):
    e1, e2, e3 = np.exp(-b[1] * x), np.exp(-b[3] * x), np.exp(-b[5] * x)
    return np.column_stack([e1, -b[0] * x * e1, e2, -b[2] * x * e2, e3, -b[4] * x * e3])


def f_mgh17(x, b, xp):
    return b[0] + b[1] * xp.exp(-x * b[3]) + b[2] * xp.exp(-x * b[4])


def j_mgh17(x, b):
    e4, e5 = np.exp(-x * b[3]), np.exp(-x * b[4])
    return np.column_stack([np.ones_like(x), e4, e5, -b[1] * x * e4, -b[2] * x * e5])


def f_misra1b(x, b, xp):
    return b[0] * (1 - (1 + b[1] * x / 2) ** (-2))


def j_misra1b(x, b):
    u = 1 + b[1] * x / 2
    return np.column_stack([1 - u**-2, b[0] * x * u**-3])


def f_misra1c(x, b, xp):
    return b[0] * (1 - (1 + 2 * b[1] * x) ** (-0.5))


def j_misra1c(x, b):
    u = 1 + 2 * b[1] * x
    return np.column_stack([1 - u**-0.5, b[0] * x * u**-1.5])


def f_misra1d(x, b, xp):
    return b[0] * b[1] * x * ((1 + b[1] * x) ** (-1))


def j_misra1d(x, b):
    u = 1 + b[1] * x
    return np.column_stack([b[1] * x / u, b[0] * x / u**2])


def f_nelson(x, b, xp):  # x = (x1, x2); response log(y)
    x1, x2 = x[0], x[1]
    return b[0] - b[1] * x1 * xp.exp(-b[2] * x2)


def j_nelson(x, b):
    x1, x2 = x[0], x[1]
    e = np.exp(-b[2] * x2)
    return np.column_stack([np.ones_like(x1), -x1 * e, b[1] * x1 * x2 * e])


def f_roszman1(x, b, xp):
    return b[0] - b[1] * x - xp.arctan(b[2] / (x - b[3])) / xp.pi


def j_roszman1(x, b):
    u = x - b[3]
    q = u**2 + b[2] ** 2
    return np.column_stack([np.ones_like(x), -x, -(u / q) / PI, -(b[2] / q) / PI])


@dataclass(frozen=True)
class NistModel:
    """A model, its NumPy Jacobian, a guard pattern on the file's formula, and whether the
    response is ``log(y)``."""

    f: Callable
    jac: Callable[[np.ndarray, np.ndarray], np.ndarray]
    pattern: str
    log_response: bool = False


_GAUSS = r"b3\*exp\(-\(x-b4\)\*\*2/b5\*\*2\)"
_LANCZOS = r"b1\*exp\(-b2\*x\)\+b3\*exp\(-b4\*x\)\+b5\*exp\(-b6\*x\)"

MODELS: dict[str, NistModel] = {
    "Misra1a": NistModel(f_exp_sat, j_exp_sat, r"y=b1\*\(1-exp\[-b2\*x\]\)"),
    "Chwirut1": NistModel(f_chwirut, j_chwirut, r"y=exp\[-b1\*x\]/\(b2\+b3\*x\)"),
    "Chwirut2": NistModel(f_chwirut, j_chwirut, r"y=exp\(-b1\*x\)/\(b2\+b3\*x\)"),
    "DanWood": NistModel(f_danwood, j_danwood, r"y=b1\*x\*\*b2"),
    "ENSO": NistModel(f_enso, j_enso, r"b5\*cos\(2\*pi\*x/b4\)"),
    "Gauss1": NistModel(f_gauss, j_gauss, _GAUSS),
    "Gauss2": NistModel(f_gauss, j_gauss, _GAUSS),
    "Gauss3": NistModel(f_gauss, j_gauss, _GAUSS),
    "Hahn1": NistModel(
        f_rat33,
        j_rat33,
        r"\(b1\+b2\*x\+b3\*x\*\*2\+b4\*x\*\*3\)/\(1\+b5\*x\+b6\*x\*\*2\+b7\*x\*\*3\)",
    ),
    "Kirby2": NistModel(f_kirby2, j_kirby2, r"\(b1\+b2\*x\+b3\*x\*\*2\)/\(1\+b4\*x\+b5\*x\*\*2\)"),
    "Lanczos1": NistModel(f_lanczos, j_lanczos, _LANCZOS),
    "Lanczos2": NistModel(f_lanczos, j_lanczos, _LANCZOS),
    "Lanczos3": NistModel(f_lanczos, j_lanczos, _LANCZOS),
    "MGH17": NistModel(f_mgh17, j_mgh17, r"y=b1\+b2\*exp\[-x\*b4\]\+b3\*exp\[-x\*b5\]"),
    "Misra1b": NistModel(f_misra1b, j_misra1b, r"y=b1\*\(1-\(1\+b2\*x/2\)\*\*\(-2\)\)"),
    "Misra1c": NistModel(f_misra1c, j_misra1c, r"y=b1\*\(1-\(1\+2\*b2\*x\)\*\*\(-\.5\)\)"),
    "Misra1d": NistModel(f_misra1d, j_misra1d, r"y=b1\*b2\*x\*\(\(1\+b2\*x\)\*\*\(-1\)\)"),
    "Nelson": NistModel(f_nelson, j_nelson, r"log\[y\]=b1-b2\*x1\*exp\[-b3\*x2\]", True),
    "Roszman1": NistModel(f_roszman1, j_roszman1, r"y=b1-b2\*x-arctan\[b3/\(x-b4\)\]/pi"),
}


def get_model(name: str, formula: str) -> NistModel:
    """The model for file ``name``, checked against the file's model text."""
    model = MODELS[name]
    flat = re.sub(r"\s+", "", formula)
    if not re.search(model.pattern, flat):
        raise ValueError(f"{name}: model text {flat!r} does not match {model.pattern!r}")
    return model


def response(model: NistModel, y: np.ndarray) -> np.ndarray:
    """The response actually fitted: ``y``, or ``log(y)`` for Nelson."""
    return np.log(y) if model.log_response else y
