"""Figures of fits (matplotlib, imported lazily so the core never needs a display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def fit_figure(x, y, sigma, model_y, path, title: str = "") -> Path:
    """Data with error bars, best-fit model, and normalised residuals; written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y, model_y = (np.asarray(a, dtype=float) for a in (x, y, model_y))
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), y.shape)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.errorbar(x, y, yerr=sigma, fmt=".", ms=2, lw=0.5, color="0.4", label="data")
    top.plot(x, model_y, color="C3", lw=1.5, label="best fit")
    top.set_ylabel("signal")
    top.legend()
    top.set_title(title)
    bottom.plot(x, (y - model_y) / sigma, ".", ms=2, color="C0")
    bottom.axhline(0.0, color="k", lw=0.8)
    bottom.set_ylabel("(data - model)/σ")
    bottom.set_xlabel("x")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
