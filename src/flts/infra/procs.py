"""Child processes the local stack owns: spawn in their own session, check, stop.

Each component runs as the leader of its own process group (``setsid``), so stopping the group
also stops the workers it forked (MLflow's uvicorn worker). Before signalling, the pid's command
line is compared with the one recorded at spawn time: a pid reused by an unrelated process is
never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
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
    """Does ``pid`` run the command we spawned? (Script wrappers add the interpreter first.)"""
    actual = cmdline(pid)
    want = list(argv[1:])
    if not actual or not want:
        return bool(actual) and not want
    n = len(want)
    return any(actual[i : i + n] == want for i in range(len(actual) - n + 1))


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
