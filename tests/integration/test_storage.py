"""S3ObjectStore against the real SeaweedFS of the session stack."""

from __future__ import annotations

import uuid

import pytest

from flts.adapters.s3 import S3ObjectStore
from flts.errors import ObjectNotFoundError
from flts.settings import S3Settings
from flts.stages.ports import ALL_BUCKETS, ObjectStore

pytestmark = pytest.mark.integration


def test_put_get_list_exists(s3_store: S3ObjectStore) -> None:
    assert isinstance(s3_store, ObjectStore)
    prefix = f"t-{uuid.uuid4().hex[:8]}/"
    s3_store.put_bytes("processed-data", prefix + "a.parquet", b"abc")
    s3_store.put_bytes("processed-data", prefix + "b/c.json", b"{}", "application/json")
    assert s3_store.get_bytes("processed-data", prefix + "a.parquet") == b"abc"
    assert s3_store.exists("processed-data", prefix + "b/c.json")
    assert not s3_store.exists("processed-data", prefix + "nope")
    assert s3_store.list_keys("processed-data", prefix) == [
        prefix + "a.parquet",
        prefix + "b/c.json",
    ]


def test_missing_object_raises_object_not_found(s3_store: S3ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="processed-data/missing"):
        s3_store.get_bytes("processed-data", "missing-" + uuid.uuid4().hex)
    with pytest.raises(ObjectNotFoundError):
        s3_store.get_bytes("no-such-bucket-" + uuid.uuid4().hex[:6], "k")


def test_buckets_are_created_on_demand_and_listing_paginates(s3_store: S3ObjectStore) -> None:
    bucket = "flts-test-" + uuid.uuid4().hex[:8]
    assert s3_store.list_keys(bucket) == []
    for i in range(7):
        s3_store.put_bytes(bucket, f"k{i:02d}", b"")
    assert s3_store.list_keys(bucket, page_size=3) == [f"k{i:02d}" for i in range(7)]


def test_stack_created_the_claim_check_buckets(s3_store: S3ObjectStore) -> None:
    assert set(ALL_BUCKETS) <= set(s3_store.list_buckets())


def test_wrong_credentials_are_refused(s3_settings: S3Settings) -> None:
    from pydantic import SecretStr

    from flts.errors import StorageError

    bad = S3ObjectStore(s3_settings.model_copy(update={"secret_access_key": SecretStr("wrong")}))
    with pytest.raises(StorageError):
        bad.put_bytes("dataset", "x", b"x")


def test_spec_helpers_get_file_post_file(
    s3_settings: S3Settings, service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flts.adapters import s3

    for name, value in service_env.items():
        monkeypatch.setenv(name, value)
    s3._env_store.cache_clear()
    key = f"spec-{uuid.uuid4().hex[:8]}.bin"
    try:
        s3.post_file("dataset", key, b"payload")
        assert s3.get_file("dataset", key) == b"payload"
    finally:
        s3._env_store.cache_clear()
