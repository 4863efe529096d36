"""Tests for inversekit.models.image: AstroPhot exactness, pixel integration, gradients, checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import integrate, signal
from scipy.ndimage import map_coordinates
from scipy.special import gammaincc, gammaincinv
from torch.func import jacfwd

from inversekit.errors import InputError
from inversekit.models import available, image

PROBLEMS = Path(__file__).resolve().parents[1] / "data" / "astrophot"

F64 = torch.float64


def f64(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=F64)


@pytest.fixture(autouse=True)
def one_thread():
    """Run single-threaded: on shared 2-core CI machines a second MKL FFT thread can stall
    every transform for tens of milliseconds; the threads setting is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_problem(name: str) -> tuple[dict, dict]:
    """The AstroPhot problem's arrays and JSON; a missing folder is an error, never a skip."""
    npz, meta = PROBLEMS / f"{name}.npz", PROBLEMS / f"{name}.json"
    if not (npz.is_file() and meta.is_file()):
        raise FileNotFoundError(
            f"AstroPhot problem files not found at {PROBLEMS} (tests/data/astrophot)"
        )
    with np.load(npz) as arrays:
        data = {k: arrays[k] for k in arrays.files}
    return data, json.loads(meta.read_text())


def problem_model(meta: dict, psf: np.ndarray, sampling: str = "midpoint") -> image.ImageModel:
    galaxies = {g["name"]: image.sersic(sampling=sampling) for g in meta["galaxies"]}
    return image.group(**galaxies, sky=image.flat_sky(), psf=psf, shape=tuple(meta["shape"]))


def problem_params(meta: dict, which: str = "truth") -> dict[str, float]:
    p = {f"{g['name']}.{k}": v for g in meta["galaxies"] for k, v in g[which].items()}
    p["sky.I0"] = meta["sky"][which]["I0"]
    return p


# --- independent NumPy Sérsic, written from AstroPhot's stated formula -------------------


def bn_ciotti_bertin(n: float) -> float:
    return (
        2 * n
        - 1 / 3
        + 4 / (405 * n)
        + 46 / (25515 * n**2)
        + 131 / (1148175 * n**3)
        - 2194697 / (30690717750 * n**4)
    )


def sersic_np(x, y, cx, cy, q, PA, n, Re, Ie):
    theta = np.pi / 2 - PA
    dx, dy = x - cx, y - cy
    xp = np.cos(theta) * dx - np.sin(theta) * dy
    yp = (np.sin(theta) * dx + np.cos(theta) * dy) / q
    R = np.sqrt(xp**2 + yp**2 + 1e-6)
    return Ie * np.exp(-bn_ciotti_bertin(n) * ((R / Re) ** (1 / n) - 1))


def cusp_pixel_integral(i: int, j: int, prm: dict) -> float:
    """Integral over pixel (i, j) holding the centre: polar coordinates about the centre.

    Four triangles (centre to each pixel edge), with r = t^(2n) so that (r/Re)^(1/n) is
    smooth in t and adaptive quadrature converges fast.
    """
    cx, cy, m = prm["cx"], prm["cy"], 2 * prm["n"]
    corners = [(j - 0.5, i - 0.5), (j + 0.5, i - 0.5), (j + 0.5, i + 0.5), (j - 0.5, i + 0.5)]
    total = 0.0
    for k in range(4):
        (ax, ay), (bx, by) = corners[k], corners[(k + 1) % 4]
        phi0, phi1 = np.arctan2(ay - cy, ax - cx), np.arctan2(by - cy, bx - cx)
        phi1 += 2 * np.pi if phi1 < phi0 else 0.0
        ex, ey, px, py = bx - ax, by - ay, ax - cx, ay - cy

        def t_max(phi, ex=ex, ey=ey, px=px, py=py):
            return ((px * ey - py * ex) / (np.cos(phi) * ey - np.sin(phi) * ex)) ** (1 / m)

        def integrand(t, phi):
            r = t**m
            value = sersic_np(cx + r * np.cos(phi), cy + r * np.sin(phi), **prm)
            return value * r * m * t ** (m - 1)

        total += integrate.dblquad(integrand, phi0, phi1, 0, t_max, epsabs=0, epsrel=1e-10)[0]
    return total


