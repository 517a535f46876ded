"""Runs pipeline services as child processes: spawn, watch, stop, and remember them on disk.

Services get their own process group (so ``--keep-running`` can outlive ``flts run``) and a log
file each. The pid file lets ``flts stack down`` stop services left running.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SERVICES_FILE = "services.json"


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        return self.process.poll()

    def joined_group(self) -> bool:
        """True once the service's worker logged its partition assignment (it is consuming)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return False
        return '"msg":"assigned [' in text or '"msg": "assigned [' in text

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


def flts_command(*args: str) -> list[str]:
    """The flts CLI, run with this interpreter so a venv never needs activating."""
    return [sys.executable, "-m", "flts", *args]


def spawn(name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> ServiceProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as sink:
        proc = subprocess.Popen(
            args,
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    log.info("started %s (pid %d), log %s", name, proc.pid, log_path)
    return ServiceProcess(name=name, process=proc, log_path=log_path)


def stop_pid(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the service's process group, then SIGKILL whatever is left after ``grace_s``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def stop_all(services: list[ServiceProcess]) -> None:
    for svc in services:
        if svc.exited() is None:
            try:
                os.killpg(svc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
    for svc in services:
        try:
            svc.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            stop_pid(svc.pid, grace_s=0)
            svc.process.wait(timeout=5)


def _is_flts_service(pid: int) -> bool:
    """Only ever signal a process that is still one of ours (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"flts" in cmdline and b"service" in cmdline


def remember(services: list[ServiceProcess], state_dir: Path) -> Path:
    path = state_dir / SERVICES_FILE
    record = [{"name": s.name, "pid": s.pid, "log": str(s.log_path)} for s in services]
    path.write_text(json.dumps(record, indent=2))
    return path


def stop_remembered(state_dir: Path) -> list[str]:
    """Stop services a ``--keep-running`` run left behind; returns their names."""
    path = state_dir / SERVICES_FILE
    if not path.exists():
        return []
    stopped = []
    for entry in json.loads(path.read_text()):
        pid = int(entry["pid"])
        if _is_flts_service(pid):
            stop_pid(pid)
            stopped.append(str(entry["name"]))
    path.unlink()
    return stopped
