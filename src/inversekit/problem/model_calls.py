"""Checks and calls shared by every problem type: the user's model, arrays and inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from inversekit.errors import InputError, ModelError
from inversekit.problem.params import Params

Model = Callable[..., Tensor]


def check_model_and_params(model, params) -> None:
    """The checks every problem type makes first: a callable model, a ``Params``."""
    if not callable(model):
        raise InputError(f"model must be callable, got {type(model).__name__}")
    if not isinstance(params, Params):
        raise InputError(f"params must be an inversekit.Params, got {type(params).__name__}")


def to_tensor(name: str, value, dtype: torch.dtype, device=None) -> Tensor:
    """``value`` as a ``dtype`` tensor on ``device`` (its own device if ``None``)."""
    if isinstance(value, Tensor):
        return value.to(dtype=dtype, device=device)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - report what numpy said about the input
        raise InputError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
    return torch.as_tensor(arr, dtype=dtype, device=device)


def prepare_input(i: int, value, dtype, device):
    """Floating inputs become ``dtype`` tensors on the data's device; others pass through."""
    if isinstance(value, Tensor):
        value = value.to(device)
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, np.ndarray):
        t = torch.as_tensor(value, device=device)
        return t.to(dtype) if t.is_floating_point() else t
    if isinstance(value, list | tuple) and value and all(isinstance(v, float | int) for v in value):
        return to_tensor(f"inputs[{i}]", value, dtype).to(device)
    return value


def call_model(model: Model, p: dict[str, Tensor], inputs: Sequence, what: str) -> Tensor:
    """Call the user's model, turning any exception into a :class:`ModelError`."""
    try:
        out = model(p, *inputs)
    except Exception as exc:  # noqa: BLE001 - the user's model may raise anything
        raise ModelError(
            f"the model raised {type(exc).__name__} when called with {what}: {exc}"
        ) from exc
    if not isinstance(out, Tensor):
        raise ModelError(
            f"the model must return a torch.Tensor, got {type(out).__name__} when called "
            f"with {what}"
        )
    return out