def pixel_integrals_reference(shape, prm, gl=16):
    """Pixel means by three independent rules: polar adaptive quadrature on the pixel holding
    the cusp, Cartesian adaptive quadrature on its 8 neighbours, 16x16 Gauss–Legendre
    elsewhere (at least a pixel from the cusp, where the profile is analytic)."""
    height, width = shape
    u, w = np.polynomial.legendre.leggauss(gl)
    u, w = u / 2, w / 2
    xs = (np.arange(width)[:, None] + u).ravel()
    ys = (np.arange(height)[:, None] + u).ravel()
    values = sersic_np(xs[None, :], ys[:, None], **prm).reshape(height, gl, width, gl)
    out = np.einsum("iajb,a,b->ij", values, w, w)
    ci, cj = int(np.floor(prm["cy"] + 0.5)), int(np.floor(prm["cx"] + 0.5))
    for i in range(ci - 1, ci + 2):
        for j in range(cj - 1, cj + 2):
            if (i, j) == (ci, cj):
                out[i, j] = cusp_pixel_integral(i, j, prm)
            else:
                out[i, j] = integrate.dblquad(
                    lambda yy, xx: sersic_np(xx, yy, **prm),
                    j - 0.5,
                    j + 0.5,
                    i - 0.5,
                    i + 0.5,
                    epsabs=0,
                    epsrel=1e-10,
                )[0]
    return out


# --- AstroPhot problems -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["sersic128", "sersic256", "group256"])
def test_astrophot_truth_images_reproduced(name):
    data, meta = load_problem(name)
    model = problem_model(meta, data["psf"])
    img = model(problem_params(meta)).numpy()
    truth = data["truth_image"]
    assert img.shape == truth.shape
    rel = np.abs(img - truth) / np.abs(truth)
    assert rel.max() < 1e-10, f"{name}: max relative error {rel.max():.3e}"


def test_astrophot_problem_sensitive_to_conventions():
    # The 1e-10 match must fail for a PSF-free model or a flipped PA: the test can see errors.
    data, meta = load_problem("sersic128")
    p = problem_params(meta)
    truth = data["truth_image"]
    no_psf = image.group(gal0=image.sersic(), sky=image.flat_sky(), shape=(128, 128))
    assert np.abs(no_psf(p).numpy() - truth).max() > 1e-3
    flipped = dict(p, **{"gal0.PA": math.pi - p["gal0.PA"]})
    assert np.abs(problem_model(meta, data["psf"])(flipped).numpy() - truth).max() > 1e-2


def test_astrophot_component_values_recorded():
    # Values recorded from AstroPhot 0.18.0 (midpoint sampling, no PSF, 40 x 48 image).
    cases = {
        "sersic": (
            image.sersic(),
            dict(cx=20.3, cy=17.6, q=0.6, PA=0.4, n=1.7, Re=5.0, Ie=3.0),
            (665.7969619194447, 1.1784126366441887, 0.7486654998974365),
        ),
        "exponential": (
            image.exponential(),
            dict(cx=25.2, cy=21.9, q=0.5, PA=2.0, Re=6.0, Ie=2.0),
            (429.3230811024128, 0.06321230244825425, 0.21947638737149466),
        ),
        "gaussian": (
            image.gaussian(),
            dict(cx=22.7, cy=18.1, q=0.8, PA=1.1, sigma=3.0, flux=50.0),
            (39.999997777774716, 0.04562533634481338, 0.005628013196765327),
        ),
        "moffat": (
            image.moffat(),
            dict(cx=19.4, cy=23.3, q=0.9, PA=2.8, n=2.2, Rd=2.5, I0=7.0),
            (102.60475239339344, 0.004078699198230631, 0.10491985971928193),
        ),
    }
    for name, (component, prm, (total, v1, v2)) in cases.items():
        img = image.group(c=component, shape=(40, 48))({f"c.{k}": v for k, v in prm.items()})
        got = (float(img.sum()), float(img[12, 25]), float(img[22, 14]))
        np.testing.assert_allclose(got, (total, v1, v2), rtol=1e-12, err_msg=name)
    sky = image.group(s=image.plane_sky(), shape=(40, 48))
    plane = sky({"s.I0": 4.5, "s.delta_x": 0.1, "s.delta_y": -0.03})
    assert float(plane[7, 31]) == pytest.approx(7.39, rel=1e-13)
    assert float(plane.sum()) == pytest.approx(12028.8, rel=1e-13)


# --- sub-pixel integration and flux -------------------------------------------------------


