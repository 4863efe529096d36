"""The one-point memo the problems and engines use to skip repeated evaluations."""

from __future__ import annotations

import torch

from inversekit.derivatives.point_memo import PointMemo


def test_same_tensor_hits_and_in_place_change_misses():
    memo = PointMemo()
    u = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert memo.get(u) is None
    memo.put(u, "value")
    assert memo.get(u) == "value"
    u[0] = 5.0  # bumps the version counter: the stored point is no longer what was asked
    assert memo.get(u) is None
    assert memo.get(torch.tensor([1.0, 2.0], dtype=torch.float64)) is None


def test_equal_values_hit_and_other_values_miss():
    memo = PointMemo()
    memo.put(torch.tensor([1.0, 2.0], dtype=torch.float64), 42)
    assert memo.get(torch.tensor([1.0, 2.0], dtype=torch.float64)) == 42
    assert memo.get(torch.tensor([1.0, 2.5], dtype=torch.float64)) is None
    assert memo.get(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)) is None
    memo.clear()
    assert memo.get(torch.tensor([1.0, 2.0], dtype=torch.float64)) is None


def test_points_that_require_grad_are_held_detached():
    memo = PointMemo()
    u = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    memo.put(u, "v")
    assert not memo.point.requires_grad
    assert memo.get(u.detach()) == "v"


def test_inference_tensors_are_compared_by_value():
    """Tensors made under ``torch.inference_mode`` have no version counter."""
    memo = PointMemo()
    with torch.inference_mode():
        u = torch.tensor([1.0, 2.0], dtype=torch.float64)
        memo.put(u, "v")
        assert memo.get(u) == "v"
        u[0] = 3.0  # a change in place is seen: the memo holds a copy
        assert memo.get(u) is None
    assert memo.get(torch.tensor([1.0, 2.0], dtype=torch.float64)) == "v"


def test_fit_under_inference_mode():
    import inversekit as ik

    x = torch.linspace(0, 5, 50, dtype=torch.float64)
    y = 2.0 * torch.exp(-0.5 * x) + 0.01 * torch.sin(7 * x)

    def model(p, x):
        return p["a"] * torch.exp(-p["k"] * x)

    def fit():
        return ik.fit(ik.LeastSquares(model, ik.Params(a=1.0, k=1.0), inputs=(x,), y=y))

    with torch.inference_mode():
        inside = fit()
    outside = fit()
    assert inside.success
    torch.testing.assert_close(inside.x, outside.x, rtol=1e-8, atol=0)
