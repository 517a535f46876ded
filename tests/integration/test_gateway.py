"""The claim-check gateway over the real S3: the stack's own gateway process (uvicorn) and an
app instance with a token and a small upload limit."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from flts.adapters.s3 import GatewayObjectStore, S3ObjectStore
from flts.api.gateway import create_gateway_app
from flts.errors import ObjectNotFoundError
from flts.infra.stack import StackEndpoints
from flts.settings import GatewaySettings

pytestmark = pytest.mark.integration


def test_stack_gateway_round_trip(stack: StackEndpoints, s3_store: S3ObjectStore) -> None:
    key = f"gw/{uuid.uuid4().hex[:8]}/data.csv"
    store = GatewayObjectStore(stack.gateway_url)
    try:
        store.put_bytes("dataset", key, b"time,down\n")
        assert store.get_bytes("dataset", key) == b"time,down\n"
        assert store.list_keys("dataset", key.rsplit("/", 1)[0]) == [key]
        assert store.exists("dataset", key)
        with pytest.raises(ObjectNotFoundError):
            store.get_bytes("dataset", key + ".missing")
    finally:
        store.close()
    assert s3_store.get_bytes("dataset", key) == b"time,down\n"  # it really is in S3
    assert httpx.get(f"{stack.gateway_url}/healthz").json() == {"status": "ok"}


def test_stack_gateway_rejects_traversal(stack: StackEndpoints) -> None:
    resp = httpx.put(f"{stack.gateway_url}/objects/dataset/a/%2e%2e/%2e%2e/x", content=b"x")
    assert resp.status_code == 400
    assert "traversal" in resp.json()["detail"]


def test_limits_and_token_over_real_s3(s3_store: S3ObjectStore) -> None:
    settings = GatewaySettings(max_upload_bytes=1000, token=SecretStr("tok"))
    client = TestClient(create_gateway_app(s3_store, settings))
    auth = {"Authorization": "Bearer tok"}
    key = f"limit-{uuid.uuid4().hex[:8]}"
    assert client.put(f"/objects/dataset/{key}", content=b"x").status_code == 401
    resp = client.put(f"/objects/dataset/{key}", content=b"x" * 1001, headers=auth)
    assert resp.status_code == 413
    assert not s3_store.exists("dataset", key)
    assert (
        client.put(f"/objects/dataset/{key}", content=b"x" * 1000, headers=auth).status_code == 200
    )
    assert s3_store.get_bytes("dataset", key) == b"x" * 1000