def test_quad_sampling_matches_independent_integration():
    prm = dict(cx=31.37, cy=32.71, q=0.6, PA=0.9, n=4.0, Re=4.0, Ie=2.0)
    reference = pixel_integrals_reference((64, 64), prm)
    p = {f"g.{k}": v for k, v in prm.items()}
    quad = image.group(g=image.sersic(sampling="quad"), shape=(64, 64))(p).numpy()
    rel = np.abs(quad - reference) / reference
    assert rel.max() < 1e-4, f"quad max relative error {rel.max():.3e}"
    midpoint = image.group(g=image.sersic(), shape=(64, 64))(p).numpy()
    assert (np.abs(midpoint - reference) / reference).max() > 1e-2  # midpoint is visibly worse


def test_quad_total_flux_matches_analytic_sersic():
    n, Re, Ie, q = 2.5, 2.0, 5.0, 0.7
    prm = dict(cx=63.3, cy=64.6, q=q, PA=0.7, n=n, Re=Re, Ie=Ie)
    p = {f"g.{k}": v for k, v in prm.items()}
    bn = image.sersic_bn(f64(n))
    total = float(image.sersic_total_flux(f64(n), f64(Re), f64(Ie), f64(q), bn))
    # Honest bound on the light outside the image: all of it lies beyond the largest
    # isophote that fits in the frame (semi-major axis = distance to the nearest edge).
    edge = min(prm["cx"] + 0.5, 127.5 - prm["cx"], prm["cy"] + 0.5, 127.5 - prm["cy"])
    outside = gammaincc(2 * n, float(bn) * (edge / Re) ** (1 / n))
    assert outside < 1e-4
    quad = image.group(g=image.sersic(sampling="quad"), shape=(128, 128))(p)
    assert abs(float(quad.sum()) / total - 1) < 1e-3
    midpoint = image.group(g=image.sersic(), shape=(128, 128))(p)
    assert abs(float(midpoint.sum()) / total - 1) > 1e-2  # the cusp defeats midpoint sampling


def test_total_flux_formula_against_numerical_integral():
    n, Re, Ie, q = 1.7, 3.0, 2.0, 0.55
    bn = bn_ciotti_bertin(n)
    radial = integrate.quad(
        lambda r: r * Ie * np.exp(-bn * ((r / Re) ** (1 / n) - 1)), 0, np.inf, limit=200
    )[0]
    formula = image.sersic_total_flux(f64(n), f64(Re), f64(Ie), f64(q), f64(bn))
    assert float(formula) == pytest.approx(2 * np.pi * q * radial, rel=1e-10)


def test_exact_bn_solves_incomplete_gamma_and_differentiates():
    n = torch.tensor([0.5, 1.0, 2.5, 4.0, 8.0], dtype=F64, requires_grad=True)
    b = image.sersic_bn_exact(n)
    np.testing.assert_allclose(
        b.detach().numpy(), gammaincinv(2 * n.detach().numpy(), 0.5), rtol=1e-12
    )
    (grad,) = torch.autograd.grad(b.sum(), n)
    nn, h = n.detach().numpy(), 1e-5
    fd = (gammaincinv(2 * (nn + h), 0.5) - gammaincinv(2 * (nn - h), 0.5)) / (2 * h)
    np.testing.assert_allclose(grad.numpy(), fd, rtol=1e-8)
    np.testing.assert_allclose(
        torch.diag(jacfwd(image.sersic_bn_exact)(n.detach())).numpy(), fd, rtol=1e-8
    )
    # Ciotti & Bertin is close but not exact: the default is AstroPhot's choice.
    cb = image.sersic_bn(n.detach())
    assert 1e-7 < float(((cb - b.detach()) / b.detach()).abs().max()) < 1e-3


def test_quad_batched_equals_one_by_one():
    model = image.group(g=image.sersic(sampling="quad"), shape=(24, 28))
    base = dict(cx=12.3, cy=10.8, q=0.7, PA=1.2, n=2.0, Re=3.0, Ie=1.0)
    cxs = torch.tensor([12.3, 5.6, 20.05], dtype=F64)
    p = {f"g.{k}": torch.full((3,), v, dtype=F64) for k, v in base.items()}
    p["g.cx"] = cxs
    batched = model(p)
    assert batched.shape == (3, 24, 28)
    for i in range(3):
        single = model({f"g.{k}": (float(cxs[i]) if k == "cx" else v) for k, v in base.items()})
        torch.testing.assert_close(batched[i], single, rtol=1e-14, atol=1e-14)


# --- PSF convolution and point sources ----------------------------------------------------


