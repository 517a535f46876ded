"""The promotion follower's record handling: unreadable records and failed swaps are logged and
skipped; the thread goes on (its Kafka side: tests/integration/test_promotion_follow.py)."""

from __future__ import annotations

import threading

import pytest

from flts.domain.messages import ModelSelected
from flts.errors import ObjectNotFoundError
from flts.services.promotion_follow import PromotionFollower

SELECTED = ModelSelected(
    model_uri="models:/m/1",
    model_type="GRU",
    run_id="r1",
    config_hash="h",
    composite_score=0.9,
    test_rmse=1.0,
    test_mae=1.0,
    test_mse=1.0,
    promotion_time="2026-01-01T00:00:00Z",
    identifier="f/a",
)


def test_bad_records_and_failed_swaps_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[ModelSelected] = []

    def swap(selected: ModelSelected) -> None:
        seen.append(selected)
        if len(seen) == 1:
            raise ObjectNotFoundError("registry unreachable")

    follower = PromotionFollower("model-selected", {}, swap, threading.Event())
    follower._follow(b"not json")
    follower._follow(SELECTED.model_dump_json().encode())  # swap fails: logged
    follower._follow(SELECTED.model_dump_json().encode())
    assert [s.run_id for s in seen] == ["r1", "r1"]
    assert follower.seen == 2
    assert "skipped an unreadable record" in caplog.text
    assert "could not hot-swap run r1" in caplog.text
