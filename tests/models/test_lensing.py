"""Tests of the strong-lensing forward model (inversekit.models.lensing)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.integrate import quad

from inversekit.models import available
from inversekit.models import lensing as L

DTYPE = torch.float64
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These tensors are tiny: with two busy cores, intra-op threads only wait on each other
    # (a 6x6 forward pass takes ~5x longer with two threads than with one).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tensor(value, **kw) -> torch.Tensor:
    return torch.as_tensor(value, dtype=DTYPE, **kw)


def gaussian_source(grid: L.LensGrid, batch: int = 1, width: float = 0.3, x0=0.0, y0=0.0):
    x, y = grid.coordinates("source")
    return torch.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * width**2)).expand(batch, -1, -1)


def direct_deflection(kappa: torch.Tensor, step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute-force O(n^4) sum α_i = (Δ²/π) Σ_j κ_j (θ_i − θ_j)/|θ_i − θ_j|²."""
    n = kappa.shape[-1]
    idx = torch.arange(n, dtype=DTYPE) * step
    y, x = torch.meshgrid(idx, idx, indexing="ij")
    dx = x.reshape(-1, 1) - x.reshape(1, -1)
    dy = y.reshape(-1, 1) - y.reshape(1, -1)
    r2 = dx**2 + dy**2
    r2[r2 == 0] = math.inf
    k = kappa.reshape(-1)
    ax = (dx / r2 * k).sum(-1) * step**2 / math.pi
    ay = (dy / r2 * k).sum(-1) * step**2 / math.pi
    return ax.reshape(n, n), ay.reshape(n, n)


def sie_outside_deflection(p: dict, half: float, x: torch.Tensor, y: torch.Tensor, segments=128):
    """Deflection at points inside the square |x|, |y| < half of the SIE mass *outside* it.

    Green's representation theorem with G = ln|θ − θ'| turns the outside mass's deflection into
    a boundary integral of the analytic potential ψ and deflection α on the square's edge:
        α_out(θ) = (1/2π) ∮ [ −ψ (n/r² − 2 (n·r) r / r⁴) − (α·n) r / r² ] dl,  r = θ − θ'.
    For a core-less SIE ψ(θ') = (θ' − c)·α(θ') (ψ is homogeneous of degree one about c).
    """
    # Composite Gauss-Legendre (6 nodes per segment) resolves points half a pixel from the edge.
    t, w = np.polynomial.legendre.leggauss(6)
    width = 2 * half / segments
    starts = -half + width * np.arange(segments)
    t = tensor((starts[:, None] + (t + 1) * width / 2).ravel())
    w = tensor(np.tile(w * width / 2, segments))
    ones = torch.ones_like(t)
    bx = torch.cat([t, t, -half * ones, half * ones])
    by = torch.cat([-half * ones, half * ones, t, t])
    nx = torch.cat([0 * ones, 0 * ones, -ones, ones])
    ny = torch.cat([-ones, ones, 0 * ones, 0 * ones])
    ws = torch.cat([w, w, w, w])
    ax, ay = L.sie_deflection(p, bx[None], by[None])
    ax, ay = ax[0, 0], ay[0, 0]
    psi = (bx - p["x0"]) * ax + (by - p["y0"]) * ay
    a_n = ax * nx + ay * ny
    rx = x.reshape(-1, 1) - bx
    ry = y.reshape(-1, 1) - by
    r2 = rx**2 + ry**2
    n_r = nx * rx + ny * ry
    gx = nx / r2 - 2 * n_r * rx / r2**2
    gy = ny / r2 - 2 * n_r * ry / r2**2
    out_x = ((-psi * gx - a_n * rx / r2) * ws).sum(-1) / (2 * math.pi)
    out_y = ((-psi * gy - a_n * ry / r2) * ws).sum(-1) / (2 * math.pi)
    return out_x.reshape(x.shape), out_y.reshape(x.shape)


def relative_error(ax, ay, rx, ry):
    return torch.hypot(ax - rx, ay - ry) / torch.hypot(rx, ry)


# ---------------------------------------------------------------------------------------------
# Deflection from a pixelated convergence


def test_kernel_uses_the_map_pixel_spacing():
    # One pixel of κ = 1: the pull at k pixels is (Δ²/π) / (kΔ), directed away from the mass.
    # A kernel sampled at fov/n instead of fov/(n-1) would be off by n/(n-1) = 12.5 % here.
    grid = L.LensGrid(image_pixels=9, image_fov=2.0)
    step = grid.pixel_scale("kappa")
    kappa = torch.zeros(1, 9, 9, dtype=DTYPE)
    kappa[0, 4, 4] = 1.0
    ax, ay = L.deflection_from_kappa(kappa, step)
    for k in (1, 2, 4):
        expected = step**2 / math.pi / (k * step)
        assert ax[0, 4, 4 + k].item() == pytest.approx(expected, rel=1e-12)
        assert ax[0, 4, 4 - k].item() == pytest.approx(-expected, rel=1e-12)
        assert ay[0, 4 + k, 4].item() == pytest.approx(expected, rel=1e-12)
    assert abs(ax[0, 4, 4].item()) < 1e-15 and abs(ay[0, 4, 4].item()) < 1e-15


