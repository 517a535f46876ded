"""Benchmarks: ``flts bench <name|all>`` measures the project and writes ``bench/results``.

Each benchmark module defines ``run(options: BenchOptions) -> list[BenchResult]`` (one module
may produce several results: the training pass also yields the accuracy table). Modules are
imported only when their benchmark runs, so ``flts bench kafka`` never imports torch.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flts.bench.common import BenchResult

log = logging.getLogger(__name__)

#: Benchmark name -> module; ``all`` runs them in this order.
BENCHMARKS: dict[str, str] = {
    "kafka": "flts.bench.kafka_bench",
    "train": "flts.bench.train_bench",
    "accuracy": "flts.bench.accuracy_bench",
    "batch": "flts.bench.batch_bench",
    "api": "flts.bench.api_bench",
    "pipeline": "flts.bench.pipeline_bench",
    "soak": "flts.bench.soak_bench",
    "fleet": "flts.bench.fleet_bench",
    "live": "flts.bench.live_bench",
    "gaps": "flts.bench.gap_bench",
    "holidays": "flts.bench.holiday_bench",
    "shapes": "flts.bench.shapes_bench",
}
#: Run only when named (``flts bench soak``): minutes of load or whole stacks, not part of ``all``.
STANDALONE: tuple[str, ...] = ("soak", "fleet", "live", "gaps", "holidays", "shapes")


def all_benchmarks() -> list[str]:
    """What ``flts bench all`` runs, in order."""
    return [name for name in BENCHMARKS if name not in STANDALONE]


@dataclass(frozen=True)
class BenchOptions:
    """What every benchmark gets: the mode, where results go, and optional shared inputs."""

    quick: bool = False
    out_dir: Path = Path("bench/results")
    #: Use this Kafka bootstrap instead of starting a local stack (kafka bench only).
    bootstrap: str | None = None
    #: Scratch directory for stacks, models and data; a temp dir when None.
    work_dir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)


BenchRunner = Callable[[BenchOptions], list[BenchResult]]


def runner(name: str) -> BenchRunner:
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}, all")
    module = importlib.import_module(BENCHMARKS[name])
    run: BenchRunner = module.run
    return run
