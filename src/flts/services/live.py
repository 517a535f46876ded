"""The live loop inside the inference service: observations in, forecasts and live metrics out.

The inference service hands this class every record of OBSERVATIONS_TOPIC and every promotion:

- a promotion makes its model the champion of its identifier (``ModelSelected.identifier``);
  observations of an identifier without one are refused (``MessageError``: the worker sends them
  to ``DLQ-observations`` with the reason) and the service keeps going;
- each observation goes through :class:`flts.stages.live.LiveSeries` (duplicates and
  out-of-order rows dropped and counted, gaps filled and flagged, earlier forecasts scored), and
  the champion's forecast of the next H steps goes to FORECASTS_TOPIC;
- every LIVE_METRICS_EVERY observations of an identifier, the forecasts since the last flush are
  written to ``inference-logs`` (JSONL, like batch inference), the rolling live metrics go to
  PRODUCER_TOPIC (``performance-eval``, ``kind="live"``), and the drift monitor
  (:func:`flts.stages.drift.judge`) may request retraining: the most recent rows become two CSVs
  in ``dataset`` and a PreprocessRequested goes to PREPROCESS_REQUEST_TOPIC, so preprocess,
  train and eval run as usual under a new config_hash.

The forecast is the latency-critical output; the flush's writes to S3 (log lines, retraining
CSVs) are not. :meth:`LiveLoop.observe` returns the forecast at once and keeps the flush's
writes and events aside (decided, not yet done); :meth:`LiveLoop.complete_deferred` writes them
and returns the events, which then point at objects that exist. The observations stream sends a
batch's forecasts first, then completes the deferred work; :meth:`LiveLoop.on_observation` does
both for one observation.

State is in memory; after a restart the observations stream replays each partition's recent
records as warm-up (``flts.services.live_stream``) and the champions promoted before come from
the promotion topic's history (``flts.services.promotion_follow``). The HTTP thread reads it through
:meth:`LiveLoop.snapshot`, under a lock.

Longer than the ~400-line norm: one class around one lock (windows, champions, pending flushes,
retrain cooldowns); the decisions are in ``flts.stages.live`` and ``flts.stages.drift``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from flts.domain.messages import (
    LiveForecast,
    ModelSelected,
    Observation,
    PerformanceEval,
    PreprocessRequested,
    utc_now_iso,
)
from flts.errors import DataValidationError, MessageError
from flts.messaging.records import Output
from flts.serving.model_state import LoadedModel
from flts.settings import LiveSettings
from flts.stages import drift
from flts.stages.live import Champion, LiveSeries, epoch_us, iso_of, series_for
from flts.stages.ports import BUCKET_DATASET, BUCKET_INFERENCE_LOGS, StageContext

log = logging.getLogger(__name__)

#: Flushes kept for a retry while S3 writes fail (about a KB of log lines each).
MAX_DEFERRED_FLUSHES = 1000


@dataclass
class RetrainRequest:
    """One retraining the monitor asked for, and what became of it."""

    identifier: str
    requested_at: str  # data time of the observation that triggered it
    reason: str
    champion_run_id: str
    champion_model_type: str
    live_mae: float | None
    live_persistence_mae: float | None
    train_object: str
    test_object: str
    #: Filled when a promotion for the identifier arrives after the request.
    promoted_run_id: str | None = None
    promoted_model_type: str | None = None
    promoted_reason: str | None = None


@dataclass(frozen=True)
class _Write:
    bucket: str
    key: str
    #: The bytes, or how to make them (serialising is left to the deferred phase too).
    data: bytes | Callable[[], bytes]
    content_type: str

    def payload(self) -> bytes:
        return self.data if isinstance(self.data, bytes) else self.data()


@dataclass(frozen=True)
class _Deferred:
    """A flush decided during an observation: its writes, then the events that cite them."""

    writes: list[_Write]
    outputs: list[Output]


@dataclass
class _Identifier:
    champion: Champion
    series: LiveSeries
    log_lines: list[bytes] = field(default_factory=list)
    forecast_ms: float = 0.0
    forecasts_since_flush: int = 0
    last_request_us: int | None = None


class LiveLoop:
    """Per-identifier champions, windows and monitors (see the module docstring)."""

    def __init__(self, settings: LiveSettings, ctx: StageContext, producer_topic: str) -> None:
        self.settings = settings
        self.ctx = ctx
        self.producer_topic = producer_topic
        self.policy = drift.DriftPolicy(
            persistence_ratio=settings.drift_persistence_ratio,
            test_ratio=settings.drift_test_ratio,
            coverage_drop=settings.drift_coverage_drop,
            min_points=settings.drift_min_points,
            cooldown_steps=settings.drift_cooldown_steps,
        )
        self._lock = threading.Lock()
        self._ids: dict[str, _Identifier] = {}
        self._deferred: list[_Deferred] = []
        self.retrains: list[RetrainRequest] = []

    # --- entry points -----------------------------------------------------------------------

    def on_champion(self, selected: ModelSelected, loaded: LoadedModel) -> None:
        """``loaded`` now answers for ``selected.identifier``; its window carries over."""
        champion = Champion(
            loaded.forecaster,
            loaded.run_id,
            loaded.model_type,
            loaded.config_hash,
            test_mae=selected.test_mae,
        )
        with self._lock:
            current = self._ids.get(selected.identifier)
            series = self._series_for(selected.identifier, champion, current)
            if current is None:
                self._ids[selected.identifier] = _Identifier(champion, series)
            else:
                current.champion, current.series = champion, series
                series.reset_metrics()
            # Evaluations finish in request order: a promotion answers the oldest open request.
            # (A challenger eval kept out sends no event, so a later promotion may be credited
            # to an earlier request; the promotion records in model-promotion are exact.)
            for request in self.retrains:
                if request.identifier == selected.identifier and request.promoted_run_id is None:
                    request.promoted_run_id = loaded.run_id
                    request.promoted_model_type = loaded.model_type
                    request.promoted_reason = f"composite score {selected.composite_score:.4g}"
                    break
        log.info(
            "live champion of %s: %s run %s",
            selected.identifier,
            loaded.model_type,
            loaded.run_id,
            extra={"identifier": selected.identifier},
        )

    def has_champion(self, identifier: str) -> bool:
        with self._lock:
            return identifier in self._ids

    def on_observation(self, obs: Observation) -> list[Output]:
        """Window, forecast, and every LIVE_METRICS_EVERY rows metrics, log and drift check."""
        return self.observe(obs) + self.complete_deferred()

    def observe(self, obs: Observation) -> list[Output]:
        """Window and forecast now; a due flush is decided here but its writes and events wait
        for :meth:`complete_deferred` (so no S3 round trip delays the forecast)."""
        with self._lock:
            entry = self._ids.get(obs.identifier)
            if entry is None:
                known = sorted(self._ids) or "none yet"
                raise MessageError(
                    f"observation for unknown identifier {obs.identifier!r}: no champion "
                    f"promoted for it (identifiers with a champion: {known})"
                )
            series = entry.series
            row = series.row_values(obs.values, f"observation of {obs.identifier}")
            accepted = series.accept(epoch_us(obs.timestamp), row)
            if accepted.status != "accepted":
                log.info(
                    "dropped %s observation at %s",
                    accepted.status,
                    obs.timestamp.isoformat(),
                    extra={"identifier": obs.identifier},
                )
                return []
            outputs: list[Output] = []
            if not obs.warmup:
                started = time.perf_counter()
                forecast = series.forecast(entry.champion, obs.sent_at)
                entry.forecast_ms += (time.perf_counter() - started) * 1000.0
                if forecast is not None:
                    entry.forecasts_since_flush += 1
                    entry.log_lines.extend(_log_lines(forecast))
                    topic = self.settings.forecasts_topic
                    outputs.append(Output(topic, forecast, key=obs.identifier))
            if entry.forecasts_since_flush >= self.settings.metrics_every:
                self._deferred.append(self._flush(obs.identifier, entry, accepted.timestamp_us))
            return outputs

    def complete_deferred(self) -> list[Output]:
        """Do the writes of the flushes decided since the last call; returns their events.

        If a write fails (S3 unreachable), the events done so far are lost with the exception
        but the failed flush and the later ones are kept for the next call (at most
        MAX_DEFERRED_FLUSHES; the oldest are dropped beyond, with an error logged).
        """
        with self._lock:
            deferred, self._deferred = self._deferred, []
        outputs: list[Output] = []
        for done, item in enumerate(deferred):
            try:
                for write in item.writes:
                    self.ctx.store.ensure_bucket(write.bucket)
                    self.ctx.store.put_bytes(
                        write.bucket, write.key, write.payload(), write.content_type
                    )
            except Exception:
                self._keep(deferred[done:])
                raise
            outputs.extend(item.outputs)
        return outputs

    def _keep(self, failed: list[_Deferred]) -> None:
        with self._lock:
            kept = failed + self._deferred
            if len(kept) > MAX_DEFERRED_FLUSHES:
                log.error(
                    "dropping %d live flushes: S3 writes keep failing",
                    len(kept) - MAX_DEFERRED_FLUSHES,
                )
                kept = kept[-MAX_DEFERRED_FLUSHES:]
            self._deferred = kept

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state for the live page: champions, recent points, metrics, retrains."""
        with self._lock:
            return {
                "identifiers": {ident: _view(e) for ident, e in self._ids.items()},
                "retrains": [r.__dict__.copy() for r in self.retrains],
                "timestamp": utc_now_iso(),
            }

    # --- internals --------------------------------------------------------------------------

    def _series_for(
        self, identifier: str, champion: Champion, current: _Identifier | None
    ) -> LiveSeries:
        fresh = series_for(
            identifier,
            champion,
            history_rows=self._retraining_rows(champion),
            metrics_window=self.settings.metrics_window,
            band_adaptation=self.settings.band_adaptation,
        )
        if current is None:
            return fresh
        old = current.series
        same_shape = old.columns == fresh.columns and old.step == fresh.step
        if same_shape and old.keep_rows >= fresh.keep_rows:
            return old  # the window carries over: no warm-up after a swap
        log.warning("the new champion of %s needs another window: it restarts", identifier)
        return fresh

    def _retraining_rows(self, champion: Champion) -> int:
        """Rows a retraining reads: the champion's own history (so a challenger of the same
        kind fits), RETRAIN_WINDOW_STEPS of training windows, RETRAIN_TEST_STEPS of test."""
        s = self.settings
        return champion.rows_needed + s.retrain_window_steps + s.retrain_test_steps

    def _flush(self, identifier: str, entry: _Identifier, now_us: int) -> _Deferred:
        series, champion = entry.series, entry.champion
        metrics = series.metrics()
        key = f"live/{identifier}/{champion.config_hash}/{champion.model_type}-{champion.run_id}"
        key += f"/{iso_of(now_us).replace(':', '')}.jsonl"
        writes = [
            _Write(
                BUCKET_INFERENCE_LOGS,
                key,
                b"\n".join(entry.log_lines) + b"\n",
                "application/x-ndjson",
            )
        ]
        windows = entry.forecasts_since_flush
        event = PerformanceEval(
            identifier=identifier,
            config_hash=champion.config_hash,
            model_type=champion.model_type,
            run_id=champion.run_id,
            rows=series.rows,
            windows=windows,
            latency_ms=entry.forecast_ms,
            latency_per_window_ms=entry.forecast_ms / windows,
            mae=metrics.mae,
            output_bucket=BUCKET_INFERENCE_LOGS,
            output_object=key,
            timestamp=utc_now_iso(),
            kind="live",
            live_points=metrics.points,
            live_mae=metrics.mae,
            live_persistence_mae=metrics.persistence_mae,
            live_coverage={str(lv): c for lv, c in metrics.coverage.items()},
            observations=series.observations,
            forecasts=series.forecasts,
            dropped_out_of_order=series.dropped_out_of_order,
            dropped_duplicate=series.dropped_duplicate,
            gap_filled_steps=series.gap_filled_steps,
        )
        entry.log_lines, entry.forecast_ms, entry.forecasts_since_flush = [], 0.0, 0
        outputs = [Output(self.producer_topic, event, key=identifier)]
        request = self._drift_check(identifier, entry, now_us, writes)
        if request is not None:
            outputs.append(request)
        return _Deferred(writes, outputs)

    def _drift_check(
        self, identifier: str, entry: _Identifier, now_us: int, writes: list[_Write]
    ) -> Output | None:
        metrics = entry.series.metrics()
        since = None
        if entry.last_request_us is not None:
            since = (now_us - entry.last_request_us) // (entry.series.step.seconds * 1_000_000)
        decision = drift.judge(
            metrics, self.policy, test_mae=entry.champion.test_mae, steps_since_request=since
        )
        if not decision.retrain:
            return None
        if not self.settings.retrain_enabled:
            log.warning("drift on %s (retraining off): %s", identifier, decision.reason)
            return None
        spec = entry.champion.forecaster.spec
        config = drift.retraining_config(spec)
        try:
            train, test = drift.retraining_frames(
                entry.series.frame(self._retraining_rows(entry.champion)),
                config,
                self.settings.retrain_test_steps,
            )
        except DataValidationError as exc:  # too little history yet: asked again next flush
            log.info("no retraining for %s yet: %s", identifier, exc)
            return None
        log.warning(
            "drift on %s: %s; retraining requested",
            identifier,
            decision.reason,
            extra={"identifier": identifier},
        )
        stamp = iso_of(now_us).replace(":", "")
        prefix = f"live-retrain/{identifier}/{stamp}"
        for name, part in (("train", train), ("test", test)):
            csv = functools.partial(drift.retraining_csv, part)
            writes.append(_Write(BUCKET_DATASET, f"{prefix}/{name}.csv", csv, "text/csv"))
        entry.last_request_us = now_us
        self.retrains.append(
            RetrainRequest(
                identifier=identifier,
                requested_at=iso_of(now_us),
                reason=decision.reason,
                champion_run_id=entry.champion.run_id,
                champion_model_type=entry.champion.model_type,
                live_mae=metrics.mae,
                live_persistence_mae=metrics.persistence_mae,
                train_object=f"{prefix}/train.csv",
                test_object=f"{prefix}/test.csv",
            )
        )
        request = PreprocessRequested(
            identifier=identifier,
            train_bucket=BUCKET_DATASET,
            train_object=f"{prefix}/train.csv",
            test_bucket=BUCKET_DATASET,
            test_object=f"{prefix}/test.csv",
            config=config.model_dump(mode="json"),
        )
        return Output(self.settings.retrain_request_topic, request, key=identifier)


