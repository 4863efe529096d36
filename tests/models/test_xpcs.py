"""Tests of inversekit.models.xpcs: homodyne's c2 reproduced exactly, derivatives, blocks
and pairs, input checks, the data loader and the parameter tables."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.func import jacfwd, jacrev, jvp, vjp, vmap

import inversekit.models as models
from inversekit.models import xpcs
from inversekit.models.xpcs import _kernel

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "tests" / "data" / "xpcs" / "reference_c2.npz"
CASES = ("static_bench", "laminar_bench", "static_edge", "laminar_edge")
LAMINAR = ("D0", "alpha", "D_offset", "gamma_dot_t0", "beta", "gamma_dot_t_offset", "phi0")
F64 = torch.float64


@pytest.fixture(scope="module")
def reference():
    assert REFERENCE.is_file(), (
        f"homodyne reference file missing: {REFERENCE} (expected in tests/data/xpcs)"
    )
    with np.load(REFERENCE, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def reference_case(z: dict, case: str):
    """(p, t, phi, keyword inputs) of one case of reference_c2.npz."""
    g = lambda k: z[f"{case}__{k}"]  # noqa: E731
    p = {
        str(k): torch.tensor(float(v), dtype=F64)
        for k, v in zip(g("param_names"), g("params"), strict=True)
    }
    p["contrast"] = torch.tensor(g("contrast"))
    p["offset"] = torch.tensor(g("offset"))
    kw = {"q": float(g("q")), "dt": float(g("dt")), "L": float(g("L")), "mode": str(g("mode"))}
    return p, torch.tensor(g("t")), torch.tensor(g("phi_deg")), kw


def numpy_c2(mode, p, t, phi, q, dt, L):
    """MODEL.md's equations transcribed in NumPy: an oracle independent of the package."""
    t = np.asarray(t, dtype=np.float64)
    step = abs(t[min(1, t.size - 1)] - t[0])
    eps = step * 0.5 if step * 0.5 > 1e-8 else 1e-8
    ts = np.where(t > eps, t, eps)

    def smooth_integral(a, b, c):
        rate = a * ts**b + c
        rate = np.where(rate > 1e-10, rate, 1e-10)
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (rate[:-1] + rate[1:]))])
        return np.sqrt((cum[:, None] - cum[None, :]) ** 2 + 1e-12)

    phi = np.asarray(phi, dtype=np.float64)
    g1 = np.exp(
        np.clip(-0.5 * q**2 * dt * smooth_integral(p["D0"], p["alpha"], p["D_offset"]), -700, 0)
    )
    g1 = np.broadcast_to(g1, (phi.size, *g1.shape))
    if mode == "laminar_flow":
        m_g = smooth_integral(p["gamma_dot_t0"], p["beta"], p["gamma_dot_t_offset"])
        x = (0.5 / np.pi * q * L * dt * np.cos(np.deg2rad(p["phi0"] - phi)))[:, None, None] * m_g
        with np.errstate(invalid="ignore", divide="ignore"):
            far = np.sin(x) / np.where(np.abs(x) > 1e-12, x, 1.0)
        sinc = np.where(np.abs(x) < 1e-4, 1 - x**2 / 6 + x**4 / 120, far)
        g1 = g1 * sinc**2
    g1 = np.where(g1 > 1e-10, g1, 1e-10)
    c = np.asarray(p["contrast"], dtype=np.float64)[:, None, None]
    o = np.asarray(p["offset"], dtype=np.float64)[:, None, None]
    return o + c * g1**2


def laminar_params(**changes) -> dict:
    p = {
        "D0": 1.0e4,
        "alpha": 0.2,
        "D_offset": 100.0,
        "gamma_dot_t0": 2.0e-4,
        "beta": 0.1,
        "gamma_dot_t_offset": 1.0e-5,
        "phi0": 5.0,
        "contrast": [0.30, 0.28, 0.32],
        "offset": [1.00, 1.01, 0.99],
    }
    p.update(changes)
    return {k: torch.tensor(v, dtype=F64) for k, v in p.items()}


def static_params(**changes) -> dict:
    p = laminar_params(**changes)
    return {k: v for k, v in p.items() if k not in LAMINAR[3:]}


def grid(n: int = 24, window: float = 10.0) -> torch.Tensor:
    dt = window / n
    return dt * torch.arange(n, dtype=F64)


PHI3 = torch.tensor([0.0, 45.0, 90.0], dtype=F64)
BENCH = {"q": 0.0054, "L": 2.0e6}


# ---------------------------------------------------------------- exactness


