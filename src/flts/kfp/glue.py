"""The only code between KFP and the stages: KFP inputs -> stage requests, results -> artifacts.

Every ``@dsl.component`` body in :mod:`flts.kfp.components` imports this module and calls one
``*_task`` function, so a KFP task runs exactly the stage function a Kafka service runs.
Artifacts carry the same claim checks the Kafka topics carry: the file holds the wire message
as JSON, and ``artifact.metadata`` repeats the fields the KFP UI should show. Nothing written
depends on the artifact's URI, so a cached or copied artifact stays valid.

A task is a process entrypoint, so this module reads the environment (S3 credentials, which
come from the task's env or a Kubernetes secret, never from pipeline parameters).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from flts.domain.config import ModelType, PreprocessConfig, TrainConfig
from flts.domain.messages import (
    InferenceDataReady,
    ModelSelected,
    ModelTrained,
    ModelTrainingFailed,
    PerformanceEval,
    TrainingDataReady,
    WireMessage,
    decode,
    decode_model_training,
)
from flts.errors import ConfigError, DataValidationError
from flts.stages.contracts import (
    EvaluateRequest,
    EvaluateStageConfig,
    InferRequest,
    InferStageConfig,
    ObjectRef,
    PreprocessRequest,
    TrainStageConfig,
)
from flts.stages.ports import BUCKET_DATASET, ObjectStore, StageContext

log = logging.getLogger(__name__)


class ArtifactLike(Protocol):
    """What a KFP artifact offers a task: a local file path and a metadata dict."""

    path: str
    metadata: dict[str, Any]


class LoggingSink:
    """Event sink for KFP tasks: there is no topic, so in-flight events go to the task log."""

    def emit(self, event: WireMessage, key: str | None = None) -> None:
        log.info("%s %s", type(event).__name__, event.model_dump_json(exclude_none=True))


def build_context(s3_endpoint_url: str, mlflow_tracking_uri: str) -> StageContext:
    """Real adapters, as a Kafka service builds them; an empty endpoint means "from env"."""
    from flts.adapters.mlflow_tracker import MlflowTracker
    from flts.adapters.s3 import S3ObjectStore
    from flts.settings import S3Settings, load_settings

    overrides = {"endpoint_url": s3_endpoint_url} if s3_endpoint_url else {}
    store = S3ObjectStore(load_settings(S3Settings, **overrides))
    if not mlflow_tracking_uri:
        raise ConfigError("mlflow_tracking_uri is empty: pass the MLflow server URL")
    return StageContext(
        store=store, tracker=MlflowTracker(mlflow_tracking_uri), events=LoggingSink()
    )


def resolve_csv(store: ObjectStore, uri: str, identifier: str, bundled: str) -> ObjectRef:
    """``s3://bucket/key`` as is; a local path (or "" for the bundled file) is uploaded first.

    Uploads go to the ``dataset`` bucket (where the Kafka side's preprocess puts raw CSVs
    too) under ``<identifier>/<first 16 hex of the content's sha256>/<file name>``: a training
    and a test file with the same name (``train/a.csv``, ``test/a.csv``) must not overwrite
    each other, and a changed file must not replace the one an earlier run read.
    """
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise ConfigError(f"CSV URI {uri!r} must look like s3://bucket/key")
        return ObjectRef(bucket=bucket, key=key)
    if uri:
        path = Path(uri)
    else:
        from flts import datasets

        path = datasets.bundled_train_csv().with_name(bundled)
    if not path.is_file():
        raise DataValidationError(f"CSV {path} does not exist (pass s3://bucket/key or a file)")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    ref = ObjectRef(bucket=BUCKET_DATASET, key=f"{identifier}/{digest}/{path.name}")
    store.ensure_bucket(ref.bucket)
    store.put_bytes(ref.bucket, ref.key, data, content_type="text/csv")
    log.info("uploaded %s to s3://%s/%s", path, ref.bucket, ref.key)
    return ref


def write_artifact(artifact: ArtifactLike, payload: dict[str, Any], **metadata: Any) -> None:
    """Write ``payload`` as JSON to the artifact file and copy ``metadata`` onto it."""
    Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
    Path(artifact.path).write_text(json.dumps(payload, indent=2, sort_keys=True))
    artifact.metadata.update({k: v for k, v in metadata.items() if v is not None})


def read_artifact(artifact: ArtifactLike) -> dict[str, Any]:
    data = json.loads(Path(artifact.path).read_text())
    if not isinstance(data, dict):
        raise DataValidationError(f"artifact {artifact.path} does not hold a JSON object")
    return data


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], **values: Any) -> M:
    """Build a config from pipeline parameters; ConfigError names what was out of range."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise ConfigError(f"invalid pipeline parameters for {model.__name__}: {exc}") from exc


