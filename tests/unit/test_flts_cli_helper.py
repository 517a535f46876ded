"""The e2e tests' CLI runner stops a child with SIGTERM (its clean-up runs), never SIGKILL first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _flts_cli import run_cli

CHILD = """
import signal, sys, time
def stop(*_):
    open(sys.argv[1], "w").write("cleaned up")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("started", flush=True)
time.sleep(60)
"""


def test_a_child_interrupted_by_a_timeout_gets_sigterm_and_cleans_up(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli([sys.executable, "-c", CHILD, str(marker)], {}, timeout=1.0, grace_s=10)
    assert marker.read_text() == "cleaned up"


def test_a_finished_child_returns_its_output() -> None:
    done = run_cli([sys.executable, "-c", "print('hi')"], {}, timeout=30)
    assert (done.returncode, done.stdout) == (0, "hi\n")
