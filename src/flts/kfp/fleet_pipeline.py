"""The fleet DAG for Kubeflow Pipelines v2: the single-series DAG fanned out over series.

``series`` is a list of ``{"identifier", "train_csv_uri", "test_csv_uri"}`` (identifiers by
the fleet rule ``<run>/<series>``, :mod:`flts.domain.series`); a ``ParallelFor`` runs the whole
single-series pipeline (:func:`flts.kfp.pipeline.build_pipeline`: preprocess, trainers in
parallel, evaluate, infer) once per series, each with its own identifier and so its own
registry alias, and ``collect`` gathers every series' selection (``dsl.Collected``) into one
``fleet`` artifact: per series the identifier, the champion or the reason there is none.
``parallelism`` bounds how many series run at once.

This module must not use ``from __future__ import annotations`` (KFP parses the annotations).
"""

from pathlib import Path
from typing import Any, Dict, List  # noqa: UP035  (KFP parses typing.List)

from kfp import compiler, dsl
from kfp.dsl import Artifact, Input, Output

from flts.domain.config import PreprocessConfig, TrainConfig
from flts.kfp.components import DEFAULT_IMAGE
from flts.kfp.pipeline import (
    CREDENTIALS_SECRET,
    DEFAULT_MLFLOW_URI,
    DEFAULT_MODEL_TYPES,
    build_pipeline,
)

FLEET_PIPELINE_NAME = "flts-fleet-pipeline"
SERIES_LOOP = "series"
DEFAULT_PARALLELISM = 4
_P = PreprocessConfig()
_T = TrainConfig()


def collect(selections: Input[List[Artifact]], fleet: Output[Artifact]) -> None:  # noqa: UP006
    """Every series' selection -> one fleet artifact (champion or reason per identifier)."""
    from flts.kfp import glue

    glue.collect_fleet_task(selections=selections, fleet=fleet)


def build_fleet_pipeline(
    image: str = DEFAULT_IMAGE,
    secret_name: str | None = CREDENTIALS_SECRET,
    parallelism: int = DEFAULT_PARALLELISM,
) -> Any:
    """The fleet pipeline function (a KFP ``GraphComponent``)."""
    single = build_pipeline(image, secret_name)
    collector = dsl.component(
        collect, base_image=image, packages_to_install=[], install_kfp_package=False
    )

    @dsl.pipeline(  # type: ignore[untyped-decorator]
        name=FLEET_PIPELINE_NAME,
        description="FLTS fleet: the single-series DAG once per series, champions per series.",
    )
    def flts_fleet_pipeline(
        series: List[Dict[str, str]],  # noqa: UP006
        model_types: List[str] = DEFAULT_MODEL_TYPES,  # noqa: UP006
        lookback: int = _P.lookback,
        horizon: int = _P.horizon,
        target: str = _P.target,
        time_col: str = _P.time_col,
        season_steps: int = 0,
        epochs: int = _T.epochs,
        registered_model_name: str = "flts-forecaster",
        alias: str = "champion",
        mlflow_tracking_uri: str = DEFAULT_MLFLOW_URI,
        s3_endpoint_url: str = "",
    ) -> Artifact:
        with dsl.ParallelFor(items=series, name=SERIES_LOOP, parallelism=parallelism) as one:
            run = single(
                train_csv_uri=one.train_csv_uri,
                test_csv_uri=one.test_csv_uri,
                identifier=one.identifier,
                model_types=model_types,
                lookback=lookback,
                horizon=horizon,
                target=target,
                time_col=time_col,
                season_steps=season_steps,
                epochs=epochs,
                registered_model_name=registered_model_name,
                alias=alias,
                mlflow_tracking_uri=mlflow_tracking_uri,
                s3_endpoint_url=s3_endpoint_url,
            )
        gathered = collector(selections=dsl.Collected(run.outputs["selection"]))
        gathered.set_caching_options(False)
        return gathered.outputs["fleet"]

    return flts_fleet_pipeline


def compile_fleet_pipeline(
    output: Path, image: str = DEFAULT_IMAGE, secret_name: str = CREDENTIALS_SECRET
) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_fleet_pipeline(image, secret_name), str(output))
    return output