def test_convolution_is_linear_and_oriented_like_scipy():
    rng = np.random.default_rng(1)
    psf = rng.uniform(0, 1, size=(5, 7))
    psf[1, 5] += 4.0  # strongly asymmetric: a correlation would fail
    prm = dict(cx=14.2, cy=9.7, q=0.5, PA=0.3, sigma=2.0, flux=30.0)
    p = {f"g.{k}": v for k, v in prm.items()}
    img = image.group(g=image.gaussian(), psf=psf, shape=(20, 30))(p).numpy()
    unconvolved = image.group(g=image.gaussian(convolve=False), shape=(24, 36))
    # sample on the grid padded by (2, 3) as the model does, then convolve independently
    shifted = {**p, "g.cx": prm["cx"] + 3, "g.cy": prm["cy"] + 2}
    padded = unconvolved(shifted).numpy()
    expected = signal.convolve2d(padded, psf, mode="valid")
    np.testing.assert_allclose(img, expected, rtol=0, atol=1e-13 * np.abs(expected).max())
    assert np.abs(img - expected).max() < 1e-13 * np.abs(expected).max()
    correlated = signal.correlate2d(padded, psf, mode="valid")
    assert np.abs(img - correlated).max() > 1e-2 * np.abs(expected).max()


def test_point_source_bilinear_matches_scipy_and_conserves_flux():
    rng = np.random.default_rng(2)
    psf = rng.uniform(0, 1, size=(7, 7))
    psf[3, 3] += 5
    psf /= psf.sum()
    model = image.group(s=image.point_source(), psf=psf, shape=(30, 34))
    yy, xx = np.mgrid[0:30, 0:34].astype(float)
    for cx, cy in [(17.0, 12.0), (17.3, 12.8), (10.55, 20.45)]:
        img = model({"s.cx": cx, "s.cy": cy, "s.flux": 12.0}).numpy()
        expected = 12.0 * map_coordinates(
            psf, [yy - cy + 3, xx - cx + 3], order=1, mode="grid-constant", cval=0.0
        )
        np.testing.assert_allclose(img, expected, rtol=1e-12, atol=1e-14)
        assert img.sum() == pytest.approx(12.0, rel=1e-12)
    at_integer = model({"s.cx": 17.0, "s.cy": 12.0, "s.flux": 1.0}).numpy()
    np.testing.assert_allclose(at_integer[9:16, 14:21], psf, rtol=0, atol=1e-15)


def test_point_source_cubic_is_exact_at_integers_and_keeps_flux_and_centroid():
    psf = image.check_psf(np.outer(*(2 * [np.exp(-0.5 * (np.arange(-4, 5) / 1.3) ** 2)]))).numpy()
    psf /= psf.sum()
    model = image.group(s=image.point_source(kernel="cubic"), psf=psf, shape=(25, 25))
    at_integer = model({"s.cx": 12.0, "s.cy": 11.0, "s.flux": 2.0}).numpy()
    np.testing.assert_allclose(at_integer[7:16, 8:17], 2 * psf, atol=1e-15)
    shifted = model({"s.cx": 12.4, "s.cy": 11.7, "s.flux": 2.0}).numpy()
    assert shifted.sum() == pytest.approx(2.0, rel=1e-12)
    # centroid follows the requested position
    yy, xx = np.mgrid[0:25, 0:25]
    assert (shifted * xx).sum() / shifted.sum() == pytest.approx(12.4, abs=1e-12)
    assert (shifted * yy).sum() / shifted.sum() == pytest.approx(11.7, abs=1e-12)


# --- geometry conventions ------------------------------------------------------------------


def test_position_angle_and_axis_ratio_conventions():
    cx, cy, q, PA = torch.tensor(3.0, dtype=F64), torch.tensor(-2.0, dtype=F64), 0.4, 0.35
    q, PA = torch.tensor(q, dtype=F64), torch.tensor(PA, dtype=F64)
    t = torch.tensor(5.0, dtype=F64)
    major = torch.stack([-torch.sin(PA), torch.cos(PA)])  # from +y towards -x
    minor = torch.stack([torch.cos(PA), torch.sin(PA)])
    r_major = image.elliptical_radius(cx + t * major[0], cy + t * major[1], cx, cy, q, PA)
    r_minor = image.elliptical_radius(cx + t * minor[0], cy + t * minor[1], cx, cy, q, PA)
    assert float(r_major) == pytest.approx(math.sqrt(25 + 1e-6), rel=1e-14)
    assert float(r_minor) == pytest.approx(math.sqrt((5 / 0.4) ** 2 + 1e-6), rel=1e-14)
    # PA = 0 puts the major axis along rows (+y): a tall image of a q = 0.3 Gaussian
    img = image.group(g=image.gaussian(), shape=(41, 41))(
        {"g.cx": 20, "g.cy": 20, "g.q": 0.3, "g.PA": 0.0, "g.sigma": 5.0, "g.flux": 1.0}
    )
    assert float(img[35, 20]) > 100 * float(img[20, 35])


