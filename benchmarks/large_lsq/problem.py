"""The 11-parameter problem: three Gaussians plus a linear background on N points.

``y = sum_k A_k exp(-(x - mu_k)^2 / (2 s_k^2)) + c0 + c1 x + noise``, ``x = linspace(0, 100,
N)``, noise N(0, 0.2²) from ``numpy.random.default_rng(SEED)``, sigma = 0.2 given per point,
start = truth times fixed factors. The data are written once per N to an uncompressed
``.npz`` that every side reads, so all sides fit identical arrays. NumPy only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

NAMES = ("A1", "mu1", "s1", "A2", "mu2", "s2", "A3", "mu3", "s3", "c0", "c1")
TRUTH = np.array([5.0, 20.0, 3.0, 3.0, 50.0, 6.0, 4.0, 75.0, 2.0, 1.0, 0.02])
START = TRUTH * np.array([1.10, 1.03, 1.15, 0.85, 0.97, 1.20, 1.10, 1.01, 0.85, 0.80, 1.30])
NOISE = 0.2
SEED = 20261122


def model(x, p, xp=np):
    """The model for a parameter sequence ``p`` (order of ``NAMES``) in namespace ``xp``."""
    out = p[9] + p[10] * x
    for k in range(3):
        amp, mu, s = p[3 * k], p[3 * k + 1], p[3 * k + 2]
        out = out + amp * xp.exp(-((x - mu) ** 2) / (2 * s * s))
    return out


def jacobian(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Analytic ``d model / d p``, shape ``(N, 11)``."""
    jac = np.empty((x.size, 11))
    for k in range(3):
        amp, mu, s = p[3 * k], p[3 * k + 1], p[3 * k + 2]
        u = x - mu
        g = np.exp(-u * u / (2 * s * s))
        jac[:, 3 * k] = g
        jac[:, 3 * k + 1] = amp * g * u / (s * s)
        jac[:, 3 * k + 2] = amp * g * u * u / (s * s * s)
    jac[:, 9] = 1.0
    jac[:, 10] = x
    return jac


def make_data(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, sigma)`` for ``n`` points."""
    rng = np.random.default_rng(SEED)
    x = np.linspace(0.0, 100.0, n)
    y = model(x, TRUTH) + NOISE * rng.standard_normal(n)
    return x, y, np.full(n, NOISE)


def data_file(n: int, folder: Path) -> Path:
    """The ``.npz`` holding the data for ``n`` points, written if it is not there yet."""
    path = folder / f"large-lsq-n{n}.npz"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        x, y, sigma = make_data(n)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, x=x, y=y, sigma=sigma)
        tmp.replace(path)
    return path


def chi2(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, p, chunk: int = 1 << 20) -> float:
    """Chi-square of parameters ``p``, computed the same way for every side."""
    total = 0.0
    for i in range(0, x.size, chunk):
        r = (model(x[i : i + chunk], p) - y[i : i + chunk]) / sigma[i : i + chunk]
        total += float(r @ r)
    return total
