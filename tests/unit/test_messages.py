"""Wire messages: JSON round trips, tolerance of unknown fields, committed JSON Schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flts.cli.schema_cmd import drift, render_schemas
from flts.domain.messages import (
    ALL_MESSAGES,
    DlqRecord,
    ForecastStep,
    InferenceDataReady,
    LiveForecast,
    ModelTrained,
    ModelTrainingRunning,
    Observation,
    TrainingDataReady,
    WireMessage,
    decode,
    decode_model_training,
)
from flts.errors import MessageError

REPO = Path(__file__).resolve().parents[2]

_text = st.text(min_size=1, max_size=20)
_int = st.integers(0, 2**53)
_float = st.floats(allow_nan=False, allow_infinity=False, width=64)
_json_scalar = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _float | st.text(max_size=10)
)
_extra_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12).map(
    lambda k: f"x_{k}"
)


@pytest.mark.parametrize("name", sorted(ALL_MESSAGES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_message_round_trips_through_json(name: str, data: st.DataObject) -> None:
    model = ALL_MESSAGES[name]
    original = data.draw(st.builds(model, **_overrides(model)))
    wire = orjson.loads(original.to_json_bytes())
    # Writers emit every field that is set, and always every required (spec) field.
    emitted = {n for n in model.model_fields if getattr(original, n) is not None}
    required = {n for n, f in model.model_fields.items() if f.is_required()}
    assert emitted | required <= set(wire)
    assert decode(model, wire) == original
    assert decode(model, original.to_json_bytes()) == original


def _overrides(model: type[WireMessage]) -> dict[str, Any]:
    """Strategies for fields hypothesis cannot infer well: JSON has no NaN/inf (orjson writes
    null) nor integers beyond 64 bits, and DLQ payloads are free-form JSON."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.annotation is float:
            out[name] = _float
        elif field.annotation == float | None:
            out[name] = st.none() | _float
        elif field.annotation is int:  # orjson (like most JSON peers) stops at 64 bits
            out[name] = _int
        elif field.annotation == int | None:
            out[name] = st.none() | _int
        elif field.annotation == dict[str, float] | None:
            out[name] = st.none() | st.dictionaries(st.text(max_size=5), _float, max_size=3)
    if model is DlqRecord:
        out["payload"] = _json_scalar | st.dictionaries(st.text(max_size=5), _json_scalar)
    if model is Observation:
        out["values"] = st.dictionaries(st.text(max_size=5), _float, min_size=1, max_size=3)
    if model is LiveForecast:
        out["horizon"] = st.integers(1, 1000)
        step = st.builds(ForecastStep, step=st.integers(1, 1000), point=_float)
        out["steps"] = st.lists(step, max_size=3)
    return out


@settings(max_examples=50, deadline=None)
@given(extra=st.dictionaries(_extra_keys, _json_scalar, min_size=1, max_size=4))
def test_readers_keep_unknown_fields(extra: dict[str, Any]) -> None:
    spec = {"bucket": "processed-data", "object": "o.parquet", "size": 1, "v": 1}
    raw = {**spec, "identifier": "run-1", **extra}
    wire = decode(TrainingDataReady, orjson.dumps(raw)).to_wire()
    assert {k: wire[k] for k in raw} == raw
    assert set(wire) == set(raw)  # unset optional FLTS fields are not written


def test_spec_examples_decode() -> None:
    infer = {
        "bucket": "processed-data",
        "object": "test_processed_data.parquet",
        "object_key": "test_processed_data.parquet",
        "size": 123456,
        "operation": "post: test data",
        "v": 1,
        "identifier": "run-xyz",
    }
    assert decode(InferenceDataReady, infer).object_key == "test_processed_data.parquet"
    running = {"model_type": "GRU", "config_hash": "abc", "run_id": "r", "status": "RUNNING"}
    assert isinstance(decode_model_training({**running, "identifier": "i"}), ModelTrainingRunning)
    success = {
        **running,
        "status": "SUCCESS",
        "identifier": "i",
        "test_rmse": 0.1,
        "test_mae": 0.1,
        "test_mse": 0.01,
        "train_start": "2025-11-24T12:00:00Z",
        "train_end": "2025-11-24T12:05:00Z",
        "artifact_uri": "s3://mlflow/run-id/artifacts",
    }
    assert isinstance(decode_model_training(success), ModelTrained)


def test_bad_payload_names_the_field() -> None:
    with pytest.raises(MessageError, match="size"):
        decode(TrainingDataReady, {"bucket": "b", "object": "o", "size": -1, "identifier": "i"})


def test_committed_schemas_match_the_models() -> None:
    assert drift(REPO / "schemas") == [], "run `flts schema export` and commit schemas/"


def test_schema_files_are_stable_text() -> None:
    for name, text in render_schemas().items():
        assert text.endswith("}\n"), name
        assert orjson.loads(text)["$id"] == f"flts/{name}"
