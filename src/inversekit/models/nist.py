"""The NIST Statistical Reference Datasets (StRD) for nonlinear regression.

Each StRD file gives data, a model formula, two starting points and certified parameter
values, standard deviations and residual sum of squares computed in 128-bit arithmetic.
They are the standard accuracy test for least-squares software. :func:`read_strd` parses a
``.dat`` file; :data:`CURVES` holds each model as a torch function under the model
contract (``p`` has scalars ``b1 ... bk``); :func:`problem` builds the
:class:`~inversekit.LeastSquares` with unit weights that NIST's certified values refer to.
:data:`MODELS` gives each dataset's parameter table, its defaults NIST's first starting
point ("Start 1"), so ``MODELS[i].params()`` starts where NIST's harder test starts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from inversekit.errors import InputError
from inversekit.models.table import ModelInfo, ParamSpec

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class StrdFile:
    """The contents of one StRD nonlinear-regression file."""

    name: str
    difficulty: str
    starts: tuple[np.ndarray, np.ndarray]
    certified: np.ndarray
    certified_sd: np.ndarray
    rss: float
    x: np.ndarray  # (n,) or (k, n) for k predictors
    y: np.ndarray  # (n,) the response as fitted (log y for Nelson)

    @property
    def n_params(self) -> int:
        return len(self.certified)


def _range(lines: list[str], label: str) -> tuple[int, int]:
    for line in lines[:30]:
        m = re.search(label + r"\s*\(lines\s+(\d+)\s+to\s+(\d+)\)", line)
        if m:
            return int(m.group(1)), int(m.group(2))
    raise InputError(f"StRD file has no '{label}' line range in its header")


def read_strd(path) -> StrdFile:
    """Parse a NIST StRD nonlinear-regression ``.dat`` file."""
    path = Path(path)
    lines = path.read_text().splitlines()
    c0, c1 = _range(lines, "Certified Values")
    d0, d1 = _range(lines, "Data")
    rows = []
    for line in lines[c0 - 1 : c1]:
        m = re.match(r"\s*b\d+\s*=\s*(.*)$", line)
        if m:
            rows.append([float(v) for v in re.findall(_NUMBER, m.group(1))])
    table = np.array(rows)
    rss = next(
        float(re.findall(_NUMBER, ln.split(":", 1)[1])[0])
        for ln in lines[c0 - 1 : c1 + 10]
        if ln.strip().startswith("Residual Sum of Squares")
    )
    level = re.search(r"(Lower|Average|Higher) Level of Difficulty", "\n".join(lines[:60]))
    data = np.array([[float(v) for v in ln.split()] for ln in lines[d0 - 1 : d1] if ln.strip()])
    x = data[:, 1] if data.shape[1] == 2 else data[:, 1:].T.copy()
    y = np.log(data[:, 0]) if path.stem == "Nelson" else data[:, 0]
    return StrdFile(
        name=path.stem,
        difficulty=level.group(1) if level else "",
        starts=(table[:, 0], table[:, 1]),
        certified=table[:, 2],
        certified_sd=table[:, 3],
        rss=rss,
        x=x,
        y=y,
    )


# --- the models, one torch function per formula ------------------------------------


def _b(p: dict[str, Tensor], k: int) -> list[Tensor]:
    return [p[f"b{i + 1}"] for i in range(k)]


def misra1a(p, x):
    b1, b2 = _b(p, 2)
    return b1 * (1 - torch.exp(-b2 * x))


def chwirut(p, x):
    b1, b2, b3 = _b(p, 3)
    return torch.exp(-b1 * x) / (b2 + b3 * x)


def danwood(p, x):
    b1, b2 = _b(p, 2)
    return b1 * x**b2


def enso(p, x):
    b = _b(p, 9)
    a0, a1, a2 = 2 * math.pi * x / 12, 2 * math.pi * x / b[3], 2 * math.pi * x / b[6]
    return (
        b[0]
        + b[1] * torch.cos(a0)
        + b[2] * torch.sin(a0)
        + b[4] * torch.cos(a1)
        + b[5] * torch.sin(a1)
        + b[7] * torch.cos(a2)
        + b[8] * torch.sin(a2)
    )


def gauss(p, x):
    b = _b(p, 8)
    return (
        b[0] * torch.exp(-b[1] * x)
        + b[2] * torch.exp(-((x - b[3]) ** 2) / b[4] ** 2)
        + b[5] * torch.exp(-((x - b[6]) ** 2) / b[7] ** 2)
    )


def hahn1(p, x):
    b = _b(p, 7)
    return (b[0] + b[1] * x + b[2] * x**2 + b[3] * x**3) / (
        1 + b[4] * x + b[5] * x**2 + b[6] * x**3
    )


def kirby2(p, x):
    b = _b(p, 5)
    return (b[0] + b[1] * x + b[2] * x**2) / (1 + b[3] * x + b[4] * x**2)


def lanczos(p, x):
    b = _b(p, 6)
    return b[0] * torch.exp(-b[1] * x) + b[2] * torch.exp(-b[3] * x) + b[4] * torch.exp(-b[5] * x)


def mgh17(p, x):
    b = _b(p, 5)
    return b[0] + b[1] * torch.exp(-x * b[3]) + b[2] * torch.exp(-x * b[4])


def misra1b(p, x):
    b1, b2 = _b(p, 2)
    return b1 * (1 - (1 + b2 * x / 2) ** -2)


def misra1c(p, x):
    b1, b2 = _b(p, 2)
    return b1 * (1 - (1 + 2 * b2 * x) ** -0.5)


def misra1d(p, x):
    b1, b2 = _b(p, 2)
    return b1 * b2 * x / (1 + b2 * x)


def nelson(p, x):
    """log(y) = b1 - b2 x1 exp(-b3 x2); ``x`` has the two predictors as rows."""
    b1, b2, b3 = _b(p, 3)
    return b1 - b2 * x[0] * torch.exp(-b3 * x[1])


def roszman1(p, x):
    b = _b(p, 4)
    return b[0] - b[1] * x - torch.arctan(b[2] / (x - b[3])) / math.pi


CURVES = {
    "Misra1a": misra1a,
    "Chwirut1": chwirut,
    "Chwirut2": chwirut,
    "DanWood": danwood,
    "ENSO": enso,
    "Gauss1": gauss,
    "Gauss2": gauss,
    "Gauss3": gauss,
    "Hahn1": hahn1,
    "Kirby2": kirby2,
    "Lanczos1": lanczos,
    "Lanczos2": lanczos,
    "Lanczos3": lanczos,
    "MGH17": mgh17,
    "Misra1b": misra1b,
    "Misra1c": misra1c,
    "Misra1d": misra1d,
    "Nelson": nelson,
    "Roszman1": roszman1,
}


def problem(data: StrdFile, start: int = 0):
    """The unit-weight :class:`~inversekit.LeastSquares` of ``data`` from start 0 or 1."""
    from inversekit.problem.least_squares import LeastSquares
    from inversekit.problem.params import Params

    values = data.starts[start]
    params = Params({f"b{i + 1}": float(v) for i, v in enumerate(values)})
    return LeastSquares(CURVES[data.name], params, inputs=(torch.as_tensor(data.x),), y=data.y)


# --- parameter tables -------------------------------------------------------------------

_FORMULAS = {
    misra1a: "y = b1 (1 - exp(-b2 x))",
    chwirut: "y = exp(-b1 x) / (b2 + b3 x)",
    danwood: "y = b1 x^b2",
    enso: "y = b1 + b2 cos(2 pi x/12) + b3 sin(2 pi x/12) + b5 cos(2 pi x/b4) + ...",
    gauss: "y = b1 exp(-b2 x) + b3 exp(-(x-b4)^2/b5^2) + b6 exp(-(x-b7)^2/b8^2)",
    hahn1: "y = (b1 + b2 x + b3 x^2 + b4 x^3) / (1 + b5 x + b6 x^2 + b7 x^3)",
    kirby2: "y = (b1 + b2 x + b3 x^2) / (1 + b4 x + b5 x^2)",
    lanczos: "y = b1 exp(-b2 x) + b3 exp(-b4 x) + b5 exp(-b6 x)",
    mgh17: "y = b1 + b2 exp(-b4 x) + b3 exp(-b5 x)",
    misra1b: "y = b1 (1 - (1 + b2 x/2)^-2)",
    misra1c: "y = b1 (1 - (1 + 2 b2 x)^-1/2)",
    misra1d: "y = b1 b2 x / (1 + b2 x)",
    nelson: "log y = b1 - b2 x1 exp(-b3 x2)",
    roszman1: "y = b1 - b2 x - arctan(b3 / (x - b4)) / pi",
}

# NIST's "Start 1" of each dataset, copied from the StRD files
_STARTS: dict[str, tuple[float, ...]] = {
    "Misra1a": (500, 1e-4),
    "Chwirut1": (0.1, 0.01, 0.02),
    "Chwirut2": (0.1, 0.01, 0.02),
    "DanWood": (1, 5),
    "ENSO": (11.0, 3.0, 0.5, 40.0, -0.7, -1.3, 25.0, -0.3, 1.4),
    "Gauss1": (97.0, 0.009, 100.0, 65.0, 20.0, 70.0, 178.0, 16.5),
    "Gauss2": (96.0, 0.009, 103.0, 106.0, 18.0, 72.0, 151.0, 18.0),
    "Gauss3": (94.9, 0.009, 90.1, 113.0, 20.0, 73.8, 140.0, 20.0),
    "Hahn1": (10, -1, 0.05, -1e-5, -0.05, 0.001, -1e-6),
    "Kirby2": (2, -0.1, 0.003, -0.001, 1e-5),
    "Lanczos1": (1.2, 0.3, 5.6, 5.5, 6.5, 7.6),
    "Lanczos2": (1.2, 0.3, 5.6, 5.5, 6.5, 7.6),
    "Lanczos3": (1.2, 0.3, 5.6, 5.5, 6.5, 7.6),
    "MGH17": (50, 150, -100, 1, 2),
    "Misra1b": (500, 1e-4),
    "Misra1c": (500, 1e-4),
    "Misra1d": (500, 1e-4),
    "Nelson": (2, 1e-4, -0.01),
    "Roszman1": (0.1, -1e-5, 1000, -100),
}

#: One table per StRD dataset (``nist.Misra1a``, ...): ``b1 ... bk``, unbounded, defaults
#: NIST's Start 1 (NIST gives no units: the coefficients carry those of the formula).
MODELS = tuple(
    ModelInfo(
        name=f"nist.{name}",
        summary=f"NIST StRD {name}: {_FORMULAS[CURVES[name]]}",
        parameters=tuple(
            ParamSpec(f"b{i + 1}", "", float(v), description="coefficient of the formula")
            for i, v in enumerate(start)
        ),
    )
    for name, start in _STARTS.items()
)
