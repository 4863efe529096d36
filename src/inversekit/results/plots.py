"""Figures of fits (matplotlib, imported when a figure is drawn, so the core never needs it
or a display)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from inversekit.errors import InputError


def fit_figure(
    x,
    y,
    sigma,
    model_y,
    path=None,
    title: str = "",
    *,
    residuals=None,
    masked=None,
    residual_label: str = "(data - model)/σ",
):
    """Data with error bars, best-fit model, and normalised residuals (``(y - model)/σ``
    unless ``residuals`` are given); points in ``masked`` are drawn grey. Written to
    ``path`` when given (then the path is returned, as before), else the figure is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y, model_y = (np.asarray(a, dtype=float) for a in (x, y, model_y))
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), y.shape)
    if residuals is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            residuals = (y - model_y) / sigma
    masked = np.zeros(y.shape, dtype=bool) if masked is None else np.asarray(masked, dtype=bool)
    keep = ~masked
    order = np.argsort(x, kind="stable")
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.errorbar(
        x[keep], y[keep], yerr=sigma[keep], fmt=".", ms=2, lw=0.5, color="0.3", label="data"
    )
    if masked.any():
        top.plot(x[masked], y[masked], ".", ms=2, color="0.75", label="not fitted (masked)")
    top.plot(x[order], model_y[order], color="C3", lw=1.5, label="best fit")
    top.set_ylabel("signal")
    top.legend()
    top.set_title(title)
    bottom.plot(x[keep], np.asarray(residuals)[keep], ".", ms=2, color="C0")
    bottom.axhline(0.0, color="k", lw=0.8)
    bottom.set_ylabel(residual_label)
    bottom.set_xlabel("x")
    fig.tight_layout()
    if path is None:
        return fig
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_fit(problem, result, path=None, title: str = ""):
    """The figure of a 1-D least-squares fit: data with error bars and the best-fit model
    above, normalised residuals below. With ``path`` (e.g. ``"fit.png"``) the figure is
    written there and the path returned; without, the matplotlib ``Figure`` is.

    The x axis is the model's first input when it is a 1-D array as long as ``y`` (else
    the point index). The residuals are the problem's own whitened residuals at the
    result, sign flipped to read data minus model: ``(y - f)/σ`` for Gaussian noise, the
    deviance residuals for another likelihood (Poisson error bars ``√f``); without a given
    noise level they are divided by ``s = √(chi2/ndf)`` too and the error bars are ``s``.
    Points the fit does not use (``mask``, zero weights) are drawn grey. matplotlib is
    imported here, with the Agg backend (no display needed).
    """
    y = problem.y
    if y.dim() != 1:
        raise InputError(
            f"plot_fit draws 1-D data only; y has shape {tuple(y.shape)} (plot a slice "
            "of the data with results.plots.fit_figure, or your own figure)"
        )
    n = y.shape[0]
    u = problem.params.pack(result.params)
    with torch.no_grad():
        model_y = problem.model_output(u)
        whitened = problem.residuals(u)[:n]  # prior rows, if any, come after the data's
    x = next(
        (v for v in problem.inputs if isinstance(v, torch.Tensor) and v.shape == (n,)),
        torch.arange(n, dtype=y.dtype),
    )
    noise, likelihood = problem.noise, problem.likelihood
    s = 1.0
    if not noise.known:  # residuals in units of the noise the fit estimates
        s = math.sqrt(result.reduced_chi2) if math.isfinite(result.reduced_chi2) else 1.0
    if likelihood.name == "poisson":  # counts: the standard deviation is √(mean)
        sigma = torch.sqrt(model_y.reshape(n).clamp(min=0.0))
    elif noise.chol is not None:  # full inverse covariance: marginal sigma of each point
        W = noise.chol @ noise.chol.mT
        sigma = torch.sqrt(torch.diagonal(torch.linalg.inv(W)))
    elif noise.sigma is not None:
        sigma = noise.sigma.reshape(n)
    else:
        sigma = torch.full((n,), s, dtype=y.dtype)
    # points the fit does not use: a mask, zero weights, infinite sigma
    masked = ~torch.isfinite(sigma) if noise.used is None else ~noise.used.reshape(n)
    if not likelihood.gaussian:
        label = "deviance residual"
    else:
        label = "(data - model)/σ" if noise.known else "(data - model)/s"
    return fit_figure(
        _np(x),
        _np(y),
        _np(torch.where(masked, 0.0, sigma)),
        _np(model_y),
        path,
        title=title or f"{result.solver}: chi2/ndf = {result.reduced_chi2:.4g}",
        residuals=_np(-whitened / s),
        masked=_np(masked).astype(bool),
        residual_label=label,
    )


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy() if hasattr(t, "detach") else np.asarray(t)
