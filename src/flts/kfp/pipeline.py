"""The FLTS DAG for Kubeflow Pipelines v2: preprocess -> trainers in parallel -> evaluate -> infer.

Topics become typed artifacts: ``training-data`` / ``inference-data`` are ``Dataset`` outputs
of preprocess, each ``model-training`` SUCCESS is a ``Model`` output of one trainer (fanned out
by a ``ParallelFor`` over the model types and gathered with ``dsl.Collected``), and
``model-selected`` / ``performance-eval`` are the ``Artifact`` outputs of evaluate and infer.

On Kubernetes every task gets the S3 credentials from one Kubernetes Secret (kfp-kubernetes
``use_secret_as_env``; the same Secret as the Helm chart's ``secrets.existingSecret``) and CPU /
memory requests and limits per component (``TASK_RESOURCES``), both recorded in the IR. A local
run (``flts kfp run --local``) leaves them out: the subprocess runner has no cluster.

Caching is off for every task: a task's parameters do not cover what it reads (a local CSV
may change, MLflow state moves), and the stages are idempotent on their own, so a re-run
reuses processed data and finished training runs without KFP's help.

This module must not use ``from __future__ import annotations`` (KFP parses the annotations).
"""

from pathlib import Path
from typing import Any, List, NamedTuple  # noqa: UP035  (KFP parses typing.List)

from kfp import compiler, dsl, kubernetes
from kfp.dsl import Artifact, PipelineTask

from flts.domain.config import SPEC_MODEL_TYPES, PreprocessConfig, TrainConfig
from flts.kfp.components import DEFAULT_IMAGE, build_components

PIPELINE_NAME = "flts-pipeline"
PIPELINE_DESCRIPTION = (
    "FLTS: preprocess load time series, train forecasters in parallel, promote a champion "
    "and batch-forecast the test data; the same stage functions as the Kafka services."
)
#: Task names, as they appear in the compiled IR and the KFP UI.
TASK_NAMES = ("preprocess", "train", "evaluate", "infer")
TRAINERS_LOOP = "trainers"

_P = PreprocessConfig()
_T = TrainConfig()
DEFAULT_MODEL_TYPES = [m.value for m in SPEC_MODEL_TYPES]
DEFAULT_MLFLOW_URI = "http://mlflow:5000"
#: The Kubernetes Secret with the S3 credentials (keys named as the env vars they become).
CREDENTIALS_SECRET = "flts-credentials"  # noqa: S105  (a Secret name, not a value)
SECRET_ENV = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
}


class Resources(NamedTuple):
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str


#: Per component: trainers fit torch/Prophet models; the others move and score data frames.
TASK_RESOURCES = {
    "preprocess": Resources("500m", "1G", "1", "2G"),
    "train": Resources("1", "2G", "2", "4G"),
    "evaluate": Resources("500m", "1G", "1", "2G"),
    "infer": Resources("500m", "1G", "1", "2G"),
}


class PipelineOutputs(NamedTuple):
    selection: Artifact
    predictions: Artifact


def for_cluster(task: PipelineTask, name: str, secret_name: str | None) -> PipelineTask:
    """Resources of ``name`` and the credentials Secret as env vars (``secret_name`` None:
    neither, for the local runner)."""
    task.set_caching_options(False)
    if secret_name is None:
        return task
    res = TASK_RESOURCES[name]
    task.set_cpu_request(res.cpu_request).set_memory_request(res.memory_request)
    task.set_cpu_limit(res.cpu_limit).set_memory_limit(res.memory_limit)
    kubernetes.use_secret_as_env(task, secret_name=secret_name, secret_key_to_env=SECRET_ENV)
    return task


def build_pipeline(image: str = DEFAULT_IMAGE, secret_name: str | None = CREDENTIALS_SECRET) -> Any:
    """The pipeline function (a KFP ``GraphComponent``) whose tasks run in ``image``.

    S3 and MLflow *locations* are parameters; S3 credentials are not: tasks read
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from their environment, filled from the
    Kubernetes Secret ``secret_name`` (None: no Kubernetes settings at all, for a local run).
    An empty ``train_csv_uri`` / ``test_csv_uri`` means the data set bundled in the image.
    ``global_candidate`` is set only by the fleet pipeline with a global model (this series'
    share of the global fit, from ``flts.kfp.fleet_glue.global_candidate_task``).
    """
    comps = build_components(image)

    @dsl.pipeline(name=PIPELINE_NAME, description=PIPELINE_DESCRIPTION)  # type: ignore[untyped-decorator]
    def flts_pipeline(
        train_csv_uri: str = "",
        test_csv_uri: str = "",
        identifier: str = "flts",
        model_types: List[str] = DEFAULT_MODEL_TYPES,  # noqa: UP006
        lookback: int = _P.lookback,
        horizon: int = _P.horizon,
        target: str = _P.target,
        time_col: str = _P.time_col,
        season_steps: int = 0,
        timezone: str = "",
        holidays: str = "",
        local_clock_lags: bool = False,
        epochs: int = _T.epochs,
        hidden_size: int = _T.hidden_size,
        num_layers: int = _T.num_layers,
        batch_size: int = _T.batch_size,
        learning_rate: float = _T.learning_rate,
        patience: int = _T.patience,
        seed: int = _T.seed,
        torch_threads: int = 0,
        experiment: str = "flts",
        registered_model_name: str = "flts-forecaster",
        alias: str = "champion",
        mlflow_tracking_uri: str = DEFAULT_MLFLOW_URI,
        s3_endpoint_url: str = "",
        global_candidate: str = "",
    ) -> PipelineOutputs:
        endpoints = {"s3_endpoint_url": s3_endpoint_url, "mlflow_tracking_uri": mlflow_tracking_uri}
        prep = comps.preprocess(
            train_csv_uri=train_csv_uri,
            test_csv_uri=test_csv_uri,
            identifier=identifier,
            lookback=lookback,
            horizon=horizon,
            target=target,
            time_col=time_col,
            season_steps=season_steps,
            timezone=timezone,
            holidays=holidays,
            local_clock_lags=local_clock_lags,
            **endpoints,
        )
        for_cluster(prep, "preprocess", secret_name)
        with dsl.ParallelFor(items=model_types, name=TRAINERS_LOOP) as model_type:
            trainer = comps.train(
                training_data=prep.outputs["training_data"],
                model_type=model_type,
                epochs=epochs,
                hidden_size=hidden_size,
                num_layers=num_layers,
                batch_size=batch_size,
                learning_rate=learning_rate,
                patience=patience,
                seed=seed,
                torch_threads=torch_threads,
                experiment=experiment,
                **endpoints,
            )
            for_cluster(trainer, "train", secret_name)
        chooser = comps.evaluate(
            models=dsl.Collected(trainer.outputs["model"]),
            model_types=model_types,
            registered_model_name=registered_model_name,
            alias=alias,
            global_candidate=global_candidate,
            **endpoints,
        )
        for_cluster(chooser, "evaluate", secret_name)
        forecaster = comps.infer(
            inference_data=prep.outputs["inference_data"],
            selection=chooser.outputs["selection"],
            **endpoints,
        )
        for_cluster(forecaster, "infer", secret_name)
        return PipelineOutputs(
            selection=chooser.outputs["selection"],
            predictions=forecaster.outputs["predictions"],
        )

    return flts_pipeline


def compile_pipeline(
    output: Path, image: str = DEFAULT_IMAGE, secret_name: str = CREDENTIALS_SECRET
) -> Path:
    """Write the pipeline's IR YAML to ``output`` (deterministic for a given image)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(image, secret_name), str(output))
    return output
