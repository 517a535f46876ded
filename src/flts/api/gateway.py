"""The claim-check gateway: upload, download and list objects over HTTP.

For clients that cannot (or should not) hold S3 credentials. Only the five claim-check buckets
are served; keys are checked before they reach the store (no traversal, no control characters,
no encoded tricks); uploads are counted while they stream, so an oversize body is refused with
413 without ever being held in full; an optional bearer token guards every object route.

Run it with ``python -m flts.api.gateway`` (env: GATEWAY_*, S3_ENDPOINT_URL, AWS_*).
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from flts.errors import ObjectNotFoundError, StorageError
from flts.settings import GatewaySettings
from flts.stages.ports import ALL_BUCKETS, BUCKET_DATASET, ObjectStore

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_key(key: str, *, allow_empty: bool = False) -> str:
    """Return ``key`` if it is a safe object key, else raise 400 saying what is wrong."""
    problem = None
    if not key:
        problem = None if allow_empty else "the object key is empty"
    elif len(key) > MAX_KEY_LENGTH:
        problem = f"the object key is longer than {MAX_KEY_LENGTH} characters"
    elif _CONTROL.search(key):
        problem = "the object key contains control characters"
    elif "\\" in key:
        problem = "the object key contains a backslash"
    elif "%" in key:
        problem = "the object key contains '%' (percent-encoded paths are not accepted)"
    elif key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        problem = "the object key is an absolute path"
    elif any(part in {"..", "."} for part in key.split("/")):
        problem = "the object key contains '.' or '..' path segments (path traversal)"
    elif not allow_empty and "//" in key:
        problem = "the object key contains an empty path segment ('//')"
    if problem:
        raise HTTPException(status_code=400, detail=problem)
    return key


def check_bucket(bucket: str) -> str:
    if bucket not in ALL_BUCKETS:
        known = ", ".join(ALL_BUCKETS)
        raise HTTPException(status_code=404, detail=f"unknown bucket {bucket!r}; known: {known}")
    return bucket


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it exceeds ``limit`` bytes."""
    too_big = HTTPException(status_code=413, detail=f"upload larger than the {limit}-byte limit")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_big
        except ValueError:
            raise HTTPException(status_code=400, detail="invalid Content-Length") from None
    buf = bytearray()
    async for chunk in request.stream():
        buf.extend(chunk)
        if len(buf) > limit:
            raise too_big
    return bytes(buf)


async def _upload_bytes(request: Request, limit: int) -> tuple[bytes, str]:
    """Raw body, or the first file of a multipart form; returns (data, content type)."""
    body = await _read_limited(request, limit)
    ctype = request.headers.get("content-type", "application/octet-stream")
    if not ctype.startswith("multipart/form-data"):
        return body, ctype

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form()
    files = [v for v in form.values() if isinstance(v, UploadFile)]
    if not files:
        raise HTTPException(status_code=400, detail="multipart upload has no file part")
    data = await files[0].read()
    return data, files[0].content_type or "application/octet-stream"


def _auth_dependency(settings: GatewaySettings) -> Any:
    expected = settings.token.get_secret_value().encode() if settings.token else None

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        if expected is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token


def _http_error(what: str, exc: StorageError) -> HTTPException:
    if isinstance(exc, ObjectNotFoundError):
        return HTTPException(status_code=404, detail=f"{what}: not found")
    return HTTPException(status_code=502, detail=f"{what}: storage failed: {exc}")


def create_gateway_app(store: ObjectStore, settings: GatewaySettings) -> FastAPI:
    """The gateway as an ASGI app over ``store`` (S3 in production, memory in unit tests)."""
    app = FastAPI(title="FLTS claim-check gateway")
    auth = [Depends(_auth_dependency(settings))]
    limit = settings.max_upload_bytes

    async def run(what: str, fn: Any, *args: Any) -> Any:
        try:
            return await run_in_threadpool(fn, *args)
        except StorageError as exc:
            raise _http_error(what, exc) from exc

    @app.get("/healthz")
    async def healthz() -> Response:
        try:
            await run_in_threadpool(store.exists, BUCKET_DATASET, ".flts-healthz")
        except StorageError as exc:
            log.warning("health check failed: %s", exc)
            return Response('{"status":"unavailable"}', 503, media_type="application/json")
        return Response('{"status":"ok"}', media_type="application/json")

    @app.api_route("/objects/{bucket}/{key:path}", methods=["PUT", "POST"], dependencies=auth)
    async def upload(bucket: str, key: str, request: Request) -> dict[str, Any]:
        check_bucket(bucket)
        check_key(key)
        data, ctype = await _upload_bytes(request, limit)
        await run(f"upload {bucket}/{key}", store.put_bytes, bucket, key, data, ctype)
        log.info("stored %s/%s (%d bytes)", bucket, key, len(data))
        return {"bucket": bucket, "key": key, "size": len(data)}

    @app.get("/objects/{bucket}/{key:path}", dependencies=auth)
    async def download(bucket: str, key: str) -> Response:
        check_bucket(bucket)
        check_key(key)
        data = await run(f"download {bucket}/{key}", store.get_bytes, bucket, key)
        return Response(data, media_type="application/octet-stream")

    @app.head("/objects/{bucket}/{key:path}", dependencies=auth)
    async def head(bucket: str, key: str) -> Response:
        check_bucket(bucket)
        check_key(key)
        if not await run(f"check {bucket}/{key}", store.exists, bucket, key):
            return Response(status_code=404)
        return Response(status_code=200)

    @app.get("/objects/{bucket}", dependencies=auth)
    async def list_objects(
        bucket: str, prefix: str = "", max_keys: Annotated[int | None, Query(ge=1)] = None
    ) -> dict[str, Any]:
        check_bucket(bucket)
        check_key(prefix, allow_empty=True)
        keys = await run(f"list {bucket}", store.list_keys, bucket, prefix)
        return {"bucket": bucket, "prefix": prefix, "keys": keys[:max_keys]}

    return app


def run_gateway(settings: GatewaySettings, store: ObjectStore | None = None) -> None:
    """Serve the gateway with uvicorn on GATEWAY_HOST:GATEWAY_PORT (loopback by default)."""
    import uvicorn

    from flts.adapters.s3 import S3ObjectStore

    app = create_gateway_app(store or S3ObjectStore.from_env(), settings)
    log.info("claim-check gateway on http://%s:%d", settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


def main(argv: list[str] | None = None) -> int:
    """Entrypoint: settings from env; ``--host``/``--port`` override GATEWAY_HOST/PORT."""
    import argparse

    from flts.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m flts.api.gateway")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    overrides = {"GATEWAY_HOST": args.host, "GATEWAY_PORT": args.port}
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings(GatewaySettings, **{k: v for k, v in overrides.items() if v})
    run_gateway(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
