"""Parameter slots: the solvers' gradient-free model calls on small data, without
creating a tensor per parameter per call."""

from __future__ import annotations

import numpy as np
from torch import Tensor


class ParamSlots:
    """Scalar free parameters as views of one buffer, refilled by one copy per call.

    Unpacking a point creates one tensor per parameter, and for a model of tiny data that
    creation is a fair share of a call. Here the per-parameter tensors are made once, as
    views of a buffer whose leading axis runs over the free parameters (``(p,)`` for one
    point; ``(p, b, 1, ...)`` for a batch of ``b`` points broadcasting against the data),
    and :meth:`fill` copies new values into it. The tensors handed to the model are
    therefore overwritten by the next fill: for gradient-free evaluations whose output is
    consumed before the next one (the solvers' cost and complex-step calls).
    """

    def __init__(self, params, buffer: Tensor, target: Tensor | None = None):
        if not params.all_scalar or buffer.shape[0] != params.n_free:
            raise ValueError("ParamSlots needs scalar free parameters, one buffer row each")
        self.params = params
        self.buffer = buffer
        self.target = buffer if target is None else target  # the part fill writes into
        self.views = buffer.unbind(0)  # one per free parameter, in free_names order
        # unbounded: the model's dict never changes, only what its views hold
        self._values = params.from_scalars(self.views) if params.identity else None
        self._host: np.ndarray | None = None  # NumPy view of target (float64 on the host)

    def fill(self, values: Tensor) -> dict[str, Tensor]:
        """The model's parameter dict for ``values`` (broadcast into ``target``)."""
        self.target.copy_(values)
        return self._dict()

    def fill_host(self, x: np.ndarray) -> dict[str, Tensor]:
        """As :meth:`fill` for a float64 NumPy point ``x`` (one value per free parameter,
        broadcast over the buffer's other axes), written through NumPy: no torch operation.
        Only for a float64 target on the host."""
        if self._host is None:
            self._host = self.target.numpy()
        self._host[...] = x.reshape(-1, *([1] * (self._host.ndim - 1)))
        return self._dict()

    def _dict(self) -> dict[str, Tensor]:
        if self._values is not None:
            return dict(self._values)  # a copy: the model may change the dict it is given
        return self.params.from_scalars(self.views)
