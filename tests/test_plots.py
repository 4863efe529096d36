"""The figure of a 1-D fit: data, best fit and normalised residuals, written as a PNG."""

from __future__ import annotations

import pytest
import torch

import inversekit as ik

X = torch.linspace(0, 10, 50, dtype=torch.float64)
Y = 2.0 * (1.0 - torch.exp(-0.5 * X)) + 0.02 * torch.randn(
    50, generator=torch.Generator().manual_seed(0), dtype=torch.float64
)
PNG = b"\x89PNG\r\n\x1a\n"


def saturating(p, x):
    return p["b1"] * (1.0 - torch.exp(-p["b2"] * x))


@pytest.mark.parametrize("noise", ["sigma", "weights", "none"])
def test_plot_fit_writes_a_png(tmp_path, noise):
    kwargs = {
        "sigma": {"sigma": 0.02},
        "weights": {"weights": torch.where(X > 8.0, 0.0, 2500.0)},  # masked points drawn grey
        "none": {},
    }[noise]
    problem = ik.LeastSquares(saturating, ik.Params(b1=1.0, b2=1.0), (X,), Y, **kwargs)
    result = ik.fit(problem, progress=False)
    path = ik.plot_fit(problem, result, tmp_path / "fit.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG
    again = result.plot(problem, tmp_path / "again.png")
    assert again.stat().st_size > 1000


def test_plot_fit_without_a_path_returns_the_figure():
    problem = ik.LeastSquares(saturating, ik.Params(b1=1.0, b2=1.0), (X,), Y, sigma=0.02)
    result = ik.fit(problem, progress=False)
    figure = ik.plot_fit(problem, result)
    assert len(figure.axes) == 2
    residuals = figure.axes[1].lines[0].get_ydata()
    expected = (Y - problem.model_output(problem.params.pack(result.params))) / 0.02
    assert residuals == pytest.approx(expected.numpy(), rel=1e-12, abs=1e-12)


def test_plot_fit_refuses_data_that_are_not_one_dimensional(tmp_path):
    x = torch.linspace(0, 1, 12, dtype=torch.float64).reshape(3, 4)
    y = 2.0 * x + 1.0
    problem = ik.LeastSquares(lambda p, x: p["a"] * x + p["b"], ik.Params(a=1.0, b=0.0), (x,), y)
    result = ik.fit(problem, progress=False)
    with pytest.raises(ik.InputError, match=r"plot_fit draws 1-D data only; y has shape \(3, 4\)"):
        ik.plot_fit(problem, result, tmp_path / "no.png")
    assert not (tmp_path / "no.png").exists()


def test_plot_fit_of_masked_poisson_counts_shows_deviance_residuals(tmp_path):
    lam = 20.0 * torch.exp(-0.3 * X) + 2.0
    counts = torch.poisson(lam, generator=torch.Generator().manual_seed(0))
    problem = ik.LeastSquares(
        lambda p, x: p["a"] * torch.exp(-p["k"] * x) + p["c"],
        ik.Params(a=10.0, k=0.5, c=1.0),
        (X,),
        counts,
        likelihood="poisson",
        mask=X < 9.0,
    )
    result = ik.fit(problem, progress=False)
    figure = ik.plot_fit(problem, result)
    top, bottom = figure.axes
    assert bottom.get_ylabel() == "deviance residual"
    assert "not fitted (masked)" in [t.get_text() for t in top.get_legend().get_texts()]
    # the residual panel shows the fitted points only: the problem's own residuals there
    used = (X < 9.0).numpy()
    whitened = problem.residuals(problem.params.pack(result.params))
    assert bottom.lines[0].get_ydata() == pytest.approx(-whitened.numpy()[used], rel=1e-12)
    path = ik.plot_fit(problem, result, tmp_path / "counts.png")
    assert path.read_bytes()[:8] == PNG