def test_fft_deflection_equals_direct_linear_sum():
    torch.manual_seed(1)
    kappa = torch.rand(2, 13, 13, dtype=DTYPE)
    kappa[1, 0, 0] = 50.0  # a corner mass: circular wrap-around would show at the far side
    ax, ay = L.deflection_from_kappa(kappa, 0.37)
    for b in range(2):
        rx, ry = direct_deflection(kappa[b], 0.37)
        assert torch.allclose(ax[b], rx, rtol=0, atol=1e-12)
        assert torch.allclose(ay[b], ry, rtol=0, atol=1e-12)


def test_pixel_average_convergence_conserves_mass():
    # SIS: mass inside the square |x|,|y| < a is ∫∫ θ_E/(2r) dA = 4 a θ_E asinh(1).
    grid = L.LensGrid(image_pixels=32)
    step = grid.pixel_scale("kappa")
    kappa = L.pixel_average_convergence(L.sie_deflection, {"theta_e": 1.3, "q": 1.0}, grid)
    a = grid.fov("kappa") / 2 + step / 2
    assert kappa.sum().item() * step**2 == pytest.approx(4 * a * 1.3 * math.asinh(1), rel=1e-9)
    # Far from the cusp the pixel average is the point value to O(Δ²/r²).
    x, y = grid.coordinates("kappa")
    point = L.sie_convergence({"theta_e": 1.3, "q": 1.0}, x, y)
    far = torch.hypot(x, y) > 2.0
    assert torch.allclose(kappa[0][far], point[0][far], rtol=2e-3)


def test_sie_fft_deflection_matches_analytic_corrected_for_the_field_edge():
    """FFT route vs analytic SIE over the whole field, 5 px or more from the centre.

    The rasterised map cannot hold the SIE mass beyond its border; that mass's deflection is
    removed from the analytic reference exactly (boundary integral), so what remains is the
    error of the pixelated representation and of the FFT convolution.
    """
    grid = L.LensGrid(image_pixels=48)  # the paper's 7.68" field at 0.16"/px
    step = grid.pixel_scale("kappa")
    p = {"theta_e": 1.4, "q": 0.6, "phi": 0.5, "x0": 0.07, "y0": -0.05}
    kappa = L.pixel_average_convergence(L.sie_deflection, p, grid)
    ax, ay = L.deflection_from_kappa(kappa, step)
    x, y = grid.coordinates("kappa")
    rx, ry = L.sie_deflection(p, x, y)
    ox, oy = sie_outside_deflection(p, grid.fov("kappa") / 2 + step / 2, x, y, segments=96)
    err = relative_error(ax[0], ay[0], rx[0] - ox, ry[0] - oy)
    r = torch.hypot(x - p["x0"], y - p["y0"])
    region = r >= 5 * step
    assert err[region].max() < 1e-2
    assert err[(r >= 10 * step)].max() < 3e-3


def test_sis_fft_deflection_matches_analytic_inside_two_arcsec():
    # No edge correction: a circular lens on the paper's 7.68" field, 5 px <= r <= 2".
    grid = L.LensGrid(image_pixels=64)
    step = grid.pixel_scale("kappa")
    p = {"theta_e": 1.5, "q": 1.0}
    kappa = L.pixel_average_convergence(L.sie_deflection, p, grid)
    ax, ay = L.deflection_from_kappa(kappa, step)
    x, y = grid.coordinates("kappa")
    rx, ry = L.sie_deflection(p, x, y)
    err = relative_error(ax[0], ay[0], rx[0], ry[0])
    r = torch.hypot(x, y)
    assert err[(r >= 5 * step) & (r <= 2.0)].max() < 1e-2


def test_deflection_is_antisymmetric_for_a_point_symmetric_map():
    torch.manual_seed(2)
    half = torch.rand(1, 15, 15, dtype=DTYPE)
    kappa = half + torch.flip(half, dims=(-2, -1))
    ax, ay = L.deflection_from_kappa(kappa, 0.1)
    assert torch.allclose(ax, -torch.flip(ax, dims=(-2, -1)), atol=1e-13)
    assert torch.allclose(ay, -torch.flip(ay, dims=(-2, -1)), atol=1e-13)


