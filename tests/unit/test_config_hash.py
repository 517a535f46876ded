"""config_hash: stable under key order, sensitive to every config field and to the data."""

from __future__ import annotations

from typing import Any

import pytest
from _rawcsv import csv_pair
from hypothesis import given, settings
from hypothesis import strategies as st

from flts.domain.config import PreprocessConfig, canonical_json, compute_config_hash
from flts.forecasting.prepare import data_fingerprint

#: For every PreprocessConfig field, a valid value different from the default.
CHANGED: dict[str, Any] = {
    "time_col": "timestamp",
    "target": "up",
    "feature_columns": ("up",),
    "step_seconds": 60,
    "clip_quantiles": (0.01, 0.99),
    "time_features": False,
    "lags": (720,),
    "lookback": 31,
    "horizon": 2,
    "season_steps": 360,
    "timezone": "Europe/Berlin",
    "holidays": "DE",
    "step_months": 3,
    "outlier_factor": 20.0,
    "local_clock_lags": True,
}
#: fill_method has a single allowed value today, so it cannot change (it still feeds the hash).
UNCHANGEABLE = {"fill_method"}

FINGERPRINT = data_fingerprint(*csv_pair())


def test_every_field_is_covered() -> None:
    assert set(CHANGED) | UNCHANGEABLE == set(PreprocessConfig.model_fields)
    assert "fill_method" in PreprocessConfig().model_dump()


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_changing_any_single_field_changes_the_hash(field: str) -> None:
    base = PreprocessConfig()
    changed = PreprocessConfig.model_validate({**base.model_dump(), field: CHANGED[field]})
    assert compute_config_hash(changed, FINGERPRINT) != compute_config_hash(base, FINGERPRINT)


@settings(max_examples=50, deadline=None)
@given(
    order=st.permutations(sorted(CHANGED)),
    subset=st.sets(st.sampled_from(sorted(CHANGED))),
)
def test_hash_is_stable_under_key_order(order: list[str], subset: set[str]) -> None:
    values = {k: CHANGED[k] for k in sorted(subset)}
    shuffled = {k: values[k] for k in order if k in values}
    a = PreprocessConfig.model_validate(values)
    b = PreprocessConfig.model_validate(shuffled)
    assert compute_config_hash(a, FINGERPRINT) == compute_config_hash(b, FINGERPRINT)
    assert canonical_json(values) == canonical_json(shuffled)


@settings(max_examples=50, deadline=None)
@given(field=st.sampled_from(sorted(CHANGED)), lookback=st.integers(1, 500))
def test_hash_changes_with_any_field_from_any_starting_point(field: str, lookback: int) -> None:
    start = PreprocessConfig(lookback=lookback)
    moved = {**start.model_dump(), field: CHANGED[field]}
    if field == "lookback" and lookback == CHANGED["lookback"]:
        moved["lookback"] = lookback + 1
    changed = PreprocessConfig.model_validate(moved)
    assert compute_config_hash(changed, FINGERPRINT) != compute_config_hash(start, FINGERPRINT)


def test_hash_changes_with_the_data_and_is_stable_on_rerun() -> None:
    train, test = csv_pair()
    config = PreprocessConfig()
    same = compute_config_hash(config, data_fingerprint(train, test))
    assert same == compute_config_hash(config, data_fingerprint(bytes(train), bytes(test)))
    edited = train.replace(b"\n", b"\r\n", 1)
    assert compute_config_hash(config, data_fingerprint(edited, test)) != same
    assert compute_config_hash(config, data_fingerprint(train, test + b"\n")) != same
    # Swapping the roles of the files is a different run.
    assert data_fingerprint(test, train) != data_fingerprint(train, test)


def test_hash_is_hex_sha256() -> None:
    digest = compute_config_hash(PreprocessConfig(), FINGERPRINT)
    assert len(digest) == 64
    assert int(digest, 16) >= 0


def test_column_names_lose_surrounding_spaces_as_the_files_columns_do() -> None:
    # A name copied from a header with its spaces ("load ") names the column read as "load".
    spaced = PreprocessConfig(time_col=" ts", target="load ", feature_columns=(" temp",))
    plain = PreprocessConfig(time_col="ts", target="load", feature_columns=("temp",))
    assert spaced == plain
    assert compute_config_hash(spaced, FINGERPRINT) == compute_config_hash(plain, FINGERPRINT)
