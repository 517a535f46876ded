"""The one process supervisor: the local stack's components and the services of `flts run`.

Each child runs as the leader of its own process group (``setsid``), so stopping the group also
stops the workers it forked (MLflow's uvicorn worker), and can outlive its parent
(``--keep-running``). Before signalling, the pid's command line is compared with the exact
command recorded at spawn time (also in pid files on disk): a pid reused by an unrelated process
is never touched. Readiness is probed, never read from logs: stack components by their health
endpoints (``flts.infra.stack``), services by the ready file their worker writes once its
consumer group assigned it partitions (``FLTS_READY_FILE``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: Popen handles of children spawned by this process, so they can be reaped (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn(argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path) -> int:
    """Start ``argv`` detached in a new session, output appended to ``log_path``; return pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _reap(pid: int) -> None:
    proc = _CHILDREN.get(pid)
    if proc is not None and proc.poll() is not None:
        _CHILDREN.pop(pid, None)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_alive(pid: int) -> bool:
    """True for a running (not zombie) process."""
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in {"Z", "X"}


def matches(pid: int, argv: Sequence[str]) -> bool:
    """Does ``pid`` run exactly the command we spawned? A script started through its shebang
    shows its interpreter first (``python /venv/bin/mlflow server ...``): that counts too."""
    actual = cmdline(pid)
    want = list(argv)
    if not actual or not want:
        return False
    return actual == want or actual[1:] == want


def group_members(pgid: int) -> list[int]:
    """Live pids whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields[0] not in {"Z", "X"} and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def stop_group(pid: int, argv: Sequence[str], sig: int, timeout_s: float) -> bool:
    """Signal the group led by ``pid`` (only if it is still our process), then SIGKILL
    stragglers after ``timeout_s``. Returns False when the pid was not ours to stop."""
    if is_alive(pid) and not matches(pid, argv):
        log.warning("pid %d no longer runs %s; not touching it", pid, argv[0])
        return False
    if not group_members(pid):
        _reap(pid)
        return True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout_s
    while group_members(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if group_members(pid):
        log.warning("process group %d did not stop in %.0fs; killing it", pid, timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Could a server bind ``port``? (SO_REUSEADDR like servers use, so TIME_WAIT leftovers
    from a previous run do not count as busy; a live listener still does.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


READY_FILE_ENV = "FLTS_READY_FILE"
SERVICES_FILE = "services.json"


@dataclass
class ManagedProcess:
    """A child started by :func:`start` (or read back from a pid file)."""

    name: str
    argv: list[str]
    pid: int
    log_path: Path
    ready_file: Path | None = None
    #: What it was started with, to start it again (kept in memory only: it holds secrets).
    env: dict[str, str] = field(default_factory=dict, repr=False)
    cwd: Path | None = None

    def exited(self) -> int | None:
        """The exit code once it ended, else None (a remembered pid: -1 when gone)."""
        proc = _CHILDREN.get(self.pid)
        if proc is not None:
            return proc.poll()
        return None if is_alive(self.pid) else -1

    def ready(self) -> bool:
        return self.ready_file is not None and self.ready_file.exists()

    def log_tail(self, lines: int = 15) -> str:
        return tail(self.log_path, lines)

    def stop(self, grace_s: float = 10.0) -> bool:
        return stop_group(self.pid, self.argv, signal.SIGTERM, grace_s)


def flts_command(*args: str) -> list[str]:
    """The flts CLI, run with this interpreter so a venv never needs activating."""
    return [sys.executable, "-m", "flts", *args]


def start(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    log_dir: Path,
    *,
    ready_dir: Path | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Spawn ``argv`` as ``name`` (log ``<log_dir>/<name>.log``); with ``ready_dir`` the child is
    told where to write its ready file."""
    ready_file = None
    env = dict(env)
    if ready_dir is not None:
        ready_dir.mkdir(parents=True, exist_ok=True)
        ready_file = ready_dir / f"{name}.ready"
        ready_file.unlink(missing_ok=True)
        env[READY_FILE_ENV] = str(ready_file)
    log_path = log_dir / f"{name}.log"
    pid = spawn(argv, env, log_path, cwd or Path.cwd())
    log.info("started %s (pid %d), log %s", name, pid, log_path)
    return ManagedProcess(name, list(argv), pid, log_path, ready_file, env, cwd)


def restart(child: ManagedProcess) -> ManagedProcess:
    """Start ``child``'s command again (same env, log appended), after stopping what is left."""
    child.stop(grace_s=5.0)
    ready_dir = child.ready_file.parent if child.ready_file is not None else None
    env = {k: v for k, v in child.env.items() if k != READY_FILE_ENV}
    return start(
        child.name, child.argv, env, child.log_path.parent, ready_dir=ready_dir, cwd=child.cwd
    )


def stop_all(children: Sequence[ManagedProcess], grace_s: float = 10.0) -> None:
    """SIGTERM every group at once, then wait; stragglers get SIGKILL after ``grace_s``."""
    for child in children:
        if child.exited() is None and matches(child.pid, child.argv):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        child.stop(grace_s)


def remember(children: Sequence[ManagedProcess], state_dir: Path) -> Path:
    """Write a pid file (name, pid, exact command, log) so a later `flts stack down` can stop
    what a ``--keep-running`` run left."""
    path = state_dir / SERVICES_FILE
    record = [
        {"name": c.name, "pid": c.pid, "argv": c.argv, "log": str(c.log_path)} for c in children
    ]
    path.write_text(json.dumps(record, indent=2))
    return path


def stop_remembered(state_dir: Path) -> list[str]:
    """Stop the children of a pid file whose command is still exactly ours; their names."""
    path = state_dir / SERVICES_FILE
    if not path.exists():
        return []
    stopped = []
    for entry in json.loads(path.read_text()):
        child = ManagedProcess(
            str(entry["name"]), list(entry.get("argv", [])), int(entry["pid"]), Path(entry["log"])
        )
        if child.argv and is_alive(child.pid) and child.stop():
            stopped.append(child.name)
    path.unlink()
    return stopped


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` of a log, without terminal colour codes."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(_ANSI.sub("", line) for line in text.splitlines()[-lines:])


def wait_ports_closed(ports: Sequence[int], timeout_s: float = 10.0) -> list[int]:
    """Wait until nothing listens on ``ports``; return those still open."""
    deadline = time.monotonic() + timeout_s
    still = [p for p in ports if port_open(p)]
    while still and time.monotonic() < deadline:
        time.sleep(0.1)
        still = [p for p in still if port_open(p)]
    return still


def child_env(extra: Mapping[str, str], drop_prefixes: Sequence[str] = ()) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop_prefixes))}
    env.update(extra)
    return env
