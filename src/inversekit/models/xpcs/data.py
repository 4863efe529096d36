"""Loading XPCS two-time data in the layouts homodyne reads, with its diagonal handling.

Layouts (detected from the file's contents, not its name):

``flat`` (``.npz`` or HDF5 datasets at the root) — homodyne's data dictionary and its
NPZ cache: ``c2_exp`` (or ``g2``, ``c2``) of shape (P, N, N); ``phi_angles_list`` (or
``phi``) in degrees; ``t1``/``t2`` (1-D, or 2-D meshgrids whose first column / row is
taken) or ``t``; ``wavevector_q_list`` (its first entry, homodyne's rule) or ``q``;
optional ``dt``, ``L``, ``sigma``. HDF5 scalars may also be root attributes.

``aps_u`` (HDF5) — APS-U processed files: ``xpcs/qmap/dynamic_v_list_dim0`` (q),
``dynamic_v_list_dim1`` (phi), ``xpcs/twotime/processed_bins`` (1-based bin numbers,
``bin - 1 = q_index * n_phi + phi_index``) and half matrices
``xpcs/twotime/correlation_map/c2_*`` in name order. The q bin nearest the requested
``q`` is selected with every angle that has it.

``aps_old`` (HDF5) — legacy APS files: ``xpcs/dqlist``, ``xpcs/dphilist`` (shape (1, n))
and half matrices ``exchange/C2T_all/*`` in name order. As in homodyne, the entries whose
q lies within 10 % of the q nearest the requested one are selected (the 10 closest if
that finds fewer than 5).

Half matrices are completed as ``half + half.T`` with the diagonal halved. APS files carry
no frame time, so ``dt`` must be passed; their time grid is homodyne's
``t = linspace(0, dt (N - 1), N)``. Frames ``start_frame..end_frame`` (1-based, inclusive)
are cut before the diagonal is treated.

Diagonal: homodyne replaces every loaded c2 diagonal (``diagonal="correct"``, default;
see :func:`correct_diagonal`); ``diagonal="raw"`` keeps the stored values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from inversekit.errors import InputError

_C2_KEYS = ("c2_exp", "g2", "c2")
_PHI_KEYS = ("phi_angles_list", "phi")
_Q_KEYS = ("wavevector_q_list", "q")
_DIAGONAL = ("correct", "raw")


@dataclass(frozen=True)
class XPCSData:
    """Two-time correlation data and the inputs of :func:`inversekit.models.xpcs.c2`.

    ``c2`` (P, N, N); ``t`` (N,) seconds; ``phi`` (P,) degrees; ``q`` 1/Angstrom;
    ``dt`` seconds; ``L`` Angstrom (``None`` if the file and the caller give none);
    ``sigma`` (P, N, N) uncertainties if the file has them; ``layout`` names the file
    layout that was read.
    """

    c2: Tensor
    t: Tensor
    phi: Tensor
    q: float
    dt: float
    L: float | None = None
    sigma: Tensor | None = None
    layout: str = "flat"

    def inputs(self) -> dict:
        """Keyword inputs of the model: ``c2(p, data.t, data.phi, **data.inputs(), mode=...)``."""
        return {"q": self.q, "dt": self.dt, "L": self.L}


def correct_diagonal(c2: Tensor) -> Tensor:
    """Homodyne's diagonal correction ("basic", after pyXPCSViewer), out of place.

    With ``s[i] = (c2[i, i+1] + c2[i+1, i]) / 2`` the new diagonal is ``s[0]``,
    ``(s[i-1] + s[i]) / 2`` for ``1 <= i <= N-2`` and ``s[N-2]``; off-diagonal entries are
    unchanged. Works on any (..., N, N) stack and is differentiable, so a model can be
    given the same treatment as the data.
    """
    if c2.ndim < 2 or c2.shape[-1] != c2.shape[-2]:
        raise InputError(f"c2 must be a stack of square matrices; got shape {tuple(c2.shape)}")
    if c2.shape[-1] < 2:
        return c2.clone()
    upper = c2.diagonal(offset=1, dim1=-2, dim2=-1)
    lower = c2.diagonal(offset=-1, dim1=-2, dim2=-1)
    side = 0.5 * (upper + lower)
    inner = 0.5 * (side[..., :-1] + side[..., 1:])
    diagonal = torch.cat([side[..., :1], inner, side[..., -1:]], dim=-1)
    out = c2.clone()
    out.diagonal(dim1=-2, dim2=-1).copy_(diagonal)
    return out


def load(
    path: str | Path,
    *,
    q: float | None = None,
    dt: float | None = None,
    L: float | None = None,
    start_frame: int | None = None,
    end_frame: int | None = None,
    diagonal: str = "correct",
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> XPCSData:
    """Read XPCS two-time data from an ``.npz`` or HDF5 file (layouts in the module doc).

    ``q``, ``dt`` and ``L`` fill in values the file lacks; given together with a
    different value in the file they raise (for APS files ``q`` selects the q bin).
    ``start_frame``/``end_frame`` (1-based, inclusive) cut the frames.
    """
    if diagonal not in _DIAGONAL:
        raise InputError(f"diagonal must be one of {_DIAGONAL}; got {diagonal!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    if _is_hdf5(path):
        raw = _read_hdf5(path, q)
    else:
        raw = _read_npz(path)
    return _assemble(raw, path, q, dt, L, start_frame, end_frame, diagonal, dtype, device)


# ---------------------------------------------------------------- readers


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def _read_npz(path: Path) -> dict:
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # not an npz/npy file at all
        raise InputError(
            f"path: {str(path)!r} is neither an .npz archive nor HDF5 ({exc})"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(f"path: {str(path)!r} holds a single array, not a dictionary of arrays")
    with archive:
        # Object arrays (homodyne's pickled cache_metadata) are never loaded.
        arrays = {k: archive[k] for k in archive.files if k != "cache_metadata"}
    return _flat(arrays, str(path))


def _read_hdf5(path: Path, q_target: float | None) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        if "xpcs/qmap/dynamic_v_list_dim0" in f and "xpcs/twotime/correlation_map" in f:
            return _aps_u(f, q_target)
        if "xpcs/dqlist" in f and "exchange/C2T_all" in f:
            return _aps_old(f, q_target)
        arrays = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
        for k, v in f.attrs.items():
            arrays.setdefault(k, np.asarray(v))
    return _flat(arrays, str(path))


def _first(arrays: dict, keys: tuple[str, ...], what: str, source: str, required: bool = True):
    for k in keys:
        if k in arrays:
            return np.asarray(arrays[k])
    if required:
        raise InputError(f"{what}: none of the keys {', '.join(keys)} found in {source!r}")
    return None


def _flat(arrays: dict, source: str) -> dict:
    c2 = _first(arrays, _C2_KEYS, "c2", source)
    phi = _first(arrays, _PHI_KEYS, "phi", source)
    q_list = _first(arrays, _Q_KEYS, "q", source, required=False)
    t = None
    if "t1" in arrays or "t2" in arrays:
        t1 = _time_axis(arrays.get("t1", arrays.get("t2")), "t1", rows=True)
        t2 = _time_axis(arrays.get("t2", arrays.get("t1")), "t2", rows=False)
        if t1.shape != t2.shape or not np.array_equal(t1, t2):
            raise InputError("t1 and t2 differ: a two-time stack needs t1 = t2 = t")
        t = t1
    elif "t" in arrays:
        t = np.asarray(arrays["t"], dtype=np.float64).reshape(-1)
    return {
        "c2": c2,
        "phi": phi.reshape(-1),
        "t": t,
        "q": None if q_list is None else float(np.asarray(q_list).reshape(-1)[0]),
        "dt": _scalar(arrays, "dt"),
        "L": _scalar(arrays, "L"),
        "sigma": None if "sigma" not in arrays else np.asarray(arrays["sigma"]),
        "layout": "flat",
    }


def _time_axis(a, name: str, rows: bool) -> np.ndarray:
    """1-D time axis from a 1-D array or a 2-D ``indexing="ij"`` meshgrid."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        return a
    if a.ndim == 2:
        return a[:, 0] if rows else a[0, :]
    raise InputError(f"{name} must be 1-D or a 2-D meshgrid; got shape {a.shape}")


