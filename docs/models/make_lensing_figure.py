"""Make docs/models/lensing.png: convergence, source, lensed image and deflection accuracy.

Run from the repository root: ``python docs/models/make_lensing_figure.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from inversekit.models import lensing as L  # noqa: E402

OUT = Path(__file__).with_name("lensing.png")


def source_map(grid: L.LensGrid) -> torch.Tensor:
    """Two elliptical Gaussian clumps, peak-normalised to one as in the paper."""
    x, y = grid.coordinates("source")
    main = torch.exp(-(((x - 0.15) / 0.25) ** 2 + ((y - 0.05) / 0.15) ** 2) / 2)
    knot = 0.6 * torch.exp(-(((x + 0.25) ** 2 + (y - 0.2) ** 2) / (2 * 0.06**2)))
    source = main + knot
    return (source / source.max())[None]


def convergence_map(grid: L.LensGrid) -> torch.Tensor:
    """Pixel-averaged SIE plus a small NFW subhalo near the arc."""
    sie = {"theta_e": 1.3, "q": 0.75, "phi": 0.6, "x0": 0.05, "y0": -0.05}
    subhalo = {"kappa_s": 0.08, "r_s": 0.15, "x0": 1.05, "y0": 0.75}
    return L.pixel_average_convergence(L.sie_deflection, sie, grid) + L.pixel_average_convergence(
        L.nfw_deflection, subhalo, grid
    )


def deflection_errors(grid: L.LensGrid) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Median relative |α_FFT − α_SIS| in radial bins, point-sampled vs pixel-averaged κ."""
    p = {"theta_e": 1.5, "q": 1.0}
    step = grid.pixel_scale("kappa")
    x, y = grid.coordinates("kappa")
    rx, ry = L.sie_deflection(p, x, y)
    maps = {
        "point samples of κ (paper)": L.sie_convergence({**p, "core": 1e-4}, x, y),
        "pixel averages of κ": L.pixel_average_convergence(L.sie_deflection, p, grid),
    }
    r = torch.hypot(x, y).flatten()
    edges = np.linspace(step, 3.0, 30)
    centres = 0.5 * (edges[1:] + edges[:-1])
    errors = {}
    for name, kappa in maps.items():
        ax, ay = L.deflection_from_kappa(kappa, step)
        err = (torch.hypot(ax - rx, ay - ry) / torch.hypot(rx, ry)).flatten()
        errors[name] = np.array(
            [
                err[(r >= lo) & (r < hi)].median().item()
                for lo, hi in zip(edges[:-1], edges[1:], strict=True)
            ]
        )
    return centres, errors


def main() -> None:
    grid = L.LensGrid()  # the paper's set-up: 128 px over 7.68" (image, κ), 3.0" (source)
    kappa = convergence_map(grid)
    source = source_map(grid)
    psf = L.gaussian_psf(0.1, grid.pixel_scale("image"))
    image = L.lens_image({"kappa": kappa, "source": source, "gamma1": 0.03}, grid, psf)
    noisy = L.add_noise(image, 0.02, generator=torch.Generator().manual_seed(1))
    theta_e = L.einstein_radius(kappa, grid.pixel_scale("kappa")).item()

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2), constrained_layout=True)
    half_i, half_s = grid.fov("image") / 2, grid.fov("source") / 2
    extent_i = (-half_i, half_i, -half_i, half_i)
    extent_s = (-half_s, half_s, -half_s, half_s)

    shown = axes[0].imshow(
        np.log10(kappa[0].numpy()), origin="lower", extent=extent_i, cmap="magma"
    )
    circle = plt.Circle((0, 0), theta_e, fill=False, color="w", ls="--", lw=0.8)
    axes[0].add_patch(circle)
    axes[0].set_title(f"log10 κ (SIE + NFW subhalo), θ_E ≈ {theta_e:.2f}″")
    fig.colorbar(shown, ax=axes[0], shrink=0.8)

    shown = axes[1].imshow(source[0].numpy(), origin="lower", extent=extent_s, cmap="bone")
    axes[1].set_title("source (3.0″ field)")
    fig.colorbar(shown, ax=axes[1], shrink=0.8)

    shown = axes[2].imshow(noisy[0].numpy(), origin="lower", extent=extent_i, cmap="bone")
    axes[2].set_title("lensed image: PSF FWHM 0.1″, σ = 0.02")
    fig.colorbar(shown, ax=axes[2], shrink=0.8)
    for ax in axes[:3]:
        ax.set_xlabel("x [arcsec]")
        ax.set_ylabel("y [arcsec]")

    centres, errors = deflection_errors(grid)
    for name, err in errors.items():
        axes[3].semilogy(centres, err, marker="o", ms=3, label=name)
    axes[3].axhline(1e-2, color="grey", lw=0.8, ls=":")
    axes[3].set_xlabel("radius [arcsec]")
    axes[3].set_ylabel("median |α_FFT − α_SIS| / |α_SIS|")
    axes[3].set_title("SIS θ_E = 1.5″, 128 px over 7.68″")
    axes[3].legend(fontsize=8)

    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