@pytest.mark.parametrize("backend", ["fused", "autograd"])
@pytest.mark.parametrize("case", CASES)
def test_reference_cases_reproduced(reference, case, backend):
    p, t, phi, kw = reference_case(reference, case)
    out = xpcs.c2(p, t, phi, backend=backend, **kw)
    expected = torch.from_numpy(reference[f"{case}__c2"])
    assert out.shape == expected.shape and out.dtype == F64
    assert float((out - expected).abs().max()) < 1e-12


@pytest.mark.parametrize("case", CASES)
def test_reference_rates_and_integrals(reference, case):
    p, t, phi, kw = reference_case(reference, case)
    names = xpcs.parameter_names(kw["mode"])
    theta = torch.stack([p[k] for k in names])
    setup = _kernel.Setup(
        kw["mode"], _kernel.floored_times(t), phi, 0.0, 0.0, _kernel.Grid(0, 1, 0, 1)
    )
    c_d, c_g = _kernel.integrals(theta, setup)
    d_t = _kernel.power_law_rate(theta[0], theta[1], theta[2], setup.ts)
    np.testing.assert_allclose(d_t, reference[f"{case}__D_t"], rtol=1e-14)
    np.testing.assert_allclose(c_d, reference[f"{case}__D_cumsum"], rtol=1e-13)
    if c_g is not None:
        np.testing.assert_allclose(c_g, reference[f"{case}__gamma_cumsum"], rtol=1e-13)


@pytest.mark.parametrize("case", CASES)
def test_diagonal_correction_matches_homodyne(reference, case):
    c2 = torch.from_numpy(reference[f"{case}__c2"])
    corrected = xpcs.correct_diagonal(c2)
    diag = corrected.diagonal(dim1=-2, dim2=-1)
    assert torch.equal(diag, torch.from_numpy(reference[f"{case}__c2_diagcorr_diagonal"]))
    off = ~torch.eye(c2.shape[-1], dtype=torch.bool)
    assert torch.equal(corrected[:, off], c2[:, off])
    assert torch.equal(c2, torch.from_numpy(reference[f"{case}__c2"]))  # input untouched


# Regimes the reference file does not cover: each row changes the benchmark truth.
REGIMES = {
    "alpha_beta_very_negative": dict(alpha=-1.9, beta=-1.5),
    "D_floored_later": dict(D0=50.0, alpha=-1.0, D_offset=-20.0),
    "shear_rate_floored": dict(gamma_dot_t0=1e-3, beta=-1.0, gamma_dot_t_offset=-5e-4),
    "flow_along_an_angle": dict(phi0=45.0),  # phi = 45 deg: cos = 1
    "flow_perpendicular_to_angle": dict(phi0=0.0),  # phi = 90 deg: cos ~ 6e-17
    "flow_along_minus_90": dict(phi0=-90.0 + 1e-9),
    "huge_shear_g1_floor": dict(gamma_dot_t0=0.4, beta=0.5, gamma_dot_t_offset=0.05),
    "huge_diffusion_log_clip": dict(D0=1e9, alpha=1.0),
    "negative_contrast": dict(contrast=[-0.2, 0.0, 0.5]),
}


@pytest.mark.parametrize("regime", list(REGIMES))
@pytest.mark.parametrize("mode", ["static", "laminar_flow"])
def test_unseen_regimes_match_numpy_oracle(regime, mode):
    changes = REGIMES[regime]
    p = (
        laminar_params(**changes)
        if mode == "laminar_flow"
        else static_params(**{k: v for k, v in changes.items() if k not in LAMINAR[3:]})
    )
    t = grid(40)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6, mode=mode)
    expected = numpy_c2(
        mode, {k: v.numpy() for k, v in p.items()}, t.numpy(), PHI3.numpy(), 0.01, kw["dt"], 2.0e6
    )
    for backend in ("fused", "autograd"):
        out = xpcs.c2(p, t, PHI3, backend=backend, **kw)
        assert float((out - torch.from_numpy(expected)).abs().max()) < 1e-13, backend


@pytest.mark.parametrize(
    "t",
    [
        torch.tensor([0.0]),  # one frame
        torch.tensor([0.0, 0.25]),
        torch.tensor([0.5, 0.7, 1.3, 2.0, 4.5]),  # starts above the floor, uneven steps
        torch.tensor([0.0, 1e-9, 2e-9, 3e-9]),  # step below 2e-8: eps = 1e-8 replaces t <= 1e-8
        torch.linspace(0.0, 1e4, 30),  # long window
    ],
    ids=["n1", "n2", "uneven", "tiny_step", "long"],
)
def test_time_grids_match_numpy_oracle(t):
    t = t.to(F64)
    p = laminar_params(alpha=-0.7, beta=-0.4)
    out = xpcs.c2(p, t, PHI3, q=0.0054, dt=0.1, L=2.0e6, mode="laminar_flow")
    expected = numpy_c2(
        "laminar_flow",
        {k: v.numpy() for k, v in p.items()},
        t.numpy(),
        PHI3.numpy(),
        0.0054,
        0.1,
        2.0e6,
    )
    assert out.shape == (3, t.numel(), t.numel())
    assert float((out - torch.from_numpy(expected)).abs().max()) < 1e-13


