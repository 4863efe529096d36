"""Results: save/load round trips bit for bit, loading never unpickles, reports read well."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import inversekit as ik


@pytest.fixture(scope="module")
def result():
    x = torch.linspace(0.0, 1.0, 40, dtype=torch.float64)
    y = 0.3 + torch.sin(3.0 * x) + 0.01 * torch.cos(40.0 * x)
    params = ik.Params(
        a=ik.Param(0.0),
        w=ik.Param(torch.tensor([2.0, 1.0]), bounds=(0.0, 10.0)),
        fixed=ik.Param(torch.zeros(2, 2), fixed=True),
        slope=ik.Param(0.5, bounds=(0.0, None)),
    )

    def model(p, x):
        return p["a"] + torch.sin(p["w"][0] * x) * p["w"][1] + p["slope"] * x + p["fixed"].sum()

    return ik.fit(ik.LeastSquares(model, params, inputs=(x,), y=y, sigma=0.01))


def test_round_trip_is_bit_identical(result, tmp_path):
    path = tmp_path / "fit.npz"
    result.save(path)
    loaded = ik.load(path)
    assert loaded == result
    for name in result.params:
        assert loaded.params[name].numpy().tobytes() == result.params[name].numpy().tobytes()
    assert loaded.covariance.numpy().tobytes() == result.covariance.numpy().tobytes()
    assert loaded.history == result.history and loaded.status is result.status
    assert loaded.report() == result.report()


def test_a_changed_bit_is_noticed(result, tmp_path):
    path = tmp_path / "fit.npz"
    result.save(path)
    loaded = ik.load(path)
    loaded.x = loaded.x.clone()
    loaded.x[0] = torch.nextafter(loaded.x[0], torch.tensor(math.inf, dtype=torch.float64))
    assert loaded != result


def test_pinned_parameter_survives_round_trip(result, tmp_path):
    assert result.at_bounds == ["slope"] and math.isnan(float(result.stderr["slope"]))
    result.save(tmp_path / "fit.npz")
    loaded = ik.load(tmp_path / "fit.npz")
    assert loaded.at_bounds == ["slope"] and math.isnan(float(loaded.stderr["slope"]))


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"format": "inversekit.FitResult"}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle=False"):
        ik.load(path)


def test_loading_a_foreign_file_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, data=np.zeros(3))
    with pytest.raises(ik.InputError, match="not an inversekit result file"):
        ik.load(path)
    with pytest.raises(ik.InputError, match="no such result file"):
        ik.load(tmp_path / "missing.npz")


def test_report_lists_every_free_element_and_the_status(result):
    text = result.report()
    for label in ("a", "w[0]", "w[1]", "slope"):
        assert f"    {label} " in text
    assert result.status.name in text and "covariance absolute (noise level given)" in text
    assert str(result) == text


def test_batched_result_round_trip_is_bit_identical(tmp_path):
    x = torch.linspace(0.0, 2.0, 30, dtype=torch.float64)
    k = torch.tensor([[0.5], [1.0], [2.0]], dtype=torch.float64)
    y = 2.0 * torch.exp(-k * x) + 0.01 * torch.cos(9.0 * x)
    y[1, 3] = math.nan  # one problem not attempted: its note and NaN statistics survive
    params = ik.Params(a=1.0, k=ik.Param(1.0, bounds=(0.0, None)), c=ik.Param(0.0, fixed=True))
    problem = ik.BatchedLeastSquares(
        lambda p, x: p["a"] * torch.exp(-p["k"] * x) + p["c"], params, inputs=(x,), y=y
    )
    batched = ik.fit(problem)
    assert batched.notes[1] is not None and batched.notes[0] is None
    path = tmp_path / "batch.npz"
    batched.save(path)
    loaded = ik.load(path)
    assert isinstance(loaded, ik.BatchedFitResult)
    assert loaded == batched
    assert loaded.status == batched.status and loaded.notes == batched.notes
    assert loaded[2].report() == batched[2].report()
    assert loaded.unconstrained.dtype == torch.bool and loaded.unconstrained.shape == (3, 2)
    assert loaded.trustworthy.tolist() == batched.trustworthy.tolist()
    _strip(path, tmp_path / "old.npz", ["unconstrained", "unconstrained_codes"])
    old = ik.load(tmp_path / "old.npz")  # written before the identifiability fields
    assert old.unconstrained is None and old.trustworthy.tolist() == batched.success.tolist()
    assert old.report().startswith("[[Batched fit")
    loaded.x[0, 0] = torch.nextafter(loaded.x[0, 0], torch.tensor(math.inf, dtype=torch.float64))
    assert loaded != batched


def test_objective_result_round_trip_and_report(tmp_path):
    objective = ik.Objective(lambda p: (p["a"] - 2.0) ** 2 + p["b"] ** 2, ik.Params(a=0.0, b=1.0))
    result = ik.fit(objective)
    assert result.solver == "L-BFGS-B" and result.success
    assert result.covariance is None and result.stderr == {} and result.n_data is None
    assert "chi-square" not in result.report() and "    a " in result.report()
    result.save(tmp_path / "objective.npz")
    assert ik.load(tmp_path / "objective.npz") == result


def _strip(path, out, fields: list[str]) -> None:
    """Rewrite a result file without ``fields`` (as a file written before they existed)."""
    import json

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    for name in fields:
        meta.pop(name, None)
        if name in meta["groups"]:
            for key in meta["groups"].pop(name):
                arrays.pop(f"{name}/{key}")
        if name in meta["tensors"]:
            meta["tensors"].remove(name)
            arrays.pop(name)
    with open(out, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)


NEW_FIELDS = [
    "unconstrained",
    "unconstrained_reasons",
    "stderr_all",
    "lower",
    "upper",
    "ties",
    "confidence_intervals",
]


def test_a_file_without_the_newer_fields_still_loads(result, tmp_path):
    """Files written before the identifiability, every-parameter and interval fields
    existed load with those fields empty, and the report still reads."""
    result.save(tmp_path / "new.npz")
    _strip(tmp_path / "new.npz", tmp_path / "old.npz", NEW_FIELDS)
    old = ik.load(tmp_path / "old.npz")
    assert old.unconstrained == [] and old.stderr_all == {} and old.confidence_intervals == {}
    assert old.trustworthy == result.trustworthy
    assert old.x.numpy().tobytes() == result.x.numpy().tobytes()
    assert "fixed[0, 0]" in old.report() and "(fixed)" in old.report()


def test_new_fields_of_a_fit_round_trip(result, tmp_path):
    assert set(result.stderr_all) == {"a", "w", "fixed", "slope"}
    assert result.stderr_all["fixed"].shape == (2, 2) and not bool(result.stderr_all["fixed"].any())
    assert float(result.upper["w"][0]) == 10.0 and math.isinf(float(result.upper["a"]))
    result.save(tmp_path / "fit.npz")
    loaded = ik.load(tmp_path / "fit.npz")
    for name in ("stderr_all", "lower", "upper"):
        for key, value in getattr(result, name).items():
            assert getattr(loaded, name)[key].numpy().tobytes() == value.numpy().tobytes()
    assert loaded.unconstrained_reasons == result.unconstrained_reasons
