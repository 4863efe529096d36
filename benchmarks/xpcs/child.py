"""Child process of the xpcs-kernel benchmark: time one side's c2 forward and full Jacobian.

Run by the runner as ``python -m benchmarks.xpcs.child TASK OUT``. Option ``kernel`` picks
the side: ``inversekit`` (``inversekit.models.xpcs.c2`` through
``benchmarks/xpcs_kernel.py``'s ``time_inversekit``, ``torch.func.jacfwd``) or ``homodyne``
(``homodyne.core.physics_nlsq.compute_g2_scaled`` vmapped over the angles, ``jax.jit`` of
it and of ``jax.jacfwd``, exactly as ``shared/peers/homodyne/bench_kernel.py`` builds it).

Both take the Jacobian with respect to all 2P + 7 parameters as one flat vector
``[contrast (P), offset (P), D0, alpha, D_offset, gamma_dot_t0, beta, gamma_dot_t_offset,
phi0]`` and give a ``(P N^2, 2P + 7)`` matrix. Times are medians over ``repeats`` calls
after one warm-up (homodyne: the first call, which compiles, is reported on its own).

Quality (not timed): c2 on the four cases of ``tests/data/xpcs/reference_c2.npz`` (max
|c2 - reference|), and, on the benchmark case, c2, every ``stride``-th Jacobian row and the
Jacobian's column norms written to ``<outdir>/<side>.npz`` for the gate to compare sides.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.child import Probe, serve

PHYS = ("D0", "alpha", "D_offset", "gamma_dot_t0", "beta", "gamma_dot_t_offset", "phi0")
PHYS_STATIC = PHYS[:3]


def _names(mode: str) -> tuple[str, ...]:
    return PHYS if mode == "laminar_flow" else PHYS_STATIC


def _reference_cases(path: str) -> dict[str, dict[str, Any]]:
    """The cases of ``reference_c2.npz`` as plain arrays and floats."""
    z = np.load(path)
    out: dict[str, dict[str, Any]] = {}
    for case in sorted({k.split("__")[0] for k in z.files}):
        p = case + "__"
        out[case] = {
            "mode": str(z[p + "mode"]),
            "t": z[p + "t"],
            "dt": float(z[p + "dt"]),
            "q": float(z[p + "q"]),
            "L": float(z[p + "L"]),
            "phi": z[p + "phi_deg"],
            "params": z[p + "params"],
            "contrast": z[p + "contrast"],
            "offset": z[p + "offset"],
            "c2": z[p + "c2"],
        }
    return out


def _rows(n_rows: int, stride: int) -> np.ndarray:
    """Rows sampled for the Jacobian check: every ``stride``-th, plus the first 100 (the
    t = 0 floor) and the last one."""
    return np.unique(np.concatenate([np.arange(0, n_rows, stride), np.arange(100), [n_rows - 1]]))


def _version(dist: str, module: Any) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return str(getattr(module, "__version__", "?"))


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def inversekit_side(case: dict[str, Any], threads: int, probe: Probe) -> dict[str, Any]:
    import torch
    from torch.func import jacfwd

    torch.set_num_threads(threads)
    import inversekit
    from benchmarks.xpcs_kernel import _case, time_inversekit
    from inversekit.models import xpcs

    probe.mark_base()
    n, P, mode = case["n_times"], case["n_angles"], case["mode"]
    timed = time_inversekit(n, P, case["repeats"], mode=mode, threads=threads)
    probe.mark_peak()

    model, theta = _case(n, P, mode)
    with torch.no_grad():
        c2 = model(theta).numpy()
    jac = jacfwd(lambda v: model(v).reshape(-1))(theta).numpy()

    def reference(rc: dict[str, Any]) -> np.ndarray:
        f64 = torch.float64
        p = {
            k: torch.tensor(float(v), dtype=f64)
            for k, v in zip(_names(rc["mode"]), rc["params"], strict=True)
        }
        p["contrast"] = torch.as_tensor(rc["contrast"], dtype=f64)
        p["offset"] = torch.as_tensor(rc["offset"], dtype=f64)
        t, phi = torch.as_tensor(rc["t"], dtype=f64), torch.as_tensor(rc["phi"], dtype=f64)
        with torch.no_grad():
            return xpcs.c2(p, t, phi, q=rc["q"], L=rc["L"], dt=rc["dt"], mode=rc["mode"]).numpy()

    return {
        "theta": theta.numpy(),
        "c2": c2,
        "jac": jac,
        "reference": reference,
        "figures": {
            "forward_s": timed["forward_s"],
            "jacobian_s": timed["jacobian_s"],
            "forward_cpu_s": timed["forward_cpu_s"],
            "jacobian_cpu_s": timed["jacobian_cpu_s"],
        },
        "info": {
            "inversekit": _version("inversekit", inversekit),
            "torch_threads": torch.get_num_threads(),
            "jacobian_shape": list(timed["jacobian_shape"]),
        },
    }


def _jax_median(f, x, repeats: int) -> tuple[float, float, float]:
    """First-call seconds (compilation), then median wall and CPU seconds of ``repeats``."""
    import jax

    t = time.perf_counter()
    jax.block_until_ready(f(x))
    first = time.perf_counter() - t
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(f(x))
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return first, statistics.median(wall), statistics.median(cpu)


def homodyne_side(case: dict[str, Any], threads: int, probe: Probe) -> dict[str, Any]:
    import homodyne  # sets JAX_ENABLE_X64 before jax is imported
    import jax
    import jax.numpy as jnp
    from homodyne.core.physics_nlsq import compute_g2_scaled

    jax.config.update("jax_enable_x64", True)
    probe.mark_base()

    def make(mode: str, t: np.ndarray, dt: float, phi: np.ndarray, q: float, L: float):
        P, n_phys = len(phi), len(_names(mode))
        tj, phij = jnp.asarray(t), jnp.asarray(phi)

        def c2(theta):
            contrast, offset = theta[:P], theta[P : 2 * P]
            phys = theta[2 * P : 2 * P + n_phys]

            def one(ph, c, o):
                return compute_g2_scaled(phys, tj, tj, ph, q, L, c, o, dt)[0]

            return jax.vmap(one)(phij, contrast, offset)

        return c2

    n, mode = case["n_times"], case["mode"]
    dt = case["window"] / n
    t = dt * np.arange(n, dtype=np.float64)
    theta = jnp.asarray(np.asarray(case["theta"], dtype=np.float64))
    c2 = make(mode, t, dt, np.asarray(case["phi"], dtype=np.float64), case["q"], case["L"])
    fwd = jax.jit(c2)
    jac = jax.jit(jax.jacfwd(lambda th: c2(th).ravel()))
    fwd_first, fwd_s, fwd_cpu = _jax_median(fwd, theta, case["repeats"])
    jac_first, jac_s, jac_cpu = _jax_median(jac, theta, case["repeats"])
    probe.mark_peak()

    def reference(rc: dict[str, Any]) -> np.ndarray:
        f = make(rc["mode"], rc["t"], rc["dt"], rc["phi"], rc["q"], rc["L"])
        th = np.concatenate([rc["contrast"], rc["offset"], rc["params"]])
        return np.asarray(f(jnp.asarray(th)))

    return {
        "theta": np.asarray(theta),
        "c2": np.asarray(fwd(theta)),
        "jac": np.asarray(jac(theta)),
        "reference": reference,
        "figures": {
            "forward_s": fwd_s,
            "jacobian_s": jac_s,
            "forward_cpu_s": fwd_cpu,
            "jacobian_cpu_s": jac_cpu,
            "forward_first_s": fwd_first,
            "jacobian_first_s": jac_first,
        },
        "info": {
            "homodyne": getattr(homodyne, "__version__", "?"),
            "jax_devices": len(jax.devices()),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
        },
    }


SIDES = {"inversekit": inversekit_side, "homodyne": homodyne_side}


def work(task: dict[str, Any], probe: Probe) -> dict[str, Any]:
    case, side = task["case"], task["side"]
    out = SIDES[task["options"]["kernel"]](case, int(task["threads"]), probe)
    refs = _reference_cases(case["reference"])
    ref_err = {
        name: float(np.max(np.abs(out["reference"](rc) - rc["c2"]))) for name, rc in refs.items()
    }
    jac = out["jac"]
    rows = _rows(jac.shape[0], int(case["stride"]))
    path = Path(case["outdir"]) / f"{side}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        theta=out["theta"],
        c2=out["c2"],
        jac_rows=jac[rows],
        rows=rows,
        jac_colnorm=np.linalg.norm(jac, axis=0),
        jac_colmax=np.max(np.abs(jac), axis=0),
    )
    quality = {
        "file": str(path),
        "c2_shape": list(out["c2"].shape),
        "jacobian_shape": list(jac.shape),
        "c2_digest": _digest(out["c2"]),
        "jacobian_digest": _digest(jac),
        "theta": [float(v) for v in out["theta"]],
        "max_abs_err_vs_reference": ref_err,
        "finite": bool(np.isfinite(out["c2"]).all() and np.isfinite(jac).all()),
    }
    key = f"{case['mode']} P={case['n_angles']} N={case['n_times']}"
    return {"items": {key: {"figures": out["figures"], "quality": quality}}, "info": out["info"]}


if __name__ == "__main__":
    serve(work)
