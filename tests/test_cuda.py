"""CUDA: batched linear algebra split under cuSOLVER's batch limits, and fits on the GPU
that agree with the same fits on the CPU.

The split itself is checked on the CPU, with a small ``limit``, in every run. The GPU
tests are marked ``cuda``: the default run deselects them (``-m "not cuda"`` in
``pyproject.toml``) and ``python -m pytest -m cuda`` on a CUDA machine runs them.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

import inversekit as ik
from inversekit.linalg.curvature import EIGH_BATCH_LIMIT, batched_eigh
from inversekit.linalg.damped import batched_damped_solve


def requires_cuda(test):
    """A GPU test: marked ``cuda`` (deselected by default) and refused without a GPU."""
    return pytest.mark.cuda(
        pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")(test)
    )


# The size of batch reported to crash torch.linalg.eigh on an H200 (cusolverDnXsyevBatched).
LARGE = 100_000
N = 60
NAMES = ("a", "c", "w", "b0", "b1")


def spd(B: int, p: int, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """``B`` random symmetric positive definite ``p x p`` float64 matrices."""
    g = torch.Generator().manual_seed(seed)
    J = torch.randn(B, p + 3, p, generator=g, dtype=torch.float64)
    return (J.mT @ J).to(device)


def peak(p, x):
    """Gaussian peak on a linear background, for one problem."""
    z = (x - p["c"]) / p["w"]
    return p["a"] * torch.exp(-0.5 * z * z) + p["b0"] + p["b1"] * x


def peaks(B: int, seed: int = 0, sigma: float = 0.05):
    """Noisy peaks and starts near the truth, as in ``tests/test_batched.py`` (fixed seed)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(-4.0, 4.0, N, dtype=torch.float64)

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(B, generator=g, dtype=torch.float64)

    truth = {"a": u(1, 4), "c": u(-1, 1), "w": u(0.6, 1.4), "b0": u(0, 1), "b1": u(-0.1, 0.1)}
    y = peak({k: v[:, None] for k, v in truth.items()}, x)
    y = y + sigma * torch.randn(B, N, generator=g, dtype=torch.float64)
    start = {
        "a": truth["a"] * u(0.8, 1.2),
        "c": truth["c"] + u(-0.2, 0.2),
        "w": truth["w"] * u(0.8, 1.2),
        "b0": torch.full((B,), 0.5, dtype=torch.float64),
        "b1": torch.zeros(B, dtype=torch.float64),
    }
    return x, y, start


def batched_peak_fit(x, y, start, sigma: float, device: str):
    # The broadcast engine (``jacobian="eager"``) on both devices: the "auto" choice would
    # torch.compile a batch this size, which adds minutes and is not what is tested here.
    params = ik.Params(a=1.0, c=0.0, w=ik.Param(1.0, bounds=(0.0, None)), b0=0.0, b1=0.0)
    problem = ik.BatchedLeastSquares(
        peak,
        params,
        inputs=(x.to(device),),
        y=y.to(device),
        sigma=sigma,
        start={k: v.to(device) for k, v in start.items()},
        jacobian="eager",
    )
    return ik.fit(problem)


# --- batched_eigh ---------------------------------------------------------------------------


def assert_same_decomposition(A, eig, V, ref_eig):
    """``eig`` matches ``ref_eig`` and ``V`` is an orthonormal eigenbasis of ``A``. Pieces of
    a batch need not give the same bits as one call (LAPACK's kernels take other paths for
    other memory alignments; CUDA's solvers differ again), and eigenvector signs may flip."""
    scale = ref_eig.abs().amax(-1, keepdim=True)
    assert float(((eig - ref_eig).abs() / scale).max()) < 1e-12
    recon = (V * eig[..., None, :]) @ V.mT
    assert float(((recon - A).abs().amax((-2, -1)) / scale[..., 0]).max()) < 1e-12
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    assert float((V.mT @ V - eye).abs().max()) < 1e-12


