"""Service ``inference``: batch forecasts over Kafka plus the HTTP API, in one process.

One consumer (group CONSUMER_GROUP_ID, manual commits) reads three topics:

- PROMOTION_TOPIC (model-selected): load the champion and hot-swap it into the API's
  ModelState; then (re)run every stored claim of its config_hash not yet run by it.
- CONSUMER_TOPIC_1 (model-training): with RUN_INFERENCE_ON_TRAIN_SUCCESS, a SUCCESS for a
  lineage with no model loaded yet is loaded as a *provisional* model (fast path) and runs the
  claims nothing has run yet. A promotion always wins: claims run by a provisional model are
  run again by the champion (output keys differ per model, so both logs survive).
- CONSUMER_TOPIC_0 (inference-data): the claim is stored (``flts.services.claims``) and run at once
  if a model of its lineage is loaded, else when one arrives.

Which claims a model runs is decided by ``flts.stages.dispatch``. PerformanceEval events (and
dead letters of pending claims) are returned to the worker, which gets them confirmed on
PRODUCER_TOPIC before a claim is marked done and the offset committed.
Replicas: the group splits model-selected's partitions, so the replica that owns a promotion's
partition runs its claims; every replica also hot-swaps every promotion it did not get from the
group (``flts.services.promotion_follow``: a group-less reader of model-selected), so no replica
keeps answering with a champion that was replaced.
The live loop (issue 12, ``flts.services.live``): OBSERVATIONS_TOPIC is consumed by its own
thread and group (``flts.services.live_stream``), forecasts go to FORECASTS_TOPIC, rolling live
metrics to PRODUCER_TOPIC, and the API also serves ``/live`` and ``/live/state``.
At start-up the registry's champion alias (REGISTERED_MODEL_NAME@CHAMPION_ALIAS) is loaded if it
exists, so the API is ready after a restart. The API runs in a uvicorn thread; SIGTERM stops both.

Longer than the ~400-line norm: one class whose three topic handlers share the claim book, the
bounded model cache and the lineage sources; the decisions themselves are pure functions in
``flts.stages.dispatch``.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import OrderedDict
from typing import Any, NamedTuple, TypeGuard

from flts.domain.messages import (
    DlqRecord,
    InferenceDataReady,
    ModelSelected,
    ModelTrained,
    Observation,
    decode,
    decode_model_training,
    utc_now_iso,
)
from flts.domain.series import champion_alias, is_fleet_identifier
from flts.errors import StackError
from flts.kafka_utils import create_producer
from flts.messaging.records import Output, Record, dlq_of, is_transient
from flts.messaging.worker import consumer_config
from flts.services.claims import ClaimBook
from flts.services.live import LiveLoop
from flts.services.live_stream import ObservationStream
from flts.services.promotion_follow import PromotionFollower
from flts.services.wiring import Infra, mlflow_tracker, warm_up
from flts.serving.model_state import LoadedModel, ModelSource, ModelState
from flts.serving.series_models import SeriesModels
from flts.settings import InferenceSettings, LiveSettings, load_settings
from flts.stages import dispatch, infer
from flts.stages.contracts import InferRequest, InferStageConfig
from flts.stages.dispatch import ClaimEntry
from flts.stages.ports import StageContext

log = logging.getLogger(__name__)
CHAMPION_SOURCES: tuple[ModelSource, ...] = ("promotion", "registry")
DEFAULT_MODEL_NAME = "model"


#: Lineages whose model source is remembered after eviction (a few hundred bytes each).
MAX_MODEL_REFS = 100_000


class _Source(NamedTuple):
    """Where a lineage's model was loaded from, to load it again."""

    uri: str
    run_id: str
    identifier: str
    source: ModelSource


def run_id_of(model_uri: str) -> str:
    """``runs:/<run_id>/...`` -> run_id; other URIs are their own id."""
    if model_uri.startswith("runs:/"):
        return model_uri.removeprefix("runs:/").split("/", 1)[0]
    return model_uri


