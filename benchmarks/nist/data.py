"""NIST StRD nonlinear-regression files: parsing and scoring.

The parser follows each file's own "File Format" header (line ranges of the certified values
and of the data) and extracts the model text, both starting points, the certified parameters
and standard deviations, the residual sum of squares and the observations. Scoring is NIST's
log relative error, capped at 11 digits. NumPy only: this module runs in the peers' envs too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LRE_CAP = 11.0
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class NistProblem:
    """One StRD file. ``x`` has shape ``(n,)``, or ``(k, n)`` for ``k`` predictors."""

    name: str
    difficulty: str
    formula: str
    starts: tuple[np.ndarray, np.ndarray]
    cert: np.ndarray
    cert_sd: np.ndarray
    rss: float
    nobs: int
    x: np.ndarray
    y: np.ndarray

    @property
    def nparams(self) -> int:
        return len(self.cert)


def _line_range(lines: list[str], label: str) -> tuple[int, int]:
    for line in lines[:30]:
        m = re.search(label + r"\s*\(lines\s+(\d+)\s+to\s+(\d+)\)", line)
        if m:
            return int(m.group(1)), int(m.group(2))
    raise ValueError(f"no '{label}' line range in the header")


def _header_number(lines: list[str], label: str) -> float:
    for line in lines:
        if line.strip().startswith(label):
            return float(re.findall(_NUM, line.split(":", 1)[1])[0])
    raise ValueError(f"missing '{label}'")


def parse_file(path: str | Path) -> NistProblem:
    """Parse one StRD ``.dat`` file."""
    path = Path(path)
    lines = path.read_text().splitlines()
    c0, c1 = _line_range(lines, "Certified Values")
    d0, d1 = _line_range(lines, "Data")

    rows = []
    for line in lines[c0 - 1 : c1]:
        m = re.match(r"\s*b(\d+)\s*=\s*(.*)$", line)
        if m:
            nums = [float(v) for v in re.findall(_NUM, m.group(2))]
            if len(nums) != 4 or int(m.group(1)) != len(rows) + 1:
                raise ValueError(f"{path.name}: bad parameter line {line!r}")
            rows.append(nums)
    s1, s2, cert, cert_sd = np.array(rows).T.copy()

    block = lines[c0 - 1 : c1 + 10]
    rss = _header_number(block, "Residual Sum of Squares")
    nobs = int(_header_number(block, "Number of Observations"))

    model_at = next(i for i, line in enumerate(lines) if line.startswith("Model:"))
    formula_lines = []
    for line in lines[model_at + 1 : c0 - 1]:
        if re.search(r"starting values", line, re.IGNORECASE):
            break
        formula_lines.append(line.strip())
    formula = " ".join(s for s in formula_lines if s)

    difficulty = ""
    for line in lines[:60]:
        m = re.search(r"(Lower|Average|Higher) Level of Difficulty", line)
        if m:
            difficulty = m.group(1)
            break

    header = lines[d0 - 2].split(":", 1)[1].split()
    table = np.array(
        [[float(v) for v in line.split()] for line in lines[d0 - 1 : d1] if line.strip()]
    )
    if header[0] != "y" or table.shape[0] != nobs:
        raise ValueError(f"{path.name}: unexpected data block")
    x = table[:, 1].copy() if table.shape[1] == 2 else table[:, 1:].T.copy()
    return NistProblem(
        name=path.stem,
        difficulty=difficulty,
        formula=formula,
        starts=(s1, s2),
        cert=cert,
        cert_sd=cert_sd,
        rss=rss,
        nobs=nobs,
        x=x,
        y=table[:, 0].copy(),
    )


def load_all(folder: str | Path, names: list[str] | None = None) -> list[NistProblem]:
    """Every ``.dat`` file in ``folder`` (or only ``names``), sorted by name."""
    paths = sorted(Path(folder).glob("*.dat"))
    if names:
        wanted = {n.lower() for n in names}
        paths = [p for p in paths if p.stem.lower() in wanted]
    return [parse_file(p) for p in paths]


def lre(estimate, certified) -> np.ndarray:
    """Log relative error per element, in [0, 11]; 0 where the estimate is not finite or is
    off by more than 100%."""
    est = np.atleast_1d(np.asarray(estimate, dtype=float))
    cert = np.atleast_1d(np.asarray(certified, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.abs(est - cert)
        rel = np.where(cert != 0, err / np.abs(cert), err)
        digits = np.where(rel == 0, LRE_CAP, -np.log10(rel))
    digits = np.where(np.isfinite(est) & np.isfinite(digits), digits, 0.0)
    return np.clip(digits, 0.0, LRE_CAP)


def stderr_from_jacobian(jac: np.ndarray, rss: float, n: int) -> np.ndarray:
    """``sqrt(diag(s² (JᵀJ)⁺))`` with ``s² = RSS/(n-p)``: the pseudo-inverse by SVD exactly
    as ``scipy.optimize.curve_fit`` does it (NaN where J is not finite, inf if rank-deficient)."""
    jac = np.asarray(jac, dtype=float)
    p = jac.shape[1]
    if not np.all(np.isfinite(jac)):
        return np.full(p, np.nan)
    _, s, vt = np.linalg.svd(jac, full_matrices=False)
    keep = s > np.finfo(float).eps * max(jac.shape) * s[0]
    if keep.sum() < p:
        return np.full(p, np.inf)
    cov = (vt.T / s**2) @ vt
    return np.sqrt(np.abs(np.diag(cov)) * rss / (n - p))
