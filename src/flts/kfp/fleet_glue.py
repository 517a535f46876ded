"""KFP glue for the fleet pipeline: the global fit, each series' share of it, the collection.

Like :mod:`flts.kfp.glue` (whose artifact helpers it uses): the only code between the fleet
DAG's component bodies and the stages. ``train_global_task`` runs the stage the
``train-global`` Kafka service runs, on the training claims of every series.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flts.domain.config import ModelType
from flts.domain.messages import GlobalTrainingRequested, TrainingDataReady, decode
from flts.errors import DataValidationError
from flts.kfp.glue import ArtifactLike, build_context, read_artifact, write_artifact
from flts.stages.contracts import TrainStageConfig
from flts.stages.ports import StageContext


def train_global_task(
    *,
    training_data: Sequence[ArtifactLike],
    run_identifier: str,
    experiment: str,
    s3_endpoint_url: str,
    mlflow_tracking_uri: str,
    global_models: ArtifactLike,
    ctx: StageContext | None = None,
) -> None:
    """One global fit over every series' training claim (the stage the ``train-global``
    service runs, with its default TrainConfig); ``global_models`` holds each member's
    ModelTrained and the GlobalTrainingDone naming the series left out and why."""
    from flts.domain.series import global_identifier
    from flts.stages import train_global

    ctx = ctx or build_context(s3_endpoint_url, mlflow_tracking_uri)
    claims = [decode(TrainingDataReady, read_artifact(a)) for a in training_data]
    if not claims:
        raise DataValidationError("the global fit received no training claims")
    request = GlobalTrainingRequested(identifier=global_identifier(run_identifier), claims=claims)
    config = TrainStageConfig(model_type=ModelType.GLOBAL_LINEAR, experiment=experiment)
    outcome = train_global.run(request, config, ctx)
    write_artifact(
        global_models,
        {
            "trained": [t.to_wire() for t in outcome.trained],
            "done": outcome.done.to_wire(),
        },
        members=len(outcome.done.members),
        excluded=len(outcome.done.excluded),
    )


def global_candidate_task(*, global_models: ArtifactLike, identifier: str) -> str:
    """What the global fit means for one series, as JSON for ``evaluate_task``:
    ``{"trained": <ModelTrained>}`` for a member, ``{"excluded": <reason>}`` otherwise."""
    fitted = read_artifact(global_models)
    for trained in fitted.get("trained", []):
        if trained.get("identifier") == identifier:
            return json.dumps({"trained": trained})
    for exclusion in fitted.get("done", {}).get("excluded", []):
        if exclusion.get("identifier") == identifier:
            return json.dumps({"excluded": f"left out of the global fit: {exclusion['reason']}"})
    return json.dumps({"excluded": "the global fit was not offered this series"})


def _global_membership(global_models: ArtifactLike | None) -> dict[str, str | None]:
    """identifier -> None for a member of the global fit, the reason for one left out."""
    if global_models is None:
        return {}
    done = read_artifact(global_models).get("done", {})
    membership: dict[str, str | None] = {i: None for i in done.get("members", [])}
    for exclusion in done.get("excluded", []):
        membership[str(exclusion.get("identifier"))] = str(exclusion.get("reason"))
    return membership


def collect_fleet_task(
    *,
    selections: Sequence[ArtifactLike],
    fleet: ArtifactLike,
    global_models: ArtifactLike | None = None,
) -> None:
    """The fleet pipeline's last task: one entry per series, its champion or why it has none
    (and, with a global model, whether the global fit covered the series or why not)."""
    membership = _global_membership(global_models)
    series = []
    for artifact in selections:
        selection = read_artifact(artifact)
        report = selection.get("report") or {}
        chosen = selection.get("selected")
        entry: dict[str, Any] = {
            "identifier": report.get("identifier"),
            "config_hash": report.get("config_hash"),
            "champion": chosen,
            "reason": None if chosen else report.get("reason"),
            "scores": report.get("rows", []),
        }
        if global_models is not None:
            identifier = str(report.get("identifier"))
            entry["global_member"] = identifier in membership and membership[identifier] is None
            entry["global_reason"] = membership.get(identifier, "not offered to the global fit")
        series.append(entry)
    series.sort(key=lambda e: str(e["identifier"]))
    with_champion = sum(1 for e in series if e["champion"])
    write_artifact(
        fleet,
        {"series": series},
        series=len(series),
        with_champion=with_champion,
        without_champion=len(series) - with_champion,
    )
