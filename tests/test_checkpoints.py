"""Checkpoints: a fit killed mid-run resumes to the answer of an uninterrupted run; a
corrupt, foreign or mismatched checkpoint is refused with a message naming the file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_child import STOP_AT, problem, solver

import inversekit as ik

CHILD = Path(__file__).resolve().parent / "checkpoint_child.py"
KINDS = ["lm", "lm-eager", "batched", "lbfgsb"]


def _params(result) -> np.ndarray:
    return np.concatenate([v.reshape(-1).numpy() for v in result.params.values()])


def _kill_mid_run(kind: str, path: Path, tmp_path: Path) -> None:
    """Run the child until its callback signals iteration ``STOP_AT``, then SIGKILL it."""
    marker = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CHILD.parent), *sys.path])}
    child = subprocess.Popen([sys.executable, str(CHILD), kind, str(path), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, f"the child ended early with code {child.returncode}"
            assert time.monotonic() < deadline, "the child never reached the stop iteration"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_killed_run_resumes_to_the_uninterrupted_answer(kind, tmp_path):
    path = tmp_path / "run.ckpt"
    _kill_mid_run(kind, path, tmp_path)
    assert path.is_file()
    assert not list(tmp_path.glob(".run.ckpt.*"))  # no temporary file left behind
    resumed = ik.fit(problem(kind), solver(kind), resume=path)
    whole = ik.fit(problem(kind), solver(kind))
    if kind == "batched":
        assert torch.equal(resumed.n_iter, whole.n_iter)
        assert resumed.status == whole.status
        assert int(whole.n_iter.max()) > STOP_AT
    else:
        assert resumed.n_iter == whole.n_iter > STOP_AT
        assert resumed.status == whole.status and whole.success
        assert resumed.n_fev == whole.n_fev and resumed.n_jev == whole.n_jev
        assert resumed.history == pytest.approx(whole.history, rel=1e-12, abs=0)
    np.testing.assert_allclose(_params(resumed), _params(whole), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_of_a_finished_run_gives_its_result(kind, tmp_path):
    path = tmp_path / "done.ckpt"
    first = ik.fit(problem(kind), solver(kind), checkpoint=path, checkpoint_every=3)
    again = ik.fit(problem(kind), solver(kind), resume=path)
    assert again.status == first.status
    np.testing.assert_array_equal(_params(again), _params(first))
    if kind == "batched":  # not iterated again
        assert torch.equal(again.n_iter, first.n_iter) and torch.equal(again.n_fev, first.n_fev)
    else:
        assert (again.n_iter, again.n_fev) == (first.n_iter, first.n_fev)
        assert again.history == first.history


def test_resume_after_a_budget_continues_to_the_same_answer(tmp_path):
    path = tmp_path / "budget.ckpt"
    short = ik.fit(problem("lm"), ik.LM(max_iter=30), checkpoint=path)
    assert short.status is ik.Status.MAX_ITER and short.n_iter == 30
    # a run stopped by its budget continues under the new solver's budget
    resumed = ik.fit(problem("lm"), ik.LM(), resume=path)
    whole = ik.fit(problem("lm"), ik.LM())
    assert resumed.success and resumed.n_iter == whole.n_iter
    np.testing.assert_allclose(_params(resumed), _params(whole), rtol=1e-12, atol=0)
    # the same budget again stops at once
    assert ik.fit(problem("lm"), ik.LM(max_iter=30), resume=path).n_iter == 30


def test_corrupt_checkpoint_is_refused(tmp_path):
    path = tmp_path / "broken.ckpt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ik.InputError, match="broken.ckpt.*corrupt"):
        ik.fit(problem("lm"), resume=path)


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "cut.ckpt"
    ik.fit(problem("lm"), ik.LM(max_iter=3), checkpoint=path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ik.InputError, match="cut.ckpt"):
        ik.fit(problem("lm"), resume=path)


def test_checkpoint_of_another_problem_is_refused(tmp_path):
    path = tmp_path / "other.ckpt"
    ik.fit(problem("lm-eager", seed=1), ik.LM(max_iter=3), checkpoint=path)
    with pytest.raises(ik.InputError, match="other.ckpt was written for another problem.*data"):
        ik.fit(problem("lm-eager", seed=2), resume=path)


def test_checkpoint_of_another_solver_is_refused(tmp_path):
    path = tmp_path / "lbfgsb.ckpt"
    objective = problem("lbfgsb")
    ik.fit(objective, "lbfgsb", checkpoint=path)
    with pytest.raises(ik.InputError, match="lbfgsb.ckpt was written by solver"):
        ik.fit(problem("lm"), ik.LM(), resume=path)


def test_a_result_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "result.npz"
    ik.fit(problem("lm"), ik.LM(max_iter=3)).save(path)
    with pytest.raises(ik.InputError, match="result.npz is not an inversekit checkpoint"):
        ik.fit(problem("lm"), resume=path)


def test_missing_checkpoint_is_refused(tmp_path):
    with pytest.raises(ik.InputError, match="nowhere.ckpt does not exist"):
        ik.fit(problem("lm"), resume=tmp_path / "nowhere.ckpt")


def test_checkpoint_in_a_missing_folder_is_refused_before_any_work(tmp_path):
    with pytest.raises(ik.InputError, match="does not exist or is not writable"):
        ik.fit(problem("lm"), checkpoint=tmp_path / "nowhere" / "run.ckpt")
    with pytest.raises(ik.InputError, match="is a folder"):
        ik.fit(problem("lm"), checkpoint=tmp_path)
    with pytest.raises(ik.InputError, match="is not a file"):
        ik.fit(problem("lm"), resume=tmp_path)


@pytest.mark.parametrize("missing", ["state/uh", "cost", "n_iter"])
def test_incomplete_checkpoint_is_refused(missing, tmp_path):
    """A checkpoint missing a field (another layout, a damaged writer) is refused by name."""
    import json

    path = tmp_path / "full.ckpt"
    ik.fit(problem("lm"), ik.LM(max_iter=3), checkpoint=path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    if missing in arrays:
        del arrays[missing]
    elif missing in meta["scalars"]:
        del meta["scalars"][missing]
    else:
        del meta[missing]
    arrays["meta"] = np.array(json.dumps(meta))
    broken = tmp_path / "broken.ckpt"
    with open(broken, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ik.InputError, match="broken.ckpt is incomplete"):
        ik.fit(problem("lm"), resume=broken)


def test_checkpoint_of_another_layout_is_refused(tmp_path):
    import json

    path = tmp_path / "old.ckpt"
    ik.fit(problem("lm"), ik.LM(max_iter=3), checkpoint=path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta["format"] = "inversekit.checkpoint/0"
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ik.InputError, match="old.ckpt has layout 'inversekit.checkpoint/0'"):
        ik.fit(problem("lm"), resume=path)


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_bad_checkpoint_every_is_refused(every, tmp_path):
    with pytest.raises(ik.InputError, match="checkpoint_every must be a positive integer"):
        ik.fit(problem("lm"), checkpoint=tmp_path / "x.ckpt", checkpoint_every=every)
