r"""A group of components as one model function with namespaced parameters.

.. code-block:: python

    model = image.group(gal0=image.sersic(), sky=image.flat_sky(), psf=psf, shape=(128, 128))
    img = model({"gal0.cx": 63.5, ..., "sky.I0": 20.0})      # (128, 128) tensor

The image is built the way AstroPhot builds it:

1. PSF-convolved components (profiles) are sampled on the image grid padded by the PSF
   half-width, summed, and convolved once with the PSF (linear, so one FFT serves all);
   the valid part is the image-sized result;
2. point sources add the PSF shifted to their centres;
3. unconvolved components (skies, ``convolve=False`` profiles) are added last.

Without a PSF, step 1 samples on the image grid directly and point sources are refused.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from inversekit.errors import InputError
from inversekit.models.image._checks import check_shape, check_values
from inversekit.models.image.components import Component, PointSource, Profile, Sky
from inversekit.models.image.psf import Convolver, check_psf
from inversekit.models.image.sampling import Grid
from inversekit.models.table import ParamSpec


class ImageModel:
    """Model function ``model(p) -> image`` for a fixed pixel grid and PSF.

    ``p`` maps ``"<component>.<parameter>"`` to a float or tensor. Tensors may carry a
    common leading batch shape; the image is then ``batch + (height, width)``. The result
    takes the dtype and device of the first floating tensor in ``p`` (float64 on the CPU
    when all values are Python numbers). Image models take no further inputs: the grid and
    the PSF are fixed when the model is built.

    ``validate=True`` checks parameter values on every call (one host sync; skipped inside
    ``torch.func`` transforms); ``False`` skips the check for tight loops.
    """

    def __init__(
        self,
        components: Mapping[str, Component],
        shape: tuple[int, int],
        psf: object = None,
        validate: bool = True,
    ) -> None:
        self.shape = check_shape(shape)
        self.components = dict(components)
        if not self.components:
            raise InputError("a group needs at least one component")
        for name, component in self.components.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise InputError(f"component names must be identifiers, got {name!r}")
            if not isinstance(component, Profile | PointSource | Sky):
                raise InputError(
                    f"component {name!r} must be made by an image component function "
                    f"(image.sersic(), image.flat_sky(), ...), got {type(component).__name__}"
                )
        self.psf = None if psf is None else check_psf(psf)
        for name, component in self.components.items():
            if component.stage == "point" and self.psf is None:
                raise InputError(f"component {name!r} is a point_source and needs a psf")
        self.validate = bool(validate)
        self.grid = Grid(*self.shape)
        if self.psf is None:
            self._sample_grid = self.grid
            self._convolver = None
        else:
            pad_y, pad_x = self.psf.shape[0] // 2, self.psf.shape[1] // 2
            self._sample_grid = self.grid.padded(pad_y, pad_x)
            padded_shape = (self._sample_grid.height, self._sample_grid.width)
            self._convolver = Convolver(self.psf, padded_shape)
        self._psf_cache: dict[tuple[torch.dtype, torch.device], Tensor] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """Every parameter name, ``"<component>.<parameter>"``, in component order."""
        return tuple(f"{c}.{n}" for c, comp in self.components.items() for n in comp.names)

    def table(self) -> tuple[ParamSpec, ...]:
        """The components' parameter tables with namespaced names."""
        out = []
        for cname, component in self.components.items():
            for spec in component.info.parameters:
                out.append(
                    ParamSpec(
                        name=f"{cname}.{spec.name}",
                        unit=spec.unit,
                        default=spec.default,
                        bounds=spec.bounds,
                        log_scale=spec.log_scale,
                        description=spec.description,
                        per=spec.per,
                    )
                )
        return tuple(out)

    def bounds(self) -> dict[str, tuple[float | None, float | None]]:
        """Physical bounds of every parameter, e.g. for ``Param(value, bounds=...)``."""
        return {spec.name: spec.bounds for spec in self.table()}

    def defaults(self) -> dict[str, float]:
        """Default value of every parameter (starting points; set centres from the data)."""
        return {spec.name: spec.default for spec in self.table()}

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v.kind}" for k, v in self.components.items())
        psf = None if self.psf is None else tuple(self.psf.shape)
        return f"ImageModel({parts}, shape={self.shape}, psf={psf})"

    def __call__(self, p: Mapping[str, object], *inputs: object) -> Tensor:
        """The model image for parameters ``p``; see the class docs."""
        if inputs:
            raise InputError(
                "image models take only the parameter dict; the grid and PSF are fixed "
                "when the model is built"
            )
        values, batch = self._values(p)
        return self._render(values, batch, self.components)

    def component_images(self, p: Mapping[str, object]) -> dict[str, Tensor]:
        """Each component's own image (convolved where it would be), keyed by name."""
        values, batch = self._values(p)
        return {
            name: self._render(values, batch, {name: comp})
            for name, comp in self.components.items()
        }

    def _values(self, p: Mapping[str, object]) -> tuple[dict[str, dict[str, Tensor]], tuple]:
        self._check_keys(p)
        dtype, device = _dtype_device([p[n] for n in self.names])
        values: dict[str, dict[str, Tensor]] = {}
        for cname, component in self.components.items():
            values[cname] = {
                n: torch.as_tensor(p[f"{cname}.{n}"], dtype=dtype, device=device)
                for n in component.names
            }
        if self.validate:
            flat = {f"{c}.{n}": v for c, vals in values.items() for n, v in vals.items()}
            domains = {
                f"{c}.{n}": d
                for c, comp in self.components.items()
                for n, d in comp.domains.items()
            }
            check_values(flat, domains)
        batch = torch.broadcast_shapes(
            *(v.shape for vals in values.values() for v in vals.values())
        )
        return values, batch

    def _check_keys(self, p: Mapping[str, object]) -> None:
        missing = [n for n in self.names if n not in p]
        if missing:
            raise KeyError(f"missing image parameter(s): {', '.join(missing)}")
        known = set(self.names)
        for key in p:
            prefix, _, rest = str(key).partition(".")
            # A key aimed at one of our components but not one of its parameters is a typo;
            # keys of other models sharing the dict are left alone.
            if prefix in self.components and key not in known:
                options = ", ".join(self.components[prefix].names)
                raise KeyError(f"unknown parameter {key!r}; {prefix!r} has {options}")

    def _psf_on(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        key = (dtype, torch.device(device))
        if key not in self._psf_cache:
            self._psf_cache[key] = self.psf.to(device=device, dtype=dtype)
        return self._psf_cache[key]

    def _render(
        self,
        values: Mapping[str, Mapping[str, Tensor]],
        batch: tuple,
        components: Mapping[str, Component],
    ) -> Tensor:
        any_value = next(iter(next(iter(values.values())).values()))
        dtype, device = any_value.dtype, any_value.device
        psf = None if self.psf is None else self._psf_on(dtype, device)
        image = torch.zeros(*batch, *self.shape, dtype=dtype, device=device)
        convolved = [(n, c) for n, c in components.items() if c.stage == "convolved"]
        if convolved:
            sampled = sum(c.render(values[n], self._sample_grid) for n, c in convolved)
            image = image + (sampled if self._convolver is None else self._convolver(sampled))
        for name, component in components.items():
            if component.stage != "convolved":
                image = image + component.render(values[name], self.grid, psf)
        return image


def _dtype_device(items: list[object]) -> tuple[torch.dtype, torch.device]:
    for item in items:
        if isinstance(item, Tensor) and item.is_floating_point():
            return item.dtype, item.device
    for item in items:
        if isinstance(item, Tensor):
            return torch.float64, item.device
    return torch.float64, torch.device("cpu")


def group(
    *, shape: tuple[int, int], psf: object = None, validate: bool = True, **components: Component
) -> ImageModel:
    """Sum named components into one :class:`ImageModel` on a ``shape = (height, width)`` grid.

    Parameters are addressed as ``"<name>.<parameter>"`` (``"gal0.n"``, ``"sky.I0"``).
    ``psf``: odd-sized 2-D array centred on its middle pixel, or ``None`` for no PSF.
    ``shape``, ``psf`` and ``validate`` are reserved and cannot name components.
    """
    return ImageModel(components, shape=shape, psf=psf, validate=validate)
