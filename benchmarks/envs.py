"""One virtual environment per peer, created on demand, kept out of the project's own.

``python -m benchmarks envs [PEER ...]`` creates the environments (all known peers when none
is named); ``python -m benchmarks envs --status`` says which exist and why the others do not.

Every pip call gets ``-c constraints.txt`` (torch pinned to the local CPU build), and torch is
installed first and on its own wherever a peer needs it, so that no resolver ever picks a
CUDA build. An environment counts as ready only once its marker file exists; a failed
install leaves a ``<peer>.failed.json`` beside it whose reason the runner reports.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.paths import CONSTRAINTS, peer_envs_dir

MARKER = ".inversekit-peer.json"
TORCH_PIN = "torch==2.13.0"


@dataclass(frozen=True)
class PeerSpec:
    """How to build one peer's environment.

    ``steps`` are pip install calls made in order (torch first, alone); ``modules`` are
    imported after the install to check it and to record versions.
    """

    name: str
    python: str
    steps: tuple[tuple[str, ...], ...]
    modules: tuple[str, ...]
    note: str = ""


PEERS: dict[str, PeerSpec] = {
    spec.name: spec
    for spec in (
        PeerSpec(
            "scipy",
            "3.11",
            ((TORCH_PIN,), ("numpy", "scipy", "lmfit")),
            ("numpy", "scipy", "lmfit", "torch"),
            "scipy.optimize.least_squares (lm, trf) and lmfit; torch only for AD Jacobians",
        ),
        PeerSpec(
            "nlsq",
            "3.12",
            (("nlsq",),),
            ("nlsq", "jax", "numpy", "scipy"),
            "JAX curve fitting; needs Python >= 3.12, pulls about 200 packages",
        ),
        PeerSpec(
            "homodyne",
            "3.12",
            (("homodyne==2.23.3",),),
            ("homodyne", "jax", "numpy"),
            "XPCS fitting (NLSQ, CMA-ES, CMC); needs Python >= 3.12",
        ),
        PeerSpec(
            "astrophot",
            "3.11",
            ((TORCH_PIN,), ("astrophot==0.18.0",)),
            ("astrophot", "torch"),
            "galaxy image fitting (LM, L-BFGS-B)",
        ),
        PeerSpec(
            "foscat",
            "3.11",
            ((TORCH_PIN,), ("foscat==2026.6.1",)),
            ("foscat", "torch"),
            "scattering-covariance synthesis; torch is not declared by foscat",
        ),
        PeerSpec(
            "pyro",
            "3.11",
            ((TORCH_PIN,), ("pyro-ppl", "emcee", "arviz", "numpy", "scipy")),
            ("pyro", "emcee", "torch"),
            "NUTS in Pyro, emcee",
        ),
        PeerSpec(
            "numpyro",
            "3.11",
            (("jax", "jaxlib", "numpyro", "blackjax", "arviz"),),
            ("numpyro", "blackjax", "jax"),
            "NUTS in NumPyro and BlackJAX",
        ),
        PeerSpec("cma", "3.11", (("cma", "numpy"),), ("cma", "numpy"), "CMA-ES (pycma)"),
    )
}


def env_dir(peer: str) -> Path:
    """Folder of ``peer``'s virtual environment."""
    return peer_envs_dir() / peer


def env_python(peer: str) -> Path:
    """The interpreter inside ``peer``'s environment (it may not exist yet)."""
    return env_dir(peer) / "bin" / "python"


def _failure_file(peer: str) -> Path:
    return peer_envs_dir() / f"{peer}.failed.json"


