"""The one-point memo the problems and engines use to skip repeated evaluations."""

from __future__ import annotations

import torch

from inversekit.memo import PointMemo


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
