"""With API_TOKEN set, the live page's data (/live/state) needs the bearer token like /predict;
the page itself holds no data, is served to anyone, and sends the token from its URL fragment."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from flts.api.live_page import live_router
from flts.serving.auth import bearer_check

STATE = {"identifiers": {"site": {"actuals": [1.0], "forecasts": [2.0]}}, "retrains": []}


def _client(token: str | None) -> TestClient:
    app = FastAPI()
    check = bearer_check(None if token is None else SecretStr(token))
    app.include_router(live_router(lambda: STATE, check))
    return TestClient(app)


def test_state_needs_the_token_when_one_is_set() -> None:
    client = _client("s3cret")
    refused = client.get("/live/state")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "s3cret" not in refused.text
    wrong = client.get("/live/state", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    ok = client.get("/live/state", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert ok.json()["identifiers"]["site"]["actuals"] == [1.0]


def test_the_page_is_public_and_sends_the_token_from_its_fragment() -> None:
    page = _client("s3cret").get("/live")
    assert page.status_code == 200
    assert "location.hash" in page.text
    assert "Authorization" in page.text


def test_without_a_token_the_state_is_open() -> None:
    assert _client(None).get("/live/state").status_code == 200