def test_finer_kappa_grid_resamples_deflection_onto_image_pixels():
    # With the centre convention a κ grid of 2(N-1)+1 pixels over the same field puts every
    # other κ pixel on an image pixel, where bilinear resampling is exact.
    fine = L.LensGrid(image_pixels=17, kappa_pixels=33, source_pixels=16)
    torch.manual_seed(3)
    kappa = torch.rand(2, 33, 33, dtype=DTYPE)
    ax, ay = L.kappa_deflection(kappa, fine)
    fx, fy = L.deflection_from_kappa(kappa, fine.pixel_scale("kappa"))
    assert ax.shape == (2, 17, 17)
    assert torch.allclose(ax, fx[:, ::2, ::2], atol=1e-13)
    assert torch.allclose(ay, fy[:, ::2, ::2], atol=1e-13)


# ---------------------------------------------------------------------------------------------
# Analytic profiles


def divergence_and_curl(deflection, p, x, y):
    x = x.clone().requires_grad_()
    y = y.clone().requires_grad_()
    ax, ay = deflection(p, x, y)
    (dax_dx, dax_dy) = torch.autograd.grad(ax.sum(), (x, y), retain_graph=True)
    (day_dx, day_dy) = torch.autograd.grad(ay.sum(), (x, y))
    return dax_dx + day_dy, dax_dy - day_dx


@pytest.mark.parametrize("q", [0.35, 0.8, 1.0])
def test_sie_deflection_is_gradient_of_potential_with_half_divergence_kappa(q):
    torch.manual_seed(4)
    x = (torch.rand(1, 200, dtype=DTYPE) - 0.5) * 6
    y = (torch.rand(1, 200, dtype=DTYPE) - 0.5) * 6
    p = {"theta_e": 1.1, "q": q, "phi": -0.7, "x0": 0.2, "y0": 0.1, "core": 0.05}
    div, curl = divergence_and_curl(L.sie_deflection, p, x, y)
    assert torch.allclose(div / 2, L.sie_convergence(p, x, y), rtol=1e-10, atol=1e-12)
    assert curl.abs().max() < 1e-12


def test_sie_reduces_to_sis_and_is_smooth_in_q_at_one():
    x = tensor([[0.3, -1.2, 2.0]])
    y = tensor([[1.0, 0.4, -0.5]])
    ax, ay = L.sie_deflection({"theta_e": 1.5, "q": 1.0}, x, y)
    r = torch.hypot(x, y)
    assert torch.allclose(ax, 1.5 * x / r, rtol=1e-14)
    assert torch.allclose(ay, 1.5 * y / r, rtol=1e-14)
    # dα/dq at q = 1 (series branch) equals the finite difference from q < 1 (closed form).
    q = tensor(1.0).requires_grad_()
    (g,) = torch.autograd.grad(L.sie_deflection({"theta_e": 1.5, "q": q}, x, y)[0].sum(), q)
    h = 1e-6
    fd = (ax.sum() - L.sie_deflection({"theta_e": 1.5, "q": 1 - h}, x, y)[0].sum()) / h
    assert torch.isfinite(g) and g.item() == pytest.approx(fd.item(), rel=1e-4)


def test_external_shear_is_traceless_and_matches_its_potential():
    p = {"gamma1": 0.05, "gamma2": -0.03}
    x = tensor([[0.5, -1.0]])
    y = tensor([[2.0, 0.3]])
    ax, ay = L.shear_deflection(p, x, y)
    assert torch.allclose(ax, 0.05 * x - 0.03 * y) and torch.allclose(ay, -0.03 * x - 0.05 * y)
    div, curl = divergence_and_curl(L.shear_deflection, p, x, y)
    assert div.abs().max() < 1e-15 and curl.abs().max() < 1e-15


NFW = {"kappa_s": 0.35, "r_s": 2.0, "x0": 0.1, "y0": -0.2}


def nfw_kappa_reference(r: float) -> float:
    """Textbook NFW convergence (Wright & Brainerd 2000), written independently in numpy."""
    u = r / NFW["r_s"]
    if u < 1:
        f = (1 - np.arccosh(1 / u) / np.sqrt(1 - u * u)) / (u * u - 1)
    else:
        f = (1 - np.arccos(1 / u) / np.sqrt(u * u - 1)) / (u * u - 1)
    return 2 * NFW["kappa_s"] * f


