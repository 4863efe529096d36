"""A scalar objective: any differentiable loss of the parameters."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from inversekit.derivatives.forward import hessian_vector_product
from inversekit.errors import InputError, ModelError
from inversekit.problem.fingerprint import fingerprint
from inversekit.problem.model_calls import call_model
from inversekit.problem.params import Params


class Objective:
    """Any differentiable scalar loss ``loss_fn(p) -> Tensor`` of the parameters.

    Exposes the value, gradient (reverse mode) and Hessian-vector products (forward over
    reverse) in the unconstrained space of ``params``. Priors on the parameters add
    ``-Σ log p(x)`` to the loss (so a loss that is a negative log-likelihood gives the MAP).
    """

    def __init__(
        self,
        loss_fn: Callable[[dict[str, Tensor]], Tensor],
        params: Params,
        *,
        dtype: torch.dtype = torch.float64,
        device=None,
    ):
        self.dtype = dtype
        if not callable(loss_fn):
            raise InputError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        if not isinstance(params, Params):
            raise InputError(f"params must be an inversekit.Params, got {type(params).__name__}")
        self.loss_fn = loss_fn
        self.params = params.to(dtype=dtype, device=device)
        if self.params.n_free == 0:
            raise InputError("no free parameters: every parameter is fixed")
        self.u0 = self.params.pack()
        self.device = self.u0.device
        out = call_model(
            lambda p: loss_fn(p), self.params.unpack(self.u0), (), "the starting parameters"
        )
        if out.numel() != 1:
            raise ModelError(f"loss_fn must return a scalar, got shape {tuple(out.shape)}")
        if not bool(torch.isfinite(out).all()):
            raise ModelError("loss_fn is not finite at the starting parameters")

    def _scalar(self, u: Tensor) -> Tensor:
        values = self.params.unpack(u)
        loss = self.loss_fn(values).reshape(())
        if self.params.prior_names:
            loss = loss - self.params.log_prior(values)
        return loss

    def value(self, u: Tensor) -> float:
        """The loss at ``u``."""
        with torch.no_grad():
            return float(self._scalar(u))

    def gradient(self, u: Tensor) -> tuple[float, Tensor]:
        """``(loss, d loss / du)`` by reverse mode."""
        u = u.detach().requires_grad_(True)
        value = self._scalar(u)
        (grad,) = torch.autograd.grad(value, u)
        return float(value.detach()), grad

    def hvp(self, u: Tensor, v: Tensor) -> Tensor:
        """Hessian-vector product ``H(u) v`` of the loss in unconstrained space."""
        return hessian_vector_product(self._scalar, u, v)

    def unpack(self, u: Tensor) -> dict[str, Tensor]:
        """Every parameter as a physical tensor at ``u`` (fixed ones at their values)."""
        return self.params.unpack(u)

    def fingerprint(self) -> dict:
        """The problem's identity for checkpoints: the loss function's name, the parameter
        layout and the fixed values (the loss's own data are not seen)."""
        fixed = [self.params.values[n] for n in self.params.fixed_names]
        return fingerprint("Objective", self.params, self.loss_fn, *fixed)
