"""Serving many series: the champion LRU (count and bytes) and /predict, /model, /models routing."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from _inference import AppClient, as_loaded, body_rows, fit, window_frame

from flts.api.inference_app import create_inference_app
from flts.forecasting.base import Forecaster
from flts.serving.model_state import LoadedModel, ModelState
from flts.serving.series_models import SeriesModels, model_bytes


@pytest.fixture(scope="module")
def gru() -> Forecaster:
    return fit("GRU")


@pytest.fixture(scope="module")
def persistence() -> Forecaster:
    return fit("PERSISTENCE")


def _loaded(model: Forecaster, identifier: str, run_id: str | None = None) -> LoadedModel:
    return LoadedModel.of(
        model,
        model_uri=f"runs:/{run_id or identifier}/model",
        run_id=run_id or identifier.replace("/", "-"),
        identifier=identifier,
        source="promotion",
    )


def test_model_bytes_counts_tensors_and_arrays(gru: Forecaster) -> None:
    assert model_bytes(np.zeros(1000)) == 8000
    assert model_bytes(gru) > 1000  # the GRU's weights


def test_lru_evicts_the_least_recently_used_by_count(persistence: Forecaster) -> None:
    cache = SeriesModels(max_models=2, max_bytes=1 << 40)
    for name in ("f/a", "f/b"):
        cache.put(_loaded(persistence, name))
    assert cache.get("f/a") is not None  # a is now the most recent
    cache.put(_loaded(persistence, "f/c"))
    assert cache.get("f/b") is None
    assert [d["identifier"] for d in cache.describe()] == ["f/a", "f/c"]
    assert cache.evictions == 1


def test_lru_respects_the_byte_bound_but_keeps_the_newest(gru: Forecaster) -> None:
    one = model_bytes(gru)
    cache = SeriesModels(max_models=10, max_bytes=int(one * 1.5))
    cache.put(_loaded(gru, "f/a"))
    cache.put(_loaded(gru, "f/b"))
    assert [d["identifier"] for d in cache.describe()] == ["f/b"]
    tiny = SeriesModels(max_models=10, max_bytes=1)
    tiny.put(_loaded(gru, "f/a"))
    assert tiny.get("f/a") is not None  # too big for the bound, still served


def test_loader_fills_misses_and_remembers_unknowns(persistence: Forecaster) -> None:
    calls: list[str] = []

    def loader(identifier: str) -> LoadedModel | None:
        calls.append(identifier)
        return _loaded(persistence, identifier) if identifier == "f/known" else None

    cache = SeriesModels(max_models=4, max_bytes=1 << 40, loader=loader)
    assert cache.load("f/known") is not None
    assert cache.load("f/known") is not None
    assert cache.load("f/nope") is None
    assert cache.load("f/nope") is None
    assert calls == ["f/known", "f/nope"]
    cache.put(_loaded(persistence, "f/nope"))  # a promotion arrives later
    assert cache.load("f/nope") is not None


@pytest.fixture
def fleet_api(gru: Forecaster, persistence: Forecaster) -> Iterator[AppClient]:
    state = ModelState()
    state.set(as_loaded(gru))  # the default champion, identifier "id-1"
    cache = SeriesModels(max_models=4, max_bytes=1 << 40)
    cache.put(_loaded(persistence, "fleet/b", run_id="run-b"))
    with AppClient(create_inference_app(state, series=cache)) as client:
        yield client


def test_predict_routes_by_body_field_and_query(fleet_api: AppClient) -> None:
    rows = body_rows(window_frame())
    default = fleet_api.post("/predict", json={"observations": rows}).json()
    assert default["model"]["model_type"] == "GRU"
    by_body = fleet_api.post("/predict", json={"observations": rows, "identifier": "fleet/b"})
    assert by_body.status_code == 200
    assert by_body.json()["model"]["run_id"] == "run-b"
    last = window_frame()["down"].iloc[-1]
    assert by_body.json()["forecast"][0]["value"] == pytest.approx(last)
    own = fleet_api.post("/predict", json={"observations": rows, "identifier": "id-1"})
    assert own.json()["model"]["model_type"] == "GRU"
    data = {"data": {"time": [r["ds"] for r in rows], "down": [r["down"] for r in rows],
                     "up": [r["up"] for r in rows]}, "index_col": "time"}  # fmt: skip
    legacy = fleet_api.post("/predict?identifier=fleet/b", json=data)
    assert legacy.status_code == 200
    assert legacy.json()["run_id"] == "run-b"


def test_unknown_identifier_is_404_and_bad_one_422(fleet_api: AppClient) -> None:
    rows = body_rows(window_frame())
    missing = fleet_api.post("/predict", json={"observations": rows, "identifier": "fleet/zz"})
    assert missing.status_code == 404
    assert "fleet/zz" in missing.json()["detail"]
    assert (
        fleet_api.post("/predict?identifier=fleet/zz", json={"observations": rows}).status_code
        == 404
    )
    bad = fleet_api.post("/predict", json={"observations": rows, "identifier": 7})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "identifier"]


def test_model_and_models_endpoints(fleet_api: AppClient) -> None:
    assert fleet_api.get("/model").json()["model_type"] == "GRU"
    series = fleet_api.get("/model", params={"identifier": "fleet/b"}).json()
    assert (series["identifier"], series["run_id"]) == ("fleet/b", "run-b")
    assert fleet_api.get("/model", params={"identifier": "fleet/zz"}).status_code == 404
    listing = fleet_api.get("/models").json()
    assert listing["default"]["identifier"] == "id-1"
    assert [m["identifier"] for m in listing["series"]] == ["fleet/b"]
    assert listing["cache"]["max_models"] == 4


def test_a_fleet_only_service_is_ready_once_a_series_champion_is_in(
    persistence: Forecaster,
) -> None:
    cache = SeriesModels(max_models=4, max_bytes=1 << 40)
    with AppClient(create_inference_app(ModelState(), series=cache)) as client:
        assert client.get("/readyz").status_code == 503
        cache.put(_loaded(persistence, "fleet/a"))
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").json()["model_ready"] is True
        rows = body_rows(window_frame())
        assert client.post("/predict", json={"observations": rows}).status_code == 503
        with_id = {"observations": rows, "identifier": "fleet/a"}
        assert client.post("/predict", json=with_id).status_code == 200
