"""CPU per request of the API server, and where it goes: figures that survive a shared machine.

Throughput on the 2-core benchmark machine moves with whatever else runs there; the server's
own CPU time per answered request moves much less (it still grows somewhat under contention:
caches and hyper-threads are shared). :class:`CpuMeter` reads it from ``/proc`` for the server
process and its children (``--workers``), split into the event-loop thread and the other
threads (the batched forward). :func:`pyspy_profile` samples every thread of the server under
load with py-spy (a dev dependency) and names the functions that use the CPU.

Example::

    meter = CpuMeter(server_pid)
    run_load()
    meter.per_request_us(requests)  # {"event_loop": 412.0, "other_threads": 180.0, "total": 592.0}
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of ``pid`` and its children: main threads vs the rest."""
    out = {"event_loop": 0.0, "other_threads": 0.0}
    for proc in [pid, *_children(pid)]:
        try:
            tasks = list(Path(f"/proc/{proc}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the thread ended meanwhile
            seconds = (int(fields[11]) + int(fields[12])) / _TICKS
            out["event_loop" if task.name == str(proc) else "other_threads"] += seconds
    return out


class CpuMeter:
    """CPU the server used since this object was made."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = thread_cpu_s(pid)

    def per_request_us(self, requests: int) -> dict[str, float]:
        now = thread_cpu_s(self.pid)
        used = {k: now[k] - self.start[k] for k in now}
        used["total"] = sum(used.values())
        return {k: round(1e6 * v / max(requests, 1), 1) for k, v in used.items()}


def pyspy_path() -> str | None:
    """py-spy next to this interpreter (the venv), else on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def pyspy_profile(pid: int, seconds: float, top: int = 14, subprocesses: bool = False) -> list[str]:
    """Sample every thread of ``pid`` (and its child processes with ``subprocesses``) for
    ``seconds``; the functions using the CPU, by own time.

    Run it while the server is under load. Lines: share of all on-CPU samples, function, file.
    """
    spy = pyspy_path()
    if spy is None:
        return ["py-spy not installed (pip install py-spy): no sampled profile"]
    with tempfile.TemporaryDirectory(prefix="flts-pyspy-") as tmp:
        raw = Path(tmp) / "stacks.txt"
        argv = [spy, "record", "-p", str(pid), "-d", str(max(1, round(seconds)))]
        argv += ["-r", "200", "-f", "raw", "-o", str(raw), "--nonblocking"]
        argv += ["--subprocesses"] if subprocesses else []
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        if done.returncode != 0 or not raw.exists():
            return [f"py-spy failed (rc {done.returncode}): {done.stderr.strip()[-300:]}"]
        return summarise_stacks(raw.read_text().splitlines(), top)


def summarise_stacks(lines: list[str], top: int) -> list[str]:
    """py-spy's collapsed stacks (``thread;frame;...;frame count``) -> own-time shares."""
    own: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[_frame_name(frames[-1])] += int(count)
    if total == 0:
        return ["py-spy took no samples"]
    return [f"  {100 * n / total:4.1f}% {name}" for name, n in own.most_common(top)]


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py:12)``."""
    func, _, where = frame.partition(" (")
    return f"{func} ({Path(where.rstrip(')')).name})" if where else func