def _scalar(arrays: dict, key: str) -> float | None:
    if key not in arrays:
        return None
    a = np.asarray(arrays[key], dtype=np.float64).reshape(-1)
    if a.size != 1:
        raise InputError(f"{key} must be a single number in the file; got {a.size} values")
    return float(a[0])


def _full_matrix(half: np.ndarray) -> np.ndarray:
    """APS stores one triangle: full = half + half.T with the doubled diagonal halved."""
    half = np.asarray(half, dtype=np.float64)
    full = half + half.T
    full[np.diag_indices(half.shape[0])] /= 2.0
    return full


def _nearest(values: np.ndarray, target: float | None, what: str) -> float:
    distinct = np.unique(values)
    if target is None:
        if distinct.size > 1:
            raise InputError(
                f"q: the file holds {distinct.size} q values ({distinct.min():g} to "
                f"{distinct.max():g} 1/A); pass q= to choose the {what}"
            )
        return float(distinct[0])
    return float(values[np.argmin(np.abs(values - target))])


def _aps_u(f, q_target: float | None) -> dict:
    q_values = np.asarray(f["xpcs/qmap/dynamic_v_list_dim0"][()], dtype=np.float64).reshape(-1)
    phi_values = np.asarray(f["xpcs/qmap/dynamic_v_list_dim1"][()], dtype=np.float64).reshape(-1)
    bins = np.asarray(f["xpcs/twotime/processed_bins"][()]).reshape(-1).astype(np.int64) - 1
    q_index, phi_index = bins // phi_values.size, bins % phi_values.size
    valid = (q_index >= 0) & (q_index < q_values.size)
    group = f["xpcs/twotime/correlation_map"]
    names = sorted(group.keys())
    valid &= np.arange(bins.size) < len(names)
    q_of = q_values[q_index[valid]]
    chosen = _nearest(q_of, q_target, "q bin")
    keep = np.flatnonzero(valid)[np.abs(q_of - chosen) < 1e-10]
    return {
        "c2": np.stack([_full_matrix(group[names[i]][()]) for i in keep]),
        "phi": phi_values[phi_index[keep]],
        "t": None,
        "q": chosen,
        "dt": None,
        "L": None,
        "sigma": None,
        "layout": "aps_u",
    }