def test_nfw_deflection_matches_numerically_integrated_enclosed_mass():
    for r in (0.05, 0.7, 1.999, 2.0015, 4.0, 15.0):
        kappa = L.nfw_convergence(NFW, tensor([[NFW["x0"] + r]]), tensor([[NFW["y0"]]])).item()
        assert kappa == pytest.approx(nfw_kappa_reference(r), rel=1e-9)
        # Integrate in ln r: the integrand 2π r² κ is smooth there, despite κ's log cusp.
        mass = quad(
            lambda s: 2 * math.pi * math.exp(2 * s) * nfw_kappa_reference(math.exp(s)),
            -40,
            math.log(r),
            epsabs=0,
            epsrel=1e-12,
            limit=200,
        )[0]
        ax, ay = L.nfw_deflection(NFW, tensor([[NFW["x0"] + r]]), tensor([[NFW["y0"]]]))
        assert ay.abs().item() < 1e-15
        assert ax.item() == pytest.approx(mass / (math.pi * r), rel=1e-9)
        assert L.nfw_enclosed_mass(NFW, tensor(r)).item() == pytest.approx(mass, rel=1e-9)


def test_nfw_is_continuous_and_differentiable_through_the_scale_radius():
    u = tensor([1 - 1e-3 - 1e-10, 1 - 1e-3 + 1e-10, 1.0, 1 + 1e-3 - 1e-10, 1 + 1e-3 + 1e-10])
    x = (NFW["x0"] + u * NFW["r_s"]).reshape(1, -1).requires_grad_()
    y = torch.full_like(x, NFW["y0"])
    kappa = L.nfw_convergence(NFW, x, y)[0, 0]
    assert kappa[2].item() == pytest.approx(2 * NFW["kappa_s"] / 3, rel=1e-14)
    assert (kappa[1] - kappa[0]).abs() < 1e-9 and (kappa[4] - kappa[3]).abs() < 1e-9
    div, _ = divergence_and_curl(L.nfw_deflection, NFW, x.detach(), y)
    assert torch.allclose(div[0] / 2, kappa, rtol=1e-9)
    ax, _ = L.nfw_deflection(NFW, x, y)
    (g,) = torch.autograd.grad(ax.sum(), x)
    assert torch.isfinite(g).all()


def test_nfw_deflection_vanishes_at_the_centre_and_has_finite_gradient():
    p = {"kappa_s": tensor(0.3).requires_grad_(), "r_s": tensor(1.5).requires_grad_()}
    ax, ay = L.nfw_deflection(p, tensor([[0.0, 1e-9]]), tensor([[0.0, 0.0]]))
    assert ax[0, 0, 0].item() == 0.0 and ay.abs().max().item() == 0.0
    assert 0 < ax[0, 0, 1].item() < 1e-7
    grads = torch.autograd.grad(ax.sum(), (p["kappa_s"], p["r_s"]))
    assert all(torch.isfinite(g) for g in grads)


def test_nfw_fft_deflection_matches_analytic_in_the_central_region():
    grid = L.LensGrid(image_pixels=64)
    step = grid.pixel_scale("kappa")
    p = {"kappa_s": 0.5, "r_s": 0.8}
    kappa = L.pixel_average_convergence(L.nfw_deflection, p, grid)
    ax, ay = L.deflection_from_kappa(kappa, step)
    x, y = grid.coordinates("kappa")
    rx, ry = L.nfw_deflection(p, x, y)
    err = relative_error(ax[0], ay[0], rx[0], ry[0])
    r = torch.hypot(x, y)
    assert err[(r >= 5 * step) & (r <= 2.0)].max() < 1e-2


# ---------------------------------------------------------------------------------------------
# Ray tracing, PSF, images


def sie_kappa(grid, batch=1, theta_e=1.2, q=0.75):
    p = {"theta_e": tensor([theta_e] * batch), "q": tensor([q] * batch), "phi": 0.3}
    return L.pixel_average_convergence(L.sie_deflection, p, grid)


def test_uniform_source_gives_uniform_image_where_rays_land_on_the_source():
    grid = L.LensGrid(image_pixels=48, source_pixels=40)
    kappa = sie_kappa(grid)
    image = L.lens_image({"kappa": kappa, "source": torch.ones(1, 40, 40, dtype=DTYPE)}, grid)
    ax, ay = L.kappa_deflection(kappa, grid)
    x, y = grid.coordinates("image")
    bx, by = L.lens_equation(x, y, ax, ay)
    inside = (bx.abs() <= 1.5) & (by.abs() <= 1.5)
    assert inside.float().mean() > 0.2
    assert torch.allclose(image[inside], torch.ones_like(image[inside]), atol=1e-14)
    margin = 1.5 + grid.pixel_scale("source")
    far = (bx.abs() > margin) | (by.abs() > margin)
    assert image[far].abs().max() == 0


