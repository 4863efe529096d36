"""The batched problem: Gaussian peak on a linear background, one spectrum per problem.

``B`` problems of ``N_POINTS`` points on ``x = linspace(-5, 5)``: amplitude ``a``, centre
``c``, width ``w`` and offset ``b0`` free, the slope ``b1`` a per-problem known constant
(so every problem has exactly four free parameters), truths drawn per problem, Gaussian
noise of ``SIGMA``, starts perturbed from the truths (amplitude and width by up to 30 %,
centre by up to 0.3). Written with NumPy here; each side evaluates it in its own library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_POINTS = 100
SIGMA = 0.05
X = np.linspace(-5.0, 5.0, N_POINTS)
FREE = ("a", "c", "w", "b0")


def make_data(n_problems: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Truths, starts and noisy data of every problem, as flat arrays for an ``.npz``."""
    rng = np.random.default_rng(seed)
    truth = {
        "a": rng.uniform(1.0, 5.0, n_problems),
        "c": rng.uniform(-2.0, 2.0, n_problems),
        "w": rng.uniform(0.5, 1.5, n_problems),
        "b0": rng.uniform(0.0, 1.0, n_problems),
        "b1": 0.1 * rng.standard_normal(n_problems),
    }
    z = (X[None, :] - truth["c"][:, None]) / truth["w"][:, None]
    clean = truth["a"][:, None] * np.exp(-0.5 * z * z) + truth["b0"][:, None]
    clean = clean + truth["b1"][:, None] * X[None, :]
    y = clean + SIGMA * rng.standard_normal((n_problems, N_POINTS))
    start = np.stack(
        [
            truth["a"] * rng.uniform(0.7, 1.3, n_problems),
            truth["c"] + rng.uniform(-0.3, 0.3, n_problems),
            truth["w"] * rng.uniform(0.7, 1.3, n_problems),
            np.full(n_problems, 0.5),
        ],
        axis=1,
    )
    return {"y": y, "start": start, "b1": truth["b1"]}


def data_file(n_problems: int, folder: Path) -> Path:
    """The ``.npz`` of ``n_problems`` problems in ``folder``, written once."""
    path = folder / f"batched-{n_problems}.npz"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(path, **make_data(n_problems))
    return path
