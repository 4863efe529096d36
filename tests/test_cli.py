"""The command line: the README's demo command really fits and writes its figure."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_fits_reports_and_writes_figure(tmp_path):
    figure = tmp_path / "demo.png"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", "inversekit", "demo", "--output", str(figure), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "[[Parameters]]" in done.stdout and "converged" in done.stdout
    assert f"figure written to {figure}" in done.stdout
    assert figure.stat().st_size > 10_000
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_command_fails():
    done = subprocess.run(
        [sys.executable, "-m", "inversekit", "fly"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "invalid choice: 'fly'" in done.stderr


def test_models_prints_each_parameter_table(capsys):
    from inversekit.front.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("xpcs.static", "image.sersic", "lensing.sie", "nist.Misra1a"):
        assert f"\n{name}: " in f"\n{out}"
    header = "name unit default lower upper log scale fixed per description"
    assert out.splitlines()[1].split() == header.split()


def test_models_name_shows_one_table_with_aligned_columns(capsys):
    from inversekit.front.cli import main

    assert main(["models", "xpcs.static"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("xpcs.static: XPCS two-time correlation")
    assert lines[-1] == "  see docs/models/xpcs.md"
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert list(rows) == ["D0", "alpha", "D_offset", "contrast", "offset"]
    assert rows["D0"].split() == [
        "D0",
        "Angstrom^2/s",
        "1000",
        "100",
        "100000",
        "yes",
        *("diffusion prefactor: D(t) = D0 t^alpha + D_offset".split()),
    ]
    assert rows["contrast"].split()[:6] == ["contrast", "1", "0.5", "0", "1", "angle"]
    header = lines[1]
    starts = {c: header.index(f" {c}") + 1 for c in ("unit", "lower", "log scale", "per")}
    for column, at in starts.items():  # each column starts at one place in every row
        assert all(row[at - 1] == " " for row in rows.values()), column
        filled = column in ("unit", "lower")  # never empty
        assert not filled or all(row[at] != " " for row in rows.values()), column
    assert rows["D0"][starts["log scale"] :].startswith("yes")
    assert rows["contrast"][starts["per"] :].startswith("angle")


def test_models_family_and_names_only(capsys):
    from inversekit.front.cli import main

    assert main(["models", "lensing", "--names"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "lensing.nfw",
        "lensing.pixelated",
        "lensing.sie",
    ]


def test_models_unknown_name_exits_2_listing_the_known_ones(capsys):
    from inversekit.front.cli import main

    assert main(["models", "xpcs.dynamic"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown model 'xpcs.dynamic'" in captured.err
    assert "xpcs.laminar_flow, xpcs.static" in captured.err and "nist.Misra1a" in captured.err