def test_image_pixels_take_the_source_value_at_the_lens_equation_position():
    # A linear source is interpolated exactly, which pins the x/y orientation of every step.
    grid = L.LensGrid(image_pixels=40, source_pixels=33)
    kappa = sie_kappa(grid)
    xs, ys = grid.coordinates("source")
    source = (2.0 + 0.7 * xs - 0.4 * ys)[None]
    shear = {"gamma1": 0.04, "gamma2": -0.02}
    image = L.lens_image({"kappa": kappa, "source": source, **shear}, grid)
    ax, ay = L.kappa_deflection(kappa, grid)
    x, y = grid.coordinates("image")
    sx, sy = L.shear_deflection(shear, x, y)
    bx, by = x - ax - sx, y - ay - sy
    inside = (bx.abs() <= 1.5) & (by.abs() <= 1.5)
    assert torch.allclose(image[inside], (2.0 + 0.7 * bx - 0.4 * by)[inside], atol=1e-13)


def test_sis_images_a_compact_source_where_the_lens_equation_says():
    # SIS with source at (b, 0): images at x = b + θ_E and x = b − θ_E on the x axis.
    # Pixel steps of 0.05" put both images, and the source centre, on pixel centres.
    grid = L.LensGrid(image_pixels=121, image_fov=6.0, source_pixels=121, source_fov=3.0)
    b, theta_e = 0.3, 1.2
    source = gaussian_source(grid, width=0.05, x0=b)
    image = L.sie_image({"theta_e": theta_e, "q": 1.0, "source": source}, grid)[0]
    x, y = grid.coordinates("image")
    for side, expected in ((x > 0, b + theta_e), (x < 0, b - theta_e)):
        brightest = (image * side).argmax()
        assert x.flatten()[brightest].item() == pytest.approx(expected, abs=1e-12)
        assert y.flatten()[brightest].item() == pytest.approx(0.0, abs=1e-12)
        # Surface brightness is conserved: both images reach the source's peak brightness.
        assert image.flatten()[brightest].item() == pytest.approx(1.0, abs=1e-12)


def test_psf_convolution_is_centred_linear_and_matches_direct_convolution():
    torch.manual_seed(5)
    psf = torch.rand(2, 5, 5, dtype=DTYPE)
    delta = torch.zeros(2, 16, 16, dtype=DTYPE)
    delta[:, 7, 9] = 1.0
    out = L.convolve_psf(delta, psf)
    assert torch.allclose(out[:, 5:10, 7:12], psf, atol=1e-14)  # stamp centre on the delta
    assert out.sum(dim=(-2, -1)).allclose(psf.sum(dim=(-2, -1)))
    image = torch.rand(2, 16, 16, dtype=DTYPE)
    out = L.convolve_psf(image, psf)
    # conv2d is a cross-correlation: flip the kernel to make it a convolution.
    ref = F.conv2d(image[None], torch.flip(psf, (-2, -1))[:, None], padding=2, groups=2)[0]
    assert torch.allclose(out, ref, atol=1e-13)


