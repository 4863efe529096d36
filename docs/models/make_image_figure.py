"""Draw docs/models/image.png: the image components, a group and its AstroPhot check.

Run from the repository root:  python docs/models/make_image_figure.py
Needs the AstroPhot problem files in ../shared/peers/astrophot/problems for the last row.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from inversekit.models import image  # noqa: E402

HERE = Path(__file__).resolve().parent
PROBLEMS = HERE.parents[1].parent / "shared" / "peers" / "astrophot" / "problems"
SHAPE = (64, 64)


def gaussian_psf(fwhm: float = 3.0, size: int = 15) -> np.ndarray:
    x = np.arange(size) - size // 2
    g = np.exp(-0.5 * (x / (fwhm / 2.3548)) ** 2)
    psf = np.outer(g, g)
    return psf / psf.sum()


def components(psf: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """One 64x64 panel per component, each PSF-convolved where the group would do it."""
    geometry = dict(cx=31.3, cy=32.6, q=0.6, PA=0.5)
    cases = [
        ("sersic  n=4, Re=6", image.sersic(sampling="quad"), dict(n=4.0, Re=6.0, Ie=1.0)),
        ("exponential  Re=8", image.exponential(), dict(Re=8.0, Ie=1.0)),
        ("gaussian  sigma=5", image.gaussian(), dict(sigma=5.0, flux=100.0)),
        ("moffat  n=2, Rd=4", image.moffat(), dict(n=2.0, Rd=4.0, I0=1.0)),
    ]
    out = []
    for title, component, shape_params in cases:
        model = image.group(c=component, psf=psf, shape=SHAPE)
        p = {f"c.{k}": v for k, v in {**geometry, **shape_params}.items()}
        out.append((title, model(p).numpy()))
    star = image.group(s=image.point_source(kernel="cubic"), psf=psf, shape=SHAPE)
    out.append(("point source (cubic)", star({"s.cx": 20.4, "s.cy": 40.7, "s.flux": 1.0}).numpy()))
    sky = image.group(s=image.plane_sky(), shape=SHAPE)
    plane = sky({"s.I0": 1.0, "s.delta_x": 0.02, "s.delta_y": -0.01}).numpy()
    out.append(("plane sky", plane))
    return out


def sampling_error(psf: np.ndarray) -> np.ndarray:
    """Relative difference midpoint vs quad sampling for a compact n = 4 Sérsic."""
    p = {"c.cx": 31.3, "c.cy": 32.6, "c.q": 0.6, "c.PA": 0.5, "c.n": 4.0, "c.Re": 3.0, "c.Ie": 1.0}
    mid = image.group(c=image.sersic(), shape=SHAPE)(p).numpy()
    quad = image.group(c=image.sersic(sampling="quad"), shape=SHAPE)(p).numpy()
    return (mid - quad) / quad


def group256() -> tuple[np.ndarray, np.ndarray]:
    """The AstroPhot group256 truth image rebuilt from its JSON, and |ours - AstroPhot|."""
    arrays = np.load(PROBLEMS / "group256.npz")
    meta = json.loads((PROBLEMS / "group256.json").read_text())
    galaxies = {g["name"]: image.sersic() for g in meta["galaxies"]}
    model = image.group(**galaxies, sky=image.flat_sky(), psf=arrays["psf"], shape=(256, 256))
    p = {f"{g['name']}.{k}": v for g in meta["galaxies"] for k, v in g["truth"].items()}
    p["sky.I0"] = meta["sky"]["truth"]["I0"]
    ours = model(p).numpy()
    return ours, np.abs(ours - arrays["truth_image"]) / arrays["truth_image"]


def main() -> None:
    torch.set_num_threads(1)
    psf = gaussian_psf()
    panels = components(psf)
    fig, axes = plt.subplots(3, 3, figsize=(10.5, 10.5), constrained_layout=True)
    for ax, (title, img) in zip(axes.flat[:6], panels, strict=True):
        shown = np.arcsinh(img / (0.05 * np.abs(img).max())) if "sky" not in title else img
        ax.imshow(shown, origin="lower", cmap="magma")
        ax.set_title(title, fontsize=10)
    err = sampling_error(psf)
    lim = np.abs(err).max()
    im = axes[2, 0].imshow(err, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[2, 0].set_xlim(21, 42)
    axes[2, 0].set_ylim(22, 43)
    axes[2, 0].set_title("(midpoint - quad) / quad, n=4 Re=3", fontsize=10)
    fig.colorbar(im, ax=axes[2, 0], shrink=0.8)
    ours, rel = group256()
    axes[2, 1].imshow(np.arcsinh((ours - 20.0) / 0.5), origin="lower", cmap="magma")
    axes[2, 1].set_title("AstroPhot group256, rebuilt", fontsize=10)
    im = axes[2, 2].imshow(
        np.log10(rel + 1e-17), origin="lower", cmap="viridis", vmin=-17, vmax=-14
    )
    axes[2, 2].set_title(f"log10 |ours - AstroPhot| / AstroPhot\nmax {rel.max():.1e}", fontsize=10)
    fig.colorbar(im, ax=axes[2, 2], shrink=0.8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.savefig(HERE / "image.png", dpi=90)


if __name__ == "__main__":
    main()