def test_plane_sky_and_flat_sky():
    model = image.group(a=image.flat_sky(), b=image.plane_sky(), shape=(5, 7))
    img = model({"a.I0": 1.0, "b.I0": 2.0, "b.delta_x": 0.5, "b.delta_y": -0.25})
    y, x = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), indexing="ij")
    torch.testing.assert_close(img, 3.0 + 0.5 * x.double() - 0.25 * y.double())


# --- gradients -------------------------------------------------------------------------------


def prefixed(component: str, **values: float) -> dict[str, float]:
    return {f"{component}.{k}": v for k, v in values.items()}


def full_scene() -> tuple[image.ImageModel, dict[str, float]]:
    x = np.arange(-3, 4)
    psf = np.exp(-0.5 * (x[:, None] ** 2 / 1.2**2 + x[None, :] ** 2 / 1.6**2))
    model = image.group(
        gal=image.sersic(sampling="quad", bn="exact"),
        disc=image.exponential(),
        blob=image.gaussian(),
        halo=image.moffat(sampling=image.Sampling(order=2, levels=1)),
        star=image.point_source(kernel="cubic"),
        sky=image.plane_sky(),
        psf=psf / psf.sum(),
        shape=(30, 34),
    )
    p = {
        **prefixed("gal", cx=15.37, cy=13.61, q=0.65, PA=0.8, n=2.3, Re=4.0, Ie=3.0),
        **prefixed("disc", cx=16.2, cy=14.1, q=0.4, PA=2.2, Re=7.0, Ie=0.8),
        **prefixed("blob", cx=8.3, cy=20.2, q=0.9, PA=0.1, sigma=2.1, flux=40.0),
        **prefixed("halo", cx=24.6, cy=7.3, q=0.8, PA=1.4, n=2.5, Rd=3.0, I0=2.0),
        **prefixed("star", cx=25.3, cy=22.6, flux=50.0),
        **prefixed("sky", I0=1.0, delta_x=0.01, delta_y=-0.02),
    }
    return model, p


def test_gradients_match_finite_differences():
    model, p = full_scene()
    names = model.names
    assert set(names) == set(p)
    vec = torch.tensor([p[n] for n in names], dtype=F64)

    def f(v):
        return model(dict(zip(names, v, strict=True)))

    jac = jacfwd(f)(vec)  # (H, W, P)
    weights = torch.randn(30, 34, dtype=F64, generator=torch.Generator().manual_seed(0))
    v = vec.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((f(v) * weights).sum(), v)
    torch.testing.assert_close(grad, (jac * weights[..., None]).sum((0, 1)), rtol=1e-10, atol=1e-10)
    for i, name in enumerate(names):
        h = 1e-6 * max(1.0, abs(float(vec[i])))
        step = torch.zeros_like(vec)
        step[i] = h
        fd = (f(vec + step) - f(vec - step)) / (2 * h)
        scale = float(jac[..., i].abs().max())
        assert scale > 0, name
        err = float((jac[..., i] - fd).abs().max()) / scale
        assert err < 1e-6, f"{name}: relative Jacobian error {err:.2e}"


def test_component_images_sum_to_the_model():
    model, p = full_scene()
    parts = model.component_images(p)
    assert list(parts) == list(model.components)
    torch.testing.assert_close(sum(parts.values()), model(p), rtol=1e-12, atol=1e-12)
    assert float(parts["sky"][0, 0]) == pytest.approx(1.0)


def test_dtype_follows_parameters_and_gradients_flow_through_validation():
    model, p = full_scene()
    p32 = {k: torch.tensor(v, dtype=torch.float32) for k, v in p.items()}
    assert model(p32).dtype == torch.float32
    q = torch.tensor(0.65, dtype=F64, requires_grad=True)
    img = model({**p, "gal.q": q})
    (g,) = torch.autograd.grad(img.sum(), q)
    assert torch.isfinite(g) and float(g) != 0.0


# --- input validation -------------------------------------------------------------------------