def _aps_old(f, q_target: float | None) -> dict:
    dq = np.asarray(f["xpcs/dqlist"][()], dtype=np.float64).reshape(-1)
    dphi = np.asarray(f["xpcs/dphilist"][()], dtype=np.float64).reshape(-1)
    group = f["exchange/C2T_all"]
    names = sorted(group.keys())
    n = min(len(names), dq.size)
    dq, dphi = dq[:n], dphi[:n]
    chosen = float(dq[np.argmin(np.abs(dq - q_target))]) if q_target is not None else None
    if chosen is None:
        chosen = _nearest(dq, None, "q")
    keep = np.flatnonzero(np.abs(dq - chosen) <= 0.1 * chosen)
    if keep.size < 5:
        keep = np.sort(np.argsort(np.abs(dq - chosen), kind="stable")[: min(10, n)])
    return {
        "c2": np.stack([_full_matrix(group[names[i]][()]) for i in keep]),
        "phi": dphi[keep],
        "t": None,
        "q": chosen,
        "dt": None,
        "L": None,
        "sigma": None,
        "layout": "aps_old",
    }


# ---------------------------------------------------------------- assembly


def _merge(name: str, in_file: float | None, given: float | None, unit: str) -> float | None:
    """A file value, filled in or confirmed by the caller's."""
    if given is not None:
        given = float(given)
        if in_file is not None and not math.isclose(in_file, given, rel_tol=1e-12):
            raise InputError(f"{name}: given as {given!r} {unit} but the file says {in_file!r}")
        return given
    return in_file


def _assemble(raw, path, q, dt, L, start_frame, end_frame, diagonal, dtype, device) -> XPCSData:
    c2 = np.asarray(raw["c2"], dtype=np.float64)
    if c2.ndim == 2:
        c2 = c2[None]
    if c2.ndim != 3 or c2.shape[1] != c2.shape[2]:
        raise InputError(f"c2 must have shape (P, N, N); got {c2.shape} in {str(path)!r}")
    phi = np.asarray(raw["phi"], dtype=np.float64)
    if phi.size != c2.shape[0]:
        raise InputError(f"phi has {phi.size} angles but c2 has {c2.shape[0]} matrices")
    q_ = raw["q"] if raw["layout"] != "flat" else _merge("q", raw["q"], q, "1/A")
    dt_ = _merge("dt", raw["dt"], dt, "s")
    L_ = _merge("L", raw["L"], L, "A")
    if q_ is None:
        raise InputError(f"q: the file {str(path)!r} has no wavevector; pass q=")
    if dt_ is None:
        raise InputError(f"dt: the file {str(path)!r} has no frame time; pass dt=")
    for name, value in (("q", q_), ("dt", dt_), ("L", L_)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be positive and finite; got {value!r}")
    n = c2.shape[-1]
    first, last = _frames(start_frame, end_frame, n)
    c2 = c2[:, first:last, first:last]
    sigma = raw["sigma"]
    if sigma is not None:
        if sigma.shape != (phi.size, n, n):
            raise InputError(
                f"sigma must have the shape of c2 {(phi.size, n, n)}; got {sigma.shape}"
            )
        sigma = sigma[:, first:last, first:last]
    t = raw["t"]
    if t is None:
        t = np.linspace(0.0, dt_ * (last - first - 1), last - first)
    else:
        if t.size != n:
            raise InputError(f"t has {t.size} times but c2 is {n} x {n}")
        t = t[first:last]
    if t.size > 1 and not np.all(np.diff(t) > 0):
        raise InputError(f"t must be strictly increasing in {str(path)!r}")

    def tensor(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

    c2_t = tensor(c2)
    if diagonal == "correct":
        c2_t = correct_diagonal(c2_t)
    return XPCSData(
        c2=c2_t,
        t=tensor(t),
        phi=tensor(phi),
        q=float(q_),
        dt=float(dt_),
        L=L_,
        sigma=None if sigma is None else tensor(sigma),
        layout=raw["layout"],
    )


def _frames(start: int | None, end: int | None, n: int) -> tuple[int, int]:
    """0-based half-open frame range from homodyne's 1-based inclusive start/end."""
    first = 0 if start is None else int(start) - 1
    last = n if end is None else int(end)
    if not 0 <= first < last <= n:
        raise InputError(
            f"start_frame/end_frame must satisfy 1 <= start_frame <= end_frame <= {n}; "
            f"got {start}, {end}"
        )
    return first, last