class InferenceService:
    """The three topic handlers and the models they loaded, per config_hash.

    Handlers return their events (PerformanceEval, dead letters of pending claims) to the worker,
    which sends them and then commits; a claim is marked run only once its event is confirmed.
    """

    def __init__(
        self,
        settings: InferenceSettings,
        ctx: StageContext,
        state: ModelState,
        claims: ClaimBook | None = None,
        series: SeriesModels | None = None,
        live: LiveLoop | None = None,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.state = state
        #: Per-series champions of fleet runs (served by identifier); None: default model only.
        self.series = series
        self.claims = claims or ClaimBook(ctx.store)
        #: Loaded models by config_hash, least recently used first (bounded: see _remember).
        self.models: OrderedDict[str, LoadedModel] = OrderedDict()
        #: Where each lineage's model came from, kept after the model itself is evicted: a
        #: claim that arrives after its promotion's model left the bounded cache reloads it
        #: instead of waiting for a promotion that already happened (a fleet promotes many
        #: series before their batch claims arrive). Strings only; bounded by MAX_MODEL_REFS.
        self._refs: OrderedDict[str, _Source] = OrderedDict()
        self.dlq_topic = dlq_of(settings.producer_topic)
        #: The live loop (issue 12): observations in, forecasts out; None: batch only.
        self.live = live
        #: The worker thread's handlers and the promotion follower's hot-swaps share the model
        #: caches; one at a time.
        self._lock = threading.RLock()
        #: Identifier -> its latest promotion before this process started (the promotion
        #: follower's history); loaded into the live loop on the identifier's first observation.
        self.promotion_history: dict[str, ModelSelected] = {}

    # --- entry points -----------------------------------------------------------------------

    def startup(self) -> None:
        """Load stored claims and the registry's champion (when there is one)."""
        count = self.claims.load_all()
        log.info("%d stored inference claims", count)
        self._load_registry_champion()

    def handle(self, record: Record) -> list[Output]:
        with self._lock:
            return self._handle(record)

    def follow_promotion(self, selected: ModelSelected) -> bool:
        """A promotion seen outside the group (any replica): serve it unless this replica
        already does. No claims run here: the replica that owns its partition runs them.
        Returns whether the model was swapped in."""
        with self._lock:
            if self._served(selected) is not None:
                return False
            self._swap_in(selected)
            log.info(
                "hot-swapped the %s champion seen on the promotion topic",
                selected.model_type,
                extra={"identifier": selected.identifier, "run_id": selected.run_id},
            )
            return True

    def recover_live_champion(self, identifier: str) -> None:
        """Give the live loop the champion promoted for ``identifier`` before a restart.

        Called by the observations stream before an identifier's first observation; a load
        failure is logged and the observation is then refused like any without a champion.
        """
        if self.live is None or self.live.has_champion(identifier):
            return
        with self._lock:
            selected = self.promotion_history.pop(identifier, None)
            if selected is None:
                return
            try:
                loaded = self._load_promoted(selected)
            except Exception as exc:  # the registry or store is down: the observation says so
                log.error(
                    "could not recover the live champion of %s (run %s): %s",
                    identifier,
                    selected.run_id,
                    exc,
                    extra={"identifier": identifier},
                )
                return
            self.live.on_champion(selected, loaded)
        log.info(
            "recovered the live champion of %s promoted before the restart: run %s",
            identifier,
            selected.run_id,
            extra={"identifier": identifier},
        )

    def _served(self, selected: ModelSelected) -> LoadedModel | None:
        """The model answering for ``selected.identifier`` if it is ``selected``'s run."""
        if is_fleet_identifier(selected.identifier) and self.series is not None:
            runtime = self.series.get(selected.identifier)
            served = runtime.loaded if runtime is not None else None
        else:
            served = self.state.current()
        return served if served is not None and served.run_id == selected.run_id else None

    def _handle(self, record: Record) -> list[Output]:
        s = self.settings
        if record.topic == s.promotion_topic:
            return self.on_selected(decode(ModelSelected, record.body))
        if record.topic == s.consumer_topic_1:
            event = decode_model_training(record.body)
            return self.on_trained(event) if isinstance(event, ModelTrained) else []
        if record.topic == s.consumer_topic_0:
            return self.on_claim(decode(InferenceDataReady, record.body))
        if self.live is not None and record.topic == self.live.settings.observations_topic:
            return self.live.on_observation(decode(Observation, record.body))
        return []

    def on_selected(self, selected: ModelSelected) -> list[Output]:
        # This replica's follower may have swapped the promotion in already (load it once); a
        # start-up registry model of the same run is loaded again: claims need its lineage.
        served = self._served(selected)
        loaded = served if _is_promotion_of(served, selected) else self._swap_in(selected)
        return self._run_all(self.claims.for_config(selected.config_hash), loaded)

    def _swap_in(self, selected: ModelSelected) -> LoadedModel:
        """Load the promoted model and answer with it (API, live loop) from now on."""
        loaded = self._load_promoted(selected)
        self._serve(loaded)
        if self.live is not None:
            self.live.on_champion(selected, loaded)
        return loaded

    def _serve(self, loaded: LoadedModel) -> None:
        """A fleet series' champion joins the per-series cache; any other is the default.

        A fleet promotion never replaces the default model: otherwise requests without an
        identifier would be answered by whichever series was promoted last.
        """
        if is_fleet_identifier(loaded.identifier) and self.series is not None:
            self.series.put(loaded)
        else:
            self.state.set(loaded)

    def on_trained(self, event: ModelTrained) -> list[Output]:
        enabled = self.settings.run_inference_on_train_success
        if not dispatch.load_provisional(enabled, event.config_hash, self.models):
            return []
        uri = event.model_uri or f"runs:/{event.run_id}/{DEFAULT_MODEL_NAME}"
        loaded = self._load(
            uri, event.run_id, event.config_hash, event.identifier, "training-success"
        )
        if self.state.current() is None and not is_fleet_identifier(event.identifier):
            self.state.set(loaded)
        return self._run_all(self.claims.for_config(event.config_hash), loaded)

    def on_claim(self, claim: InferenceDataReady) -> list[Output]:
        entry = self.claims.add(claim)
        model = self._model_for(claim.config_hash)
        if model is None:
            log.info(
                "no model for this lineage yet: claim kept pending",
                extra={"identifier": claim.identifier, "config_hash": claim.config_hash},
            )
            return []
        if not dispatch.eligible(entry, _ref(model)):
            return []
        return [self._run_one(entry, model)]

    # --- internals --------------------------------------------------------------------------

    def _model_for(self, config_hash: str | None) -> LoadedModel | None:
        if config_hash is None:
            return self.state.current()
        model = self.models.get(config_hash)
        if model is not None:
            self.models.move_to_end(config_hash)
            return model
        source = self._refs.get(config_hash)
        if source is None:
            return None
        log.info(
            "reloading the evicted %s model of this lineage for a claim",
            source.source,
            extra={"identifier": source.identifier, "config_hash": config_hash},
        )
        return self._load(source.uri, source.run_id, config_hash, source.identifier, source.source)

    def _load_promoted(self, selected: ModelSelected) -> LoadedModel:
        return self._load(
            selected.model_uri,
            selected.run_id,
            selected.config_hash,
            selected.identifier,
            "promotion",
        )

    def _load(
        self, uri: str, run_id: str, config_hash: str, identifier: str, source: ModelSource
    ) -> LoadedModel:
        forecaster = self.ctx.tracker.load_forecaster(uri)
        loaded = LoadedModel.of(
            forecaster,
            model_uri=uri,
            run_id=run_id,
            identifier=identifier,
            source=source,
            config_hash=config_hash,
        )
        self._remember(loaded)
        self._refs[config_hash] = _Source(uri, run_id, identifier, source)
        self._refs.move_to_end(config_hash)
        while len(self._refs) > MAX_MODEL_REFS:
            self._refs.popitem(last=False)
        log.info(
            "loaded %s model %s from %s",
            source,
            loaded.model_type,
            uri,
            extra={"identifier": identifier, "config_hash": config_hash, "run_id": run_id},
        )
        return loaded

    def _load_registry_champion(self) -> None:
        """Load ``models:/<REGISTERED_MODEL_NAME>@<CHAMPION_ALIAS>`` if the registry has it."""
        name, alias = self.settings.registered_model_name, self.settings.champion_alias
        tracker: Any = self.ctx.tracker
        try:
            resolve = getattr(tracker, "model_uri_for_alias", None)
            uri = str(resolve(name, alias)) if resolve else f"models:/{name}@{alias}"
            forecaster = tracker.load_forecaster(uri)
            run_id = run_id_of(uri)
            client = getattr(tracker, "client", None)
            if client is not None:
                run_id = str(client.get_model_version_by_alias(name, alias).run_id)
        except Exception as exc:  # no registered champion yet is the normal first start
            log.info("no %s@%s champion loaded at start-up: %s", name, alias, exc)
            return
        loaded = LoadedModel.of(
            forecaster,
            model_uri=uri,
            run_id=run_id,
            identifier="registry",
            source="registry",
        )
        self._remember(loaded)
        self.state.set(loaded)

    def load_series_champion(self, identifier: str) -> LoadedModel | None:
        """The registry champion of a fleet series (its own alias), or None if it has none.

        Only fleet identifiers have an alias of their own; any other identifier would resolve
        to the shared default alias, so it is never looked up here.
        """
        if not is_fleet_identifier(identifier):
            return None
        name = self.settings.registered_model_name
        alias = champion_alias(identifier, self.settings.champion_alias)
        tracker: Any = self.ctx.tracker
        client = getattr(tracker, "client", None)
        try:
            if client is not None:
                run_id = str(client.get_model_version_by_alias(name, alias).run_id)
            else:  # a registry without a client (the in-memory one): the URI names the run
                run_id = run_id_of(str(tracker.model_uri_for_alias(name, alias)))
        except Exception as exc:  # no such alias: this series has no champion
            log.info("no %s@%s champion for %s: %s", name, alias, identifier, exc)
            return None
        resolve = getattr(tracker, "model_uri_for_alias", None)
        uri = str(resolve(name, alias)) if resolve else f"models:/{name}@{alias}"
        forecaster = tracker.load_forecaster(uri)
        return LoadedModel.of(
            forecaster, model_uri=uri, run_id=run_id, identifier=identifier, source="registry"
        )

    def _remember(self, loaded: LoadedModel) -> None:
        """Keep at most MAX_LOADED_MODELS models; the answering champion is never evicted."""
        self.models[loaded.config_hash] = loaded
        self.models.move_to_end(loaded.config_hash)
        current = self.state.current()
        for config_hash in list(self.models):
            if len(self.models) <= self.settings.max_loaded_models:
                break
            if current is not None and self.models[config_hash] is current:
                continue
            del self.models[config_hash]
            log.info("evicted the model of config_hash %s (cache bound)", config_hash)

    def _run_all(self, entries: list[ClaimEntry], model: LoadedModel) -> list[Output]:
        """Every eligible claim; one bad claim goes to the DLQ, the others still run."""
        outputs = []
        for entry in dispatch.claims_to_run(entries, _ref(model)):
            try:
                outputs.append(self._run_one(entry, model))
            except Exception as exc:
                if is_transient(exc):
                    raise
                outputs.append(self._dead_letter(entry, exc))
        return outputs

    def _run_one(self, entry: ClaimEntry, model: LoadedModel) -> Output:
        """Forecast one claim; its PerformanceEval marks the claim run once confirmed."""
        claim = entry.claim
        config = InferStageConfig(
            model_uri=model.model_uri,
            model_type=model.model_type,
            run_id=model.run_id,
            band_adaptation=self.settings.batch_band_adaptation,
        )
        try:
            perf = infer.run(InferRequest(claim=claim), config, self.ctx, model=model.forecaster)
        except Exception as exc:
            if not is_transient(exc):  # durable before the commit: never tried again
                self.claims.save(dispatch.with_failure(entry, f"{type(exc).__name__}: {exc}"))
            raise
        ref = _ref(model)

        def ran() -> None:
            self.claims.save(dispatch.with_run(self.claims.current(entry), ref))

        return Output(self.settings.producer_topic, perf, key=claim.identifier, on_confirmed=ran)

    def _dead_letter(self, entry: ClaimEntry, exc: BaseException) -> Output:
        details = f"{type(exc).__name__}: {exc}"
        log.error("pending claim failed: %s", details, extra={"dlq_topic": self.dlq_topic})
        record = DlqRecord(
            operation="inference",
            status="Failure",
            error_details=details,
            payload=entry.claim.to_wire(),
            timestamp=utc_now_iso(),
            source_topic=self.settings.consumer_topic_0,
            error_type=type(exc).__name__,
        )
        return Output(self.dlq_topic, record)


def _is_promotion_of(loaded: LoadedModel | None, selected: ModelSelected) -> TypeGuard[LoadedModel]:
    return (
        loaded is not None
        and loaded.source == "promotion"
        and loaded.config_hash == selected.config_hash
    )


def _ref(model: LoadedModel) -> dispatch.ModelRef:
    return dispatch.ModelRef(run_id=model.run_id, champion=model.source in CHAMPION_SOURCES)


def start_api(
    state: ModelState,
    settings: InferenceSettings,
    series: SeriesModels | None = None,
    live: LiveLoop | None = None,
) -> tuple[Any, threading.Thread]:
    """Serve the inference API on API_HOST:API_PORT from a uvicorn thread; wait until it listens.

    uvicorn installs no signal handlers off the main thread, so SIGTERM stays with the service.
    """
    import uvicorn

    from flts.api.inference_app import create_inference_app

    app = create_inference_app(state, settings, series=series)
    if live is not None:
        from flts.api.live_page import live_router
        from flts.serving.auth import bearer_check

        app.include_router(live_router(live.snapshot, bearer_check(settings.api_token)))
    # The same server settings as the API benchmark (flts.bench.api_server): uvloop + httptools.
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        proxy_headers=False,  # no proxy in front; saves a middleware per request
    )
    server = uvicorn.Server(config)
    sockets = [_reuse_port_socket(settings)] if settings.api_reuse_port else None
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": sockets}, name="flts-api", daemon=True
    )
    thread.start()
    while not server.started:
        if not thread.is_alive():
            where = f"{settings.api_host}:{settings.api_port}"
            raise StackError(f"inference API could not start on {where} (port in use?)")
        thread.join(0.05)
    log.info("inference API on http://%s:%d", settings.api_host, settings.api_port)
    return server, thread


