"""The inference HTTP API: forecasts from the current champion, on demand.

Endpoints: ``POST /predict`` (see ``predict_schema`` for the bodies), ``GET /model``,
``GET /healthz``, ``GET /readyz``, ``GET /metrics`` (Prometheus) and the OpenAPI docs at
``/docs``. With an API token set, /predict and /model need ``Authorization: Bearer <token>``;
health, readiness and metrics stay open for probes and scrapers.

Speed: POST /predict is served by a small ASGI "fast lane" in front of FastAPI's telemetry
check, middleware stack, routing and dependency machinery (which together cost more per request
than the model itself): :class:`InferenceApp` hands POST /predict to it before anything else
runs. It calls the same
:class:`PredictService` as the documented FastAPI route, which answers whenever the fast lane is
turned off. The service process runs this app with uvicorn and swaps models through
:class:`flts.api.model_state.ModelState`.

Example::

    state = ModelState()
    app = create_inference_app(state, load_settings(InferenceSettings))
    uvicorn.run(app, host="127.0.0.1", port=18000)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from flts.api.metrics import CONTENT_TYPE, InferenceMetrics
from flts.api.model_state import ModelState
from flts.api.predict_schema import PREDICT_OPENAPI, LegacyResponse, PredictResponse
from flts.api.predict_service import NO_MODEL, PREDICT, ApiSettingsLike, PredictService, error_body

_JSON = [(b"content-type", b"application/json")]
_CHALLENGE = (b"www-authenticate", b"Bearer")


@dataclass(frozen=True)
class ApiSettings:
    """Stand-alone settings for tests and embedding; the service passes InferenceSettings."""

    api_token: SecretStr | None = None
    max_batch_size: int = 64
    max_batch_wait_ms: float = 2.0


def one_torch_thread() -> None:
    """Worker-thread initializer: small batched forwards are fastest on one intra-op thread."""
    import torch

    torch.set_num_threads(1)


def create_inference_app(
    state: ModelState,
    settings: ApiSettingsLike | None = None,
    *,
    fast_lane: bool = True,
    thread_initializer: Callable[[], None] | None = one_torch_thread,
) -> FastAPI:
    """Build the app around ``state``; ``settings`` defaults to :class:`ApiSettings()`.

    ``thread_initializer`` runs once in the forward thread; the default sets torch to one
    intra-op thread (process-wide in torch), which measured fastest for batches of small RNN
    windows next to a busy event loop. Pass None to leave torch's threading alone.
    """
    settings = settings or ApiSettings()
    metrics = InferenceMetrics()
    service = PredictService(state, settings, metrics, thread_initializer=thread_initializer)

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
    _add_routes(app, service)
    if fast_lane:
        app.fast_lane = PredictFastLane(app.router, service)
    return app


class InferenceApp(FastAPI):
    """FastAPI, except that POST /predict goes straight to the fast lane when one is set.

    FastAPI's ``__call__`` checks its telemetry configuration (environment reads) and runs the
    error, body-limit and exception middlewares on every request; for /predict that costs more
    than parsing the body. The fast lane answers every error itself (422/401/503/500), so none
    of those layers has anything to add there; every other path takes FastAPI's full route.
    """

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


def _add_routes(app: FastAPI, service: PredictService) -> None:
    state, metrics = service.state, service.metrics

    def answer(endpoint: str, status: int, payload: Any, started: float) -> Response:
        metrics.observe(endpoint, status, time.perf_counter() - started)
        return json_response(payload, status)

    @app.post(
        PREDICT,
        openapi_extra=PREDICT_OPENAPI,
        responses={
            200: {"model": PredictResponse | LegacyResponse},
            401: {"description": "API token required"},
            422: {"description": "The body names the field at fault (FastAPI detail format)"},
            503: {"description": "No model loaded yet"},
        },
        summary="Forecast the steps after the supplied window",
    )
    async def predict(request: Request, format: str | None = None) -> Response:
        """``?format=legacy`` answers in the existing pipeline's shape."""
        body = await request.body()
        auth = request.headers.get("authorization")
        status, payload = await service.handle(
            body, request.url.query.encode(), None if auth is None else auth.encode("latin-1")
        )
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return Response(payload, status, headers=headers, media_type="application/json")

    @app.get("/model", summary="The answering model and its spec")
    async def model(request: Request) -> Response:
        started = time.perf_counter()
        auth = request.headers.get("authorization")
        if not service.authorized(None if auth is None else auth.encode("latin-1")):
            return answer("/model", 401, {"detail": "missing or wrong bearer token"}, started)
        loaded = state.current()
        if loaded is None:
            return answer("/model", 503, {"detail": NO_MODEL}, started)
        runtime = service.runtime_for(loaded)
        spec = loaded.forecaster.spec
        payload = {
            "model_type": loaded.model_type,
            "run_id": loaded.run_id,
            "model_uri": loaded.model_uri,
            "config_hash": loaded.config_hash,
            "identifier": loaded.identifier,
            "source": loaded.source,
            "loaded_at": loaded.loaded_at.isoformat(),
            "version": state.version,
            "min_rows": runtime.min_rows,
            "serving_mode": runtime.mode,
            "spec": {
                "target": spec.target,
                "feature_order": list(spec.feature_order),
                "raw_columns": list(runtime.raw_columns),
                "lookback": spec.lookback,
                "horizon": spec.horizon,
                "step_seconds": spec.step_seconds,
                "season_steps": spec.season_steps,
                "time_features": spec.time_features,
                "lags": list(spec.lags),
            },
        }
        return answer("/model", 200, payload, started)

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="200 once a model is loaded, else 503")
    async def readyz() -> Response:
        loaded = state.current()
        if loaded is None:
            return json_response({"status": "not ready", "detail": NO_MODEL}, 503)
        return json_response({"status": "ready", "model_type": loaded.model_type}, 200)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)


def json_response(payload: Any, status: int) -> Response:
    """orjson-encoded JSON (FastAPI's ORJSONResponse is deprecated; this is the same thing)."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(orjson.dumps(payload), status, headers=headers, media_type="application/json")


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
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        auth = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        status, payload = await self.service.handle(body, scope.get("query_string", b""), auth)
        headers = [*_JSON, (b"content-length", str(len(payload)).encode())]
        if status == 401:
            headers.append(_CHALLENGE)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


__all__ = [
    "ApiSettings",
    "InferenceApp",
    "PredictFastLane",
    "create_inference_app",
    "error_body",
    "one_torch_thread",
]
