"""The MLflow pyfunc face of an FLTS forecaster, for ``mlflow.pyfunc.load_model`` and
``mlflow models serve``.

The pyfunc wraps the forecaster's own saved directory (logged as the ``forecaster`` artifact),
so the fast path (``MlflowTracker.load_forecaster``) and the pyfunc load the very same files.
Input is a window of recent rows: ``ds`` plus the raw columns in original units (features are
built exactly as in training), or already-built feature columns. Output is the forecast of the
``horizon`` steps right after the window, in original units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

#: Key of the forecaster directory among the pyfunc model's artifacts.
FORECASTER_ARTIFACT = "forecaster"


class FltsPyfuncModel(PythonModel):  # type: ignore[misc]
    """Forecast the steps after a window of rows; ``predict`` returns ``ds, step, prediction``."""

    def __init__(self) -> None:
        self._forecaster: Any = None

    def load_context(self, context: Any) -> None:
        from flts.forecasting.models import load_forecaster

        self._forecaster = load_forecaster(Path(context.artifacts[FORECASTER_ARTIFACT]))

    # A DataFrame hint is one MLflow accepts without inferring a schema (others warn).
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """One forecast from the end of ``model_input`` (a DataFrame window)."""
        if self._forecaster is None:
            self.load_context(context)
        return forecast_after_window(self._forecaster, pd.DataFrame(model_input))


def forecast_after_window(forecaster: Any, window: pd.DataFrame) -> pd.DataFrame:
    """Forecast ``horizon`` steps after the last row of ``window``, in original units."""
    from flts.errors import DataValidationError
    from flts.forecasting.features import features_for_spec
    from flts.forecasting.spec import TIME_COLUMN

    spec = forecaster.spec
    if TIME_COLUMN not in window.columns:
        raise DataValidationError(f"input window has no {TIME_COLUMN!r} column")
    window = window.copy()
    window[TIME_COLUMN] = pd.to_datetime(window[TIME_COLUMN]).astype("datetime64[ns]")
    if all(c in window.columns for c in spec.feature_order):
        frame = window.loc[:, [TIME_COLUMN, *spec.feature_order]].reset_index(drop=True)
    else:
        frame = features_for_spec(window, spec)
    if len(frame) < forecaster.min_history:
        raise DataValidationError(
            f"input window has {len(frame)} usable rows; the model needs {forecaster.min_history}"
        )
    origins = np.array([len(frame)], dtype=np.int64)
    prediction = np.asarray(forecaster.predict(frame, origins), dtype=np.float64)[0]
    last = pd.Timestamp(frame[TIME_COLUMN].iloc[-1])
    steps = np.arange(1, spec.horizon + 1)
    if spec.step.calendar:  # month arithmetic on the naive (UTC) time
        naive = np.datetime64(last.tz_localize(None) if last.tz else last, "ns")
        stamps: Any = spec.step.shift(np.array([naive]), steps)
    else:
        stamps = [last + pd.Timedelta(seconds=int(k) * spec.step_seconds) for k in steps]
    return pd.DataFrame(
        {
            TIME_COLUMN: stamps,
            "step": steps,
            "prediction": prediction,
        }
    )
