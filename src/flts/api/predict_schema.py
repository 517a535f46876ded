"""The documented shapes of the inference API (OpenAPI only).

``flts.serving.validation`` enforces the request shapes by hand (one strict decoder for every
route); these pydantic models exist so that ``/openapi.json`` tells clients, and Schemathesis,
the truth about every request and response.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flts.serving.validation import MAX_TIME, MIN_TIME, TIME_KEYS

_TIME = (
    f"ISO 8601 text (an offset is converted to UTC; none means UTC) or seconds since the Unix "
    f"epoch (>= 1e11: milliseconds), between {MIN_TIME} and {MAX_TIME}"
)


_IDENTIFIER = (
    "The series to forecast (a fleet run's `<run>/<series>`); omitted: the default champion. "
    "`?identifier=` does the same for bodies without the field. Unknown: 404"
)


class RowsRequest(BaseModel):
    """Observations as rows, oldest first, at the model's step."""

    identifier: str | None = Field(None, min_length=1, description=_IDENTIFIER)

    observations: list[dict[str, float | str]] = Field(
        min_length=1,
        description=f"Rows with a timestamp under one of {list(TIME_KEYS)} ({_TIME}) and every "
        "raw column of the model as a JSON number",
    )
    inference_length: int | None = Field(
        None, ge=1, description="Steps to forecast, 1..horizon (default: the model's horizon)"
    )


class ColumnarRequest(BaseModel):
    """The existing pipeline's request: one list per column, including the time column."""

    data: dict[str, list[float | str]] = Field(
        description=f"Column name -> values; the time column ({_TIME}) is named by index_col "
        f"or is the first of {list(TIME_KEYS)} present"
    )
    index_col: str | None = None
    inference_length: int | None = Field(None, ge=1)
    identifier: str | None = Field(None, min_length=1, description=_IDENTIFIER)


class ModelRef(BaseModel):
    model_type: str
    run_id: str
    model_uri: str
    config_hash: str


class ForecastPoint(BaseModel):
    """One step. With a calibrated model the point also carries ``lower_<level>`` and
    ``upper_<level>`` (e.g. ``lower_80``, ``upper_95``): its split-conformal prediction
    interval at that nominal coverage, in original units (left out with ``?intervals=false``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"patternProperties": {"^(lower|upper)_[0-9]{1,2}$": {"type": "number"}}},
    )

    ts: str = Field(description="ISO 8601, UTC, no offset; strictly after the last input row")
    step: int
    value: float | None


class PredictResponse(BaseModel):
    model: ModelRef
    target: str
    unit: str = "original"
    forecast: list[ForecastPoint]


class LegacyResponse(BaseModel):
    """The existing pipeline's answer: ``predictions`` rows carry ``ts`` and ``<target>``, and,
    only with ``?intervals=true``, ``lower_<level>``/``upper_<level>`` for each level."""

    status: str = "SUCCESS"
    identifier: str
    run_id: str
    predictions: list[dict[str, float | str | None]]


class ErrorItem(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ClientError(BaseModel):
    """A client mistake: ``loc`` names the field at fault (FastAPI's format)."""

    detail: list[ErrorItem]


class Problem(BaseModel):
    """401, 503 (no model, overloaded: see Retry-After), 504, 500: a message; 5xx add an id
    that is also in the service log."""

    detail: str
    request_id: str | None = None


class PingResponse(BaseModel):
    """What the existing load-test client reads before it starts (``model_loaded`` false: nulls)."""

    model_loaded: bool
    input_seq_len: int | None = Field(description="Rows a request must carry at least")
    output_seq_len: int | None = Field(description="Steps forecast (the horizon)")
    model_type: str | None
    step_seconds: int | None
    target: str | None
    raw_columns: list[str] | None


class HealthResponse(BaseModel):
    status: str
    model_ready: bool


class ReadyResponse(BaseModel):
    status: str
    model_type: str | None = None
    detail: str | None = None


PREDICT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        RowsRequest.model_json_schema(),
                        ColumnarRequest.model_json_schema(),
                    ]
                }
            }
        },
    }
}


def problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PredictResponse | LegacyResponse},
    400: {"model": ClientError, "description": "Invalid Content-Length"},
    401: problem("API token required"),
    404: problem("No champion is served for the requested identifier"),
    413: {"model": ClientError, "description": "Body larger than API_MAX_BODY_BYTES"},
    422: {"model": ClientError, "description": "The field at fault, in `loc`"},
    500: problem("Server failure; `request_id` is in the log"),
    503: problem("No model loaded yet, or overloaded; see Retry-After"),
    504: problem("No forecast within API_REQUEST_TIMEOUT_MS"),
}
