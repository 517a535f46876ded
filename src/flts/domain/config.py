"""Stage configurations, model types and the lineage hash.

``config_hash`` is the sha256 of canonical JSON (sorted keys, no whitespace), so it is stable
under key order and changes with any field. Preprocess computes it once, from its config plus a
fingerprint of the input data, and every later message carries it unchanged.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flts.errors import UnknownModelTypeError


class ModelType(StrEnum):
    """Every forecaster FLTS knows. Baselines are scored next to every model, never promoted."""

    GRU = "GRU"
    LSTM = "LSTM"
    PROPHET = "PROPHET"
    PERSISTENCE = "PERSISTENCE"
    SEASONAL_NAIVE = "SEASONAL_NAIVE"
    #: Regression on lags (ridge, then LightGBM) and MSTL + damped trend (statistical family).
    LINEAR = "LINEAR"
    LIGHTGBM = "LIGHTGBM"
    MSTL = "MSTL"
    #: One regression-on-lags model fitted across every series of a fleet (issue 13): each
    #: series gets the shared weights with its own scaler, intervals and test scores.
    GLOBAL_LINEAR = "GLOBAL_LINEAR"

    @classmethod
    def parse(cls, value: str) -> ModelType:
        try:
            return cls(value.strip().upper())
        except ValueError:
            known = ", ".join(m.value for m in cls)
            raise UnknownModelTypeError(f"unknown model type {value!r}; known: {known}") from None


#: The spec's three trainers: the default of EXPECTED_MODEL_TYPES and of deployments, kept as
#: is so an existing deployment (three trainer containers) still completes its runs.
SPEC_MODEL_TYPES: tuple[ModelType, ...] = (ModelType.GRU, ModelType.LSTM, ModelType.PROPHET)
#: Every type a trainer service accepts (MODEL_TYPE) and ``flts run --models`` offers.
TRAINABLE_MODEL_TYPES: tuple[ModelType, ...] = (
    *SPEC_MODEL_TYPES,
    ModelType.LINEAR,
    ModelType.LIGHTGBM,
    ModelType.MSTL,
)
#: Types fitted across the series of a fleet by the ``train-global`` service, never by a
#: per-series trainer (``flts run --global-model``).
GLOBAL_MODEL_TYPES: tuple[ModelType, ...] = (ModelType.GLOBAL_LINEAR,)
BASELINE_MODEL_TYPES: tuple[ModelType, ...] = (ModelType.PERSISTENCE, ModelType.SEASONAL_NAIVE)
#: Prediction-interval levels (percent) calibrated for every trained model unless configured.
DEFAULT_INTERVAL_LEVELS: tuple[int, ...] = (80, 95)


@cache
def available_zones() -> frozenset[str]:
    """IANA time zone names (the system's database, or the ``tzdata`` package)."""
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


class FrozenConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


#: ``PreprocessConfig.outlier_factor``'s default (left out of ``config_hash`` at this value).
OUTLIER_FACTOR_DEFAULT = 10.0


class PreprocessConfig(FrozenConfig):
    """How raw CSV becomes model-ready data. Every field feeds ``config_hash``."""

    time_col: str = "time"
    target: str = "down"
    #: Input columns besides the time; None means every numeric column of the file.
    feature_columns: tuple[str, ...] | None = None
    #: Step of the regular grid in seconds; None infers it (median spacing of the training file).
    step_seconds: int | None = Field(default=None, gt=0)
    #: Step in whole calendar months (1 monthly, 3 quarterly, 12 yearly; a divisor of 12), for
    #: data a month is 28-31 days apart in; wins over ``step_seconds``. None: inferred (monthly-
    #: like timestamps get it by themselves).
    step_months: int | None = Field(default=None, ge=1, le=12)
    #: Gaps and missing values are filled by linear interpolation in time, then edge values.
    fill_method: Literal["interpolate"] = "interpolate"
    #: Clip every input column to these quantiles of the *training* data (None: no clipping).
    clip_quantiles: tuple[float, float] | None = None
    #: A value further from its column's training median than this many times the column's
    #: 99th-percentile non-zero training magnitude is a glitch and is treated as missing
    #: (``flts.forecasting.outliers``). None keeps every value.
    outlier_factor: float | None = Field(default=OUTLIER_FACTOR_DEFAULT, gt=0)
    time_features: bool = True
    #: Extra lagged copies of the target, in steps (e.g. (720,) for one day earlier). None picks
    #: seasonal lags from the data (``flts.forecasting.defaults``); () means no lags.
    lags: tuple[int, ...] | None = None
    lookback: int = Field(default=30, ge=1)
    horizon: int = Field(default=1, ge=1)
    #: Steps in one seasonal period for the seasonal-naive baseline; None = one day of steps
    #: when the training file holds two days (else 1: seasonal naive equals persistence).
    season_steps: int | None = Field(default=None, gt=0)
    #: IANA zone (e.g. "Europe/Berlin") of naive timestamps written in local clock time; they are
    #: converted to UTC, the hour repeated when daylight-saving time ends told apart by order.
    #: None: naive timestamps are UTC. Timestamps with a UTC offset never need it.
    timezone: str | None = None
    #: Public-holiday calendar of the load's location, as a country code with an optional
    #: subdivision ("DE", "ES-CT", "US-CA"): LightGBM learns what a holiday does to the load
    #: (``flts.forecasting.public_holidays``). None: no holiday inputs.
    holidays: str | None = None
    #: Read the seasonal lags at the same *local* clock time one season earlier (the zone from
    #: ``timezone`` or the time column's name), not the same UTC time: right for load that
    #: follows people's clocks (shops, offices, a country's demand) across daylight-saving
    #: changes, wrong for load on fixed timers or the sun (storage heating, heat pumps, PV), so
    #: off unless asked for (``bench/clock_ab.py``).
    local_clock_lags: bool = False

    @field_validator("time_col", "target")
    @classmethod
    def _column_name(cls, value: str) -> str:
        # Files' column names lose surrounding spaces when read (``csv_text``), so a name copied
        # from a header with them (``"KWH/hh (per half hour) "``) means that same column.
        return value.strip()

    @field_validator("feature_columns")
    @classmethod
    def _column_names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(name.strip() for name in value)

    @field_validator("holidays")
    @classmethod
    def _known_calendar(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from flts.domain.calendars import check_code

        return check_code(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in available_zones():
            raise ValueError(f"unknown time zone {value!r}: use an IANA name like Europe/Berlin")
        return value

    @model_validator(mode="after")
    def _check(self) -> PreprocessConfig:
        if self.clip_quantiles is not None:
            low, high = self.clip_quantiles
            if not 0.0 <= low < high <= 1.0:
                raise ValueError("clip_quantiles must satisfy 0 <= low < high <= 1")
        if any(lag < 1 for lag in self.lags or ()):
            raise ValueError("lags must be positive step counts")
        if self.step_months is not None and 12 % self.step_months:
            raise ValueError(
                f"step_months must divide a year (1, 2, 3, 4, 6 or 12), got {self.step_months}"
            )
        return self


class TrainConfig(FrozenConfig):
    """Hyper-parameters of one training run. CPU-sized defaults."""

    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=256, ge=1)
    hidden_size: int = Field(default=64, ge=1)
    #: One layer: on the bundled data it scores like two (test RMSE 8.09e7 vs 8.05e7 for GRU,
    #: 8.24e7 vs 8.28e7 for LSTM) at half the CPU per epoch (~3 s vs ~6.5 s on one core).
    num_layers: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    learning_rate: float = Field(default=2e-3, gt=0.0)
    #: Early stopping: epochs without validation improvement before stopping.
    patience: int = Field(default=3, ge=1)
    #: Fraction of the training windows, taken from the end in time order, used for validation.
    validation_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    seed: int = 42
    #: Torch intra-op threads (None: leave torch's default).
    torch_threads: int | None = Field(default=None, ge=1)
    #: Nominal coverages (percent) of the split-conformal prediction intervals calibrated after
    #: fitting. Not part of ``config_hash`` (that hashes preprocessing and data only): the levels
    #: change no fitted weight, only the bands computed from the same residuals afterwards.
    interval_levels: tuple[int, ...] = DEFAULT_INTERVAL_LEVELS

    @field_validator("interval_levels")
    @classmethod
    def _check_levels(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(not 0 < level < 100 for level in value):
            raise ValueError(
                f"interval_levels must be percentages strictly between 0 and 100; got {value}"
            )
        return tuple(sorted(set(value)))


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def sha256_hex(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def compute_config_hash(config: PreprocessConfig, data_fingerprint: str) -> str:
    """Lineage hash of one preprocessing run: its config plus what data it read."""
    preprocess = config.model_dump(mode="json")
    for added_after_release in ("timezone", "holidays", "step_months"):
        # Leaving these out while unset keeps every earlier run's hash.
        if preprocess[added_after_release] is None:
            del preprocess[added_after_release]
    # The same for a field added with a default that is on: left out at its default, so an
    # earlier run's hash (and its processed data, when it held no such glitch) stays valid.
    if preprocess["outlier_factor"] == OUTLIER_FACTOR_DEFAULT:
        del preprocess["outlier_factor"]
    if not preprocess["local_clock_lags"]:
        del preprocess["local_clock_lags"]
    payload = {"preprocess": preprocess, "data": data_fingerprint}
    return sha256_hex(canonical_json(payload))
