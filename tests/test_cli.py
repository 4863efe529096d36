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
