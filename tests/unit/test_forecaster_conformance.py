"""One contract every forecaster must keep, models and baselines alike.

Shapes, determinism under a seed, save/load in a fresh process, no look-ahead, column order,
original units, and clear refusals of too-short data.
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _synthetic import Problem, synthetic_problem

from flts.domain.config import ModelType, TrainConfig
from flts.errors import DataValidationError, ModelError, UnknownModelTypeError
from flts.forecasting.base import Forecaster
from flts.forecasting.models import FORECASTERS, create_forecaster, load_forecaster
from flts.forecasting.spec import TIME_COLUMN

CONFIG = TrainConfig(epochs=2, hidden_size=16, batch_size=64, seed=7, torch_threads=1)
ALL_TYPES = list(ModelType)


@cache
def _problem() -> Problem:
    return synthetic_problem()


@cache
def _frame() -> pd.DataFrame:
    p = _problem()
    return pd.concat([p.train, p.test], ignore_index=True)


def _origins() -> np.ndarray:
    p = _problem()
    return np.arange(len(p.train), len(_frame()) - p.spec.horizon + 1, dtype=np.int64)


def _fit(model_type: ModelType) -> Forecaster:
    model = create_forecaster(model_type, _problem().spec, CONFIG)
    model.fit(_problem().train)
    return model


@cache
def _fitted(model_type: ModelType) -> Forecaster:
    return _fit(model_type)


@cache
def _predicted(model_type: ModelType) -> np.ndarray:
    return _fitted(model_type).predict(_frame(), _origins())


def test_registry_covers_every_model_type() -> None:
    assert set(FORECASTERS) == set(ModelType)
    for model_type, cls in FORECASTERS.items():
        assert cls.model_type is model_type
        assert type(create_forecaster(model_type.value.lower(), _problem().spec)) is cls


def test_unknown_model_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelTypeError, match="ARIMA"):
        create_forecaster("ARIMA", _problem().spec)
    with pytest.raises(ModelError, match="no saved forecaster"):
        load_forecaster(tmp_path)


@pytest.mark.parametrize("model_type", ALL_TYPES)
def test_shape_and_finite(model_type: ModelType) -> None:
    pred = _predicted(model_type)
    assert pred.shape == (len(_origins()), _problem().spec.horizon)
    assert _problem().spec.horizon > 1
    assert np.isfinite(pred).all()


@pytest.mark.parametrize("model_type", ALL_TYPES)
def test_predictions_are_in_original_units(model_type: ModelType) -> None:
    target_mean = float(_problem().train["down"].mean())
    pred_mean = float(np.mean(_predicted(model_type)))
    assert 0.2 * target_mean < pred_mean < 5.0 * target_mean


@pytest.mark.parametrize("model_type", ALL_TYPES)
def test_same_seed_same_predictions(model_type: ModelType) -> None:
    again = _fit(model_type).predict(_frame(), _origins())
    np.testing.assert_array_equal(again, _predicted(model_type))


@pytest.mark.parametrize("model_type", ALL_TYPES)
def test_no_row_at_or_after_the_origin_is_read(model_type: ModelType) -> None:
    model, frame = _fitted(model_type), _frame()
    for origin in (_origins()[0], _origins()[len(_origins()) // 2]):
        corrupted = frame.copy()
        features = [c for c in frame.columns if c != TIME_COLUMN]
        corrupted.loc[origin:, features] = np.nan
        corrupted.loc[origin:, TIME_COLUMN] += pd.Timedelta(days=4000)
        clean = model.predict(frame, np.array([origin]))
        np.testing.assert_array_equal(model.predict(corrupted, np.array([origin])), clean)


#: Learners whose fit reads the training target (baselines learn nothing; MSTL's decomposition
#: needs an unbroken series and fits filled-in values too, as ``Forecaster.fit`` says).
MASKING_LEARNERS = [
    t
    for t in ALL_TYPES
    if t not in (ModelType.PERSISTENCE, ModelType.SEASONAL_NAIVE, ModelType.MSTL)
]


@pytest.mark.parametrize("model_type", MASKING_LEARNERS)
def test_filled_in_training_values_are_not_learned_from(model_type: ModelType) -> None:
    """The last rows of training are flagged as filled in: whatever they hold, the fit (its
    forecasts and losses) is the same, as every window or label that would read them is left
    out. Without the flags the made-up values change the fit, so the check can fail."""
    train = _problem().train
    flagged = np.zeros(len(train), dtype=bool)
    flagged[-8:] = True
    made_up = train.copy()
    made_up.loc[flagged, "down"] = float(train["down"].mean())  # a flat line, as if interpolated

    def fitted(frame: pd.DataFrame, unobserved: np.ndarray | None) -> tuple[object, ...]:
        """What a fit produced: its forecasts and its training and validation losses."""
        model = create_forecaster(model_type, _problem().spec, CONFIG)
        summary = model.fit(frame, unobserved=unobserved)
        forecast = model.predict(_frame(), _origins())
        return tuple(forecast.ravel()), summary.train_loss, summary.val_loss

    assert fitted(made_up, flagged) == fitted(train, flagged)
    assert fitted(made_up, None) != fitted(train, None)


@pytest.mark.parametrize("model_type", ALL_TYPES)
def test_column_order_of_the_frame_does_not_matter(model_type: ModelType) -> None:
    frame = _frame()
    shuffled = frame[list(reversed(frame.columns))]
    pred = _fitted(model_type).predict(shuffled, _origins())
    np.testing.assert_array_equal(pred, _predicted(model_type))


@pytest.mark.parametrize("model_type", ALL_TYPES)
def test_too_short_training_data_is_refused(model_type: ModelType) -> None:
    model = create_forecaster(model_type, _problem().spec, CONFIG)
    with pytest.raises((DataValidationError, ModelError), match=r"has 3 rows; at least \d+"):
        model.fit(_problem().train.iloc[:3])


@pytest.mark.parametrize("model_type", ALL_TYPES)
def test_origin_without_enough_history_is_refused(model_type: ModelType) -> None:
    model = _fitted(model_type)
    origin = model.min_history - 1
    with pytest.raises(DataValidationError, match=f"needs at least {model.min_history}"):
        model.predict(_frame(), np.array([origin]))


@pytest.mark.parametrize("model_type", [ModelType.GRU, ModelType.LSTM, ModelType.PROPHET])
def test_predict_before_fit_is_refused(model_type: ModelType) -> None:
    model = create_forecaster(model_type, _problem().spec, CONFIG)
    with pytest.raises(ModelError, match="not fitted"):
        model.predict(_frame(), _origins())


_LOADER = """
import sys
from pathlib import Path
import numpy as np
import pandas as pd
from flts.forecasting.models import load_forecaster
root = Path(sys.argv[1])
frame = pd.read_pickle(root / "frame.pkl")
origins = np.load(root / "origins.npy")
for name in sys.argv[2:]:
    np.save(root / f"{name}.npy", load_forecaster(root / name).predict(frame, origins))
"""


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory: pytest.TempPathFactory) -> dict[ModelType, np.ndarray]:
    """Every model saved, then loaded and run in one fresh interpreter (no shared state)."""
    root = tmp_path_factory.mktemp("saved")
    _frame().to_pickle(root / "frame.pkl")
    np.save(root / "origins.npy", _origins())
    for model_type in ALL_TYPES:
        _fitted(model_type).save(root / model_type.value)
    names = [m.value for m in ALL_TYPES]
    subprocess.run([sys.executable, "-c", _LOADER, str(root), *names], check=True, timeout=300)
    return {m: np.load(root / f"{m.value}.npy") for m in ALL_TYPES}


@pytest.mark.parametrize("model_type", ALL_TYPES)
def test_save_then_load_in_a_fresh_process_predicts_the_same(
    model_type: ModelType, reloaded: dict[ModelType, np.ndarray]
) -> None:
    np.testing.assert_array_equal(reloaded[model_type], _predicted(model_type))
