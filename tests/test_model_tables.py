"""Model parameter tables build ready Params: every shipped table, at its defaults, gives
parameters the model accepts; per-axis expansion, overrides and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import data_dir

import inversekit as ik
from inversekit.models import available, image, lensing, make_params, nist, xpcs
from inversekit.models.table import ModelInfo, ParamSpec

F64 = torch.float64
MODELS = available()
AXIS_SIZES = {"n_angle": 3, "n_source_pixel": (1, 12, 12), "n_kappa_pixel": (1, 16, 16)}


def sizes_for(info: ModelInfo) -> dict:
    return {s.size_keyword: AXIS_SIZES[s.size_keyword] for s in info.parameters if s.per}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_table_builds_params_inside_its_bounds(name):
    info = MODELS[name]
    params = info.params(**sizes_for(info))
    assert isinstance(params, ik.Params) and list(params) == [s.name for s in info.parameters]
    for spec in info.parameters:
        p, value = params[spec.name], params.values[spec.name]
        assert p.unit == spec.unit and p.description == spec.description
        assert p.log_scale == spec.log_scale and p.bounds == spec.bounds
        assert value.dtype == F64 and bool((value == spec.default).all())
        lo, hi = spec.bounds
        if spec.fixed:
            assert params.fully_fixed(spec.name)
            continue
        assert spec.name in params.free_names
        assert lo is None or bool((value > lo).all()), spec.name  # strictly inside
        assert hi is None or bool((value < hi).all()), spec.name


def test_xpcs_per_angle_expansion_and_the_model_at_the_defaults():
    t = 0.1 * torch.arange(6, dtype=F64)
    phi = torch.tensor([0.0, 45.0, 90.0], dtype=F64)
    for info, mode in ((xpcs.STATIC, "static"), (xpcs.LAMINAR_FLOW, "laminar_flow")):
        params = info.params(n_angle=3)
        assert params.values["contrast"].shape == (3,) and params.values["offset"].shape == (3,)
        assert params.labels()[-6:] == [
            f"{n}[{i}]" for n in ("contrast", "offset") for i in range(3)
        ]
        out = xpcs.c2(params.values, t, phi, q=0.0054, dt=0.1, L=2.0e6, mode=mode)
        assert out.shape == (3, 6, 6) and bool(torch.isfinite(out).all())
        # c2 = offset + contrast g1²: at t1 = t2 the decay is 1, so the diagonal is 1.5
        torch.testing.assert_close(
            torch.diagonal(out, dim1=1, dim2=2), torch.full((3, 6), 1.5, dtype=F64)
        )
    # a 2-D axis shape is taken as given
    assert xpcs.STATIC.params(n_angle=(2, 1)).values["contrast"].shape == (2, 1)


def test_image_profile_at_the_defaults_is_the_group_image():
    for kind in ("sersic", "gaussian", "moffat", "exponential", "plane_sky"):
        params = MODELS[f"image.{kind}"].params()
        if "cx" in params:  # centre the profile on the small image
            params["cx"].set(value=7.5)
            params["cy"].set(value=7.5)
        model = image.group(g=getattr(image, kind)(), shape=(16, 16))
        out = model({f"g.{n}": v for n, v in params.values.items()})
        assert out.shape == (16, 16) and bool(torch.isfinite(out).all())
    sersic = MODELS["image.sersic"].params(cx=7.5, cy=7.5)
    out = image.group(g=image.sersic(), shape=(16, 16))(
        {f"g.{n}": v for n, v in sersic.values.items()}
    )
    assert int(out.argmax()) in {
        7 * 16 + 7,
        7 * 16 + 8,
        8 * 16 + 7,
        8 * 16 + 8,
    }  # the peak at the centre


@pytest.mark.parametrize("name", sorted(nist.CURVES))
def test_nist_tables_start_where_the_strd_files_start(name):
    data = nist.read_strd(data_dir() / "nist_strd" / f"{name}.dat")
    params = make_params(f"nist.{name}")
    assert list(params) == [f"b{i + 1}" for i in range(data.n_params)]
    start = np.array([float(v) for v in params.values.values()])
    assert np.array_equal(start, data.starts[0])  # the table holds NIST's Start 1 exactly
    out = nist.CURVES[name](params.values, torch.as_tensor(data.x))
    assert out.shape == data.y.shape and bool(torch.isfinite(out).all())


def test_lensing_tables_evaluate_at_the_defaults():
    grid = lensing.LensGrid(image_pixels=16, source_pixels=12)
    for name, model in (("lensing.sie", lensing.sie_image), ("lensing.nfw", lensing.nfw_image)):
        params = make_params(name, n_source_pixel=(1, 12, 12))
        out = model(params.values, grid)
        assert out.shape == (1, 16, 16) and bool(torch.isfinite(out).all()) and out.abs().sum() > 0
    params = make_params("lensing.pixelated", n_kappa_pixel=(1, 16, 16), n_source_pixel=(1, 12, 12))
    out = lensing.lens_image(params.values, grid)
    assert out.shape == (1, 16, 16) and bool(torch.isfinite(out).all())
    sie = make_params("lensing.sie", n_source_pixel=(1, 12, 12))
    assert sie.fully_fixed("core")  # the singular profile unless freed
    sie["core"].set(value=0.05, fixed=False)
    assert "core" in sie.free_names


def test_overrides_replace_a_value_or_a_whole_param():
    params = xpcs.STATIC.params(n_angle=2, D0=1e4, alpha=ik.Param(0.1, fixed=True))
    assert float(params.values["D0"]) == 1e4
    assert params["D0"].bounds == (1e2, 1e5) and params["D0"].log_scale  # the table's kept
    assert params.fully_fixed("alpha") and params["alpha"].unit == ""  # replaced entirely
    # a per-angle value with elements sets the shape itself: no n_angle needed
    params = xpcs.STATIC.params(contrast=[0.2, 0.3, 0.4], offset=ik.Param(1.0, bounds=(0.5, 1.5)))
    assert params.values["contrast"].tolist() == [0.2, 0.3, 0.4]
    assert params.values["offset"].shape == ()
    with pytest.raises(
        ik.InputError, match=r"'contrast': the value has shape \(3,\) but n_angle=2"
    ):
        xpcs.STATIC.params(n_angle=2, contrast=[0.2, 0.3, 0.4])
    # a value outside the table's bounds is refused by the Params check, naming it
    with pytest.raises(ik.InputError, match="parameter 'D0'.*not strictly below its upper"):
        xpcs.STATIC.params(n_angle=2, D0=1e6)


def test_errors_name_the_keyword_or_list_the_names():
    with pytest.raises(ik.InputError, match="'contrast' has one value per angle: give n_angle="):
        xpcs.STATIC.params()
    with pytest.raises(
        ik.InputError,
        match=r"xpcs.static: unknown parameter\(s\) 'D1' \(known: D0, alpha, D_offset, contrast, "
        r"offset; axis lengths: n_angle\)",
    ):
        xpcs.STATIC.params(n_angle=2, D1=3.0)
    with pytest.raises(ik.InputError, match=r"unknown parameter\(s\) 'n_angle' \(known: b1, b2\)$"):
        make_params("nist.Misra1a", n_angle=3)
    with pytest.raises(ik.InputError, match="n_angle must be a positive int or a tuple"):
        xpcs.STATIC.params(n_angle=0)
    with pytest.raises(
        ik.InputError, match="unknown model 'xpcs.dynamic'; known: image.exponential"
    ):
        make_params("xpcs.dynamic")


def test_spec_param_and_table_text():
    spec = ParamSpec("w", "px", 2.0, (0.0, None), True, "width", per="peak component")
    assert spec.size_keyword == "n_peak_component"
    p = spec.param(size=4)
    assert p.unit == "px" and p.log_scale and tuple(p.value.shape) == (4,)
    info = ModelInfo("toy.peaks", "peaks", (ParamSpec("h", "counts", 1.0), spec), doc="docs/x.md")
    params = info.params(n_peak_component=2)
    assert params.values["w"].tolist() == [2.0, 2.0] and params.values["h"].shape == ()
    lines = info.describe().splitlines()
    assert lines[0] == "toy.peaks: peaks"
    assert lines[1].split() == [
        "name",
        "unit",
        "default",
        "lower",
        "upper",
        "log",
        "scale",
        "fixed",
        "per",
        "description",
    ]
    assert lines[2].split() == ["h", "counts", "1", "-inf", "inf"]
    assert lines[3].split() == ["w", "px", "2", "0", "inf", "yes", "peak", "component", "width"]
    # the columns line up: each header starts where its cells start
    for column in ("unit", "default", "lower", "upper", "description"):
        at = lines[1].index(column)
        assert lines[3][at - 1] == " " and lines[3][at] != " "
    assert lines[-1] == "  see docs/x.md"