def test_gaussian_psf_is_odd_normalised_and_does_not_shift_light():
    psf = L.gaussian_psf(tensor([0.08, 0.2]), 0.06)
    assert psf.shape[-1] % 2 == 1 and psf.shape[0] == 2
    assert torch.allclose(psf.sum(dim=(-2, -1)), torch.ones(2, dtype=DTYPE))
    offsets = (torch.arange(psf.shape[-1], dtype=DTYPE) - psf.shape[-1] // 2) * 0.06
    centroid = (psf.sum(-2) * offsets).sum(-1)
    assert centroid.abs().max() < 1e-15
    # Pixel integration adds the pixel's own variance, Δ²/12, to σ².
    sigma = 0.2 / L.psf.FWHM_PER_SIGMA
    psf = L.gaussian_psf(0.2, 0.06, size=31)  # wide enough that truncation is negligible
    offsets = (torch.arange(31, dtype=DTYPE) - 15) * 0.06
    variance = (psf[0].sum(-2) * offsets**2).sum()
    assert variance.item() == pytest.approx(sigma**2 + 0.06**2 / 12, rel=1e-6)
    point = L.gaussian_psf(0.2, 0.06, size=31, sampling="point")
    assert (point[0].sum(-2) * offsets**2).sum().item() == pytest.approx(sigma**2, rel=1e-6)


def test_symmetric_psf_keeps_the_lensed_image_centroid():
    grid = L.LensGrid(image_pixels=48, source_pixels=32)
    source = gaussian_source(grid, width=0.25, x0=0.2, y0=-0.1)
    p = {"kappa": sie_kappa(grid), "source": source}
    sharp = L.lens_image(p, grid)
    blurred = L.lens_image(p, grid, psf=L.gaussian_psf(0.3, grid.pixel_scale("image")))
    x, y = grid.coordinates("image")
    border = torch.ones(48, 48, dtype=torch.bool)
    border[5:-5, 5:-5] = False
    assert sharp[0][border].abs().max() < 1e-12  # no light reaches the edge to be lost
    for coord in (x, y):
        c_sharp = (sharp * coord).sum() / sharp.sum()
        c_blur = (blurred * coord).sum() / blurred.sum()
        assert (c_sharp - c_blur).abs() < 1e-10
    assert blurred.sum().item() == pytest.approx(sharp.sum().item(), rel=1e-10)


def test_batch_of_64_equals_64_single_evaluations():
    grid = L.LensGrid(image_pixels=16, source_pixels=12)
    torch.manual_seed(6)
    batch = 64
    theta_e = 0.6 + 1.5 * torch.rand(batch, dtype=DTYPE)
    q = 0.5 + 0.5 * torch.rand(batch, dtype=DTYPE)
    kappa = L.pixel_average_convergence(L.sie_deflection, {"theta_e": theta_e, "q": q}, grid)
    kappa = kappa + 0.05 * torch.rand_like(kappa)
    source = torch.rand(batch, 12, 12, dtype=DTYPE)
    gamma1 = 0.05 * torch.randn(batch, dtype=DTYPE)
    psf = L.gaussian_psf(0.2 + 0.2 * torch.rand(batch, dtype=DTYPE), grid.pixel_scale("image"))
    together = L.lens_image({"kappa": kappa, "source": source, "gamma1": gamma1}, grid, psf)
    for b in range(batch):
        p = {"kappa": kappa[b : b + 1], "source": source[b : b + 1], "gamma1": gamma1[b : b + 1]}
        single = L.lens_image(p, grid, psf[b])
        assert torch.allclose(together[b], single[0], rtol=0, atol=1e-13)
    sie = L.sie_image({"theta_e": theta_e, "q": q, "source": source}, grid)
    for b in (0, 37):
        one = L.sie_image({"theta_e": theta_e[b], "q": q[b], "source": source[b : b + 1]}, grid)
        assert torch.allclose(sie[b], one[0], rtol=0, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# Gradients


def small_problem():
    grid = L.LensGrid(image_pixels=6, image_fov=3.0, source_pixels=5, source_fov=2.0)
    torch.manual_seed(7)
    kappa = (0.2 + 0.5 * torch.rand(1, 6, 6, dtype=DTYPE)).requires_grad_()
    source = torch.rand(1, 5, 5, dtype=DTYPE).requires_grad_()
    psf = L.gaussian_psf(0.6, grid.pixel_scale("image"), size=3)
    return grid, kappa, source, psf


def test_gradients_in_kappa_and_source_match_finite_differences():
    grid, kappa, source, psf = small_problem()

    def model(k, s):
        return L.lens_image({"kappa": k, "source": s, "gamma1": 0.03}, grid, psf)

    assert torch.autograd.gradcheck(model, (kappa, source), eps=1e-6, atol=1e-8)


def test_second_derivatives_exist_for_hessian_vector_products():
    grid, kappa, source, psf = small_problem()

    def model(k, s):
        return L.lens_image({"kappa": k, "source": s}, grid, psf)

    # Fast mode checks random projections of the second derivative against finite differences.
    assert torch.autograd.gradgradcheck(model, (kappa, source), eps=1e-6, atol=1e-7, fast_mode=True)


def test_gradients_in_analytic_lens_parameters_match_finite_differences():
    grid = L.LensGrid(image_pixels=6, image_fov=4.0, source_pixels=8, source_fov=3.0)
    source = gaussian_source(grid, batch=2, width=0.6)
    names = ("theta_e", "q", "phi", "x0", "y0", "gamma1")
    values = [tensor(v).requires_grad_() for v in ([1.1, 0.9], [0.7, 0.95], 0.4, 0.1, -0.1, 0.02)]

    def sie(*args):
        return L.sie_image({**dict(zip(names, args, strict=True)), "source": source}, grid)

    assert torch.autograd.gradcheck(sie, values, eps=1e-6, atol=1e-8)
    nfw_values = [tensor(v).requires_grad_() for v in ([0.6, 0.8], 1.3, 0.05)]

    def nfw(kappa_s, r_s, x0):
        return L.nfw_image({"kappa_s": kappa_s, "r_s": r_s, "x0": x0, "source": source}, grid)

    assert torch.autograd.gradcheck(nfw, nfw_values, eps=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Einstein radius, noise, devices, tables


def test_einstein_radius_of_sis_and_sie():
    grid = L.LensGrid(image_pixels=128)
    step = grid.pixel_scale("kappa")
    p = {"theta_e": tensor([0.8, 1.5, 1.5]), "q": tensor([1.0, 1.0, 0.6]), "phi": 0.4}
    kappa = L.pixel_average_convergence(L.sie_deflection, p, grid)
    estimate = L.einstein_radius(kappa, step)
    # Mean enclosed κ in a circle of radius R is θ_E/(2πR) ∮ dφ / sqrt(q cos²φ + sin²φ/q).
    phi = np.linspace(0, 2 * np.pi, 20001)[:-1]
    factor = np.mean(1 / np.sqrt(0.6 * np.cos(phi) ** 2 + np.sin(phi) ** 2 / 0.6))
    expected = [0.8, 1.5, 1.5 * factor]
    assert estimate.numpy() == pytest.approx(expected, abs=0.2 * step)
    # The paper's estimate (mass of the κ > 1 pixels) gives θ_E/√2 for an SIS.
    paper = L.einstein_radius(kappa[:2], step, method="critical_mass")
    assert paper.numpy() == pytest.approx([0.8 / math.sqrt(2), 1.5 / math.sqrt(2)], abs=0.1 * step)


def test_einstein_radius_edge_cases():
    grid = L.LensGrid(image_pixels=32)
    step = grid.pixel_scale("kappa")
    maps = torch.stack([torch.full((32, 32), 0.5), torch.full((32, 32), 3.0)]).to(DTYPE)
    radius = L.einstein_radius(maps, step)
    assert radius[0].item() == 0.0
    assert math.isnan(radius[1].item())


def test_coherence_is_phase_sensitive_unlike_the_paper_definition():
    torch.manual_seed(8)
    truth = torch.rand(1, 32, 32, dtype=DTYPE)
    spectrum = torch.fft.fft2(truth)
    phases = torch.exp(2j * math.pi * torch.rand(32, 32, dtype=DTYPE))
    scrambled = torch.fft.ifft2(spectrum.abs() * phases).real  # same amplitudes, wrong phases
    k, same = L.coherence_spectrum(3.0 * truth, truth, 0.1)
    assert k.shape == (40,) and k[-1] < 1 / (2 * 0.1)
    valid = ~torch.isnan(same)
    assert valid.sum() >= 30
    assert torch.allclose(same[valid], torch.ones_like(same[valid]), atol=1e-12)
    _, flipped = L.coherence_spectrum(-truth, truth, 0.1)
    assert torch.allclose(flipped[valid], -torch.ones_like(flipped[valid]), atol=1e-12)
    _, blind = L.coherence_spectrum(-truth, truth, 0.1, method="paper")
    assert torch.allclose(blind[valid], torch.ones_like(blind[valid]), atol=1e-12)
    _, random_phase = L.coherence_spectrum(scrambled, truth, 0.1)
    assert random_phase[valid].abs().mean() < 0.3
    _, paper = L.coherence_spectrum(scrambled, truth, 0.1, method="paper")
    assert paper[valid].mean() > 0.8  # the phase-blind score rewards wrong structure


def test_add_noise_is_reproducible_and_has_the_requested_level():
    image = torch.zeros(2, 64, 64, dtype=DTYPE)
    sigma = tensor([0.01, 0.1])
    noisy = L.add_noise(image, sigma, generator=torch.Generator().manual_seed(0))
    again = L.add_noise(image, sigma, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)
    assert noisy.std(dim=(-2, -1)).numpy() == pytest.approx([0.01, 0.1], rel=0.05)


@pytest.mark.parametrize("device", DEVICES)
def test_model_follows_input_device_and_dtype(device):
    grid = L.LensGrid(image_pixels=16, source_pixels=12)
    kappa = torch.full((1, 16, 16), 0.3, device=device)
    source = torch.rand(1, 12, 12, device=device)
    image = L.lens_image({"kappa": kappa, "source": source}, grid)
    assert image.device == kappa.device and image.dtype == torch.float32
    reference = L.lens_image({"kappa": kappa.double().cpu(), "source": source.double().cpu()}, grid)
    assert torch.allclose(image.double().cpu(), reference, atol=1e-5)
    image = L.sie_image({"theta_e": 1.0, "q": 0.8, "source": source.double()}, grid)
    assert image.dtype == DTYPE and image.device == source.device


def test_parameter_tables_describe_the_model_functions():
    models = available()
    tables = {info.name: info for info in L.MODELS}
    assert {"lensing.pixelated", "lensing.sie", "lensing.nfw"} <= set(models)
    assert [spec.name for spec in tables["lensing.pixelated"].parameters] == list(
        L.forward.PIXELATED_PARAMS
    )
    assert {s.name for s in tables["lensing.sie"].parameters} == set(L.forward.SIE_PARAMS)
    assert {s.name for s in tables["lensing.nfw"].parameters} == set(L.forward.NFW_PARAMS)
    for info in L.MODELS:
        for spec in info.parameters:
            low, high = spec.bounds
            assert low is None or spec.default >= low, spec.name
            assert high is None or spec.default <= high, spec.name
            assert spec.unit, spec.name
    q = next(s for s in tables["lensing.sie"].parameters if s.name == "q")
    assert q.bounds == (0.0, 1.0)
    # The table defaults give a working model.
    grid = L.LensGrid(image_pixels=16, source_pixels=12)
    source = gaussian_source(grid)
    for name, model in (("lensing.sie", L.sie_image), ("lensing.nfw", L.nfw_image)):
        p = {s.name: s.default for s in tables[name].parameters if s.name != "source"}
        assert torch.isfinite(model({**p, "source": source}, grid)).all()


# ---------------------------------------------------------------------------------------------
# Input validation


def _grid():
    return L.LensGrid(image_pixels=8, source_pixels=6)


def _kappa(b=1, n=8):
    return torch.full((b, n, n), 0.3, dtype=DTYPE)


def _source(b=1, n=6):
    return torch.ones(b, n, n, dtype=DTYPE)


def _nan_kappa():
    k = _kappa()
    k[0, 2, 2] = math.nan
    return k


def _inf_source():
    s = _source()
    s[0, 1, 1] = math.inf
    return s


BAD_INPUTS = [
    ("theta_e", lambda: L.sie_image({"theta_e": -1.0, "q": 0.8, "source": _source()}, _grid())),
    ("q", lambda: L.sie_image({"theta_e": 1.0, "q": 0.0, "source": _source()}, _grid())),
    ("q", lambda: L.sie_image({"theta_e": 1.0, "q": 1.2, "source": _source()}, _grid())),
    ("core", lambda: L.sie_convergence({"theta_e": 1.0, "q": 0.8, "core": -0.1}, 0.0, 0.0)),
    ("phi", lambda: L.sie_deflection({"theta_e": 1.0, "q": 0.8, "phi": math.nan}, 0.0, 0.0)),
    ("kappa_s", lambda: L.nfw_image({"kappa_s": -0.1, "r_s": 1.0, "source": _source()}, _grid())),
    ("r_s", lambda: L.nfw_deflection({"kappa_s": 0.1, "r_s": 0.0}, 1.0, 1.0)),
    ("kappa", lambda: L.lens_image({"kappa": _kappa()[:, :, :7], "source": _source()}, _grid())),
    ("kappa", lambda: L.lens_image({"kappa": _kappa(n=10), "source": _source()}, _grid())),
    ("kappa", lambda: L.lens_image({"kappa": _kappa()[0], "source": _source()}, _grid())),
    ("kappa", lambda: L.lens_image({"kappa": _nan_kappa(), "source": _source()}, _grid())),
    ("kappa", lambda: L.lens_image({"kappa": _kappa(2), "source": _source(3)}, _grid())),
    ("source", lambda: L.lens_image({"kappa": _kappa(), "source": _inf_source()}, _grid())),
    ("source", lambda: L.lens_image({"kappa": _kappa(), "source": _source(n=7)}, _grid())),
    ("source", lambda: L.lens_image({"kappa": _kappa()}, _grid())),
    (
        "gamma1",
        lambda: L.lens_image(
            {"kappa": _kappa(2), "source": _source(2), "gamma1": tensor([0.1, 0.0, 0.2])}, _grid()
        ),
    ),  # fmt: skip
    ("theta_E", lambda: L.sie_image({"theta_E": 1.0, "q": 0.8, "source": _source()}, _grid())),
    (
        "psf",
        lambda: L.lens_image(
            {"kappa": _kappa(), "source": _source()},
            _grid(),
            psf=torch.ones(4, 4, dtype=DTYPE) / 16,
        ),
    ),  # fmt: skip
    ("size", lambda: L.gaussian_psf(0.1, 0.06, size=20)),
    ("fwhm", lambda: L.gaussian_psf(-0.1, 0.06)),
    ("sigma", lambda: L.add_noise(torch.zeros(1, 4, 4), -0.1)),
    ("kappa_fov", lambda: L.LensGrid(image_fov=7.68, kappa_fov=5.0)),
    ("image_pixels", lambda: L.LensGrid(image_pixels=1)),
    ("source_fov", lambda: L.LensGrid(source_fov=-3.0)),
]


@pytest.mark.parametrize(
    ("name", "call"), BAD_INPUTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_INPUTS)]
)
def test_bad_inputs_raise_value_errors_naming_the_parameter(name, call):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


def test_validate_false_skips_checks_but_computes_the_same_image():
    grid = L.LensGrid(image_pixels=16, source_pixels=12)
    p = {"kappa": sie_kappa(grid), "source": gaussian_source(grid)}
    psf = L.gaussian_psf(0.3, grid.pixel_scale("image"))
    assert torch.equal(L.lens_image(p, grid, psf), L.lens_image(p, grid, psf, validate=False))
