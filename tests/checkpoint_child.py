"""Problems for the checkpoint tests, and a child process that fits one and is killed.

``python tests/checkpoint_child.py KIND CHECKPOINT MARKER`` fits problem ``KIND`` with a
checkpoint written every iteration; after iteration ``STOP_AT`` its callback writes
``MARKER`` and waits to be killed (the test sends SIGKILL), so the run dies mid-fit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

import inversekit as ik
from inversekit.models import nist

DATA = Path(__file__).resolve().parent / "data" / "nist_strd"
STOP_AT = 4


def rosenbrock(p):
    return (1 - p["x"]) ** 2 + 100 * (p["y"] - p["x"] ** 2) ** 2


def decay(p, x):
    return p["a"] * torch.exp(-p["k"] * x) + p["c"]


def problem(kind: str, seed: int = 0):
    """The problem ``kind`` (``seed`` changes its data: another problem)."""
    if kind in ("lm", "lm-eager"):  # NIST MGH17 from its first start: a long curved valley
        pr = nist.problem(nist.read_strd(DATA / "MGH17.dat"), 0)
        if kind == "lm" and not seed:
            return pr  # the complex-step engine, evaluated on the host
        y = pr.y * (1 + 1e-3 * seed)
        return ik.LeastSquares(pr.model, pr.params, inputs=pr.inputs, y=y, jacobian="eager")
    if kind == "batched":
        g = torch.Generator().manual_seed(seed)
        B, x = 64, torch.linspace(0, 5, 40, dtype=torch.float64)
        a = 1 + torch.rand(B, 1, generator=g, dtype=torch.float64)
        k = 0.3 + torch.rand(B, 1, generator=g, dtype=torch.float64)
        y = a * torch.exp(-k * x) + 0.2 + 0.01 * torch.randn(B, 40, generator=g, dtype=x.dtype)
        params = ik.Params(a=ik.Param(0.5), k=ik.Param(2.0, bounds=(0, None)), c=0.0)
        return ik.BatchedLeastSquares(decay, params, inputs=(x,), y=y, sigma=0.01)
    if kind == "lbfgsb":
        return ik.Objective(rosenbrock, ik.Params(x=ik.Param(-1.2 - seed), y=ik.Param(1.0)))
    raise ValueError(kind)


def solver(kind: str):
    return {"lm": ik.LM(), "lm-eager": ik.LM(), "batched": ik.LM(), "lbfgsb": "lbfgsb"}[kind]


def main(kind: str, checkpoint: str, marker: str) -> None:
    def callback(state):
        if state.iteration == STOP_AT:
            Path(marker).write_text("ready")
            time.sleep(600)  # killed here, mid-run

    ik.fit(problem(kind), solver(kind), callback=callback, checkpoint=checkpoint)


if __name__ == "__main__":
    main(*sys.argv[1:4])