def test_batched_eigh_split_equals_one_call_on_cpu():
    A = spd(1000, 5, seed=1)
    whole = torch.linalg.eigh(A)
    for limit in (1, 3, 64, 999, 1000, 5000):
        eig, V = batched_eigh(A, limit=limit)
        assert eig.shape == (1000, 5) and V.shape == (1000, 5, 5)
        assert_same_decomposition(A, eig, V, whole.eigenvalues)


def test_batched_eigh_larger_than_the_limit_on_cpu():
    A = spd(EIGH_BATCH_LIMIT + 7, 4, seed=2)
    whole = torch.linalg.eigh(A)
    eig, V = batched_eigh(A)  # on the CPU: the same single LAPACK call, the same bits
    assert torch.equal(eig, whole.eigenvalues) and torch.equal(V, whole.eigenvectors)
    eig, V = batched_eigh(A, limit=EIGH_BATCH_LIMIT)  # the split CUDA takes, on the CPU
    assert_same_decomposition(A, eig, V, whole.eigenvalues)


def test_batched_eigh_counts_every_leading_dimension():
    A = spd(60, 3, seed=3).reshape(4, 15, 3, 3)
    eig, V = batched_eigh(A, limit=7)
    assert eig.shape == (4, 15, 3) and V.shape == (4, 15, 3, 3)
    assert_same_decomposition(A, eig, V, torch.linalg.eigh(A).eigenvalues)
    with pytest.raises(ValueError, match="limit"):
        batched_eigh(A, limit=0)


@requires_cuda
@pytest.mark.parametrize("p", [3, 4, 5])
def test_batched_eigh_on_cuda_above_the_limit(p):
    assert LARGE > EIGH_BATCH_LIMIT
    A = spd(LARGE, p, seed=p)
    eig, V = batched_eigh(A.cuda())
    assert eig.device.type == "cuda" and eig.shape == (LARGE, p)
    ref = torch.linalg.eigh(A)
    assert_same_decomposition(A, eig.cpu(), V.cpu(), ref.eigenvalues)


@requires_cuda
def test_batched_damped_solve_of_a_large_batch_on_cuda():
    # p above UNROLLED_MAX_PARAMS: torch's batched Cholesky factorisation and solve, which
    # (unlike eigh) needs no split at this size
    p = 8
    A = spd(LARGE, p, seed=11)
    g = torch.Generator().manual_seed(12)
    rhs = torch.randn(LARGE, p, generator=g, dtype=torch.float64)
    D = torch.diagonal(A, dim1=1, dim2=2).clone()
    lam = torch.full((LARGE,), 1e-3, dtype=torch.float64)
    lam[::1000] = -10.0  # not positive definite: those rows must come back not ok
    want, want_ok = batched_damped_solve(A, rhs, D, lam)
    got, ok = batched_damped_solve(A.cuda(), rhs.cuda(), D.cuda(), lam.cuda())
    assert torch.equal(ok.cpu(), want_ok) and not bool(want_ok[::1000].any())
    torch.testing.assert_close(got.cpu(), want, rtol=1e-10, atol=1e-12)


# --- fits on CUDA against the CPU -----------------------------------------------------------