def test_symmetric_in_t1_t2_and_finite():
    p = laminar_params(alpha=-1.2)
    out = xpcs.c2(p, grid(50), PHI3, dt=0.2, mode="laminar_flow", **BENCH)
    assert torch.equal(out, out.transpose(1, 2))
    assert bool(torch.isfinite(out).all())


# ---------------------------------------------------------------- derivatives


def flat_model(mode: str, t: torch.Tensor, phi: torch.Tensor, backend: str = "fused", **kw):
    """c2 as a function of one flat vector [contrast, offset, physical...]."""
    names, n_angles = xpcs.parameter_names(mode), phi.numel()

    def f(v: torch.Tensor) -> torch.Tensor:
        p = {k: v[2 * n_angles + i] for i, k in enumerate(names)}
        p["contrast"], p["offset"] = v[:n_angles], v[n_angles : 2 * n_angles]
        return xpcs.c2(p, t, phi, mode=mode, backend=backend, **kw)

    return f


def flat_vector(p: dict, mode: str) -> torch.Tensor:
    return torch.cat(
        [p["contrast"], p["offset"], torch.stack([p[k] for k in xpcs.parameter_names(mode)])]
    )


@pytest.mark.parametrize(
    "mode,changes",
    [
        ("static", {}),
        ("laminar_flow", {}),
        ("laminar_flow", dict(alpha=-0.8, beta=-0.6, gamma_dot_t0=3e-3, phi0=-7.0)),
        ("laminar_flow", dict(gamma_dot_t0=5e-2)),  # several sinc lobes
    ],
)
def test_jacobian_matches_central_differences(mode, changes):
    t = grid(24, window=12.0)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6)
    p = laminar_params(**changes)
    v = flat_vector(p, mode)
    f = flat_model(mode, t, PHI3, **kw)
    jac = jacfwd(f)(v)  # (P, N, N, n)
    for i in range(v.numel()):
        h = 1e-6 * max(abs(float(v[i])), 1e-2)
        e = torch.zeros_like(v)
        e[i] = h
        fd = (f(v + e) - f(v - e)) / (2 * h)
        # truncation ~ h^2 relative; rounding of c2 ~ 1 divided by h
        tol = 1e-6 * float(fd.abs().max()) + 100 * 2.2e-16 / h
        assert float((jac[..., i] - fd).abs().max()) <= tol, i


def test_reverse_mode_gradient_matches_central_differences():
    t = grid(20)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6)
    f = flat_model("laminar_flow", t, PHI3, **kw)
    v = flat_vector(laminar_params(alpha=-0.5, gamma_dot_t0=4e-3), "laminar_flow").requires_grad_(
        True
    )
    weights = torch.randn(3, 20, 20, generator=torch.Generator().manual_seed(0), dtype=F64)
    (grad,) = torch.autograd.grad((weights * f(v)).sum(), v)
    with torch.no_grad():
        for i in range(v.numel()):
            h = 1e-6 * max(abs(float(v[i])), 1e-2)
            e = torch.zeros_like(v)
            e[i] = h
            fd = float(((weights * (f(v + e) - f(v - e))).sum()) / (2 * h))
            assert abs(float(grad[i]) - fd) <= 1e-6 * max(abs(fd), 1e-3), i


@pytest.mark.parametrize("regime", list(REGIMES))
def test_fused_derivatives_equal_autograd_of_literal_equations(regime):
    t = grid(20)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6)
    v = flat_vector(laminar_params(**REGIMES[regime]), "laminar_flow")
    fused = jacfwd(flat_model("laminar_flow", t, PHI3, **kw))(v)
    literal = jacfwd(flat_model("laminar_flow", t, PHI3, backend="autograd", **kw))(v)
    reverse = jacrev(flat_model("laminar_flow", t, PHI3, **kw))(v)
    # sinc' = (cos x - sinc x) / x cancels just above |x| = 1e-4 (homodyne's far branch):
    # relative rounding up to ~1e-16 / x^2 there, in both implementations.
    for i in range(v.numel()):
        scale = float(literal[..., i].abs().max())
        assert float((fused[..., i] - literal[..., i]).abs().max()) <= 1e-9 * scale + 1e-300, i
        assert float((reverse[..., i] - literal[..., i]).abs().max()) <= 1e-9 * scale + 1e-300, i


