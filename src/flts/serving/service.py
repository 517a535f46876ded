"""The /predict logic, free of any web framework: headers and body in, status and bytes out.

Every route that answers POST /predict (the ASGI fast lane and the documented FastAPI route in
``flts.api.inference_app``) calls this one class, so they cannot drift apart. Per request: check
the token and the declared size before reading the body, read the answering runtime once (a hot
swap mid-request does not affect it), decode and validate the body (:mod:`validation`), build
the scaled window and await the micro-batcher under the request deadline.

Status codes: 401 token, 413 body too large, 422 client mistake (``loc`` names the field), 503
no model yet or queue full (with Retry-After), 504 deadline passed, 500 anything else, with a
request id that is also in the log line holding the traceback (never in the body).

Hot swap: :class:`ModelState` listeners run in the swapping thread (the Kafka consumer's), so
the new :class:`ModelRuntime` is built and checked there, and only then published with one
attribute assignment; requests never wait for a swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import orjson

from flts.forecasting.time_step import TimeStep
from flts.serving.auth import bearer_check
from flts.serving.batcher import DeadlineExceeded, MicroBatcher, QueueFull
from flts.serving.metrics import InferenceMetrics
from flts.serving.model_state import LoadedModel, ModelState
from flts.serving.runtime import ModelRuntime, band_factor
from flts.serving.series_models import SeriesModels
from flts.serving.settings import ApiSettingsLike
from flts.serving.validation import PredictInput, RequestError, parse_predict_body

logger = logging.getLogger(__name__)

PREDICT = "/predict"
_EPOCH = datetime(1970, 1, 1)
NO_MODEL = "no model is loaded yet; the service loads the champion on promotion or at start-up"
RETRY_AFTER_SECONDS = 1

Headers = list[tuple[bytes, bytes]]


class Answer:
    """Status, JSON body and extra headers of one response."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Headers | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []


def error_body(detail: Any, **extra: Any) -> bytes:
    return orjson.dumps({"detail": detail, **extra})


def client_error(status: int, loc: list[str | int], msg: str, kind: str) -> Answer:
    """A 4xx in FastAPI's validation-error shape."""
    return Answer(status, error_body([{"type": kind, "loc": loc, "msg": msg}]))


def server_error(
    status: int, msg: str, request_id: str | None = None, retry: bool = False
) -> Answer:
    """A 5xx: a message and a request id, never a traceback; ``retry`` adds Retry-After."""
    rid = request_id or uuid.uuid4().hex
    headers = [(b"x-request-id", rid.encode())]
    if retry:
        headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    return Answer(status, error_body(msg, request_id=rid), headers)


