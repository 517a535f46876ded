"""The FLTS DAG for Kubeflow Pipelines v2: preprocess -> trainers in parallel -> evaluate -> infer.

Topics become typed artifacts: ``training-data`` / ``inference-data`` are ``Dataset`` outputs
of preprocess, each ``model-training`` SUCCESS is a ``Model`` output of one trainer (fanned out
by a ``ParallelFor`` over the model types and gathered with ``dsl.Collected``), and
``model-selected`` / ``performance-eval`` are the ``Artifact`` outputs of evaluate and infer.

Caching is off for every task: a task's parameters do not cover what it reads (a local CSV
may change, MLflow state moves), and the stages are idempotent on their own, so a re-run
reuses processed data and finished training runs without KFP's help.

This module must not use ``from __future__ import annotations`` (KFP parses the annotations).
"""

from pathlib import Path
from typing import Any, List, NamedTuple  # noqa: UP035  (KFP parses typing.List)

from kfp import compiler, dsl
from kfp.dsl import Artifact

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


class PipelineOutputs(NamedTuple):
    selection: Artifact
    predictions: Artifact


def build_pipeline(image: str = DEFAULT_IMAGE) -> Any:
    """The pipeline function (a KFP ``GraphComponent``) whose tasks run in ``image``.

    S3 and MLflow *locations* are parameters; S3 credentials are not: tasks read
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from their environment (a Kubernetes secret).
    An empty ``train_csv_uri`` / ``test_csv_uri`` means the data set bundled in the image.
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
            **endpoints,
        ).set_caching_options(False)
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
            ).set_caching_options(False)
        chooser = comps.evaluate(
            models=dsl.Collected(trainer.outputs["model"]),
            model_types=model_types,
            registered_model_name=registered_model_name,
            alias=alias,
            **endpoints,
        ).set_caching_options(False)
        forecaster = comps.infer(
            inference_data=prep.outputs["inference_data"],
            selection=chooser.outputs["selection"],
            **endpoints,
        ).set_caching_options(False)
        return PipelineOutputs(
            selection=chooser.outputs["selection"],
            predictions=forecaster.outputs["predictions"],
        )

    return flts_pipeline


def compile_pipeline(output: Path, image: str = DEFAULT_IMAGE) -> Path:
    """Write the pipeline's IR YAML to ``output`` (deterministic for a given image)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(image), str(output))
    return output