def test_gradcheck_forward_and_reverse():
    t = grid(6)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6, mode="laminar_flow")
    p = laminar_params(gamma_dot_t0=2e-2)
    names = list(p)

    def f(*values):
        return xpcs.c2(dict(zip(names, values, strict=True)), t, PHI3, **kw)

    inputs = tuple(p[k].clone().requires_grad_(True) for k in names)
    assert torch.autograd.gradcheck(
        f, inputs, check_forward_ad=True, check_batched_grad=True, fast_mode=True
    )


def test_jvp_and_vjp_agree_with_jacobian():
    t = grid(16)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6)
    f = flat_model("laminar_flow", t, PHI3, **kw)
    v = flat_vector(laminar_params(), "laminar_flow")
    jac = jacfwd(f)(v)
    direction = torch.linspace(-1.0, 1.0, v.numel(), dtype=F64)
    _, tangent = jvp(f, (v,), (direction,))
    torch.testing.assert_close(tangent, jac @ direction, rtol=1e-12, atol=1e-15)
    cot = torch.cos(torch.arange(3 * 16 * 16, dtype=F64)).reshape(3, 16, 16)
    _, pullback = vjp(f, v)
    torch.testing.assert_close(
        pullback(cot)[0], torch.einsum("kij,kijn->n", cot, jac), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_autograd_functional_jacobian_vectorized(strategy):
    # autograd's own vectorised Jacobian batches tangents outside torch.func
    t = grid(10)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6)
    v = flat_vector(laminar_params(gamma_dot_t0=4e-3), "laminar_flow")
    f = flat_model("laminar_flow", t, PHI3, **kw)
    jac = torch.autograd.functional.jacobian(f, v, vectorize=True, strategy=strategy)
    literal = jacfwd(flat_model("laminar_flow", t, PHI3, backend="autograd", **kw))(v)
    torch.testing.assert_close(jac, literal, rtol=1e-10, atol=1e-14)


def test_vmap_over_parameter_sets():
    t = grid(12)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6)
    f = flat_model("laminar_flow", t, PHI3, **kw)
    v = flat_vector(laminar_params(), "laminar_flow")
    batch = torch.stack([v, v * 1.01, v * 0.97])
    out = vmap(f)(batch)
    for i in range(3):
        assert torch.equal(out[i], f(batch[i]))
    jac = vmap(jacfwd(f))(batch)
    torch.testing.assert_close(jac[1], jacfwd(f)(batch[1]), rtol=1e-14, atol=0.0)


def test_second_derivatives_equal_autograd_backend():
    # The fused kernel's own derivatives are first order; second order goes through the
    # literal equations: Hessians, forward over forward, HVPs and double backward.
    t = grid(8)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6)
    v = flat_vector(laminar_params(gamma_dot_t0=3e-3, alpha=-0.4), "laminar_flow")
    fused = flat_model("laminar_flow", t, PHI3, **kw)
    literal = flat_model("laminar_flow", t, PHI3, backend="autograd", **kw)
    weights = torch.linspace(0.5, 1.5, 3 * 8 * 8, dtype=F64).reshape(3, 8, 8)

    def loss(f):
        return lambda w: (weights * f(w) ** 2).sum()

    hess = torch.func.hessian(loss(fused))(v)
    expected = torch.func.hessian(loss(literal))(v)
    torch.testing.assert_close(hess, expected, rtol=1e-9, atol=1e-12)
    try:  # some nestings cannot run inside a custom function: they must say so clearly
        torch.testing.assert_close(jacfwd(jacfwd(loss(fused)))(v), expected, rtol=1e-9, atol=1e-12)
    except RuntimeError as exc:
        assert "backend='autograd'" in str(exc)
    direction = torch.linspace(-1.0, 1.0, v.numel(), dtype=F64) * v.abs().clamp(min=1e-3) * 1e-2

    def second(f):
        return jvp(lambda w: jvp(f, (w,), (direction,))[1], (v,), (direction,))[1]

    torch.testing.assert_close(second(fused), second(literal), rtol=1e-9, atol=1e-13)
    w = v.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(fused)(w), w, create_graph=True)
    (hv,) = torch.autograd.grad(g @ direction, w)
    torch.testing.assert_close(hv, expected @ direction, rtol=1e-9, atol=1e-12)
    hvp = jvp(torch.func.grad(loss(fused)), (v,), (direction,))[1]
    torch.testing.assert_close(hvp, expected @ direction, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- blocks and pairs


@pytest.mark.parametrize("mode", ["static", "laminar_flow"])
def test_pairs_and_tiles_equal_full_grid(mode):
    n = 45
    t = grid(n)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6, mode=mode)
    p = (
        laminar_params(alpha=-0.6, gamma_dot_t0=3e-3)
        if mode == "laminar_flow"
        else static_params(alpha=-0.6)
    )
    full = xpcs.c2(p, t, PHI3, **kw)
    gen = torch.Generator().manual_seed(1)
    i1, i2 = torch.randint(0, n, (500,), generator=gen), torch.randint(0, n, (500,), generator=gen)
    i1[:n], i2[:n] = torch.arange(n), torch.arange(n)  # the diagonal too
    angle = torch.randint(0, 3, (500,), generator=gen)
    pairs = xpcs.c2_pairs(p, t, PHI3, i1, i2, angle, **kw)
    assert float((pairs - full[angle, i1, i2]).abs().max()) <= 1e-14
    one_angle = xpcs.c2_pairs(p, t, PHI3, i1, i2, 2, **kw)
    assert float((one_angle - full[2, i1, i2]).abs().max()) <= 1e-14
    for rows, cols in [
        (slice(0, 7), slice(30, 45)),
        (slice(10, 11), slice(None)),
        (slice(-5, None), slice(3, 40)),
    ]:
        tile = xpcs.c2_tile(p, t, PHI3, rows, cols, **kw)
        assert float((tile - full[:, rows, cols]).abs().max()) <= 1e-14