def preprocess_config(
    lookback: int,
    horizon: int,
    target: str,
    time_col: str,
    season_steps: int,
    timezone: str = "",
    holidays: str = "",
    local_clock_lags: bool = False,
) -> PreprocessConfig:
    """The PreprocessConfig the pipeline parameters describe (shared with the parity test).

    KFP parameters cannot be None: ``season_steps`` 0, ``timezone`` "" and ``holidays`` ""
    mean unset.
    """
    return _validated(
        PreprocessConfig,
        lookback=lookback,
        horizon=horizon,
        target=target,
        time_col=time_col,
        season_steps=season_steps or None,
        timezone=timezone or None,
        holidays=holidays or None,
        local_clock_lags=local_clock_lags,
    )


def _claim_metadata(claim: TrainingDataReady | InferenceDataReady) -> dict[str, Any]:
    return {
        "config_hash": claim.config_hash,
        "bucket": claim.bucket,
        "object": claim.object,
        "size": claim.size,
        "identifier": claim.identifier,
    }


def preprocess_task(
    *,
    train_csv_uri: str,
    test_csv_uri: str,
    identifier: str,
    lookback: int,
    horizon: int,
    target: str,
    time_col: str,
    season_steps: int,
    s3_endpoint_url: str,
    mlflow_tracking_uri: str,
    training_data: ArtifactLike,
    inference_data: ArtifactLike,
    timezone: str = "",
    holidays: str = "",
    local_clock_lags: bool = False,
    ctx: StageContext | None = None,
) -> None:
    """Upload raw CSVs if needed, run the preprocess stage, emit both claim checks.

    ``season_steps`` 0 means "one day of steps" (KFP parameters cannot be None).
    """
    from flts import datasets
    from flts.stages import preprocess

    ctx = ctx or build_context(s3_endpoint_url, mlflow_tracking_uri)
    config = preprocess_config(
        lookback, horizon, target, time_col, season_steps, timezone, holidays, local_clock_lags
    )
    train = resolve_csv(ctx.store, train_csv_uri, identifier, datasets.TRAIN_FILE)
    test = resolve_csv(ctx.store, test_csv_uri, identifier, datasets.TEST_FILE)
    request = PreprocessRequest(identifier=identifier, train=train, test=test)
    result = preprocess.run(request, config, ctx)
    write_artifact(training_data, result.training.to_wire(), **_claim_metadata(result.training))
    write_artifact(
        inference_data,
        result.inference.to_wire(),
        **_claim_metadata(result.inference),
        reused=result.reused,
        train_rows=result.train_rows,
        test_rows=result.test_rows,
    )


def train_task(
    *,
    training_data: ArtifactLike,
    model_type: str,
    epochs: int,
    hidden_size: int,
    num_layers: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    seed: int,
    torch_threads: int,
    experiment: str,
    s3_endpoint_url: str,
    mlflow_tracking_uri: str,
    model: ArtifactLike,
    ctx: StageContext | None = None,
) -> None:
    """Run the train stage on the claim in ``training_data``; the model file is ModelTrained.

    A model that cannot be trained on this data (not an outage: that still fails the task, for
    KFP's retries) writes a ModelTrainingFailed instead, so the evaluate task ranks the other
    models, as the Kafka evaluator does after a trainer's FAILED event.
    ``torch_threads`` 0 leaves torch's default (size it to the task's CPU limit otherwise).
    """
    from flts.stages import train

    ctx = ctx or build_context(s3_endpoint_url, mlflow_tracking_uri)
    config = _validated(
        TrainConfig,
        epochs=epochs,
        hidden_size=hidden_size,
        num_layers=num_layers,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        torch_threads=torch_threads or None,
    )
    claim = decode(TrainingDataReady, read_artifact(training_data))
    stage_config = TrainStageConfig(
        model_type=ModelType.parse(model_type), train=config, experiment=experiment
    )
    try:
        trained = train.run(claim, stage_config, ctx)
    except Exception as exc:
        failed = train.failure_event(stage_config.model_type, claim, exc)
        if failed is None:
            raise
        log.exception("%s could not be trained; the other models are ranked", model_type)
        write_artifact(model, failed.to_wire(), model_type=failed.model_type, status="FAILED")
        return
    write_artifact(
        model,
        trained.to_wire(),
        model_type=trained.model_type,
        run_id=trained.run_id,
        model_uri=trained.model_uri,
        config_hash=trained.config_hash,
        test_rmse=trained.test_rmse,
        test_mae=trained.test_mae,
        test_mse=trained.test_mse,
    )


