"""The process supervisor (flts.infra.procs) on real child processes: start, ready file, exact
command check before any signal, pid file round trip."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from flts.infra import procs

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _until(predicate, timeout_s: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_start_passes_a_ready_file_and_stop_ends_the_group(tmp_path: Path) -> None:
    writer = [
        sys.executable,
        "-c",
        "import os, pathlib, time; pathlib.Path(os.environ['FLTS_READY_FILE']).write_text('x');"
        " time.sleep(60)",
    ]
    child = procs.start("svc", writer, {}, tmp_path / "logs", ready_dir=tmp_path / "ready")
    try:
        assert _until(child.ready)
        assert child.exited() is None
    finally:
        assert child.stop(grace_s=5)
    assert _until(lambda: child.exited() is not None)
    assert procs.group_members(child.pid) == []


def test_a_pid_running_another_command_is_never_signalled(tmp_path: Path) -> None:
    child = procs.start("svc", SLEEPER, {}, tmp_path)
    try:
        (tmp_path / procs.SERVICES_FILE).write_text(
            json.dumps([{"name": "svc", "pid": child.pid, "argv": ["/bin/other"], "log": "x.log"}])
        )
        assert procs.stop_remembered(tmp_path) == []
        assert child.exited() is None  # still running: the command did not match
    finally:
        child.stop(grace_s=5)


def test_remembered_children_are_stopped_by_exact_command(tmp_path: Path) -> None:
    child = procs.start("svc", SLEEPER, {}, tmp_path)
    procs.remember([child], tmp_path)
    recorded = json.loads((tmp_path / procs.SERVICES_FILE).read_text())
    assert recorded[0]["argv"] == SLEEPER
    assert procs.stop_remembered(tmp_path) == ["svc"]
    assert _until(lambda: child.exited() is not None)
    assert not (tmp_path / procs.SERVICES_FILE).exists()
