"""The preprocess stage in process on two CSVs held in memory, for benchmarks and A/B scripts.

An in-memory store and tracker stand in for S3 and MLflow (benchmarks measure the models, not
the transports); the stage code is the one the services and KFP run.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from typing import Any

from flts.adapters.memory import InMemoryObjectStore, InMemoryTracker
from flts.domain.config import PreprocessConfig
from flts.stages import preprocess
from flts.stages.contracts import ObjectRef, PreprocessRequest, PreprocessResult
from flts.stages.ports import BUCKET_DATASET, StageContext


def preprocessed(
    train_csv: bytes, test_csv: bytes, config: PreprocessConfig, identifier: str = "bench"
) -> tuple[StageContext, PreprocessResult]:
    """A fresh in-memory context holding both files, and the preprocess stage's result in it
    (``result.training`` is what ``train.run`` takes)."""
    ctx = StageContext(store=InMemoryObjectStore(), tracker=InMemoryTracker())
    ctx.store.ensure_bucket(BUCKET_DATASET)
    ctx.store.put_bytes(BUCKET_DATASET, "train.csv", train_csv, "text/csv")
    ctx.store.put_bytes(BUCKET_DATASET, "test.csv", test_csv, "text/csv")
    request = PreprocessRequest(
        identifier=identifier,
        train=ObjectRef(bucket=BUCKET_DATASET, key="train.csv"),
        test=ObjectRef(bucket=BUCKET_DATASET, key="test.csv"),
    )
    return ctx, preprocess.run(request, config, ctx)


def profile_ab_main(doc: str, compare: Callable[[int, list[str]], dict[str, Any]]) -> None:
    """The command line of an A/B script over simbench profiles (``bench/*_ab.py``):
    ``--models A,B`` and ``--profiles N`` in, one JSON document on stdout."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--models", default="LINEAR,LIGHTGBM")
    parser.add_argument("--profiles", type=int, default=96)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    models = [m.strip().upper() for m in args.models.split(",") if m.strip()]
    print(json.dumps(compare(args.profiles, models), indent=2))