def test_bad_parameter_values_raise_naming_the_parameter():
    model, p = full_scene()
    for key, bad in [
        ("gal.Re", -1.0),
        ("gal.q", 1.2),
        ("gal.q", 0.0),
        ("gal.n", -0.5),
        ("disc.Re", 0.0),
        ("blob.sigma", -2.0),
        ("halo.Rd", -1.0),
        ("star.cx", float("nan")),
        ("sky.I0", float("inf")),
    ]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            model({**p, key: bad})
    batched = torch.tensor([0.5, 1.5, 0.7], dtype=F64)
    with pytest.raises(ValueError, match=r"gal\.q .*1 of 3"):
        model({**p, "gal.q": batched})


def test_validation_off_and_skipped_inside_jacfwd():
    model, p = full_scene()
    bad = {**p, "gal.q": 1.5}
    names = model.names
    vec = torch.tensor([bad[n] for n in names], dtype=F64)
    jac = jacfwd(lambda v: model(dict(zip(names, v, strict=True))))(vec)  # no host reads
    assert jac.shape == (30, 34, len(names))
    unchecked = image.group(g=image.sersic(), shape=(8, 8), validate=False)
    out = unchecked({"g.cx": 4, "g.cy": 4, "g.q": 1.5, "g.PA": 0, "g.n": 1, "g.Re": 2, "g.Ie": 1})
    assert torch.isfinite(out).all()


def test_missing_and_misspelt_parameters():
    model = image.group(gal=image.sersic(), sky=image.flat_sky(), shape=(8, 8))
    p = {n: 1.0 for n in model.names}
    with pytest.raises(KeyError, match=r"gal\.Re"):
        model({k: v for k, v in p.items() if k != "gal.Re"})
    with pytest.raises(KeyError, match=r"gal\.re"):
        model({**p, "gal.re": 2.0})
    assert model({**p, "noise.sigma": 2.0}).shape == (8, 8)  # other models' keys pass
    with pytest.raises(InputError, match="image models take only the parameter dict"):
        model(p, torch.zeros(3))


@pytest.mark.parametrize(
    "psf, match",
    [
        (np.ones(5), "2-D"),
        (np.ones((3, 3, 3)), "2-D"),
        (np.ones((4, 5)), "odd"),
        (np.array([[0.0, 1.0, np.nan]] * 3), "non-finite"),
        (np.zeros((3, 3)), "positive sum"),
        ([["a"]], "array of numbers"),
    ],
)
def test_bad_psf_raises(psf, match):
    with pytest.raises(ValueError, match=rf"psf.*{match}|{match}.*psf"):
        image.group(g=image.sersic(), psf=psf, shape=(10, 10))


@pytest.mark.parametrize("shape", [(0, 5), (5,), (2.5, 3), "ab", (3, -1), None, (True, 4)])
def test_bad_shape_raises(shape):
    with pytest.raises(ValueError, match="shape"):
        image.group(g=image.sersic(), shape=shape)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="size"):
        image.Sampling(order=3, size=4)
    with pytest.raises(ValueError, match="order"):
        image.Sampling(order=0)
    with pytest.raises(ValueError, match="sampling"):
        image.sersic(sampling="simpson")
    with pytest.raises(ValueError, match="bn"):
        image.sersic(bn="graham")
    with pytest.raises(ValueError, match="kernel"):
        image.point_source(kernel="lanczos")
    with pytest.raises(ValueError, match="star.*psf"):
        image.group(star=image.point_source(), shape=(8, 8))
    with pytest.raises(ValueError, match="component 'g'"):
        image.group(g=lambda p: p, shape=(8, 8))


# --- parameter tables ------------------------------------------------------------------------


def test_parameter_tables_registered_and_consistent():
    found = available()
    kinds = ("sersic", "exponential", "gaussian", "moffat", "point_source", "flat_sky", "plane_sky")
    assert {f"image.{kind}" for kind in kinds} <= set(found)
    sersic = {s.name: s for s in found["image.sersic"].parameters}
    assert list(sersic) == ["cx", "cy", "q", "PA", "n", "Re", "Ie"]
    assert sersic["q"].bounds == (0.0, 1.0)
    assert sersic["n"].bounds == (0.36, 10.0)
    assert sersic["Re"].bounds[0] == 0.0 and sersic["Re"].log_scale
    model = image.group(gal=image.sersic(), sky=image.flat_sky(), shape=(8, 8))
    assert model.names == tuple(s.name for s in model.table())
    assert model.defaults()["gal.q"] == sersic["q"].default
    assert model(model.defaults()).shape == (8, 8)
