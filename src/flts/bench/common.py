"""What every benchmark shares: the result schema, machine facts, writing results and the
regenerated ``RESULTS.md``.

One JSON file per benchmark (``<out>/<benchmark>.json``) holds the figures next to the target
they are judged against and whether it was met, plus enough about the machine and the code
(cores, memory, library versions, git commit) to tell two runs apart. ``RESULTS.md`` is always
rebuilt from every JSON file in the directory, so no figure in it is typed by hand.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA_FIELDS: tuple[str, ...] = (
    "benchmark",
    "quick",
    "started_at",
    "duration_s",
    "config",
    "figures",
    "target",
    "target_met",
    "machine",
    "notes",
)
#: Distribution name -> key in ``machine.libraries``.
LIBRARIES: dict[str, str] = {
    "torch": "torch",
    "numpy": "numpy",
    "pandas": "pandas",
    "confluent-kafka": "confluent_kafka",
    "mlflow": "mlflow",
    "prophet": "prophet",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
}
REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class BenchResult:
    """One benchmark's outcome; ``to_json`` is the on-disk schema."""

    benchmark: str
    quick: bool
    started_at: str
    duration_s: float
    config: dict[str, Any]
    figures: dict[str, Any]
    target: dict[str, Any]
    target_met: bool
    machine: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SCHEMA_FIELDS}


class Timer:
    """Wall clock of one benchmark, plus its UTC start time."""

    def __init__(self) -> None:
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0


def make_result(
    benchmark: str,
    timer: Timer,
    *,
    quick: bool,
    config: Mapping[str, Any],
    figures: Mapping[str, Any],
    target: Mapping[str, Any],
    target_met: bool,
    notes: Sequence[str] = (),
) -> BenchResult:
    """Assemble a result; machine facts (including the current load) are read now."""
    if "description" not in target:
        raise ValueError(f"{benchmark}: target needs a 'description'")
    return BenchResult(
        benchmark=benchmark,
        quick=quick,
        started_at=timer.started_at,
        duration_s=round(timer.elapsed(), 2),
        config=dict(config),
        figures=dict(figures),
        target=dict(target),
        target_met=bool(target_met),
        machine=machine_info(),
        notes=list(notes),
    )


# -- machine ------------------------------------------------------------------------------------
def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist, key in LIBRARIES.items():
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    try:
        import confluent_kafka

        out["librdkafka"] = str(confluent_kafka.libversion()[0])
    except ImportError:
        out["librdkafka"] = None
    return out


def git_info(root: Path = REPO_ROOT) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the benchmark ran from, or (None, None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit.stdout.strip(), bool(status.stdout.strip())


def machine_info() -> dict[str, Any]:
    commit, dirty = git_info()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "loadavg_1m": round(load[0], 2),
    }


# -- statistics ---------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def geometric_mean(ratios: Sequence[float]) -> float:
    """The mean of ratios (model / reference) that treats 2x and 0.5x as opposites."""
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


# -- files --------------------------------------------------------------------------------------
def write_result(result: BenchResult, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.benchmark}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    log.info("wrote %s", path)
    return path


def load_results(out_dir: Path) -> list[dict[str, Any]]:
    """Every result file in ``out_dir`` (files missing schema fields are skipped, loudly)."""
    results = []
    for path in sorted(out_dir.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable result %s: %s", path, exc)
            continue
        missing = [f for f in SCHEMA_FIELDS if f not in doc]
        if missing:
            log.warning("skipping %s: missing fields %s", path, missing)
            continue
        results.append(doc)
    return results
