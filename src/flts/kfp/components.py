"""The four KFP v2 lightweight components: each body imports flts and calls one glue function.

KFP embeds a component's *source* into the pipeline IR and runs it in the project image, so
these bodies must be self-contained (imports inside) and thin: every line of behaviour lives
in :mod:`flts.kfp.glue` and the stages, shared with the Kafka services. The container image is
a compile-time choice, so components are built by :func:`build_components` rather than
decorated at import time.

This module must not use ``from __future__ import annotations``: KFP reads the ``Input`` /
``Output`` annotations as real objects.
"""

from dataclasses import dataclass
from typing import Any, List  # noqa: UP035  (KFP's type parser wants typing.List for Input[List[...]])

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

#: Image used when none is given at compile time.
DEFAULT_IMAGE = "ghcr.io/flts/flts:0.1.0"


def preprocess(
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
    training_data: Output[Dataset],
    inference_data: Output[Dataset],
    timezone: str = "",
    holidays: str = "",
    local_clock_lags: bool = False,
) -> None:
    """Raw CSVs -> processed train/test objects; outputs carry the claim checks."""
    from flts.kfp import glue

    glue.preprocess_task(
        train_csv_uri=train_csv_uri,
        test_csv_uri=test_csv_uri,
        identifier=identifier,
        lookback=lookback,
        horizon=horizon,
        target=target,
        time_col=time_col,
        season_steps=season_steps,
        s3_endpoint_url=s3_endpoint_url,
        mlflow_tracking_uri=mlflow_tracking_uri,
        training_data=training_data,
        inference_data=inference_data,
        timezone=timezone,
        holidays=holidays,
        local_clock_lags=local_clock_lags,
    )


def train(
    training_data: Input[Dataset],
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
    model: Output[Model],
) -> None:
    """Train, score and log one model type; the output holds its ModelTrained event."""
    from flts.kfp import glue

    glue.train_task(
        training_data=training_data,
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
        s3_endpoint_url=s3_endpoint_url,
        mlflow_tracking_uri=mlflow_tracking_uri,
        model=model,
    )


def evaluate(
    models: Input[List[Model]],  # noqa: UP006
    model_types: List[str],  # noqa: UP006
    registered_model_name: str,
    alias: str,
    global_candidate: str,
    s3_endpoint_url: str,
    mlflow_tracking_uri: str,
    selection: Output[Artifact],
) -> None:
    """Compare every trained model (and a fleet's global candidate) with the baselines and
    promote the champion."""
    from flts.kfp import glue

    glue.evaluate_task(
        models=models,
        model_types=model_types,
        registered_model_name=registered_model_name,
        alias=alias,
        global_candidate=global_candidate,
        s3_endpoint_url=s3_endpoint_url,
        mlflow_tracking_uri=mlflow_tracking_uri,
        selection=selection,
    )


def infer(
    inference_data: Input[Dataset],
    selection: Input[Artifact],
    s3_endpoint_url: str,
    mlflow_tracking_uri: str,
    predictions: Output[Artifact],
) -> None:
    """Batch-forecast the test data with the champion; logs its PerformanceEval."""
    from flts.kfp import glue

    glue.infer_task(
        inference_data=inference_data,
        selection=selection,
        s3_endpoint_url=s3_endpoint_url,
        mlflow_tracking_uri=mlflow_tracking_uri,
        predictions=predictions,
    )


#: The component functions, by the task name they get in the pipeline.
COMPONENT_FUNCTIONS = {
    "preprocess": preprocess,
    "train": train,
    "evaluate": evaluate,
    "infer": infer,
}


@dataclass(frozen=True)
class Components:
    """KFP ``PythonComponent`` objects (typed Any: kfp ships no type information)."""

    preprocess: Any
    train: Any
    evaluate: Any
    infer: Any


def build_components(image: str = DEFAULT_IMAGE) -> Components:
    """The components, to run in ``image`` (which must have flts installed).

    ``install_kfp_package=False``: the image already has kfp (the ``kfp`` extra), an install
    would fail offline, and without it kfp.local runs tasks in parallel.
    """

    built = {
        name: dsl.component(
            func, base_image=image, packages_to_install=[], install_kfp_package=False
        )
        for name, func in COMPONENT_FUNCTIONS.items()
    }
    return Components(**built)