def test_pair_and_tile_jacobians_equal_full_grid():
    n = 30
    t = grid(n)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6, mode="laminar_flow")
    v = flat_vector(laminar_params(alpha=-0.6, gamma_dot_t0=3e-3), "laminar_flow")
    names = xpcs.parameter_names("laminar_flow")

    def unpack(w):
        p = {k: w[6 + i] for i, k in enumerate(names)}
        p["contrast"], p["offset"] = w[:3], w[3:6]
        return p

    full = jacfwd(lambda w: xpcs.c2(unpack(w), t, PHI3, **kw))(v)
    i1 = torch.tensor([0, 5, 29, 7, 7, 12])
    i2 = torch.tensor([0, 17, 3, 7, 8, 29])
    angle = torch.tensor([0, 1, 2, 2, 0, 1])
    pairs = jacfwd(lambda w: xpcs.c2_pairs(unpack(w), t, PHI3, i1, i2, angle, **kw))(v)
    torch.testing.assert_close(pairs, full[angle, i1, i2], rtol=1e-14, atol=1e-300)
    pairs_rev = jacrev(lambda w: xpcs.c2_pairs(unpack(w), t, PHI3, i1, i2, angle, **kw))(v)
    torch.testing.assert_close(pairs_rev, full[angle, i1, i2], rtol=1e-12, atol=1e-300)
    tile = jacfwd(lambda w: xpcs.c2_tile(unpack(w), t, PHI3, slice(4, 9), slice(0, 30), **kw))(v)
    torch.testing.assert_close(tile, full[:, 4:9, 0:30], rtol=1e-14, atol=1e-300)


def test_blocks_larger_than_one_work_buffer(monkeypatch):
    # Force many small blocks so the blocking (rows split, pairs split) is exercised.
    t = grid(29)
    kw = dict(q=0.01, dt=float(t[1]), L=2.0e6, mode="laminar_flow")
    p = laminar_params(gamma_dot_t0=3e-3)
    whole = xpcs.c2(p, t, PHI3, **kw)
    jac_whole = jacfwd(lambda c: xpcs.c2({**p, "contrast": c}, t, PHI3, **kw))(p["contrast"])
    monkeypatch.setattr(_kernel, "_BLOCK_CPU", 100)
    empty = torch.empty
    # Every fresh buffer starts as NaN, so an entry the blocks never write shows up.
    monkeypatch.setattr(torch, "empty", lambda *a, **k: empty(*a, **k).fill_(float("nan")))
    literal = xpcs.c2(p, t, PHI3, backend="autograd", **kw)
    assert float((xpcs.c2(p, t, PHI3, **kw) - literal).abs().max()) < 1e-15
    tile = xpcs.c2_tile(p, t, PHI3, slice(3, 30), slice(3, 30), **kw)  # square, off the corner
    assert float((tile - literal[:, 3:30, 3:30]).abs().max()) < 1e-15
    jac_small = jacfwd(lambda c: xpcs.c2({**p, "contrast": c}, t, PHI3, **kw))(p["contrast"])
    torch.testing.assert_close(jac_small, jac_whole, rtol=1e-15, atol=0.0)
    i = torch.arange(29 * 7) % 29
    pairs = xpcs.c2_pairs(p, t, PHI3, i, i.flip(0), 1, **kw)
    assert torch.equal(pairs, whole[1, i, i.flip(0)])


