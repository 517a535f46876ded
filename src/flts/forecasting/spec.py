"""What a trained model must carry to predict honestly: scaler, feature order, window shape."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from flts.errors import DataValidationError
from flts.forecasting.time_step import TimeStep

TIME_COLUMN = "ds"


class ScalerParams(BaseModel):
    """Per-column standardisation fitted on training data only: ``(x - mean) / scale``."""

    model_config = ConfigDict(frozen=True)

    columns: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @model_validator(mode="after")
    def _aligned(self) -> ScalerParams:
        if not len(self.columns) == len(self.mean) == len(self.scale):
            raise ValueError("scaler columns, mean and scale must have the same length")
        if any(s <= 0 for s in self.scale):
            raise ValueError("scaler scale must be positive")
        return self

    @classmethod
    def fit(cls, columns: tuple[str, ...], values: np.ndarray) -> ScalerParams:
        """Fit on a (rows, columns) array of *training* values; constant columns get scale 1."""
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
        std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        return cls(
            columns=columns,
            mean=tuple(float(m) for m in mean),
            scale=tuple(float(s) for s in std),
        )

    def transform(self, values: np.ndarray) -> np.ndarray:
        scaled: np.ndarray = (values - np.asarray(self.mean)) / np.asarray(self.scale)
        return scaled

    def inverse_column(self, column: str, values: np.ndarray) -> np.ndarray:
        """Back to original units for one column (the target)."""
        idx = self.columns.index(column)
        return values * self.scale[idx] + self.mean[idx]

    def transform_column(self, column: str, values: np.ndarray) -> np.ndarray:
        idx = self.columns.index(column)
        return (values - self.mean[idx]) / self.scale[idx]


class ForecastSpec(BaseModel):
    """Shape and lineage of a forecasting problem; saved with every model."""

    model_config = ConfigDict(frozen=True)

    target: str
    #: Model input columns, in the order the model was trained on; enforced at inference.
    feature_order: tuple[str, ...]
    lookback: int = Field(ge=1)
    horizon: int = Field(ge=1)
    #: The grid step; for calendar steps (``step_months``) the nominal mean length.
    step_seconds: int = Field(gt=0)
    season_steps: int = Field(gt=0)
    scaler: ScalerParams
    config_hash: str = ""
    #: Raw CSV columns (besides time) the feature pipeline derives ``feature_order`` from.
    raw_columns: tuple[str, ...] = ()
    time_features: bool = True
    lags: tuple[int, ...] = ()
    #: Detected seasonal periods in steps, shortest first (daily, then weekly when training holds
    #: >= 2 weeks); empty means "use (season_steps,)". Filled by preprocess.
    seasonal_periods: tuple[int, ...] = ()
    #: Public-holiday calendar (``PreprocessConfig.holidays``) and the zone whose calendar days
    #: it is read in (``PreprocessConfig.timezone``; None: UTC days). Saved with every model so
    #: serving computes the same holiday inputs as training.
    holidays: str | None = None
    timezone: str | None = None
    #: The zone whose clock the load follows (``PreprocessConfig.timezone``, or the one the time
    #: column's name gives), for a step under a day: the regression models read "the same time
    #: one season before" at the same *local* time, so a daylight-saving change does not shift
    #: their daily and weekly lags by an hour (``lag_features.clock_shift``). None: UTC (and
    #: every older model).
    clock_zone: str | None = None
    #: Calendar step in months (0: the fixed ``step_seconds``), and whether its timestamps count
    #: back from the month's end (``flts.forecasting.time_step``). Older models hold neither.
    step_months: int = Field(default=0, ge=0)
    month_end: bool = False
    #: Column -> (training median, largest distance from it a reading may be) beyond which a
    #: value is a glitch (``flts.forecasting.outliers``): what preprocessing removed, kept so the
    #: live loop refuses the same readings. Empty for older models and ``outlier_factor`` null.
    outlier_fences: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _target_is_feature(self) -> ForecastSpec:
        if self.target not in self.feature_order:
            raise ValueError(f"target {self.target!r} must be one of the feature columns")
        if tuple(self.scaler.columns) != tuple(self.feature_order):
            raise ValueError("scaler columns must equal feature_order")
        return self

    @property
    def step(self) -> TimeStep:
        """The grid step every "k steps later" is computed with."""
        return TimeStep(self.step_seconds, self.step_months, self.month_end)

    @property
    def periods(self) -> tuple[int, ...]:
        """The seasonal periods forecasters use: the detected ones, else ``(season_steps,)``."""
        return tuple(self.seasonal_periods or (self.season_steps,))

    @property
    def target_index(self) -> int:
        return self.feature_order.index(self.target)

    def check_frame_columns(self, columns: list[str] | tuple[str, ...]) -> None:
        """Refuse a frame missing features; column order comes from the spec, not the frame."""
        missing = [c for c in self.feature_order if c not in columns]
        if missing:
            raise DataValidationError(
                f"input is missing feature columns {missing}; "
                f"the model needs {list(self.feature_order)}"
            )
        if TIME_COLUMN not in columns:
            raise DataValidationError(f"input has no {TIME_COLUMN!r} timestamp column")
