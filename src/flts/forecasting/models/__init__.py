"""Registry of forecasters: one class per ``ModelType``, created and loaded by type.

Every class implements ``flts.forecasting.base.Forecaster`` and passes the same conformance test
(tests/unit/test_forecaster_conformance.py).
"""

from __future__ import annotations

from pathlib import Path

from flts.domain.config import ModelType, TrainConfig
from flts.errors import ModelError, UnknownModelTypeError
from flts.forecasting.base import SPEC_FILE, Forecaster, read_model_type
from flts.forecasting.models.baselines import PersistenceForecaster, SeasonalNaiveForecaster
from flts.forecasting.models.global_linear import GlobalLinearForecaster
from flts.forecasting.models.lag_regression import LinearForecaster
from flts.forecasting.models.lightgbm_model import LightGBMForecaster
from flts.forecasting.models.mstl_model import MSTLForecaster
from flts.forecasting.models.prophet_model import ProphetForecaster
from flts.forecasting.models.rnn import GRUForecaster, LSTMForecaster
from flts.forecasting.spec import ForecastSpec

FORECASTERS: dict[ModelType, type[Forecaster]] = {
    ModelType.GRU: GRUForecaster,
    ModelType.LSTM: LSTMForecaster,
    ModelType.PROPHET: ProphetForecaster,
    ModelType.PERSISTENCE: PersistenceForecaster,
    ModelType.SEASONAL_NAIVE: SeasonalNaiveForecaster,
    ModelType.LINEAR: LinearForecaster,
    ModelType.LIGHTGBM: LightGBMForecaster,
    ModelType.MSTL: MSTLForecaster,
    ModelType.GLOBAL_LINEAR: GlobalLinearForecaster,
}


def forecaster_class(model_type: ModelType | str) -> type[Forecaster]:
    kind = model_type if isinstance(model_type, ModelType) else ModelType.parse(model_type)
    try:
        return FORECASTERS[kind]
    except KeyError:
        raise UnknownModelTypeError(f"no forecaster is registered for {kind.value!r}") from None


def create_forecaster(
    model_type: ModelType | str, spec: ForecastSpec, train_config: TrainConfig | None = None
) -> Forecaster:
    """An unfitted forecaster of the given type (a string is parsed, case-insensitively)."""
    return forecaster_class(model_type)(spec, train_config)


def load_forecaster(directory: Path) -> Forecaster:
    """Load whatever ``Forecaster.save`` wrote to ``directory``; the header names the type."""
    if not (directory / SPEC_FILE).is_file():
        raise ModelError(f"{directory} holds no saved forecaster (no {SPEC_FILE})")
    return forecaster_class(read_model_type(directory)).load(directory)


__all__ = [
    "FORECASTERS",
    "GRUForecaster",
    "GlobalLinearForecaster",
    "LSTMForecaster",
    "LightGBMForecaster",
    "LinearForecaster",
    "MSTLForecaster",
    "PersistenceForecaster",
    "ProphetForecaster",
    "SeasonalNaiveForecaster",
    "create_forecaster",
    "forecaster_class",
    "load_forecaster",
]
