"""Service ``train-global`` (added by FLTS, issue 13): one model fitted across a fleet.

Consumes CONSUMER_TOPIC (``global-training-requests``) in group CONSUMER_GROUP_ID
(``train-global``), runs the global train stage (``flts.stages.train_global``), and returns to
the worker one SUCCESS per member series on PRODUCER_TOPIC (``model-training``, key
``trained-GLOBAL_LINEAR``, the identifier and config_hash of that series, exactly like a
per-series trainer's) and a ``GlobalTrainingDone`` on GLOBAL_TRAINING_RESULTS_TOPIC
(``global-training-results``) naming the members and every series left out with its reason (the
evaluator stops waiting for the global candidate of those). The worker sends them and only then
commits. An undecodable request goes to ``DLQ-global-training-requests``; any other failure to
``DLQ-model-training``, like a trainer's.
"""

from __future__ import annotations

import logging
import threading

from flts.domain.config import ModelType
from flts.domain.messages import GlobalTrainingRequested, decode
from flts.messaging.records import Handler, Output, Record
from flts.messaging.sinks import KafkaEventSink
from flts.services.wiring import run_trainer
from flts.settings import GlobalTrainSettings, load_settings
from flts.stages import train_global
from flts.stages.contracts import TrainStageConfig
from flts.stages.ports import StageContext

log = logging.getLogger(__name__)
MODEL_TYPE = ModelType.GLOBAL_LINEAR


def build_handler(
    settings: GlobalTrainSettings, ctx: StageContext, sink: KafkaEventSink | None = None
) -> Handler:
    config = TrainStageConfig(
        model_type=MODEL_TYPE,
        train=settings.train_config(),
        experiment=settings.mlflow_experiment,
    )

    def handle(record: Record) -> list[Output]:
        request = decode(GlobalTrainingRequested, record.body)
        log.info(
            "global training over %d series",
            len(request.claims),
            extra={"stage": "train-global", "identifier": request.identifier},
        )
        try:
            outcome = train_global.run(request, config, ctx)
        finally:
            if sink is not None:
                sink.flush()
        key = f"trained-{MODEL_TYPE.value}"
        outputs = [Output(settings.producer_topic, event, key) for event in outcome.trained]
        outputs.append(Output(settings.result_topic, outcome.done, request.identifier))
        return outputs

    return handle


def run(stop_event: threading.Event) -> int:
    """Run the global trainer until ``stop_event`` is set (SIGTERM/SIGINT)."""
    settings = load_settings(GlobalTrainSettings)
    return run_trainer(
        settings,
        build_handler,
        f"train {MODEL_TYPE.value}",
        stop_event,
        settings.result_topic,
    )
