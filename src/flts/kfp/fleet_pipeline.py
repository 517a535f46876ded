"""The fleet DAG for Kubeflow Pipelines v2: the single-series DAG fanned out over series.

``series`` is a list of ``{"identifier", "train_csv_uri", "test_csv_uri"}`` (identifiers by
the fleet rule ``<run>/<series>``, :mod:`flts.domain.series`); a ``ParallelFor`` runs the whole
single-series pipeline (:func:`flts.kfp.pipeline.build_pipeline`: preprocess, trainers in
parallel, evaluate, infer) once per series, each with its own identifier and so its own
registry alias, and ``collect`` gathers every series' selection (``dsl.Collected``) into one
``fleet`` artifact: per series the identifier, the champion or the reason there is none.
``parallelism`` bounds how many series run at once.

With ``global_model=True`` (``flts kfp compile --fleet --global-model``) one model is also fitted
across the series, as ``flts run --global-model`` does over Kafka, and the DAG splits in three:
a first ``ParallelFor`` preprocesses every series; ``train-global`` fits one model over all their
training claims (``dsl.Collected``), the stage the ``train-global`` service runs; a second
``ParallelFor`` runs the single-series DAG per series, whose evaluate also gets that series'
share of the global fit (``global-candidate``: the member's ModelTrained, or why the fit left
the series out), so each series' champion is chosen among its local and global candidates.
The second preprocess finds the first one's objects (same config_hash) and reuses them.

This module must not use ``from __future__ import annotations`` (KFP parses the annotations).
"""

from pathlib import Path
from typing import Any, Dict, List  # noqa: UP035  (KFP parses typing.List)

from kfp import compiler, dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from flts.domain.config import PreprocessConfig, TrainConfig
from flts.kfp.components import DEFAULT_IMAGE, build_components
from flts.kfp.pipeline import (
    CREDENTIALS_SECRET,
    DEFAULT_MLFLOW_URI,
    DEFAULT_MODEL_TYPES,
    build_pipeline,
    for_cluster,
)

FLEET_PIPELINE_NAME = "flts-fleet-pipeline"
FLEET_GLOBAL_PIPELINE_NAME = "flts-fleet-global-pipeline"
SERIES_LOOP = "series"
PREPROCESS_LOOP = "series-preprocess"
DEFAULT_PARALLELISM = 4
_P = PreprocessConfig()
_T = TrainConfig()


def collect(selections: Input[List[Artifact]], fleet: Output[Artifact]) -> None:  # noqa: UP006
    """Every series' selection -> one fleet artifact (champion or reason per identifier)."""
    from flts.kfp import fleet_glue

    fleet_glue.collect_fleet_task(selections=selections, fleet=fleet)


def collect_with_global(
    selections: Input[List[Artifact]],  # noqa: UP006
    global_models: Input[Artifact],
    fleet: Output[Artifact],
) -> None:
    """As ``collect``, plus whether the global fit covered each series (or why not)."""
    from flts.kfp import fleet_glue

    fleet_glue.collect_fleet_task(selections=selections, fleet=fleet, global_models=global_models)


def train_global(
    training_data: Input[List[Dataset]],  # noqa: UP006
    run_identifier: str,
    experiment: str,
    s3_endpoint_url: str,
    mlflow_tracking_uri: str,
    global_models: Output[Artifact],
) -> None:
    """One model fitted across every series' training claim; one ModelTrained per member."""
    from flts.kfp import fleet_glue

    fleet_glue.train_global_task(
        training_data=training_data,
        run_identifier=run_identifier,
        experiment=experiment,
        s3_endpoint_url=s3_endpoint_url,
        mlflow_tracking_uri=mlflow_tracking_uri,
        global_models=global_models,
    )


def global_candidate(global_models: Input[Artifact], identifier: str) -> str:
    """This series' share of the global fit, as JSON for evaluate."""
    from flts.kfp import fleet_glue

    return fleet_glue.global_candidate_task(global_models=global_models, identifier=identifier)