# ---------------------------------------------------------------- inputs


def test_dtype_device_and_plain_numbers():
    t = grid(10)
    p = {k: float(v) if v.ndim == 0 else v.tolist() for k, v in laminar_params().items()}
    p["contrast"] = torch.tensor(p["contrast"], dtype=F64)
    p["offset"] = torch.tensor(p["offset"], dtype=F64)
    out = xpcs.c2(p, t, PHI3.tolist(), dt=1.0, mode="laminar_flow", **BENCH)
    assert out.dtype == F64 and out.device == t.device
    p32 = {k: v.float() for k, v in laminar_params().items()}
    out32 = xpcs.c2(p32, t.float(), PHI3.float(), dt=1.0, mode="laminar_flow", **BENCH)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out, rtol=1e-5, atol=1e-5)
    one = {"contrast": torch.tensor(0.3, dtype=F64), "offset": torch.tensor(1.0, dtype=F64)}
    shared = xpcs.c2({**static_params(), **one}, t, PHI3, dt=1.0, q=0.01)
    assert torch.equal(shared[0], shared[2])


BAD_INPUTS = [
    (
        "t",
        dict(t=torch.tensor([0.0, 1.0, 1.0, 2.0], dtype=F64)),
        r"^t must be strictly increasing; t\[2\]",
    ),
    ("t", dict(t=torch.tensor([0.0, 2.0, 1.0], dtype=F64)), "^t must be strictly increasing"),
    ("t", dict(t=torch.tensor([0.0, float("nan")], dtype=F64)), "^t must be finite"),
    ("t", dict(t=torch.zeros(2, 2, dtype=F64)), "^t must be a non-empty 1-D"),
    ("phi", dict(phi=torch.tensor([[0.0]], dtype=F64)), "^phi must be"),
    (
        "contrast",
        dict(contrast=torch.tensor([0.3, 0.3], dtype=F64)),
        r"^contrast must have one value per angle: shape \(3,\)",
    ),
    ("offset", dict(offset=torch.ones(4, dtype=F64)), "^offset must have one value per angle"),
    ("mode", dict(mode="laminar"), "^mode must be one of"),
    ("backend", dict(backend="jax"), "^backend must be one of"),
    ("q", dict(q=0.0), "^q must be positive"),
    ("q", dict(q=-1.0), "^q must be positive"),
    ("dt", dict(dt=float("inf")), "^dt must be positive"),
    ("L", dict(L=-2.0), "^L must be positive"),
    ("L", dict(L=None), r"^L \(stator-rotor gap"),
    ("D0", dict(D0=torch.ones(2, dtype=F64)), "^D0 must be a scalar"),
    ("phi0", dict(drop="phi0"), "^phi0 is missing from p"),
    ("gamma_dot_0", dict(gamma_dot_0=torch.tensor(1.0)), "^gamma_dot_0 is not a parameter"),
]


@pytest.mark.parametrize(
    "name,change,message", BAD_INPUTS, ids=[b[0] + str(i) for i, b in enumerate(BAD_INPUTS)]
)
def test_bad_inputs_raise_naming_the_parameter(name, change, message):
    args = dict(t=grid(6), phi=PHI3, q=0.01, dt=1.0, L=2.0e6, mode="laminar_flow", backend="fused")
    p = laminar_params()
    for k, v in change.items():
        if k == "drop":
            p.pop(v)
        elif k in args:
            args[k] = v
        else:
            p[k] = v
    t, phi = args.pop("t"), args.pop("phi")
    with pytest.raises(ValueError, match=message):
        xpcs.c2(p, t, phi, **args)


def test_bad_pair_and_tile_inputs():
    t, p = grid(6), static_params()
    kw = dict(q=0.01, dt=1.0)
    idx = torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"^i1 must lie in \[0, 6\)"):
        xpcs.c2_pairs(p, t, PHI3, torch.tensor([0, 6]), idx, 0, **kw)
    with pytest.raises(ValueError, match="^i2 must be a 1-D integer tensor"):
        xpcs.c2_pairs(p, t, PHI3, idx, torch.tensor([0.0, 1.0]), 0, **kw)
    with pytest.raises(ValueError, match=r"^angle must lie in \[0, 3\)"):
        xpcs.c2_pairs(p, t, PHI3, idx, idx, 3, **kw)
    with pytest.raises(ValueError, match="^i1 and i2 must have the same length"):
        xpcs.c2_pairs(p, t, PHI3, idx, torch.tensor([1]), 0, **kw)
    with pytest.raises(ValueError, match="^rows must have step 1"):
        xpcs.c2_tile(p, t, PHI3, slice(0, 6, 2), slice(None), **kw)
    with pytest.raises(ValueError, match="^cols selects no time points"):
        xpcs.c2_tile(p, t, PHI3, slice(None), slice(4, 2), **kw)
    with pytest.raises(ValueError, match="^L must be positive"):
        xpcs.c2(p, t, PHI3, L=0.0, **kw)  # checked in static mode too
    with pytest.raises(ValueError, match="^t must not require grad"):
        xpcs.c2(p, grid(6).requires_grad_(True), PHI3, **kw)