def _python_version(exe: str | Path) -> str | None:
    try:
        out = subprocess.run(
            [str(exe), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


@functools.cache
def find_python(version: str) -> Path | None:
    """An interpreter of ``version`` ("3.12"): ``$INVERSEKIT_PYTHON_3_12``, pyenv's
    ``versions/3.12*``, ``python3.12`` on PATH, or this interpreter if it matches."""
    candidates: list[Path] = []
    override = os.environ.get("INVERSEKIT_PYTHON_" + version.replace(".", "_"))
    if override:
        candidates.append(Path(override))
    root = _pyenv_root()
    if root is not None:
        for d in sorted((root / "versions").glob(version + ".*"), reverse=True):
            candidates.append(d / "bin" / f"python{version}")
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path(sys.executable))
    for exe in candidates:
        if exe.exists() and _python_version(exe) == version:
            return exe
    return None


def env_status(peer: str) -> tuple[bool, str, dict[str, str]]:
    """``(ready, reason, versions)`` for ``peer``: the reason says why it is not ready."""
    if peer not in PEERS:
        return False, f"unknown peer {peer!r}", {}
    marker = env_dir(peer) / MARKER
    if marker.exists() and env_python(peer).exists():
        return True, "", json.loads(marker.read_text()).get("versions", {})
    failed = _failure_file(peer)
    if failed.exists():
        info = json.loads(failed.read_text())
        return False, f"environment could not be built: {info.get('reason', '?')}", {}
    if find_python(PEERS[peer].python) is None:
        return False, f"no Python {PEERS[peer].python} interpreter found", {}
    return False, f"environment not created (run: python -m benchmarks envs {peer})", {}


def _versions(python: Path, modules: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import importlib, json, sys\n"
        "out = {'python': sys.version.split()[0]}\n"
        f"for m in {list(modules)!r}:\n"
        "    mod = importlib.import_module(m)\n"
        "    out[m] = str(getattr(mod, '__version__', '?'))\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError("import check failed: " + res.stderr.strip().splitlines()[-1])
    return json.loads(res.stdout.strip().splitlines()[-1])


def create_env(peer: str, log=print) -> tuple[bool, str]:
    """Build ``peer``'s environment unless it is ready; return ``(ready, reason)``."""
    spec = PEERS[peer]
    ready, reason, _ = env_status(peer)
    if ready:
        return True, "already present"
    python = find_python(spec.python)
    if python is None:
        reason = f"no Python {spec.python} interpreter found"
        _record_failure(peer, reason)
        return False, reason
    target = env_dir(peer)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _failure_file(peer).unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        _run([str(python), "-m", "venv", str(target)], log)
        pip = [str(env_python(peer)), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS)]
        for step in spec.steps:
            _run([*pip, *step], log)
        versions = _versions(env_python(peer), spec.modules)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        reason = str(exc)[-400:]
        _record_failure(peer, reason)
        return False, reason
    info = {"peer": peer, "versions": versions, "build_s": round(time.perf_counter() - t0, 1)}
    (target / MARKER).write_text(json.dumps(info, indent=1))
    return True, f"built in {info['build_s']} s: {versions}"


def _run(cmd: list[str], log) -> None:
    log("  $ " + " ".join(cmd))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"`{' '.join(cmd[-3:])}` failed: " + " | ".join(tail))


def _record_failure(peer: str, reason: str) -> None:
    peer_envs_dir().mkdir(parents=True, exist_ok=True)
    _failure_file(peer).write_text(json.dumps({"peer": peer, "reason": reason}, indent=1))


def main(argv: list[str]) -> int:
    """Entry point of ``python -m benchmarks envs``."""
    if argv and argv[0] == "--status":
        for name, spec in PEERS.items():
            ready, reason, versions = env_status(name)
            state = "ready " + json.dumps(versions) if ready else "missing: " + reason
            print(f"{name:10s} (Python {spec.python}) {state}")
        return 0
    names = argv or list(PEERS)
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        print(f"unknown peer(s) {unknown}; known: {', '.join(PEERS)}", file=sys.stderr)
        return 2
    failures = 0
    for name in names:
        print(f"{name}: building in {env_dir(name)}", flush=True)
        ready, reason = create_env(name)
        print(f"{name}: {'ready' if ready else 'FAILED'}: {reason}", flush=True)
        failures += not ready
    return 1 if failures else 0
