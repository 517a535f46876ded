"""Stage ``preprocess``: raw CSVs in the object store -> processed Parquet + two claim checks.

``config_hash`` is computed here once (config + fingerprint of both raw files) and every later
message carries it unchanged. Object keys are deterministic,
``<identifier>/<config_hash>/processed_data.parquet`` and ``.../test_processed_data.parquet``
in ``processed-data``, so a replayed request finds its output and re-emits identical claims.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np

from flts.domain.config import PreprocessConfig, compute_config_hash
from flts.domain.messages import InferenceDataReady, ProgressEvent, TrainingDataReady
from flts.errors import DataValidationError
from flts.forecasting.dataset import DatasetMeta, read_meta, write_processed
from flts.forecasting.prepare import PreparedData, data_fingerprint, prepare_datasets
from flts.forecasting.spec import TIME_COLUMN
from flts.forecasting.windows import runs_of
from flts.stages.contracts import PreprocessRequest, PreprocessResult
from flts.stages.ports import BUCKET_PROCESSED, StageContext

STAGE = "preprocess"
TRAIN_OBJECT = "processed_data.parquet"
TEST_OBJECT = "test_processed_data.parquet"
INFERENCE_OPERATION = "post: test data"


def processed_keys(identifier: str, config_hash: str) -> tuple[str, str]:
    """Deterministic keys of the processed training and test objects."""
    prefix = f"{identifier}/{config_hash}"
    return f"{prefix}/{TRAIN_OBJECT}", f"{prefix}/{TEST_OBJECT}"


def run(
    request: PreprocessRequest, config: PreprocessConfig, ctx: StageContext
) -> PreprocessResult:
    """Process (or reuse) the data of ``request`` and return both claim checks."""
    ident = request.identifier
    started = time.perf_counter()
    ctx.events.emit(ProgressEvent(stage=STAGE, identifier=ident, message="preprocess started"))
    train_bytes = ctx.store.get_bytes(request.train.bucket, request.train.key)
    test_bytes = ctx.store.get_bytes(request.test.bucket, request.test.key)
    config_hash = compute_config_hash(config, data_fingerprint(train_bytes, test_bytes))
    keys = processed_keys(ident, config_hash)
    reused = all(ctx.store.exists(BUCKET_PROCESSED, key) for key in keys)
    if reused:
        ctx.logger.info("preprocess %s: reusing processed data %s", ident, keys[0])
        outputs = tuple(ctx.store.get_bytes(BUCKET_PROCESSED, key) for key in keys)
    else:
        prepared = prepare_datasets(
            train_bytes,
            test_bytes,
            config,
            config_hash=config_hash,
            train_source=request.train.key,
            test_source=request.test.key,
        )
        outputs = _encode(prepared, config, config_hash, ident)
        ctx.store.ensure_bucket(BUCKET_PROCESSED)
        for key, data in zip(keys, outputs, strict=True):
            ctx.store.put_bytes(BUCKET_PROCESSED, key, data, "application/vnd.apache.parquet")
    result = _result(ident, config_hash, keys, outputs, reused)
    ctx.logger.info(
        "preprocess %s: config_hash %s, %d train rows, %d test rows%s",
        ident,
        config_hash,
        result.train_rows,
        result.test_rows,
        " (reused)" if reused else "",
    )
    ctx.events.emit(
        ProgressEvent(
            stage=STAGE,
            identifier=ident,
            config_hash=config_hash,
            message=f"preprocess done: {result.train_rows} training rows, "
            f"{result.test_rows} test rows" + (" (reused)" if reused else ""),
            duration_s=time.perf_counter() - started,
        )
    )
    return result


def _encode(
    prepared: PreparedData, config: PreprocessConfig, config_hash: str, identifier: str
) -> tuple[bytes, bytes]:
    def meta(split: Literal["train", "test"]) -> DatasetMeta:
        frame = prepared.train if split == "train" else prepared.test
        notes = prepared.train_notes if split == "train" else prepared.test_notes
        return DatasetMeta(
            # What was run: the data-driven defaults (seasons, lags, step) filled in.
            config=prepared.resolved_config or config,
            config_hash=config_hash,
            identifier=identifier,
            split=split,
            spec=prepared.spec,
            rows=len(frame),
            start=frame[TIME_COLUMN].iloc[0].isoformat(),
            end=frame[TIME_COLUMN].iloc[-1].isoformat(),
            notes=notes,
            context_rows=prepared.test_context_rows if split == "test" else 0,
            unobserved_target_rows=unobserved[split],
        )

    unobserved = {
        "train": _runs(prepared.train_unobserved),
        "test": _runs(prepared.test_unobserved),
    }

    return (
        write_processed(prepared.train, meta("train")),
        write_processed(prepared.test, meta("test")),
    )


def _runs(mask: np.ndarray | None) -> tuple[tuple[int, int], ...]:
    return () if mask is None else runs_of(mask)


def _result(
    identifier: str,
    config_hash: str,
    keys: tuple[str, str],
    outputs: tuple[bytes, ...],
    reused: bool,
) -> PreprocessResult:
    """Claims from the stored bytes (fresh or reused), checked against their own metadata."""
    metas = []
    for key, data in zip(keys, outputs, strict=True):
        meta = read_meta(data, source=f"{BUCKET_PROCESSED}/{key}")
        if meta.config_hash != config_hash:
            raise DataValidationError(
                f"object {BUCKET_PROCESSED}/{key} carries config_hash {meta.config_hash}, "
                f"expected {config_hash}"
            )
        metas.append(meta)
    (train_key, test_key), (train_meta, test_meta) = keys, metas
    training = TrainingDataReady(
        bucket=BUCKET_PROCESSED,
        object=train_key,
        size=len(outputs[0]),
        identifier=identifier,
        config_hash=config_hash,
        test_object=test_key,
    )
    inference = InferenceDataReady(
        bucket=BUCKET_PROCESSED,
        object=test_key,
        object_key=test_key,
        size=len(outputs[1]),
        operation=INFERENCE_OPERATION,
        identifier=identifier,
        config_hash=config_hash,
    )
    return PreprocessResult(
        training=training,
        inference=inference,
        config_hash=config_hash,
        reused=reused,
        train_rows=train_meta.rows,
        # The test file's own rows; the training-tail context is not counted.
        test_rows=test_meta.rows - test_meta.context_rows,
        notes=(*train_meta.notes, *test_meta.notes),
    )
