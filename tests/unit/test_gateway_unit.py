"""The claim-check gateway over the in-memory store: routes, key checks, limits, token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from flts.adapters.memory import InMemoryObjectStore
from flts.adapters.s3 import GatewayObjectStore
from flts.api.gateway import create_gateway_app
from flts.errors import ObjectNotFoundError, StorageError
from flts.settings import GatewaySettings


def _client(token: str | None = None, limit: int = 4096) -> TestClient:
    settings = GatewaySettings(max_upload_bytes=limit, token=SecretStr(token) if token else None)
    return TestClient(create_gateway_app(InMemoryObjectStore(), settings))


def test_upload_download_list_and_head() -> None:
    client = _client()
    resp = client.put("/objects/dataset/runs/a.csv", content=b"x,y\n1,2\n")
    assert resp.status_code == 200
    assert resp.json() == {"bucket": "dataset", "key": "runs/a.csv", "size": 8}
    assert client.get("/objects/dataset/runs/a.csv").content == b"x,y\n1,2\n"
    assert client.get("/objects/dataset", params={"prefix": "runs/"}).json()["keys"] == [
        "runs/a.csv"
    ]
    assert client.head("/objects/dataset/runs/a.csv").status_code == 200
    assert client.head("/objects/dataset/runs/b.csv").status_code == 404
    assert client.get("/objects/dataset/runs/b.csv").status_code == 404
    assert client.get("/healthz").json() == {"status": "ok"}


def test_multipart_upload() -> None:
    client = _client()
    resp = client.post("/objects/processed-data/p.bin", files={"file": ("p.bin", b"\x00\x01")})
    assert resp.status_code == 200
    assert client.get("/objects/processed-data/p.bin").content == b"\x00\x01"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/objects/dataset/%2e%2e/secret", "traversal"),
        ("/objects/dataset/a/%2E%2E/%2E%2E/b", "traversal"),
        # Double encoding: rejected as '%' or, once a layer decodes it, as traversal.
        ("/objects/dataset/a/%252e%252e/b", "percent|traversal"),
        ("/objects/dataset/a%5Cb", "backslash"),
        ("/objects/dataset/a%00b", "control"),
        ("/objects/dataset//etc/passwd", "absolute"),
        ("/objects/dataset/C:/x", "absolute"),
    ],
)
def test_unsafe_keys_are_rejected_with_a_reason(path: str, why: str) -> None:
    client = _client()
    for method in ("PUT", "GET"):
        resp = client.request(method, path, content=b"x" if method == "PUT" else None)
        assert resp.status_code == 400, (method, path)
        assert any(w in resp.json()["detail"] for w in why.split("|"))


def test_unknown_bucket_is_404() -> None:
    resp = _client().put("/objects/etc/passwd", content=b"x")
    assert resp.status_code == 404
    assert "unknown bucket" in resp.json()["detail"]


def test_oversize_uploads_are_413_with_and_without_length() -> None:
    client = _client(limit=10)
    assert client.put("/objects/dataset/a", content=b"x" * 11).status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b"x" * 6
        yield b"x" * 6

    resp = client.put("/objects/dataset/b", content=chunks())
    assert resp.status_code == 413
    assert "10-byte limit" in resp.json()["detail"]
    assert client.get("/objects/dataset", params={"prefix": ""}).json()["keys"] == []
    assert client.put("/objects/dataset/c", content=b"x" * 10).status_code == 200


def test_token_is_required_when_configured() -> None:
    client = _client(token="s3cret")
    assert client.put("/objects/dataset/a", content=b"x").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/objects/dataset", headers=wrong).status_code == 401
    good = {"Authorization": "Bearer s3cret"}
    assert client.put("/objects/dataset/a", content=b"x", headers=good).status_code == 200
    assert client.get("/objects/dataset/a", headers=good).content == b"x"
    assert client.get("/healthz").status_code == 200


def test_gateway_object_store_client() -> None:
    client = _client(token="t")
    store = GatewayObjectStore("http://gw", token="t", transport=client._transport)
    store.ensure_bucket("model-promotion")
    store.put_bytes("model-promotion", "h/1.json", b"{}", "application/json")
    assert store.get_bytes("model-promotion", "h/1.json") == b"{}"
    assert store.exists("model-promotion", "h/1.json")
    assert not store.exists("model-promotion", "h/2.json")
    assert store.list_keys("model-promotion", "h/") == ["h/1.json"]
    with pytest.raises(ObjectNotFoundError):
        store.get_bytes("model-promotion", "h/2.json")
    with pytest.raises(StorageError):
        store.put_bytes("model-promotion", "../x", b"")
