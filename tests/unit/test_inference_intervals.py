"""/predict with prediction intervals: bands per level and step in the new shape, the legacy
shape byte-for-byte unchanged unless ``?intervals=true``, and the OpenAPI document says so."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import pytest
from _inference import HORIZON, AppClient, as_loaded, body_rows, columnar, fit, window_frame

from flts.api.inference_app import create_inference_app
from flts.forecasting.base import Forecaster
from flts.forecasting.intervals import ConformalIntervals
from flts.serving.model_state import ModelState

LOWER = ((-1.0e6, -2.0e6, -3.0e6), (-2.0e6, -4.0e6, -6.0e6))
UPPER = ((1.5e6, 2.5e6, 3.5e6), (3.0e6, 5.0e6, 7.0e6))


@pytest.fixture(scope="module")
def plain() -> Forecaster:
    return fit("GRU")


@pytest.fixture(scope="module")
def banded(plain: Forecaster) -> Forecaster:
    model = copy.copy(plain)  # the same network, plus known bands
    model.intervals = ConformalIntervals(
        levels=(80, 95), lower_offsets=LOWER, upper_offsets=UPPER, calibration_windows=40
    )
    return model


def _client(model: Forecaster) -> Iterator[AppClient]:
    state = ModelState()
    state.set(as_loaded(model))
    with AppClient(create_inference_app(state)) as client:
        yield client


@pytest.fixture
def api(banded: Forecaster) -> Iterator[AppClient]:
    yield from _client(banded)


@pytest.fixture
def api_plain(plain: Forecaster) -> Iterator[AppClient]:
    yield from _client(plain)


def _rows() -> dict[str, object]:
    return {"observations": body_rows(window_frame())}


def test_new_shape_carries_bands_per_level_and_step(api: AppClient) -> None:
    response = api.post("/predict", json=_rows())
    assert response.status_code == 200, response.text
    points = response.json()["forecast"]
    assert len(points) == HORIZON
    for k, point in enumerate(points):
        assert list(point) == [
            "ts",
            "step",
            "value",
            "lower_80",
            "upper_80",
            "lower_95",
            "upper_95",
        ]
        value = point["value"]
        assert point["lower_80"] == pytest.approx(value + LOWER[0][k])
        assert point["upper_80"] == pytest.approx(value + UPPER[0][k])
        assert point["lower_95"] == pytest.approx(value + LOWER[1][k])
        assert point["upper_95"] == pytest.approx(value + UPPER[1][k])


def _forecast(model: Forecaster) -> list[dict[str, float]]:
    for client in _client(model):
        response = client.post("/predict", json=_rows())
        assert response.status_code == 200, response.text
        points: list[dict[str, float]] = response.json()["forecast"]
    return points


def test_bands_stop_at_the_floor_of_a_load_that_never_went_negative(banded: Forecaster) -> None:
    assert banded.intervals is not None
    # A floor under every forecast but above some lower bands: those stop at it.
    floor = min(p["value"] for p in _forecast(banded)) - 1.5e6
    model = copy.copy(banded)
    model.intervals = banded.intervals.model_copy(update={"floor": floor})
    points = _forecast(model)
    for k, point in enumerate(points):
        value = point["value"]
        assert point["lower_80"] == pytest.approx(max(value + LOWER[0][k], floor))
        assert point["lower_95"] == pytest.approx(max(value + LOWER[1][k], floor))
        assert point["upper_95"] == pytest.approx(value + UPPER[1][k])
    assert any(point["lower_95"] == pytest.approx(floor) for point in points)
    assert any(point["lower_80"] > floor for point in points)


def test_bands_follow_inference_length(api: AppClient) -> None:
    body = {**_rows(), "inference_length": 2}
    points = api.post("/predict", json=body).json()["forecast"]
    assert [p["step"] for p in points] == [1, 2]
    assert points[1]["upper_95"] == pytest.approx(points[1]["value"] + UPPER[1][1])


def test_intervals_false_gives_the_uncalibrated_bytes(api: AppClient, api_plain: AppClient) -> None:
    without = api.post("/predict?intervals=false", json=_rows())
    assert without.content == api_plain.post("/predict", json=_rows()).content
    assert list(without.json()["forecast"][0]) == ["ts", "step", "value"]


def test_legacy_shape_is_unchanged_unless_asked(api: AppClient, api_plain: AppClient) -> None:
    body = columnar(window_frame())
    legacy = api.post("/predict", json=body)
    assert legacy.status_code == 200
    assert legacy.content == api_plain.post("/predict", json=body).content
    query_legacy = api.post("/predict?format=legacy", json=_rows())
    assert query_legacy.content == api_plain.post("/predict?format=legacy", json=_rows()).content
    assert set(legacy.json()["predictions"][0]) == {"ts", "down"}

    asked = api.post("/predict?intervals=true", json=body).json()["predictions"]
    values = np.array([row["down"] for row in asked])
    np.testing.assert_allclose([row["lower_80"] for row in asked], values + np.array(LOWER[0]))
    np.testing.assert_allclose([row["upper_95"] for row in asked], values + np.array(UPPER[1]))
    assert list(asked[0]) == ["ts", "down", "lower_80", "upper_80", "lower_95", "upper_95"]


def test_model_without_intervals_answers_without_bands_even_when_asked(
    api_plain: AppClient,
) -> None:
    points = api_plain.post("/predict?intervals=true", json=_rows()).json()["forecast"]
    assert list(points[0]) == ["ts", "step", "value"]
    assert api_plain.get("/model").json()["interval_levels"] == []


def test_bad_intervals_flag_is_a_client_error_naming_it(api: AppClient) -> None:
    response = api.post("/predict?intervals=yes-please", json=_rows())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "intervals"]


def test_model_route_and_openapi_document_the_intervals(api: AppClient) -> None:
    assert api.get("/model").json()["interval_levels"] == [80, 95]
    doc = api.get("/openapi.json").json()
    params = {p["name"]: p for p in doc["paths"]["/predict"]["post"]["parameters"]}
    assert params["intervals"]["in"] == "query"
    point = doc["components"]["schemas"]["ForecastPoint"]
    assert "^(lower|upper)_[0-9]{1,2}$" in point["patternProperties"]


def test_locally_scaled_bands_are_offsets_times_the_posted_rows_level(banded: Forecaster) -> None:
    """Scaled bands (a load's): the offsets are in units of the larger of each forecast and
    the mean absolute target over the last ``scale_window`` posted rows."""
    assert banded.intervals is not None
    window = 5
    unit = tuple(tuple(v / 1e8 for v in row) for row in LOWER)
    model = copy.copy(banded)
    model.intervals = banded.intervals.model_copy(
        update={
            "lower_offsets": unit,
            "upper_offsets": tuple(tuple(v / 1e8 for v in row) for row in UPPER),
            "scale_window": window,
            "scale_floor": 1.0,
        }
    )
    frame = window_frame()
    level = float(np.mean(np.abs(frame["down"].to_numpy()[-window:])))
    for client in _client(model):
        points = client.post("/predict", json=_rows()).json()["forecast"]
    for k, point in enumerate(points):
        factor = max(abs(point["value"]), level)
        assert point["lower_80"] == pytest.approx(point["value"] + factor * unit[0][k])
        assert point["upper_95"] == pytest.approx(point["value"] + factor * UPPER[1][k] / 1e8)


def test_forecasts_snapped_to_zero_are_served_with_their_own_bands(banded: Forecaster) -> None:
    """A point calibration that snaps small forecasts to 0 is applied on the API's batched
    path too, and such a step gets the bands calibrated for zero forecasts (Mondrian)."""
    from flts.forecasting.point_calibration import PointCalibration

    assert banded.intervals is not None
    raw = [p["value"] for p in _forecast(banded)]
    threshold = float(np.median(np.abs(raw)))  # about half the steps become 0
    zero_lower = ((0.0, 0.0, 0.0), (0.0, 0.0, -1.0))
    zero_upper = ((0.0, 0.0, 0.0), (5.0, 5.0, 5.0))
    model = copy.copy(banded)
    model.point_calibration = PointCalibration(floor=0.0, zero_below=threshold, zero_share=0.5)
    model.intervals = banded.intervals.model_copy(
        update={"floor": 0.0, "zero_lower_offsets": zero_lower, "zero_upper_offsets": zero_upper}
    )
    points = _forecast(model)
    values = [p["value"] for p in points]
    assert values == [0.0 if abs(v) <= threshold else v for v in raw]
    assert 0 < values.count(0.0) < len(values)
    for k, point in enumerate(points):
        value = point["value"]
        if value == 0.0:
            assert (point["lower_80"], point["upper_80"]) == (0.0, 0.0)
            assert (point["lower_95"], point["upper_95"]) == (0.0, zero_upper[1][k])
        else:
            assert point["lower_80"] == pytest.approx(max(value + LOWER[0][k], 0.0))
            assert point["upper_95"] == pytest.approx(value + UPPER[1][k])


def test_a_hedged_model_is_served_as_it_forecasts_and_says_so(plain: Forecaster) -> None:
    """A model hedged toward persistence answers /predict with ``last + k * (forecast - last)``
    on the API's batched path (the last posted target is read back from the scaled window), and
    ``/model`` shows the weights (``predict`` is held to the batched path in test_rnn and
    test_point_calibration)."""
    from flts.forecasting.point_calibration import PointCalibration

    raw = [p["value"] for p in _forecast(plain)]
    weights = (0.2, 0.5, 1.0)
    model = copy.copy(plain)
    model.point_calibration = PointCalibration(persistence_weights=weights, zero_share=0.0)
    frame = window_frame()
    last = float(frame["down"].to_numpy()[-1])
    for client in _client(model):
        response = client.post("/predict", json=_rows())
        info = client.get("/model").json()
    assert response.status_code == 200, response.text
    values = [p["value"] for p in response.json()["forecast"]]
    expected = [last + w * (v - last) for v, w in zip(raw, weights, strict=True)]
    assert values == pytest.approx(expected, rel=1e-6)
    assert values[2] == pytest.approx(raw[2], rel=1e-9)
    assert info["serving_mode"] == "batched-numpy"
    assert info["point_calibration"]["persistence_weights"] == list(weights)
    for client in _client(plain):
        assert client.get("/model").json()["point_calibration"] is None
