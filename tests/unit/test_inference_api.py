"""The inference HTTP API: parity with Forecaster.predict, request shapes, 422s, swap, auth."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from _inference import (
    HORIZON,
    LOOKBACK,
    RAW,
    STEP,
    AppClient,
    as_loaded,
    body_rows,
    columnar,
    fit,
    reference,
    window_frame,
)
from pydantic import SecretStr

from flts.api.inference_app import ApiSettings, create_inference_app
from flts.forecasting.base import Forecaster
from flts.forecasting.spec import TIME_COLUMN
from flts.serving.model_state import LoadedModel, ModelState


@pytest.fixture(scope="module")
def gru() -> Forecaster:
    return fit("GRU")


@pytest.fixture(scope="module")
def persistence() -> Forecaster:
    return fit("PERSISTENCE")


@dataclass
class Api:
    client: AppClient
    state: ModelState


@pytest.fixture
def api(gru: Forecaster) -> Iterator[Api]:
    state = ModelState()
    state.set(as_loaded(gru))
    with AppClient(create_inference_app(state)) as client:
        yield Api(client, state)


def _detail(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    detail: dict[str, Any] = response.json()["detail"][0]
    return detail


# -- answers -------------------------------------------------------------------------------------
def test_predict_matches_forecaster_predict_in_original_units(api: Api, gru: Forecaster) -> None:
    frame = window_frame()
    body = api.client.post("/predict", json={"observations": body_rows(frame)}).json()
    values = np.array([p["value"] for p in body["forecast"]])
    np.testing.assert_allclose(values, reference(gru, frame), rtol=1e-5)
    assert 1e7 < abs(values).mean() < 1e9  # original units, not scaled
    stamps = [pd.Timestamp(p["ts"]) for p in body["forecast"]]
    last = frame[TIME_COLUMN].iloc[-1]
    assert stamps == [last + pd.Timedelta(seconds=STEP * k) for k in (1, 2, 3)]
    assert [p["step"] for p in body["forecast"]] == [1, 2, 3]
    assert body["model"] == {
        "model_type": "GRU",
        "run_id": "run-1",
        "model_uri": "runs:/run-1/model",
        "config_hash": "hash-test",
    }
    assert (body["target"], body["unit"]) == ("down", "original")


def test_concurrent_requests_are_batched_without_changing_numbers(gru: Forecaster) -> None:
    state = ModelState()
    state.set(as_loaded(gru))
    app = create_inference_app(state, ApiSettings(max_batch_wait_ms=50))
    frames = [window_frame(start) for start in range(20, 60, 2)]

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            posts = [client.post("/predict", json={"observations": body_rows(f)}) for f in frames]
            responses = await asyncio.gather(*posts)
            metrics = await client.get("/metrics")
        await app.state.service.batcher.aclose()
        return [*responses, metrics]

    *responses, metrics = asyncio.run(run())
    for frame, response in zip(frames, responses, strict=True):
        values = [p["value"] for p in response.json()["forecast"]]
        np.testing.assert_allclose(values, reference(gru, frame), rtol=1e-5)
    forwards = _sample(metrics.text, "flts_inference_batch_size_count")
    assert _sample(metrics.text, "flts_inference_batch_size_sum") == len(frames)
    assert forwards < len(frames)


def test_lags_are_built_from_thewindow(gru: Forecaster) -> None:
    lagged = fit("GRU", lags=(2,))
    state = ModelState()
    state.set(as_loaded(lagged))
    frame = window_frame(rows=LOOKBACK + 2)
    with AppClient(create_inference_app(state)) as client:
        described = client.get("/model").json()
        assert described["serving_mode"] == "batched-numpy"
        assert described["spec"]["lags"] == [2]
        assert described["spec"]["clock_zone"] is None  # UTC steps: no zone named
        body = client.post("/predict", json={"observations": body_rows(frame)}).json()
        short = client.post("/predict", json={"observations": body_rows(frame.iloc[1:])})
    values = [p["value"] for p in body["forecast"]]
    np.testing.assert_allclose(values, reference(lagged, frame), rtol=1e-5)
    assert "needs at least 8" in _detail(short)["msg"]


def test_legacy_request_gets_legacy_response(api: Api, gru: Forecaster) -> None:
    frame = window_frame()
    body = api.client.post("/predict", json=columnar(frame, inference_length=2)).json()
    assert (body["status"], body["identifier"], body["run_id"]) == ("SUCCESS", "id-1", "run-1")
    assert [set(p) for p in body["predictions"]] == [{"ts", "down"}] * 2
    values = [p["down"] for p in body["predictions"]]
    np.testing.assert_allclose(values, reference(gru, frame)[:2], rtol=1e-5)


def test_format_legacy_query_and_time_key(api: Api) -> None:
    rows = body_rows(window_frame(), time_key="time")
    body = api.client.post("/predict?format=legacy", json={"observations": rows}).json()
    assert body["status"] == "SUCCESS"
    assert len(body["predictions"]) == HORIZON


def test_offsets_and_epoch_seconds_mean_utc(api: Api) -> None:
    frame = window_frame()
    plain = body_rows(frame)
    zulu = [{**r, "ds": pd.Timestamp(r["ds"]).isoformat() + "Z"} for r in plain]
    shifted = [
        {**r, "ds": (pd.Timestamp(r["ds"]) + pd.Timedelta(hours=1)).isoformat() + "+01:00"}
        for r in plain
    ]
    epoch = [{**r, "ds": pd.Timestamp(r["ds"]).timestamp()} for r in plain]
    answers = [
        api.client.post("/predict", json={"observations": rows}).json()["forecast"]
        for rows in (plain, zulu, shifted, epoch)
    ]
    assert all(a == answers[0] for a in answers)


def test_only_the_last_lookback_rows_are_used(api: Api) -> None:
    frame = window_frame(rows=30)
    body = api.client.post("/predict", json={"observations": body_rows(frame)}).json()
    tail = api.client.post(
        "/predict", json={"observations": body_rows(frame.iloc[-LOOKBACK:])}
    ).json()
    assert body["forecast"] == tail["forecast"]


def test_fastapi_route_answers_like_the_fast_lane(gru: Forecaster) -> None:
    state = ModelState()
    state.set(as_loaded(gru))
    payload = {"observations": body_rows(window_frame())}
    with AppClient(create_inference_app(state, fast_lane=False)) as slow:
        plain = slow.post("/predict", json=payload).json()
        bad = slow.post("/predict", json={"observations": body_rows(window_frame(rows=2))})
    with AppClient(create_inference_app(state)) as fast:
        assert fast.post("/predict", json=payload).json() == plain
    assert "needs at least 6" in _detail(bad)["msg"]


# -- 422s ----------------------------------------------------------------------------------------
def test_missing_column_is_named(api: Api) -> None:
    rows = body_rows(window_frame())
    del rows[4]["up"]
    detail = _detail(api.client.post("/predict", json={"observations": rows}))
    assert detail["loc"] == ["body", "observations", 4, "up"]
    assert "up" in detail["msg"]
    legacy = columnar(window_frame())
    del legacy["data"]["up"]
    assert _detail(api.client.post("/predict", json=legacy))["loc"] == ["body", "data", "up"]


def test_too_few_rows_says_how_many_are_needed(api: Api) -> None:
    detail = _detail(
        api.client.post("/predict", json={"observations": body_rows(window_frame(rows=4))})
    )
    assert detail["loc"] == ["body", "observations"]
    assert "got 4 rows" in detail["msg"]
    assert "at least 6" in detail["msg"]


def test_unsorted_and_irregular_timestamps_name_the_row(api: Api) -> None:
    rows = body_rows(window_frame())
    rows[3], rows[4] = rows[4], rows[3]
    detail = _detail(api.client.post("/predict", json={"observations": rows}))
    assert detail["loc"] == ["body", "observations", 3, "ds"]
    assert "row 3" in detail["msg"]
    gap = body_rows(window_frame())
    gap[7]["ds"] = str(pd.Timestamp(gap[7]["ds"]) + pd.Timedelta(seconds=30))
    detail = _detail(api.client.post("/predict", json={"observations": gap}))
    assert detail["loc"] == ["body", "observations", 7, "ds"]
    assert "120 s apart" in detail["msg"]


def test_bad_values_and_timestamps_are_located(api: Api) -> None:
    rows = body_rows(window_frame())
    rows[2]["down"] = "lots"
    assert _detail(api.client.post("/predict", json={"observations": rows}))["loc"] == [
        "body",
        "observations",
        2,
        "down",
    ]
    rows = body_rows(window_frame())
    rows[5]["up"] = None
    detail = _detail(api.client.post("/predict", json={"observations": rows}))
    assert detail["loc"] == ["body", "observations", 5, "up"]
    rows = body_rows(window_frame())
    rows[1]["ds"] = "yesterday"
    assert _detail(api.client.post("/predict", json={"observations": rows}))["loc"] == [
        "body",
        "observations",
        1,
        "ds",
    ]


@pytest.mark.parametrize("length", [0, HORIZON + 1])
def test_inference_length_out_of_range(api: Api, length: int) -> None:
    payload = {"observations": body_rows(window_frame()), "inference_length": length}
    detail = _detail(api.client.post("/predict", json=payload))
    assert detail["loc"] == ["body", "inference_length"]
    assert f"horizon {HORIZON}" in detail["msg"]


@pytest.mark.parametrize(
    ("content", "loc"),
    [(b"{not json", ["body"]), (b"[]", ["body"]), (b'{"rows": []}', ["body"])],
)
def test_malformed_bodies(api: Api, content: bytes, loc: list[Any]) -> None:
    response = api.client.post("/predict", content=content)
    assert _detail(response)["loc"] == loc


# -- lifecycle, swap, auth, metrics --------------------------------------------------------------
def test_no_model_means_503_until_one_is_set(gru: Forecaster) -> None:
    state = ModelState()
    with AppClient(create_inference_app(state)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        response = client.post("/predict", json={"observations": body_rows(window_frame())})
        assert response.status_code == 503
        assert "no model is loaded" in response.json()["detail"]
        assert client.get("/model").status_code == 503
        assert state.set(as_loaded(gru)) == 1
        assert client.get("/readyz").status_code == 200
        assert (
            client.post("/predict", json={"observations": body_rows(window_frame())}).status_code
            == 200
        )


def test_hot_swap_changes_the_answering_model(api: Api, persistence: Forecaster) -> None:
    frame = window_frame()
    before = api.client.post("/predict", json={"observations": body_rows(frame)}).json()
    assert api.state.set(as_loaded(persistence, run_id="run-2")) == 2
    after = api.client.post("/predict", json={"observations": body_rows(frame)}).json()
    assert before["model"]["model_type"] == "GRU"
    assert after["model"] == {
        **before["model"],
        "model_type": "PERSISTENCE",
        "run_id": "run-2",
        "model_uri": "runs:/run-2/model",
    }
    last = frame["down"].iloc[-1]
    assert [p["value"] for p in after["forecast"]] == pytest.approx([last] * HORIZON)
    model = api.client.get("/model").json()
    assert (model["run_id"], model["serving_mode"], model["version"]) == ("run-2", "reference", 2)


def test_model_endpoint_reports_the_spec(api: Api) -> None:
    model = api.client.get("/model").json()
    assert model["spec"]["target"] == "down"
    assert model["spec"]["raw_columns"] == list(RAW)
    assert model["spec"]["feature_order"][:2] == list(RAW)
    assert (model["spec"]["lookback"], model["spec"]["horizon"]) == (LOOKBACK, HORIZON)
    assert model["spec"]["step_seconds"] == STEP
    assert (model["source"], model["serving_mode"]) == ("promotion", "batched-numpy")


def test_bearer_token_guards_predict_and_model(gru: Forecaster) -> None:
    state = ModelState()
    state.set(as_loaded(gru))
    app = create_inference_app(state, ApiSettings(api_token=SecretStr("s3cret")))
    payload = {"observations": body_rows(window_frame())}
    with AppClient(app) as client:
        assert client.post("/predict", json=payload).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        denied = client.post("/predict", json=payload, headers=wrong)
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"] == "Bearer"
        assert client.get("/model").status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert client.post("/predict", json=payload, headers=good).status_code == 200
        assert client.get("/model", headers=good).status_code == 200
        for open_path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert client.get(open_path).status_code == 200


def test_metrics_count_requests_and_describe_the_model(api: Api) -> None:
    api.client.post("/predict", json={"observations": body_rows(window_frame())})
    api.client.post("/predict", json={"observations": body_rows(window_frame(rows=2))})
    text = api.client.get("/metrics").text
    assert _sample(text, 'flts_inference_requests_total{endpoint="/predict",status="200"}') == 1
    assert _sample(text, 'flts_inference_requests_total{endpoint="/predict",status="422"}') == 1
    assert _sample(text, 'flts_inference_request_seconds_count{endpoint="/predict"}') == 2
    assert _sample(text, "flts_inference_batch_size_count") == 1
    assert 'flts_inference_model_info{config_hash="hash-test"' in text
    assert 'model_type="GRU"' in text


def test_openapi_documents_predict(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    titles = {s.get("title") for s in body["schema"]["oneOf"]}
    assert titles == {"RowsRequest", "ColumnarRequest"}
    assert api.client.get("/docs").status_code == 200


def test_model_state_versions_and_listeners(gru: Forecaster, persistence: Forecaster) -> None:
    state = ModelState()
    seen: list[str] = []
    state.subscribe(lambda loaded: seen.append(loaded.run_id))
    state.subscribe(lambda loaded: 1 / 0)  # a failing listener must not undo the swap
    assert (state.version, state.current()) == (0, None)
    first, second = as_loaded(gru, "a"), as_loaded(persistence, "b")
    assert state.set(first) == 1
    assert state.set(second) == 2
    assert state.snapshot() == (2, second)
    assert seen == ["a", "b"]
    with pytest.raises(ValueError, match="source"):
        LoadedModel.of(gru, model_uri="u", run_id="r", identifier="i", source="nowhere")  # type: ignore[arg-type]


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")
