"""Draw docs/models/xpcs.png: c2(t1, t2) maps of the static and laminar-flow models.

    python docs/models/make_xpcs_figure.py

Top row: static mode (the same map at every angle). Bottom row: laminar flow with the flow
along phi0 = 0, seen at phi = 0, 45 and 90 degrees; the shear term sinc^4 decorrelates
fastest along the flow and vanishes perpendicular to it. Below the maps, cuts along
t1 = 1 s show the decay with lag t2 - t1 at each angle.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from inversekit.models import xpcs  # noqa: E402

OUT = Path(__file__).with_name("xpcs.png")
N, WINDOW = 200, 10.0  # frames, seconds
Q, L = 0.0054, 2.0e6  # 1/Angstrom, Angstrom
PHI = torch.tensor([0.0, 45.0, 90.0], dtype=torch.float64)
PARAMS = {
    "D0": 1.0e4,
    "alpha": -0.2,
    "D_offset": 100.0,
    "gamma_dot_t0": 1.0e-3,
    "beta": 0.3,
    "gamma_dot_t_offset": 1.0e-4,
    "phi0": 0.0,
    "contrast": 0.3,
    "offset": 1.0,
}


def maps() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    dt = WINDOW / N
    t = dt * torch.arange(N, dtype=torch.float64)
    p = {k: torch.tensor(v, dtype=torch.float64) for k, v in PARAMS.items()}
    static = {k: p[k] for k in ("D0", "alpha", "D_offset", "contrast", "offset")}
    return t, {
        "static": xpcs.c2(static, t, PHI, q=Q, dt=dt, mode="static"),
        "laminar_flow": xpcs.c2(p, t, PHI, q=Q, dt=dt, L=L, mode="laminar_flow"),
    }


def main() -> None:
    t, c2 = maps()
    extent = (0.0, float(t[-1]), 0.0, float(t[-1]))
    fig = plt.figure(figsize=(11, 9.5), layout="constrained")
    grid = fig.add_gridspec(3, 3, height_ratios=(1, 1, 0.8))
    lo, hi = 1.0, 1.0 + PARAMS["contrast"]
    for row, mode in enumerate(("static", "laminar_flow")):
        for k, phi in enumerate(PHI.tolist()):
            ax = fig.add_subplot(grid[row, k])
            im = ax.imshow(
                c2[mode][k].numpy(), origin="lower", extent=extent, vmin=lo, vmax=hi, cmap="viridis"
            )
            ax.set_title(f"{mode}, phi = {phi:g} deg", fontsize=10)
            ax.set_xlabel("t2 [s]")
            ax.set_ylabel("t1 [s]")
    fig.colorbar(im, ax=fig.axes, shrink=0.6, label="c2")
    i0 = int(1.0 / (WINDOW / N))
    ax = fig.add_subplot(grid[2, :])
    lag = (t[i0:] - t[i0]).numpy()
    for k, phi in enumerate(PHI.tolist()):
        ax.plot(
            lag, c2["laminar_flow"][k, i0, i0:].numpy(), label=f"laminar flow, phi = {phi:g} deg"
        )
    # perpendicular to the flow the shear term is 1: the static curve lies on phi = 90 deg
    ax.plot(lag, c2["static"][0, i0, i0:].numpy(), "k--", label="static (every angle)")
    ax.set_xlabel("lag t2 - t1 [s] (t1 = 1 s)")
    ax.set_ylabel("c2")
    ax.set_xlim(0, 4)
    ax.legend(fontsize=9)
    fig.suptitle(
        "XPCS two-time correlation (homodyne model): "
        f"q = {Q} 1/A, L = {L:g} A, {N} frames over {WINDOW:g} s, flow along phi0 = 0"
    )
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
