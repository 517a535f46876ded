"""The inference HTTP API: forecasts from the current champion, on demand.

Endpoints: ``POST /predict`` (bodies: ``flts.serving.validation``), ``GET /predict_ping`` (what
the existing load-test client needs to build requests), ``GET /model``, ``GET /healthz``
(alive, plus ``model_ready``), ``GET /readyz``, ``GET /metrics`` (Prometheus) and the OpenAPI
docs at ``/docs``. With an API token set, /predict and /model need ``Authorization: Bearer
<token>``; health, readiness, ping and metrics stay open for probes, scrapers and old clients.

Speed: POST /predict is served by a small ASGI "fast lane" in front of FastAPI's telemetry
check, middleware stack, routing and dependency machinery (which together cost more per request
than the model itself): :class:`InferenceApp` hands POST /predict to it before anything else
runs. The documented FastAPI route (used when the lane is off) runs the same
:func:`serve_predict`, so both answer byte for byte alike. The serving logic itself (limits,
validation, batching, hot swap) lives in :mod:`flts.serving`; this module is transport only.

Example::

    state = ModelState()
    app = create_inference_app(state, load_settings(InferenceSettings))
    uvicorn.run(app, host="127.0.0.1", port=18000)
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from flts.api.predict_schema import (
    PREDICT_OPENAPI,
    PREDICT_RESPONSES,
    HealthResponse,
    PingResponse,
    ReadyResponse,
    problem,
)
from flts.serving.metrics import CONTENT_TYPE, InferenceMetrics
from flts.serving.model_state import ModelState
from flts.serving.series_models import SeriesModels, describe_loaded
from flts.serving.service import NO_MODEL, PREDICT, Answer, PredictService, error_body
from flts.serving.settings import ApiSettings, ApiSettingsLike

logger = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")


def set_torch_threads(threads: int) -> None:
    """Worker-thread initializer: the serving setting API_TORCH_THREADS (process-wide in torch).

    One intra-op thread measured fastest for batches of small RNN windows next to a busy event
    loop. A model's training ``torch_threads`` never applies here.
    """
    import torch

    torch.set_num_threads(threads)


def create_inference_app(
    state: ModelState,
    settings: ApiSettingsLike | None = None,
    *,
    fast_lane: bool = True,
    thread_initializer: Callable[[], None] | None = None,
    series: SeriesModels | None = None,
) -> FastAPI:
    """Build the app around ``state``; ``settings`` defaults to :class:`ApiSettings()`.

    ``thread_initializer`` runs once in the forward thread; the default applies the serving
    setting ``api_torch_threads``.
    """
    settings = settings or ApiSettings()
    metrics = InferenceMetrics()
    initializer = thread_initializer or partial(set_torch_threads, settings.api_torch_threads)
    service = PredictService(
        state, settings, metrics, thread_initializer=initializer, series=series
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await service.batcher.aclose()

    app = InferenceApp(
        title="FLTS inference API",
        description="Forecasts in original units from the current champion model.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.model_state = state
    app.state.metrics = metrics
    app.add_exception_handler(Exception, _unexpected)
    _add_routes(app, service)
    if fast_lane:
        app.fast_lane = PredictFastLane(app.router, service)
    return app


async def _unexpected(request: Request, exc: Exception) -> Response:
    """Any unexpected failure outside /predict: 500 with a request id, no traceback."""
    rid = uuid.uuid4().hex
    logger.error("unhandled error: request_id=%s %s", rid, request.url.path, exc_info=exc)
    body = error_body("internal error; see the service log", request_id=rid)
    return Response(body, 500, media_type="application/json", headers={"x-request-id": rid})


class InferenceApp(FastAPI):
    """FastAPI, except that POST /predict goes straight to the fast lane when one is set."""

    fast_lane: PredictFastLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.fast_lane
        if (
            lane is not None
            and scope["type"] == "http"
            and scope["path"] == PREDICT
            and scope["method"] == "POST"
        ):
            await lane.serve(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The body, refused (``_TooLarge``) as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def serve_predict(service: PredictService, scope: Scope, receive: Receive) -> Answer | None:
    """One POST /predict: headers checked before the body is read; None if the client left."""
    auth = length = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            auth = value
        elif name == b"content-length":
            length = value
    early = service.refuse_early(auth, length)
    if early is not None:
        return early
    try:
        body = await _read_body(receive, service.max_body_bytes)
    except _TooLarge:
        return service.too_large()
    except _Disconnected:
        return None
    return await service.predict(body, scope.get("query_string", b""))


class PredictFastLane:
    """Pure ASGI middleware answering POST /predict before FastAPI's routing runs."""

    def __init__(self, app: ASGIApp, service: PredictService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        await self.serve(scope, receive, send)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one POST /predict (the caller checked type, path and method)."""
        started = time.perf_counter()
        answer = await serve_predict(self.service, scope, receive)
        if answer is None:
            return
        self.service.metrics.observe(PREDICT, answer.status, time.perf_counter() - started)
        headers = [_JSON, (b"content-length", str(len(answer.body)).encode()), *answer.headers]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


def _add_routes(app: FastAPI, service: PredictService) -> None:
    metrics = service.metrics

    def answer(endpoint: str, status: int, payload: Any, started: float) -> Response:
        metrics.observe(endpoint, status, time.perf_counter() - started)
        return json_response(payload, status)

    @app.post(
        PREDICT,
        openapi_extra=PREDICT_OPENAPI,
        responses=PREDICT_RESPONSES,
        summary="Forecast the steps after the supplied window",
    )
    async def predict(
        request: Request,
        format: str | None = None,
        intervals: bool | None = None,
        identifier: str | None = None,
    ) -> Response:
        """``?format=legacy`` answers in the existing pipeline's shape. ``?intervals=true|false``
        adds or leaves out the prediction intervals (``lower_80``, ``upper_80``, ...) of a
        calibrated model; by default the new shape has them and the legacy shape does not.
        ``?identifier=`` picks a series' champion (as the body field ``identifier`` does)."""
        started = time.perf_counter()
        result = await serve_predict(service, request.scope, request.receive)
        if result is None:
            return Response(status_code=499)  # nobody is listening any more
        metrics.observe(PREDICT, result.status, time.perf_counter() - started)
        headers = {k.decode(): v.decode() for k, v in result.headers}
        return Response(result.body, result.status, headers=headers, media_type="application/json")

    @app.get(
        "/model",
        summary="The answering model (or that of ?identifier=) and its spec",
        responses={
            401: problem("API token required"),
            404: problem("No champion for this identifier"),
            503: problem("No model loaded yet"),
        },
    )
    async def model(request: Request, identifier: str | None = None) -> Response:
        started = time.perf_counter()
        auth = request.headers.get("authorization")
        if not service.authorized(None if auth is None else auth.encode("latin-1")):
            return answer("/model", 401, {"detail": "missing or wrong bearer token"}, started)
        runtime = await service.runtime_for(identifier or None)
        if runtime is None and identifier:
            detail = f"no champion is served for identifier {identifier!r}"
            return answer("/model", 404, {"detail": detail}, started)
        if runtime is None:
            return answer("/model", 503, {"detail": NO_MODEL}, started)
        loaded, spec = runtime.loaded, runtime.spec
        payload = {
            "model_type": loaded.model_type,
            "run_id": loaded.run_id,
            "model_uri": loaded.model_uri,
            "config_hash": loaded.config_hash,
            "identifier": loaded.identifier,
            "source": loaded.source,
            "loaded_at": loaded.loaded_at.isoformat(),
            "version": service.state.version,
            "min_rows": runtime.min_rows,
            "serving_mode": runtime.mode,
            "interval_levels": [level for level, _, _ in runtime.band_offsets],
            # How the model's forecasts are finished (a floor, zeros, hedging toward the last
            # posted value); null: served as the model forecasts.
            "point_calibration": runtime.point_calibration,
            "spec": {
                "target": spec.target,
                "feature_order": list(spec.feature_order),
                "raw_columns": list(runtime.raw_columns),
                "lookback": spec.lookback,
                "horizon": spec.horizon,
                "step_seconds": spec.step_seconds,
                "step_months": spec.step_months or None,
                "season_steps": spec.season_steps,
                "time_features": spec.time_features,
                "lags": list(spec.lags),
                # The zone whose clock the seasonal lags follow; null: UTC steps.
                "clock_zone": spec.clock_zone,
            },
        }
        return answer("/model", 200, payload, started)

    @app.get(
        "/models",
        summary="Every champion served: the default model and the per-series cache",
        responses={401: problem("API token required")},
    )
    async def models(request: Request) -> Response:
        started = time.perf_counter()
        auth = request.headers.get("authorization")
        if not service.authorized(None if auth is None else auth.encode("latin-1")):
            return answer("/models", 401, {"detail": "missing or wrong bearer token"}, started)
        runtime = service.runtime
        cache = service.series
        payload = {
            "default": None if runtime is None else describe_loaded(runtime.loaded),
            "series": [] if cache is None else cache.describe(),
            "cache": None
            if cache is None
            else {
                "max_models": cache.max_models,
                "max_bytes": cache.max_bytes,
                "estimated_bytes": cache.total_bytes(),
                "evictions": cache.evictions,
            },
        }
        return answer("/models", 200, payload, started)

    @app.get("/predict_ping", response_model=PingResponse, summary="Request shape for clients")
    async def predict_ping() -> Response:
        """``input_seq_len`` rows in, ``output_seq_len`` steps out (the existing clients' names)."""
        runtime = service.runtime
        if runtime is None:
            empty = dict.fromkeys(PingResponse.model_fields, None)
            return json_response({**empty, "model_loaded": False}, 200)
        payload = {
            "model_loaded": True,
            "input_seq_len": runtime.min_rows,
            "output_seq_len": runtime.spec.horizon,
            "model_type": runtime.loaded.model_type,
            "step_seconds": runtime.spec.step_seconds,
            "target": runtime.spec.target,
            "raw_columns": list(runtime.raw_columns),
        }
        return json_response(payload, 200)

    @app.get("/healthz", response_model=HealthResponse, summary="The process is alive")
    async def healthz() -> Response:
        return json_response({"status": "ok", "model_ready": _any_model(service)}, 200)

    @app.get(
        "/readyz",
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse, "description": "No model loaded yet"}},
        summary="200 once a model is loaded, else 503",
    )
    async def readyz() -> Response:
        runtime = service.runtime
        if runtime is None and not _any_model(service):
            return json_response({"status": "not ready", "detail": NO_MODEL}, 503)
        # A fleet-only service (no default champion) is ready once one series' champion is in.
        model_type = None if runtime is None else runtime.loaded.model_type
        return json_response({"status": "ready", "model_type": model_type}, 200)

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)


def _any_model(service: PredictService) -> bool:
    """The default champion, or at least one series' champion, is loaded."""
    return service.runtime is not None or (service.series is not None and len(service.series) > 0)


def json_response(payload: Any, status: int) -> Response:
    """orjson-encoded JSON (FastAPI's ORJSONResponse is deprecated; this is the same thing)."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(orjson.dumps(payload), status, headers=headers, media_type="application/json")


__all__ = [
    "ApiSettings",
    "InferenceApp",
    "PredictFastLane",
    "create_inference_app",
    "error_body",
    "serve_predict",
    "set_torch_threads",
]