# ---------------------------------------------------------------- loader


def model_stack(n: int = 20, dt: float = 0.5):
    t = dt * torch.arange(n, dtype=F64)
    c2 = xpcs.c2(laminar_params(), t, PHI3, q=0.0054, dt=dt, L=2.0e6, mode="laminar_flow")
    return t, c2


def upper_half(m: np.ndarray) -> np.ndarray:
    return np.triu(m)


def check_loaded(data, t, c2, *, q=0.0054, dt=0.5, L=2.0e6, layout="flat"):
    assert data.layout == layout
    assert data.c2.dtype == F64 and data.c2.shape == c2.shape
    off = ~torch.eye(c2.shape[-1], dtype=torch.bool)
    assert torch.equal(data.c2[:, off], c2[:, off])
    assert torch.equal(data.c2, xpcs.correct_diagonal(c2))
    torch.testing.assert_close(data.t, t, rtol=0, atol=1e-15)
    assert torch.equal(data.phi, PHI3)
    assert (data.q, data.dt, data.L) == (q, dt, L)


def test_load_homodyne_npz_cache_layout(tmp_path):
    t, c2 = model_stack()
    t1, t2 = np.meshgrid(t.numpy(), t.numpy(), indexing="ij")
    path = tmp_path / "cached_c2_frames_1_20.npz"
    metadata = np.array({"cache_version": "2.0"}, dtype=object)  # pickled: must be skipped
    np.savez_compressed(
        path,
        wavevector_q_list=np.array([0.0054]),
        phi_angles_list=PHI3.numpy(),
        t1=t1,
        t2=t2,
        c2_exp=c2.numpy(),
        cache_metadata=metadata,
    )
    data = xpcs.load(path, dt=0.5, L=2.0e6)
    check_loaded(data, t, c2)
    out = xpcs.c2(laminar_params(), data.t, data.phi, mode="laminar_flow", **data.inputs())
    assert torch.equal(out, c2)


def test_load_flat_hdf5_with_attributes_and_sigma(tmp_path):
    t, c2 = model_stack()
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f["g2"] = c2.numpy()
        f["phi"] = PHI3.numpy()
        f["t"] = t.numpy()
        f["sigma"] = np.full(c2.shape, 0.01)
        f.attrs["q"] = 0.0054
        f.attrs["dt"] = 0.5
        f.attrs["L"] = 2.0e6
    data = xpcs.load(path)
    check_loaded(data, t, c2)
    assert data.sigma.shape == c2.shape and float(data.sigma.max()) == 0.01
    raw = xpcs.load(path, diagonal="raw", start_frame=3, end_frame=12)
    assert torch.equal(raw.c2, c2[:, 2:12, 2:12])
    assert torch.equal(raw.t, t[2:12]) and raw.sigma.shape == (3, 10, 10)


def test_load_aps_u_half_matrices(tmp_path):
    t, c2 = model_stack()
    path = tmp_path / "aps_u.hdf"
    q_bins = np.array([0.003, 0.0054, 0.008])
    with h5py.File(path, "w") as f:
        f["xpcs/qmap/dynamic_v_list_dim0"] = q_bins
        f["xpcs/qmap/dynamic_v_list_dim1"] = PHI3.numpy()
        # processed bins (1-based): q index 1 for all three angles, then one other bin
        f["xpcs/twotime/processed_bins"] = np.array([4, 5, 6, 1])
        for i in range(3):
            f[f"xpcs/twotime/correlation_map/c2_{i + 1:05d}"] = upper_half(c2[i].numpy())
        f["xpcs/twotime/correlation_map/c2_00004"] = upper_half(np.ones((20, 20)))
    data = xpcs.load(path, q=0.0055, dt=0.5, L=2.0e6)
    check_loaded(data, t, c2, layout="aps_u")
    with pytest.raises(ValueError, match="^q: the file holds 2 q values"):
        xpcs.load(path, dt=0.5)
    with pytest.raises(ValueError, match="^dt: the file"):
        xpcs.load(path, q=0.0054)