@requires_cuda
def test_batched_fit_of_100k_peaks_on_cuda_matches_cpu():
    """The fit that crashed in ``torch.linalg.eigh`` (cusolverDnXsyevBatched) on an H200.

    The two devices round differently (``exp``, sums over the 60 points), so the LM paths
    differ at rounding level and each stops at its own point inside the stopping tolerance
    (``xtol`` 1e-15). Perturbing ``y`` by one ulp on the CPU moves the parameters by at most
    ~2e-15 absolute (≈1e-11 relative for values near zero, e.g. ``b1``) and changes 3
    statuses in 100,000 between XTOL and GTOL, both converged; on an H200 against 16 CPU
    threads: 2.4e-15 absolute, 9.4e-12 relative, 4e-13 of a standard error, 4 statuses.
    So: every problem succeeds on both, statuses agree for at least 99.9% of them,
    parameters to 1e-8 relative (1e-10 absolute for values near zero) and to a millionth
    of their standard errors.
    """
    x, y, start = peaks(LARGE, seed=7)
    gpu = batched_peak_fit(x, y, start, 0.05, "cuda")
    cpu = batched_peak_fit(x, y, start, 0.05, "cpu")
    assert gpu.params["a"].device.type == "cuda"
    assert bool(cpu.success.all()), Counter(str(s) for s in cpu.status)
    assert bool(gpu.success.all()), Counter(str(s) for s in gpu.status)
    same = sum(a == b for a, b in zip(gpu.status, cpu.status, strict=True))
    assert same >= 0.999 * LARGE, (same, Counter(str(s) for s in gpu.status))
    for k in NAMES:
        got, want = gpu.params[k].cpu(), cpu.params[k]
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10, msg=k)
        assert float(((got - want).abs() / cpu.stderr[k]).max()) < 1e-6, k
        torch.testing.assert_close(gpu.stderr[k].cpu(), cpu.stderr[k], rtol=1e-6, atol=0)
    torch.testing.assert_close(gpu.chi2.cpu(), cpu.chi2, rtol=1e-10, atol=0)


@requires_cuda
def test_single_fit_on_cuda_matches_cpu():
    x, y, start = peaks(1, seed=5)

    def one(device):
        params = ik.Params(
            {
                k: ik.Param(float(start[k][0]), bounds=(0.0, None) if k == "w" else None)
                for k in NAMES
            },
            device=device,
        )
        problem = ik.LeastSquares(
            peak, params, inputs=(x.to(device),), y=y[0].to(device), sigma=0.05
        )
        return ik.fit(problem)

    gpu, cpu = one("cuda"), one("cpu")
    assert gpu.success and cpu.success
    assert gpu.status == cpu.status
    for k in NAMES:
        assert float(gpu.params[k]) == pytest.approx(float(cpu.params[k]), rel=1e-8, abs=1e-10)
        assert float(gpu.stderr[k]) == pytest.approx(float(cpu.stderr[k]), rel=1e-6)
    assert gpu.chi2 == pytest.approx(cpu.chi2, rel=1e-10)


@requires_cuda
def test_checkpoints_resume_on_cuda(tmp_path):
    """A batched and a single fit on CUDA stopped by their budget resume from the
    checkpoint to the uninterrupted answer (the state goes back to the data's device)."""
    x, y, start = peaks(500, seed=11)

    def batched(device):
        params = ik.Params(a=1.0, c=0.0, w=ik.Param(1.0, bounds=(0.0, None)), b0=0.0, b1=0.0)
        return ik.BatchedLeastSquares(
            peak, params, inputs=(x.to(device),), y=y.to(device), sigma=0.05,
            start={k: v.to(device) for k, v in start.items()}, jacobian="eager",
        )  # fmt: skip

    path = tmp_path / "batched.ckpt"
    short = ik.fit(batched("cuda"), ik.LM(max_iter=2), checkpoint=path)
    assert short.status.count(ik.Status.MAX_ITER) > 0
    resumed = ik.fit(batched("cuda"), ik.LM(), resume=path)
    whole = ik.fit(batched("cuda"), ik.LM())
    assert resumed.params["a"].device.type == "cuda"
    assert torch.equal(resumed.n_iter.cpu(), whole.n_iter.cpu())
    for k in NAMES:
        torch.testing.assert_close(resumed.params[k], whole.params[k], rtol=1e-12, atol=0)

    params = ik.Params({k: float(start[k][0]) for k in NAMES}, device="cuda")
    single = ik.LeastSquares(peak, params, inputs=(x.cuda(),), y=y[0].cuda(), sigma=0.05)
    path = tmp_path / "single.ckpt"
    ik.fit(single, ik.LM(max_iter=2), checkpoint=path)
    again = ik.LeastSquares(peak, params, inputs=(x.cuda(),), y=y[0].cuda(), sigma=0.05)
    resumed, whole = ik.fit(again, resume=path), ik.fit(again)
    assert resumed.n_iter == whole.n_iter and resumed.success
    torch.testing.assert_close(resumed.x, whole.x, rtol=1e-12, atol=0)