def _reuse_port_socket(settings: InferenceSettings) -> socket.socket:
    """API_HOST:API_PORT bound with SO_REUSEPORT (API_REUSE_PORT): every replica on the host
    binds the same port and the kernel hands each new connection to one of them."""
    family = socket.AF_INET6 if ":" in settings.api_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((settings.api_host, settings.api_port))
    except OSError as exc:
        sock.close()
        where = f"{settings.api_host}:{settings.api_port}"
        raise StackError(f"inference API could not bind {where} with SO_REUSEPORT: {exc}") from exc
    return sock


def run(stop_event: threading.Event) -> int:
    """Run the batch consumer and the API until ``stop_event`` is set (SIGTERM/SIGINT)."""
    settings = load_settings(InferenceSettings)
    infra = Infra.from_env()
    tracker = mlflow_tracker()
    live_settings = load_settings(LiveSettings)
    topics = [settings.consumer_topic_0, settings.consumer_topic_1, settings.promotion_topic]
    live_topics = (
        live_settings.observations_topic,
        live_settings.forecasts_topic,
        live_settings.retrain_request_topic,
    )
    infra.ensure_topics(*topics, settings.producer_topic, *live_topics)
    state = ModelState()
    series = SeriesModels(settings.max_served_series, settings.max_served_series_bytes)
    ctx = StageContext(store=infra.store(), tracker=tracker)
    live = LiveLoop(live_settings, ctx, settings.producer_topic)
    server, thread = start_api(state, settings, series, live)
    try:
        service = InferenceService(settings, ctx, state, series=series, live=live)
        series.loader = service.load_series_champion
        warm_up(tracker, None)
        follower = PromotionFollower(
            settings.promotion_topic,
            consumer_config(infra.kafka, f"{settings.consumer_group_id}-follower"),
            service.follow_promotion,
            stop_event,
        )
        follower.start()  # reads the history first, before the start-up champion is loaded
        service.promotion_history = dict(follower.history)
        service.startup()
        stream = ObservationStream(
            live,
            consumer_config(
                infra.kafka,
                live_settings.group_id,
                **{"fetch.wait.max.ms": live_settings.fetch_wait_ms},
            ),
            # Its own producer without the shared one's 5 ms linger: a forecast is sent alone
            # and at once (the latency-critical output); claims' events may batch.
            create_producer(settings=infra.kafka, config={"linger.ms": 0}),
            stop_event,
            recover=service.recover_live_champion,
        )
        stream.start()
        worker = infra.worker(
            settings.consumer_group_id,
            topics,
            service.handle,
            service.dlq_topic,
            stop_event,
            "inference",
        )
        worker.run()
        stream.join(10.0)
        follower.join(10.0)
    finally:
        server.should_exit = True
        thread.join(10.0)
    return 0
