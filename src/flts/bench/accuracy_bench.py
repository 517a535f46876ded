"""Accuracy benchmark: every model against persistence and seasonal naive on the same windows.

It shares the training pass of the train benchmark (``flts.bench.train_bench``), which writes
both ``train.json`` and ``accuracy.json``.
"""

from __future__ import annotations

from flts.bench import BenchOptions
from flts.bench.common import BenchResult


def run(options: BenchOptions) -> list[BenchResult]:
    from flts.bench.train_bench import run as train_and_score

    return train_and_score(options)
