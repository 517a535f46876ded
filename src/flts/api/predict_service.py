"""The /predict logic, free of any web framework: bytes in, status and bytes out.

Both entry points (the FastAPI route and the ASGI fast lane in ``inference_app``) call
:meth:`PredictService.handle`, so they cannot drift apart. Per request: read the current model
once (a hot swap mid-request does not affect it), parse and validate the body by hand, build the
scaled window with numpy, and await the micro-batcher.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs

import numpy as np
import orjson
from pydantic import SecretStr

from flts.api.batcher import MicroBatcher
from flts.api.metrics import InferenceMetrics
from flts.api.model_runtime import ModelRuntime
from flts.api.model_state import LoadedModel, ModelState
from flts.api.predict_schema import PredictInput, RequestError, parse_predict_body
from flts.errors import FltsError

logger = logging.getLogger(__name__)

PREDICT = "/predict"
_EPOCH = datetime(1970, 1, 1)
NO_MODEL = "no model is loaded yet; the service loads the champion on promotion or at start-up"


class ApiSettingsLike(Protocol):
    """What the app reads from ``flts.settings.InferenceSettings`` (or any look-alike)."""

    @property
    def api_token(self) -> SecretStr | None: ...

    @property
    def max_batch_size(self) -> int: ...

    @property
    def max_batch_wait_ms(self) -> float: ...


Answer = tuple[int, bytes]


def error_body(detail: Any) -> bytes:
    return orjson.dumps({"detail": detail})


class PredictService:
    """Model runtime cache, auth check, micro-batcher and metrics behind POST /predict."""

    def __init__(
        self,
        state: ModelState,
        settings: ApiSettingsLike,
        metrics: InferenceMetrics,
        *,
        thread_initializer: Any = None,
    ) -> None:
        self.state = state
        self.metrics = metrics
        token = settings.api_token
        self._token = None if token is None else f"Bearer {token.get_secret_value()}".encode()
        self.batcher = MicroBatcher(
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_batch_wait_ms,
            thread_initializer=thread_initializer,
            on_batch=metrics.observe_batch,
        )
        self._runtime: ModelRuntime | None = None
        self._lock = threading.Lock()
        state.subscribe(self._prepare)
        current = state.current()
        if current is not None:
            self.runtime_for(current)

    # -- model runtime -------------------------------------------------------------------------
    def _prepare(self, loaded: LoadedModel) -> None:
        self.runtime_for(loaded)

    def runtime_for(self, loaded: LoadedModel) -> ModelRuntime:
        """The prepared runtime of ``loaded``, built once per swap (in the swapping thread)."""
        runtime = self._runtime
        if runtime is not None and runtime.loaded is loaded:
            return runtime
        with self._lock:
            runtime = self._runtime
            if runtime is None or runtime.loaded is not loaded:
                runtime = ModelRuntime(loaded)
                if self.state.current() is loaded:
                    self._runtime = runtime
                    self.metrics.set_model(loaded, self.state.version, runtime.mode)
        return runtime

    # -- auth ----------------------------------------------------------------------------------
    def authorized(self, header: bytes | None) -> bool:
        if self._token is None:
            return True
        return header is not None and hmac.compare_digest(header, self._token)

    # -- /predict ------------------------------------------------------------------------------
    async def handle(self, body: bytes, query: bytes, authorization: bytes | None) -> Answer:
        """Answer one POST /predict; records count and latency."""
        started = time.perf_counter()
        status, payload = await self._answer(body, query, authorization)
        self.metrics.observe(PREDICT, status, time.perf_counter() - started)
        return status, payload

    async def _answer(self, body: bytes, query: bytes, authorization: bytes | None) -> Answer:
        if not self.authorized(authorization):
            return 401, error_body("missing or wrong bearer token")
        loaded = self.state.current()
        if loaded is None:
            return 503, error_body(NO_MODEL)
        runtime = self.runtime_for(loaded)
        try:
            inp = parse_predict_body(body, runtime.raw_columns)
            runtime.check_rows(inp)
            length = _length(inp, runtime.spec.horizon)
            if runtime.batched:
                assert runtime.runner is not None
                values = await self.batcher.submit(runtime.runner, runtime.window(inp))
            else:
                values = await asyncio.to_thread(runtime.predict_reference, inp)
        except RequestError as exc:
            return 422, error_body([exc.detail()])
        except FltsError as exc:
            detail = {"type": "value_error", "loc": ["body"], "msg": str(exc)}
            return 422, error_body([detail])
        except Exception:
            logger.exception("prediction failed for run_id=%s", loaded.run_id)
            return 500, error_body("prediction failed; see the service log")
        legacy = inp.legacy or _wants_legacy(query)
        return 200, _response(runtime, inp, values[:length], legacy)


def _length(inp: PredictInput, horizon: int) -> int:
    if inp.inference_length is None:
        return horizon
    if not 1 <= inp.inference_length <= horizon:
        raise RequestError(
            ("body", "inference_length"),
            f"must be between 1 and the model's horizon {horizon}; got {inp.inference_length}",
            "less_than_equal" if inp.inference_length > horizon else "greater_than_equal",
        )
    return inp.inference_length


def _wants_legacy(query: bytes) -> bool:
    if not query:
        return False
    values = parse_qs(query.decode("latin-1")).get("format", [])
    return "legacy" in values


def _timestamps(last_us: int, step_seconds: int, n: int) -> list[str]:
    """ISO 8601 (UTC, no offset) of the ``n`` steps after ``last_us``."""
    first = _EPOCH + timedelta(microseconds=last_us)
    step = timedelta(seconds=step_seconds)
    return [(first + step * k).isoformat() for k in range(1, n + 1)]


def _response(runtime: ModelRuntime, inp: PredictInput, values: np.ndarray, legacy: bool) -> bytes:
    """The answer's bytes: a per-model pre-serialised head, then only the forecast points."""
    stamps = _timestamps(int(inp.times_us[-1]), runtime.spec.step_seconds, len(values))
    numbers: list[float] = values.tolist()
    head, tail = _heads(runtime, legacy)
    if legacy:
        target = runtime.spec.target
        rows = [{"ts": ts, target: v} for ts, v in zip(stamps, numbers, strict=True)]
    else:
        rows = [
            {"ts": ts, "step": k, "value": v}
            for k, (ts, v) in enumerate(zip(stamps, numbers, strict=True), start=1)
        ]
    return head + orjson.dumps(rows) + tail


def _heads(runtime: ModelRuntime, legacy: bool) -> tuple[bytes, bytes]:
    """Everything around the list of points, serialised once per model and shape.

    The whole document is dumped with an empty list and cut at that list, so the bytes are
    exactly what dumping the full document would give.
    """
    cached = runtime.response_heads.get(legacy)
    if cached is not None:
        return cached
    loaded = runtime.loaded
    doc: dict[str, Any]
    if legacy:
        doc = {
            "status": "SUCCESS",
            "identifier": loaded.identifier,
            "run_id": loaded.run_id,
            "predictions": [],
        }
        marker = b'"predictions":[]'
    else:
        doc = {
            "model": {
                "model_type": loaded.model_type,
                "run_id": loaded.run_id,
                "model_uri": loaded.model_uri,
                "config_hash": loaded.config_hash,
            },
            "target": runtime.spec.target,
            "unit": "original",
            "forecast": [],
        }
        marker = b'"forecast":[]'
    full = orjson.dumps(doc)
    cut = full.rindex(marker) + len(marker) - 2
    heads = (full[:cut], full[cut + 2 :])
    runtime.response_heads[legacy] = heads
    return heads