def _component(func: Any, image: str) -> Any:
    return dsl.component(func, base_image=image, packages_to_install=[], install_kfp_package=False)


def build_fleet_pipeline(
    image: str = DEFAULT_IMAGE,
    secret_name: str | None = CREDENTIALS_SECRET,
    parallelism: int = DEFAULT_PARALLELISM,
    global_model: bool = False,
) -> Any:
    """The fleet pipeline function (a KFP ``GraphComponent``); ``global_model`` adds the
    global fit (module docstring)."""
    if global_model:
        return _build_global_fleet_pipeline(image, secret_name, parallelism)
    single = build_pipeline(image, secret_name)
    collector = _component(collect, image)

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
        timezone: str = "",
        holidays: str = "",
        local_clock_lags: bool = False,
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
                timezone=timezone,
                holidays=holidays,
                local_clock_lags=local_clock_lags,
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


def _build_global_fleet_pipeline(image: str, secret_name: str | None, parallelism: int) -> Any:
    single = build_pipeline(image, secret_name)
    comps = build_components(image)
    fitter = _component(train_global, image)
    picker = _component(global_candidate, image)
    collector = _component(collect_with_global, image)

    @dsl.pipeline(  # type: ignore[untyped-decorator]
        name=FLEET_GLOBAL_PIPELINE_NAME,
        description="FLTS fleet with a global model: one fit across the series, then the "
        "single-series DAG per series with the global candidate; champions per series.",
    )
    def flts_fleet_global_pipeline(
        series: List[Dict[str, str]],  # noqa: UP006
        run_identifier: str = "fleet",
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
        experiment: str = "flts",
        registered_model_name: str = "flts-forecaster",
        alias: str = "champion",
        mlflow_tracking_uri: str = DEFAULT_MLFLOW_URI,
        s3_endpoint_url: str = "",
    ) -> Artifact:
        endpoints = {"s3_endpoint_url": s3_endpoint_url, "mlflow_tracking_uri": mlflow_tracking_uri}
        prep_config = {
            "lookback": lookback,
            "horizon": horizon,
            "target": target,
            "time_col": time_col,
            "season_steps": season_steps,
            "timezone": timezone,
            "holidays": holidays,
            "local_clock_lags": local_clock_lags,
        }
        with dsl.ParallelFor(items=series, name=PREPROCESS_LOOP, parallelism=parallelism) as one:
            prep = comps.preprocess(
                train_csv_uri=one.train_csv_uri,
                test_csv_uri=one.test_csv_uri,
                identifier=one.identifier,
                **prep_config,
                **endpoints,
            )
            for_cluster(prep, "preprocess", secret_name)
        fit = fitter(
            training_data=dsl.Collected(prep.outputs["training_data"]),
            run_identifier=run_identifier,
            experiment=experiment,
            **endpoints,
        )
        for_cluster(fit, "train", secret_name)
        with dsl.ParallelFor(items=series, name=SERIES_LOOP, parallelism=parallelism) as one:
            share = picker(global_models=fit.outputs["global_models"], identifier=one.identifier)
            for_cluster(share, "evaluate", secret_name)
            run = single(
                train_csv_uri=one.train_csv_uri,
                test_csv_uri=one.test_csv_uri,
                identifier=one.identifier,
                model_types=model_types,
                **prep_config,
                epochs=epochs,
                experiment=experiment,
                registered_model_name=registered_model_name,
                alias=alias,
                global_candidate=share.output,
                **endpoints,
            )
        gathered = collector(
            selections=dsl.Collected(run.outputs["selection"]),
            global_models=fit.outputs["global_models"],
        )
        gathered.set_caching_options(False)
        return gathered.outputs["fleet"]

    return flts_fleet_global_pipeline


def compile_fleet_pipeline(
    output: Path,
    image: str = DEFAULT_IMAGE,
    secret_name: str = CREDENTIALS_SECRET,
    global_model: bool = False,
) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    pipeline = build_fleet_pipeline(image, secret_name, global_model=global_model)
    compiler.Compiler().compile(pipeline, str(output))
    return output