class PredictService:
    """Runtime of the answering model, auth, limits, micro-batcher and metrics."""

    def __init__(
        self,
        state: ModelState,
        settings: ApiSettingsLike,
        metrics: InferenceMetrics,
        *,
        thread_initializer: Any = None,
        series: SeriesModels | None = None,
    ) -> None:
        self.state = state
        #: Champions per identifier (a fleet); None serves only the state's model.
        self.series = series
        self.metrics = metrics
        self.settings = settings
        self._token_check = bearer_check(settings.api_token)
        self.max_body_bytes = settings.api_max_body_bytes
        self.max_rows = settings.api_max_rows
        self.timeout = settings.api_request_timeout_ms / 1000.0
        self.batcher = MicroBatcher(
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_batch_wait_ms,
            max_queue=settings.api_max_queue,
            thread_initializer=thread_initializer,
            on_batch=metrics.observe_batch,
            in_loop=settings.api_forward_in_loop,
        )
        self.runtime: ModelRuntime | None = None
        self._unbatched_inflight = 0  # only touched on the event loop
        state.subscribe(self._on_swap)
        current = state.current()
        if current is not None:
            self._on_swap(current)

    # -- model runtime -------------------------------------------------------------------------
    def _on_swap(self, loaded: LoadedModel) -> None:
        """Build and check the runtime here (the swapping thread), then publish it at once."""
        started = time.perf_counter()
        try:
            runtime = ModelRuntime(loaded)
        except Exception:
            logger.exception(
                "cannot serve run_id=%s; the previous model keeps answering", loaded.run_id
            )
            return
        if self.state.current() is not loaded:
            return  # a newer model arrived meanwhile; its own listener call publishes it
        self.runtime = runtime
        self.metrics.set_model(loaded, self.state.version, runtime.mode)
        logger.info(
            "serving run_id=%s (runtime built in %.0f ms)",
            loaded.run_id,
            1000 * (time.perf_counter() - started),
        )

    # -- limits checked before the body is read ------------------------------------------------
    def authorized(self, header: bytes | None) -> bool:
        return self._token_check(header)

    def refuse_early(
        self, authorization: bytes | None, content_length: bytes | None
    ) -> Answer | None:
        """401, 400 or 413 from the headers alone, or None to go on and read the body."""
        if not self.authorized(authorization):
            return Answer(
                401,
                error_body("missing or wrong bearer token"),
                [(b"www-authenticate", b"Bearer")],
            )
        if content_length is not None:
            try:
                declared = int(content_length)
            except ValueError:
                return client_error(400, ["header", "content-length"], "not an integer", "int_type")
            if declared > self.max_body_bytes:
                return self.too_large()
        return None

    def too_large(self) -> Answer:
        msg = f"body larger than this server's limit of {self.max_body_bytes} bytes"
        return client_error(413, ["body"], msg + " (API_MAX_BODY_BYTES)", "too_large")

    # -- /predict ------------------------------------------------------------------------------
    async def runtime_for(self, identifier: str | None) -> ModelRuntime | None:
        """The runtime answering for ``identifier`` (None: the state's model).

        The state's model answers for its own identifier; any other goes to the per-series
        cache, which may load the identifier's champion from the registry.
        """
        runtime = self.runtime
        if identifier is None or (runtime is not None and runtime.loaded.identifier == identifier):
            return runtime
        if self.series is None:
            return None
        return await self.series.resolve(identifier)

    async def predict(self, body: bytes, query: bytes) -> Answer:
        """Answer one POST /predict whose headers passed :meth:`refuse_early`."""
        try:
            identifier = requested_identifier(body, query)
        except RequestError as exc:
            return Answer(422, error_body([exc.detail()]))
        if identifier is None:
            runtime = self.runtime
            if runtime is None:
                return server_error(503, NO_MODEL, retry=True)
        else:
            try:
                runtime = await self.runtime_for(identifier)
            except Exception:
                rid = uuid.uuid4().hex
                logger.exception(
                    "loading the champion of %s failed: request_id=%s", identifier, rid
                )
                return server_error(503, "the champion could not be loaded; retry", rid, True)
            if runtime is None:
                return Answer(
                    404, error_body(f"no champion is served for identifier {identifier!r}")
                )
        try:
            legacy_query, bands_query = _query_flags(query)
            inp = parse_predict_body(body, runtime.raw_columns, self.max_rows)
            runtime.check_rows(inp)
            length = _length(inp, runtime.spec.horizon)
            if runtime.batched:
                assert runtime.runner is not None
                window = runtime.window(inp)
                values = await self.batcher.submit(runtime.runner, window, self.timeout)
            else:
                values = await self._unbatched(runtime, inp)
        except RequestError as exc:
            return Answer(422, error_body([exc.detail()]))
        except QueueFull:
            return server_error(503, "overloaded: too many requests queued; retry", retry=True)
        except (DeadlineExceeded, TimeoutError):
            return server_error(
                504, f"no forecast within {self.timeout:g} s (API_REQUEST_TIMEOUT_MS)"
            )
        except Exception:
            rid = uuid.uuid4().hex
            logger.exception(
                "prediction failed: request_id=%s run_id=%s", rid, runtime.loaded.run_id
            )
            return server_error(500, "prediction failed; see the service log", rid)
        if not np.isfinite(values[:length]).all():
            # Finite but absurd inputs (1e300) overflow the model: the client's values, not us.
            problem = RequestError(
                ("body", *inp.base_loc),
                "the values are far outside what this model was trained on: its forecast is "
                "not a finite number",
                "value_error",
            )
            return Answer(422, error_body([problem.detail()]))
        legacy = inp.legacy or legacy_query
        # Bands by default in the new shape; the legacy shape only gains them when asked, so
        # its existing clients get the same bytes as before.
        bands = (not legacy) if bands_query is None else bands_query
        return Answer(200, _response(runtime, inp, values[:length], legacy, bands))

    async def _unbatched(self, runtime: ModelRuntime, inp: PredictInput) -> np.ndarray:
        """Prophet and baselines: one predict per request in a worker thread, bounded like the
        batcher's queue (API_MAX_QUEUE) so overload answers 503 instead of piling up."""
        if self._unbatched_inflight >= self.settings.api_max_queue:
            raise QueueFull(f"{self._unbatched_inflight} unbatched predictions in flight")
        self._unbatched_inflight += 1
        try:
            work = asyncio.to_thread(runtime.predict_reference, inp)
            return await asyncio.wait_for(work, self.timeout)
        finally:
            self._unbatched_inflight -= 1


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