def evaluate_task(
    *,
    models: Sequence[ArtifactLike],
    model_types: Sequence[str],
    registered_model_name: str,
    alias: str,
    s3_endpoint_url: str,
    mlflow_tracking_uri: str,
    selection: ArtifactLike,
    global_candidate: str = "",
    ctx: StageContext | None = None,
) -> None:
    """Score every trainer's result, promote a champion; ``selection`` holds both outcomes.

    ``global_candidate`` (fleet pipeline with a global model; "" otherwise) is what
    :func:`flts.kfp.fleet_glue.global_candidate_task` said for this series: the global fit's
    ModelTrained, which competes like any trainer's, or why the fit left the series out
    (recorded as waived, as the Kafka evaluator records it).
    """
    from flts.stages import evaluate
    from flts.stages.promotion import failure_reason

    ctx = ctx or build_context(s3_endpoint_url, mlflow_tracking_uri)
    results: tuple[ModelTrained, ...] = ()
    waived: dict[str, str] = {}
    for artifact in models:
        event = decode_model_training(read_artifact(artifact))
        if isinstance(event, ModelTrainingFailed):
            waived[ModelType.parse(event.model_type).value] = failure_reason(event)
        elif isinstance(event, ModelTrained):
            results += (event,)
    expected = [ModelType.parse(t) for t in model_types]
    if global_candidate:
        expected.append(ModelType.GLOBAL_LINEAR)
        share = _global_share(global_candidate)
        if isinstance(share, ModelTrained):
            results += (share,)
        else:
            waived[ModelType.GLOBAL_LINEAR.value] = share
    if not results:
        why = "; ".join(f"{m}: {reason}" for m, reason in waived.items())
        raise DataValidationError(f"evaluate received no trained models ({why or 'none given'})")
    lineage = {(r.identifier, r.config_hash) for r in results}
    if len(lineage) != 1:
        raise DataValidationError(f"trained models come from different runs: {sorted(lineage)}")
    identifier, config_hash = lineage.pop()
    request = EvaluateRequest(
        identifier=identifier, config_hash=config_hash, results=results, waived=waived
    )
    stage_config = EvaluateStageConfig(
        expected_model_types=tuple(expected),
        registered_model_name=registered_model_name,
        alias=alias,
    )
    outcome = evaluate.run(request, stage_config, ctx)
    chosen = outcome.selected
    write_artifact(
        selection,
        {
            "selected": chosen.to_wire() if chosen else None,
            "report": outcome.report.model_dump(mode="json"),
            "promotion_record": (
                outcome.promotion_record.model_dump() if outcome.promotion_record else None
            ),
        },
        champion=chosen.model_type if chosen else "",
        run_id=chosen.run_id if chosen else None,
        model_uri=chosen.model_uri if chosen else None,
        composite_score=chosen.composite_score if chosen else None,
        test_rmse=chosen.test_rmse if chosen else None,
        reason=outcome.report.reason,
    )


def _global_share(global_candidate: str) -> ModelTrained | str:
    """The global fit's ModelTrained for this series, or the reason it was left out."""
    try:
        candidate = json.loads(global_candidate)
    except ValueError:
        candidate = None
    if not isinstance(candidate, dict) or not ({"trained", "excluded"} & set(candidate)):
        raise DataValidationError(
            "global_candidate must be a JSON object with 'trained' or 'excluded', "
            f"got {global_candidate[:80]!r}"
        )
    if candidate.get("trained") is not None:
        return decode(ModelTrained, candidate["trained"])
    return str(candidate["excluded"])


def infer_task(
    *,
    inference_data: ArtifactLike,
    selection: ArtifactLike,
    s3_endpoint_url: str,
    mlflow_tracking_uri: str,
    predictions: ArtifactLike,
    ctx: StageContext | None = None,
) -> None:
    """Batch-forecast the inference claim with the champion; skipped when none was promoted."""
    from flts.stages import infer

    claim = decode(InferenceDataReady, read_artifact(inference_data))
    raw_selected = read_artifact(selection).get("selected")
    if raw_selected is None:
        log.warning("no champion was promoted for %s; batch inference skipped", claim.identifier)
        write_artifact(predictions, {"performance": None, "skipped": True}, skipped=True)
        return
    chosen = decode(ModelSelected, raw_selected)
    stage_config = InferStageConfig(
        model_uri=chosen.model_uri, model_type=chosen.model_type, run_id=chosen.run_id
    )
    ctx = ctx or build_context(s3_endpoint_url, mlflow_tracking_uri)
    perf: PerformanceEval = infer.run(InferRequest(claim=claim), stage_config, ctx)
    write_artifact(
        predictions,
        {
            "performance": perf.to_wire(),
            "inference_logs": {"bucket": perf.output_bucket, "object": perf.output_object},
            "skipped": False,
        },
        skipped=False,
        model_type=perf.model_type,
        run_id=perf.run_id,
        rmse=perf.rmse,
        mae=perf.mae,
        windows=perf.windows,
        output_bucket=perf.output_bucket,
        output_object=perf.output_object,
    )