def test_load_aps_old_half_matrices_with_frames(tmp_path):
    t, c2 = model_stack(n=24)
    path = tmp_path / "aps_old.h5"
    with h5py.File(path, "w") as f:
        f["xpcs/dqlist"] = np.array([[0.0054, 0.00541, 0.00539]])
        f["xpcs/dphilist"] = PHI3.numpy()[None]
        for i in range(3):
            f[f"exchange/C2T_all/c2_{i:05d}"] = upper_half(c2[i].numpy())
    data = xpcs.load(path, q=0.0054, dt=0.5, L=2.0e6, start_frame=5, end_frame=24)
    assert data.layout == "aps_old" and data.q == 0.0054
    assert torch.equal(data.c2, xpcs.correct_diagonal(c2[:, 4:, 4:]))
    torch.testing.assert_close(data.t, t[:20], rtol=0, atol=1e-15)  # t restarts at 0


def test_load_rejects_bad_files_and_conflicts(tmp_path):
    t, c2 = model_stack()
    path = tmp_path / "d.npz"
    np.savez(path, c2_exp=c2.numpy(), phi=PHI3.numpy(), t=t.numpy(), q=0.0054, dt=0.5)
    with pytest.raises(ValueError, match=r"^dt: given as 0.25 s but the file says 0.5"):
        xpcs.load(path, dt=0.25)
    assert xpcs.load(path, dt=0.5).L is None
    np.savez(tmp_path / "noc2.npz", phi=PHI3.numpy(), t=t.numpy())
    with pytest.raises(ValueError, match="^c2: none of the keys"):
        xpcs.load(tmp_path / "noc2.npz", q=0.0054, dt=0.5)
    np.savez(
        tmp_path / "not_increasing.npz",
        c2_exp=c2.numpy(),
        phi=PHI3.numpy(),
        t=t.flip(0).numpy(),
        q=0.0054,
        dt=0.5,
    )
    with pytest.raises(ValueError, match="^t must be strictly increasing"):
        xpcs.load(tmp_path / "not_increasing.npz")
    with pytest.raises(ValueError, match="^diagonal must be one of"):
        xpcs.load(path, diagonal="mask")
    with pytest.raises(ValueError, match="^start_frame/end_frame"):
        xpcs.load(path, start_frame=0)
    with pytest.raises(FileNotFoundError, match="^path: no such file"):
        xpcs.load(tmp_path / "missing.h5")


# ---------------------------------------------------------------- tables and benchmark


def test_parameter_tables_follow_homodyne_registry():
    found = models.available()
    static, laminar = found["xpcs.static"], found["xpcs.laminar_flow"]
    assert [s.name for s in laminar.parameters] == [*LAMINAR, "contrast", "offset"]
    assert [s.name for s in static.parameters] == [*LAMINAR[:3], "contrast", "offset"]
    spec = {s.name: s for s in laminar.parameters}
    assert spec["D0"].bounds == (1e2, 1e5) and spec["D0"].log_scale and spec["D0"].default == 1000.0
    assert spec["gamma_dot_t0"].bounds == (1e-6, 0.5) and spec["gamma_dot_t0"].log_scale
    assert spec["D_offset"].bounds == (-1e5, 1e5) and not spec["D_offset"].log_scale
    assert spec["gamma_dot_t_offset"].bounds == (-0.1, 0.1)
    assert spec["phi0"].unit == "deg" and spec["phi0"].bounds == (-10.0, 10.0)
    assert spec["offset"].bounds == (0.5, 1.5) and spec["contrast"].per == "angle"
    for info in (static, laminar):
        p = {s.name: torch.tensor(s.default, dtype=F64) for s in info.parameters}
        mode = info.name.split(".")[1]
        assert all(lo <= s.default <= hi for s in info.parameters for lo, hi in [s.bounds])
        out = xpcs.c2(p, grid(5), PHI3, q=0.0054, dt=1.0, L=2.0e6, mode=mode)
        assert bool(torch.isfinite(out).all())


def test_benchmark_script_reports_timings():
    spec = importlib.util.spec_from_file_location(
        "xpcs_kernel_bench", REPO / "benchmarks" / "xpcs_kernel.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    row = bench.time_inversekit(n_times=12, n_angles=2, repeats=1, threads=1)
    assert row["jacobian_shape"] == (2 * 12 * 12, 11)
    assert row["forward_s"] > 0 and row["jacobian_s"] > 0 and row["threads"] == 1
    assert math.isfinite(row["forward_s"] + row["jacobian_s"])