def _log_lines(forecast: LiveForecast) -> list[bytes]:
    """The forecast as inference-logs JSONL lines (batch's fields plus the bands)."""
    constants = {
        "origin_ts": forecast.origin_timestamp,
        "identifier": forecast.identifier,
        "model_type": forecast.model_type,
        "run_id": forecast.run_id,
        "config_hash": forecast.config_hash,
        "gap_filled": forecast.gap_filled,
    }
    lines = []
    for step in forecast.steps:
        doc = step.model_dump()
        lines.append(
            orjson.dumps(
                {
                    "target_ts": doc.pop("target_timestamp"),
                    "horizon_step": doc.pop("step"),
                    "prediction": doc.pop("point"),
                    **doc,
                    **constants,
                }
            )
        )
    return lines


def _view(entry: _Identifier) -> dict[str, Any]:
    series, champion = entry.series, entry.champion
    metrics = series.metrics()
    return {
        "champion": {
            "run_id": champion.run_id,
            "model_type": champion.model_type,
            "config_hash": champion.config_hash,
            "test_mae": champion.test_mae,
        },
        "actuals": [[iso_of(t), v] for t, v in series.recent_actuals],
        "forecasts": [
            {
                "ts": iso_of(t),
                "point": p,
                **{f"lower_{lv}": b[0] for lv, b in bands.items()},
                **{f"upper_{lv}": b[1] for lv, b in bands.items()},
            }
            for t, p, bands in series.recent_forecasts
        ],
        "metrics": {
            "points": metrics.points,
            "live_mae": metrics.mae,
            "live_persistence_mae": metrics.persistence_mae,
            "coverage": {str(lv): c for lv, c in metrics.coverage.items()},
            "total_points": metrics.total_points,
            "total_mae": metrics.total_mae,
            "total_persistence_mae": metrics.total_persistence_mae,
            "total_coverage": {str(lv): c for lv, c in metrics.total_coverage.items()},
        },
        "band_scale": {
            f"{lv}/{step}": s for (lv, step), s in sorted(series.band_scale.scales.items())
        },
        "observations": series.observations,
        "forecasts_made": series.forecasts,
        "dropped_out_of_order": series.dropped_out_of_order,
        "dropped_duplicate": series.dropped_duplicate,
        "gap_filled_steps": series.gap_filled_steps,
    }
