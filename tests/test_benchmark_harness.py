"""Tests of the benchmark harness (``benchmarks/``) with synthetic sides: no peer
environments, no network. The sides are the child in ``benchmarks/synthetic.py``, told by
their options what to report, how long to sleep, how much to allocate or whether to raise."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the harness lives beside src/, not inside the package
    sys.path.insert(0, str(REPO))

from benchmarks import report, synthetic  # noqa: E402
from benchmarks.child import THREAD_VARS  # noqa: E402
from benchmarks.large_lsq.bench import make_gate as large_gate  # noqa: E402
from benchmarks.machine import machine_info, versions  # noqa: E402
from benchmarks.nist.bench import make_gate as nist_gate  # noqa: E402
from benchmarks.nist.data import lre, stderr_from_jacobian  # noqa: E402
from benchmarks.roofline import multiples, time_forward  # noqa: E402
from benchmarks.runner import (  # noqa: E402
    Case,
    RunConfig,
    Side,
    child_env,
    run_benchmark,
    summarise,
)
from benchmarks.xpcs.bench import make_gate as xpcs_gate  # noqa: E402

CHILD = synthetic.CHILD


def run(sides, tmp_path, monkeypatch, *, repeats=3, warmup=1, threads=1, gate=synthetic.gate):
    """Run the synthetic child for ``sides`` with peer environments looked up in an empty
    folder (so every peer side is missing)."""
    monkeypatch.setenv("INVERSEKIT_PEER_ENVS", str(tmp_path / "no-envs"))
    cfg = RunConfig(
        threads=threads, repeats=repeats, warmup=warmup, subject=sides[0].name, log=lambda s: None
    )
    return run_benchmark("synthetic", [Case("fit", {})], sides, gate, cfg)


def fit_item(result, side):
    return result["cases"][0]["items"]["fit"][side]


def test_median_min_max_and_ratio_of_scripted_figures(tmp_path, monkeypatch):
    # round 0 is the warm-up: its value (99) must not reach the figures
    sides = [
        Side("a", CHILD, None, {"values": [99, 0.1, 0.3, 0.2]}),
        Side("b", CHILD, None, {"values": [99, 1.0, 0.4, 0.6]}),
    ]
    result = run(sides, tmp_path, monkeypatch)
    fa = fit_item(result, "a")["figures"]["fit_s"]
    fb = fit_item(result, "b")["figures"]["fit_s"]
    assert (fa["median"], fa["min"], fa["max"], fa["n"]) == (0.2, 0.1, 0.3, 3)
    assert (fb["median"], fb["min"], fb["max"], fb["n"]) == (0.6, 0.4, 1.0, 3)
    ratio = result["cases"][0]["ratios"]["fit"]["a/b"]["fit_s"]
    assert ratio == pytest.approx(0.2 / 0.6)


def test_sides_alternate_in_fresh_processes(tmp_path, monkeypatch):
    sides = [Side("a", CHILD, None, {}), Side("b", CHILD, None, {})]
    result = run(sides, tmp_path, monkeypatch, repeats=2, warmup=1)
    assert result["order"] == [f"fit:{r}:{s}" for r in range(3) for s in ("a", "b")]
    load = result["loadavg_start"] + result["loadavg_end"]
    assert len(load) == 6 and all(x >= 0 for x in load)


def test_measured_times_rank_fast_before_slow(tmp_path, monkeypatch):
    sides = [Side("fast", CHILD, None, {"sleep": 0.03}), Side("slow", CHILD, None, {"sleep": 0.2})]
    result = run(sides, tmp_path, monkeypatch, repeats=2, warmup=0)
    fast = fit_item(result, "fast")["figures"]["fit_s"]["median"]
    slow = fit_item(result, "slow")["figures"]["fit_s"]["median"]
    assert 0.03 <= fast < slow and slow >= 0.2
    assert result["cases"][0]["ratios"]["fit"]["fast/slow"]["fit_s"] < 0.7


def test_peak_rss_is_the_childs_own(tmp_path, monkeypatch):
    # A large parent must not leak its size into the children's peak (getrusage's ru_maxrss
    # survives exec on Linux; the harness reads the child's own high-water mark).
    ballast = np.ones(300 * 2**20 // 8)
    sides = [Side("big", CHILD, None, {"allocate_mb": 100}), Side("small", CHILD, None, {})]
    result = run(sides, tmp_path, monkeypatch, repeats=1, warmup=0)
    info = result["cases"][0]["sides"]
    assert info["big"]["peak_rss_mb"]["median"] > 100
    assert info["big"]["above_base_mb"]["median"] > 95
    assert info["small"]["peak_rss_mb"]["median"] < 90
    assert info["small"]["above_base_mb"]["median"] < 20
    assert ballast.sum() == ballast.size


def test_side_missing_the_quality_gate_is_failed_not_fast(tmp_path, monkeypatch):
    sides = [
        Side("good", CHILD, None, {"sleep": 0.05}),
        Side("sloppy", CHILD, None, {"sleep": 0.0, "error": 0.5}),
    ]
    result = run(sides, tmp_path, monkeypatch, repeats=1, warmup=0)
    assert fit_item(result, "good")["gate"] is None
    assert fit_item(result, "sloppy")["gate"] == "error 0.5 > 0.001"
    assert result["cases"][0]["ratios"]["fit"]["good/sloppy"] == {
        "none": "sloppy failed the quality gate"
    }


def test_missing_and_failing_peers_are_reported_with_reasons(tmp_path, monkeypatch):
    sides = [
        Side("ours", CHILD, None, {}),
        Side("absent", CHILD, "scipy", {}),
        Side("raises", CHILD, None, {"raise": "boom"}),
        Side("crashes", "benchmarks.no_such_module", None, {}),
    ]
    result = run(sides, tmp_path, monkeypatch, repeats=1, warmup=0)
    info = result["cases"][0]["sides"]
    assert info["ours"]["status"] == "ok"
    assert info["absent"]["status"] == "missing"
    assert "environment not created" in info["absent"]["reason"]
    assert "python -m benchmarks envs scipy" in info["absent"]["reason"]
    assert (info["raises"]["status"], info["raises"]["reason"]) == ("failed", "RuntimeError: boom")
    assert info["crashes"]["status"] == "failed"
    assert "No module named benchmarks.no_such_module" in info["crashes"]["reason"]
    ratios = result["cases"][0]["ratios"]["fit"]
    assert ratios["ours/absent"] == {"none": "absent has no result"}
    assert not any("absent" in s for s in result["order"])


def test_every_side_gets_the_same_explicit_thread_count(tmp_path, monkeypatch):
    for var in THREAD_VARS:
        monkeypatch.setenv(var, "7")
    sides = [Side("a", CHILD, None, {}), Side("b", CHILD, None, {})]
    result = run(sides, tmp_path, monkeypatch, repeats=1, warmup=0, threads=2)
    for side in ("a", "b"):
        threads = result["cases"][0]["sides"][side]["threads"]
        assert threads["requested"] == 2
        assert all(threads[var] == "2" for var in THREAD_VARS)


def test_results_md_is_regenerated_from_published_runs(tmp_path, monkeypatch):
    sides = [s for s in synthetic.SIDES]
    result = run(sides, tmp_path, monkeypatch, repeats=1, warmup=0)
    result.update(
        command="python -m benchmarks run synthetic --repeats 1",
        date="2030-01-02T03:04:05+00:00",
        machine=machine_info(),
        versions=versions(),
    )
    path = report.save_run(result, tmp_path / "runs")
    assert path.name == "synthetic-20300102-030405.json"
    published = report.publish(path, tmp_path / "results")
    assert json.loads(published.read_text())["command"] == result["command"]
    md = report.write_results_md(tmp_path / "results", tmp_path / "RESULTS.md").read_text()
    assert "`python -m benchmarks run synthetic --repeats 1`" in md
    assert "**absent** missing: peer environment 'absent': unknown peer 'absent'" in md
    assert "**failed**: error 0.1 > 0.001" in md
    assert "| slow | passed |" in md
    assert "load average" in md and machine_info()["cpu"] in md


def test_summarise_ignores_missing_values():
    assert summarise([3.0, None, float("nan"), 1.0, 2.0]) == {
        "median": 2.0,
        "min": 1.0,
        "max": 3.0,
        "n": 3,
    }
    assert summarise([None])["median"] is None


def test_large_lsq_gate_compares_chi2_with_the_best_side():
    gate = large_gate(1e-6)
    verdicts = gate(
        "n=10",
        {
            "a": {"chi2": 100.0, "last_warm_chi2": 100.0},
            "b": {"chi2": 100.00005},
            "c": {"chi2": 100.001},
            "d": {},
            "e": {"chi2": 100.0, "last_warm_chi2": 250.0},
        },
    )
    assert verdicts["a"] is None and verdicts["b"] is None
    assert verdicts["c"].startswith("chi2 100.001 above best 100")
    assert verdicts["d"] == "no finite chi2"
    assert verdicts["e"] == "a timed repeat reached chi2 250, the first call 100"


def test_xpcs_kernel_gate_compares_sides_and_reference(tmp_path):
    rng = np.random.default_rng(0)
    theta = np.arange(13.0)
    c2 = rng.random((3, 20, 20))
    jac = rng.random((1200, 13)) * np.logspace(-5, 4, 13)  # columns on very different scales
    rows = np.arange(0, 1200, 7)

    def save(name, c2, jac, theta=theta):
        path = tmp_path / f"{name}.npz"
        np.savez(
            path,
            theta=theta,
            c2=c2,
            jac_rows=jac[rows],
            rows=rows,
            jac_colnorm=np.linalg.norm(jac, axis=0),
            jac_colmax=np.abs(jac).max(axis=0),
        )
        return {"file": str(path), "finite": True, "max_abs_err_vs_reference": {"a": 1e-15}}

    gate = xpcs_gate(1e-12, 1e-8)
    same = {"a": save("a", c2, jac), "b": save("b", c2 + 1e-14, jac * (1 + 1e-11))}
    assert gate("k", same) == {"a": None, "b": None}
    assert same["a"]["vs"]["b"]["max_abs_dc2"] < 1e-13
    off_c2 = {"a": save("a", c2, jac), "b": save("b", c2 + 1e-9, jac)}
    assert all("c2 differs" in v for v in gate("k", off_c2).values())
    # a relative error in the smallest column only is still caught
    jac_b = jac.copy()
    jac_b[:, 0] *= 1 + 1e-6
    off_jac = {"a": save("a", c2, jac), "b": save("b", c2, jac_b)}
    assert all("Jacobian" in v for v in gate("k", off_jac).values())
    other_theta = {"a": save("a", c2, jac), "b": save("b", c2, jac, theta + 1)}
    assert all("different parameters" in v for v in gate("k", other_theta).values())
    bad_ref = save("a", c2, jac)
    bad_ref["max_abs_err_vs_reference"] = {"laminar_edge": 1e-6}
    assert "reference_c2.npz" in gate("k", {"a": bad_ref})["a"]


def test_child_environment_pins_threads_and_isolates_compile_caches(tmp_path):
    env = child_env(3, tmp_path / "c")
    assert all(env[var] == "3" for var in THREAD_VARS)
    assert env["INVERSEKIT_CACHE"] == str(tmp_path / "c")
    assert env["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "c" / "inductor")
    assert env["PYTHONPATH"].split(":")[0] == str(REPO)


def test_nist_gate_and_scores():
    gate = nist_gate(6.0)
    verdicts = gate(
        "Misra1a/1",
        {
            "ok": {"lre_params": 7.2},
            "short": {"lre_params": 5.9},
            "raised": {"lre_params": 0.0, "error": "ValueError: nan"},
        },
    )
    assert verdicts == {
        "ok": None,
        "short": "LRE(params) 5.9 < 6",
        "raised": "raised ValueError: nan",
    }
    assert lre([1.000001, 2.0, np.nan, 3.0], [1.0, 2.0, 1.0, -3.0]).tolist() == pytest.approx(
        [6.0, 11.0, 0.0, 0.0]
    )
    jac = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    assert stderr_from_jacobian(jac, rss=4.0, n=3).tolist() == pytest.approx([2.0, 1.0])


def test_roofline_multiples():
    m = multiples(fit_s=1.2, n_iter=6, forward_s=0.01, n_params=3)
    assert m["iter_s"] == pytest.approx(0.2)
    assert m["per_forward"] == pytest.approx(20.0)
    assert m["per_jacobian"] == pytest.approx(5.0)
    assert multiples(1.0, None, 0.01, 3)["per_forward"] is None
    assert 0 < time_forward(lambda: sum(range(100)), batches=3, min_batch_s=1e-4) < 1e-2


def test_nist_files_parse_and_models_reproduce_the_certified_rss():
    from benchmarks.nist.data import load_all
    from benchmarks.nist.models import get_model, response
    from benchmarks.paths import nist_dir

    problems = load_all(nist_dir())
    assert len(problems) == 19
    for prob in problems:
        model = get_model(prob.name, prob.formula)
        r = response(model, prob.y) - model.f(prob.x, prob.cert, np)
        if prob.name == "Lanczos1":  # certified RSS 1.4e-25 is below float64's reach
            assert r @ r < 1e-20
        else:
            assert lre(r @ r, prob.rss)[0] > 9, prob.name
        assert model.jac(prob.x, prob.cert).shape == (prob.nobs, prob.nparams)


def test_nist_and_large_lsq_children_run_scipy_in_the_project_env(tmp_path, monkeypatch):
    from benchmarks.large_lsq.problem import data_file
    from benchmarks.paths import nist_dir

    monkeypatch.setenv("INVERSEKIT_PEER_ENVS", str(tmp_path / "no-envs"))
    cfg = RunConfig(repeats=1, warmup=0, subject="scipy-lm", log=lambda s: None)
    opts = {"solver": "scipy", "method": "lm", "jac": "analytic"}
    nist = run_benchmark(
        "nist",
        [Case("all", {"folder": str(nist_dir()), "files": ["Misra1a"], "reps": 1})],
        [Side("scipy-lm", "benchmarks.nist.child", None, opts)],
        nist_gate(6.0),
        cfg,
    )
    items = nist["cases"][0]["items"]
    assert sorted(items) == ["Misra1a/1", "Misra1a/2"]
    for item in items.values():
        assert item["scipy-lm"]["gate"] is None
        assert item["scipy-lm"]["quality"]["lre_params"] > 9
        assert item["scipy-lm"]["figures"]["forward_s"]["median"] > 0

    data = data_file(3000, tmp_path)
    large = run_benchmark(
        "large-lsq",
        [Case("n=3000", {"data": str(data), "fits": 1})],
        [
            Side(
                "scipy-lm", "benchmarks.large_lsq.child", None, {"solver": "scipy", "method": "lm"}
            ),
            Side(
                "scipy-trf",
                "benchmarks.large_lsq.child",
                None,
                {"solver": "scipy", "method": "trf"},
            ),
        ],
        large_gate(1e-6),
        cfg,
    )
    item = large["cases"][0]["items"]["n=3000"]
    assert item["scipy-lm"]["gate"] is None and item["scipy-trf"]["gate"] is None
    assert item["scipy-lm"]["quality"]["chi2"] == pytest.approx(3000, rel=0.1)
    assert item["scipy-lm"]["quality"]["max_rel_err_vs_truth"] < 0.05
    assert "fit_s" in large["cases"][0]["ratios"]["n=3000"]["scipy-lm/scipy-trf"]