_IDENTIFIER_FIELD = b'"identifier"'


def requested_identifier(body: bytes, query: bytes) -> str | None:
    """The series a request names: ``"identifier"`` in the body, else ``?identifier=``.

    The body is decoded a second time only when it mentions the field, so requests without it
    (single-series clients) keep the one-decode fast path.
    """
    if _IDENTIFIER_FIELD in body:
        with contextlib.suppress(orjson.JSONDecodeError):
            doc = orjson.loads(body)
            if isinstance(doc, dict) and "identifier" in doc:
                value = doc["identifier"]
                if not isinstance(value, str) or not value:
                    raise RequestError(
                        ("body", "identifier"), "must be a non-empty string", "string_type"
                    )
                return value
    if query and b"identifier=" in query:
        values = parse_qs(query.decode("latin-1")).get("identifier", [])
        if values and values[0]:
            return values[0]
    return None


def _query_flags(query: bytes) -> tuple[bool, bool | None]:
    """``?format=legacy`` and ``?intervals=true|false`` (None: not given) from the query."""
    if not query:
        return False, None
    return _parsed_query_flags(query)


@lru_cache(maxsize=256)
def _parsed_query_flags(query: bytes) -> tuple[bool, bool | None]:
    """Cached: a client sends the same few query strings over and over, and parse_qs costs
    more than the rest of the request's routing (a refused query raises and is not cached)."""
    params = parse_qs(query.decode("latin-1"))
    legacy = "legacy" in params.get("format", [])
    given = params.get("intervals")
    if given is None:
        return legacy, None
    if given[-1] not in ("true", "false"):
        raise RequestError(
            ("query", "intervals"),
            f"must be true or false; got {given[-1]!r}",
            "bool_parsing",
        )
    return legacy, given[-1] == "true"


@lru_cache(maxsize=1024)
def _timestamps(last_us: int, step: TimeStep, n: int) -> tuple[str, ...]:
    """ISO 8601 (UTC, no offset) of the ``n`` steps after ``last_us`` (validated in range).

    Cached: concurrent clients of a live series ask about the same latest timestamp.
    """
    stamps = step.shift_us(last_us, np.arange(1, n + 1, dtype=np.int64))
    return tuple((_EPOCH + timedelta(microseconds=int(us))).isoformat() for us in stamps)


def _response(
    runtime: ModelRuntime, inp: PredictInput, values: np.ndarray, legacy: bool, bands: bool
) -> bytes:
    """The answer's bytes: a per-model pre-serialised head, then only the forecast points."""
    stamps = _timestamps(int(inp.times_us[-1]), runtime.step, len(values))
    head, tail = runtime.response_heads[legacy]
    if bands and runtime.band_offsets:
        factor = band_factor(runtime, inp, values)
        return head + orjson.dumps(_rows_with_bands(runtime, stamps, values, legacy, factor)) + tail
    numbers: list[float] = values.tolist()
    if legacy:
        target = runtime.spec.target
        rows = [{"ts": ts, target: v} for ts, v in zip(stamps, numbers, strict=True)]
    else:
        rows = [
            {"ts": ts, "step": k, "value": v}
            for k, (ts, v) in enumerate(zip(stamps, numbers, strict=True), start=1)
        ]
    return head + orjson.dumps(rows) + tail


def _rows_with_bands(
    runtime: ModelRuntime,
    stamps: tuple[str, ...],
    values: np.ndarray,
    legacy: bool,
    factor: np.ndarray | float = 1.0,
) -> list[dict[str, Any]]:
    """Forecast rows plus ``lower_<level>``/``upper_<level>`` for each calibrated level, the
    offsets times ``factor`` (:func:`flts.serving.runtime.band_factor`)."""
    n = len(values)
    offsets = runtime.band_matrix[:, :n]
    if runtime.zero_band_matrix is not None:  # zero forecasts have bands of their own
        offsets = np.where(values == 0.0, runtime.zero_band_matrix[:, :n], offsets)
    bands = values + factor * offsets  # (2 x levels, n) in one step
    if runtime.band_floor is not None:
        np.maximum(bands, runtime.band_floor, out=bands)
    names = runtime.band_names
    target = runtime.spec.target
    rows: list[dict[str, Any]] = []
    for i, (ts, v, band) in enumerate(zip(stamps, values.tolist(), bands.T.tolist(), strict=True)):
        row: dict[str, Any] = (
            {"ts": ts, target: v} if legacy else {"ts": ts, "step": i + 1, "value": v}
        )
        row.update(zip(names, band, strict=True))
        rows.append(row)
    return rows
