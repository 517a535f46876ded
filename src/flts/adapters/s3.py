"""Claim-check storage: S3 (boto3) and the claim-check gateway (HTTP), both as ``ObjectStore``.

Buckets are created on demand: the first write to a bucket makes sure it exists. botocore and
HTTP errors become ``StorageError`` / ``ObjectNotFoundError`` here.

``get_file`` / ``post_file`` keep the spec's module-level helpers; they read the S3 settings
from the environment once and reuse one client.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from flts.errors import ObjectNotFoundError, StorageError
from flts.settings import S3Settings, load_settings
from flts.stages.ports import ALL_BUCKETS

log = logging.getLogger(__name__)

_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ObjectStore:
    """``ObjectStore`` over any S3 API (MinIO, SeaweedFS, AWS)."""

    def __init__(self, settings: S3Settings, client: Any | None = None) -> None:
        self.settings = settings
        secret = settings.secret_access_key
        self._client = client or boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            region_name=settings.region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )
        self._known: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> S3ObjectStore:
        return cls(load_settings(S3Settings))

    @property
    def client(self) -> Any:
        """The boto3 client, for callers that need an S3 call the port does not offer."""
        return self._client

    def _where(self, bucket: str, key: str = "") -> str:
        return f"s3://{bucket}/{key} at {self.settings.endpoint_url or 'AWS'}"

    def ensure_bucket(self, bucket: str) -> None:
        if bucket in self._known:
            return
        try:
            self._client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) not in _MISSING_CODES:
                raise StorageError(f"cannot check bucket {self._where(bucket)}: {exc}") from exc
            try:
                self._client.create_bucket(Bucket=bucket)
            except ClientError as cexc:
                if _code(cexc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise StorageError(f"cannot create {self._where(bucket)}: {cexc}") from cexc
            log.info("created bucket %s", bucket)
        except BotoCoreError as exc:
            raise StorageError(f"cannot reach {self._where(bucket)}: {exc}") from exc
        with self._lock:
            self._known.add(bucket)

    def ensure_buckets(self, buckets: Iterable[str] = ALL_BUCKETS) -> None:
        for bucket in buckets:
            self.ensure_bucket(bucket)

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        self.ensure_bucket(bucket)
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot write {self._where(bucket, key)}: {exc}") from exc

    def get_bytes(self, bucket: str, key: str) -> bytes:
        try:
            resp = self._client.get_object(Bucket=bucket, Key=key)
            body: bytes = resp["Body"].read()
            return body
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                raise ObjectNotFoundError(f"no object {self._where(bucket, key)}") from exc
            raise StorageError(f"cannot read {self._where(bucket, key)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {self._where(bucket, key)}: {exc}") from exc

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._client.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                return False
            raise StorageError(f"cannot check {self._where(bucket, key)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot check {self._where(bucket, key)}: {exc}") from exc

    def list_keys(self, bucket: str, prefix: str = "", *, page_size: int = 1000) -> list[str]:
        """All keys under ``prefix`` (every page); a missing bucket has no keys."""
        keys: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
            )
            for page in pages:
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                return []
            raise StorageError(f"cannot list {self._where(bucket, prefix)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot list {self._where(bucket, prefix)}: {exc}") from exc
        return sorted(keys)

    def list_buckets(self) -> list[str]:
        """Bucket names (a signed call: also the store's health check)."""
        try:
            return [b["Name"] for b in self._client.list_buckets().get("Buckets", [])]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list buckets at {self._where('')}: {exc}") from exc


@functools.lru_cache(maxsize=1)
def _env_store() -> S3ObjectStore:
    return S3ObjectStore.from_env()


def get_file(bucket: str, key: str) -> bytes:
    """The spec's helper: fetch one claim-checked object (settings from env)."""
    return _env_store().get_bytes(bucket, key)


def post_file(bucket: str, key: str, data: bytes) -> None:
    """The spec's helper: store one object, creating the bucket on demand."""
    _env_store().put_bytes(bucket, key, data)


class GatewayObjectStore:
    """``ObjectStore`` through the claim-check gateway's HTTP API (no S3 credentials needed)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def _path(bucket: str, key: str = "") -> str:
        suffix = f"/{quote(key, safe='/')}" if key else ""
        return f"/objects/{quote(bucket, safe='')}{suffix}"

    def _check(self, resp: httpx.Response, what: str) -> httpx.Response:
        if resp.status_code == 404:
            raise ObjectNotFoundError(f"{what}: {resp.text}")
        if resp.status_code >= 400:
            raise StorageError(f"{what}: HTTP {resp.status_code}: {resp.text}")
        return resp

    def _send(self, method: str, path: str, what: str, **kw: Any) -> httpx.Response:
        try:
            return self._check(self._http.request(method, path, **kw), what)
        except httpx.HTTPError as exc:
            raise StorageError(f"{what}: gateway unreachable: {exc}") from exc

    def ensure_bucket(self, bucket: str) -> None:
        """The gateway creates buckets on demand; this only checks it accepts the name."""
        self._send("GET", self._path(bucket), f"bucket {bucket}", params={"max_keys": 1})

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        headers = {"Content-Type": content_type}
        what = f"upload {bucket}/{key}"
        self._send("PUT", self._path(bucket, key), what, content=data, headers=headers)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self._send("GET", self._path(bucket, key), f"download {bucket}/{key}").content

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._send("HEAD", self._path(bucket, key), f"check {bucket}/{key}")
        except ObjectNotFoundError:
            return False
        return True

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        resp = self._send("GET", self._path(bucket), f"list {bucket}", params={"prefix": prefix})
        keys: list[str] = resp.json()["keys"]
        return keys
