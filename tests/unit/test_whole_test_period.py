"""Every test timestamp is judged, and the numbers a run reports are the numbers of the data.

Preprocess -> train -> infer with in-memory doubles on small CSV files: the persistence errors
the train stage reports equal a numpy computation straight from the CSV files (every point of
the test file), and the champion's batch errors equal its test errors (same origins).
"""

from __future__ import annotations

import io

import numpy as np
import orjson
import pandas as pd
import pytest
from _rawcsv import SMALL, csv_pair
from _stages import run_stages

from flts.adapters.memory import InMemoryObjectStore, InMemoryTracker, RecordingSink
from flts.domain.config import ModelType, TrainConfig
from flts.domain.messages import ModelTrained, PerformanceEval
from flts.stages import preprocess, train
from flts.stages.contracts import (
    ObjectRef,
    PreprocessRequest,
    TrainStageConfig,
)
from flts.stages.ports import StageContext

HORIZON = 3
CONFIG = SMALL.model_copy(update={"horizon": HORIZON, "lags": (1, 10)})


def _run(
    model_type: ModelType, files: tuple[bytes, bytes] | None = None
) -> tuple[bytes, bytes, ModelTrained, PerformanceEval, bytes]:
    train_csv, test_csv = files or csv_pair(train_rows=300, test_rows=40)
    done = run_stages(model_type, train_csv, test_csv, CONFIG)
    if files is None:
        assert done.test_rows == 40  # the test file's own rows; the context is extra
    return train_csv, test_csv, done.trained, done.perf, done.jsonl


def _target(data: bytes) -> np.ndarray:
    return pd.read_csv(io.BytesIO(data))["down"].to_numpy(dtype=np.float64)


@pytest.fixture(scope="module")
def gru_run() -> tuple[bytes, bytes, ModelTrained, PerformanceEval, bytes]:
    return _run(ModelType.GRU)


def test_persistence_errors_equal_numpy_over_every_point_of_the_test_file(
    gru_run: tuple[bytes, bytes, ModelTrained, PerformanceEval, bytes],
) -> None:
    train_csv, test_csv, trained, _perf, _jsonl = gru_run
    y_train, y_test = _target(train_csv), _target(test_csv)
    # Origin t forecasts test rows t..t+H-1 from the value just before t (the last training
    # value for t = 0): every test timestamp with a full horizon after it is an origin.
    n = len(y_test) - HORIZON + 1
    history = np.concatenate([y_train[-1:], y_test])
    last = history[np.arange(n)]
    actual = y_test[np.arange(n)[:, None] + np.arange(HORIZON)]
    err = actual - last[:, None]
    assert trained.test_windows == n == 38
    assert trained.baselines is not None
    persistence = trained.baselines["PERSISTENCE"]
    assert persistence.mae == pytest.approx(float(np.mean(np.abs(err))), rel=1e-12)
    assert persistence.rmse == pytest.approx(float(np.sqrt(np.mean(err**2))), rel=1e-12)
    assert persistence.mae_by_step == pytest.approx(list(np.mean(np.abs(err), axis=0)))
    # Seasonal naive: the value one season (10 steps) before each target, from training too.
    season = 10
    both = np.concatenate([y_train, y_test])
    idx = len(y_train) + np.arange(n)[:, None] + np.arange(HORIZON)
    naive_err = both[idx - season] - both[idx]
    naive = trained.baselines["SEASONAL_NAIVE"]
    assert naive.mae == pytest.approx(float(np.mean(np.abs(naive_err))), rel=1e-12)


def test_champion_batch_errors_equal_its_test_errors(
    gru_run: tuple[bytes, bytes, ModelTrained, PerformanceEval, bytes],
) -> None:
    _train_csv, test_csv, trained, perf, jsonl = gru_run
    assert perf.mae == pytest.approx(trained.test_mae, rel=1e-9)
    assert perf.rmse == pytest.approx(trained.test_rmse, rel=1e-9)
    assert perf.windows == trained.test_windows + 1  # plus the final forecast past the data
    assert trained.test_mae_by_step is not None
    assert len(trained.test_mae_by_step) == HORIZON
    assert np.mean(trained.test_mae_by_step) == pytest.approx(trained.test_mae)
    lines = [orjson.loads(line) for line in jsonl.splitlines()]
    assert len(lines) == (trained.test_windows + 1) * HORIZON
    # The first forecast targets the first test timestamp: the first day is judged too.
    first_test = pd.read_csv(io.BytesIO(test_csv))["time"].iloc[0]
    first = min(pd.Timestamp(line["target_ts"].rstrip("Z")) for line in lines)
    assert first == pd.Timestamp(first_test)
    # The bands the batch serves are the adapted ones training scored (same origins, same
    # revealed actuals): their coverage over the scored lines is the run's adaptive coverage.
    assert trained.test_intervals
    scored = [line for line in lines if line["actual"] is not None]
    for score in trained.test_intervals:
        lo, hi = f"lower_{score.level}", f"upper_{score.level}"
        inside = [line[lo] <= line["actual"] <= line[hi] for line in scored]
        assert np.mean(inside) == pytest.approx(score.adaptive_coverage, abs=1e-12)
        width = np.mean([line[hi] - line[lo] for line in scored])
        assert width == pytest.approx(score.adaptive_mean_width, rel=1e-9)


def _gapped_files() -> tuple[bytes, bytes]:
    """The test file with three rows missing (an outage) and one empty target cell."""
    train_csv, test_csv = csv_pair(train_rows=300, test_rows=40)
    test = pd.read_csv(io.BytesIO(test_csv))
    test.loc[25, "down"] = np.nan
    test = test.drop(index=[10, 11, 12])
    buffer = io.StringIO()
    test.to_csv(buffer, index=False)
    return train_csv, buffer.getvalue().encode()


@pytest.fixture(scope="module")
def gapped_run() -> tuple[bytes, bytes, ModelTrained, PerformanceEval, bytes]:
    return _run(ModelType.LINEAR, _gapped_files())


def test_filled_in_values_are_never_judged(
    gapped_run: tuple[bytes, bytes, ModelTrained, PerformanceEval, bytes],
) -> None:
    # Independently of preprocessing: a (origin, step) pair is judged when its target is a
    # value of the test file and the origin's last input (the previous time step) was read
    # from a file too; interpolated values are neither actuals nor a last input.
    train_csv, test_csv, trained, perf, jsonl = gapped_run
    train = pd.read_csv(io.BytesIO(train_csv))
    test = pd.read_csv(io.BytesIO(test_csv))
    seen = {
        pd.Timestamp(t): v
        for frame in (train, test)
        for t, v in zip(frame["time"], frame["down"], strict=True)
        if not np.isnan(v)
    }
    step = pd.Timedelta(minutes=1)
    first, last = pd.Timestamp(test["time"].iloc[0]), pd.Timestamp(test["time"].iloc[-1])
    errors = []
    origin = first
    while origin + (HORIZON - 1) * step <= last:
        before = seen.get(origin - step)
        for k in range(HORIZON):
            actual = seen.get(origin + k * step)
            if before is not None and actual is not None:
                errors.append(actual - before)
        origin += step
    errors_arr = np.asarray(errors)
    assert trained.baselines is not None
    persistence = trained.baselines["PERSISTENCE"]
    assert len(errors_arr) < trained.test_windows * HORIZON  # some pairs were not judged
    assert persistence.mae == pytest.approx(float(np.mean(np.abs(errors_arr))), rel=1e-12)
    assert persistence.rmse == pytest.approx(float(np.sqrt(np.mean(errors_arr**2))), rel=1e-12)
    # Batch inference judges the same pairs: its errors are the run's, and the JSONL has no
    # actual for a filled-in value.
    assert perf.mae == pytest.approx(trained.test_mae, rel=1e-9)
    lines = [orjson.loads(line) for line in jsonl.splitlines()]
    judged = [line for line in lines if line["actual"] is not None]
    assert len(judged) == len(errors_arr)
    filled = {pd.Timestamp("2018-02-05 05:10") + k * step for k in (0, 1, 2, 15)}
    assert all(pd.Timestamp(line["target_ts"].rstrip("Z")) not in filled for line in judged)


def test_filled_in_training_values_reach_the_fit_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A training file with an outage and an empty cell: the processed training object lists
    the filled rows and the train stage hands exactly those to ``fit`` (which learns nothing
    from them, see the forecaster conformance tests) and logs how many there were."""
    from flts.forecasting.models.lag_regression import LinearForecaster

    train_csv, test_csv = csv_pair(train_rows=300, test_rows=40)
    frame = pd.read_csv(io.BytesIO(train_csv))
    frame.loc[40, "down"] = np.nan
    missing = {pd.Timestamp(t) for t in frame["time"].iloc[100:105]}
    missing.add(pd.Timestamp(frame["time"].iloc[40]))
    frame = frame.drop(index=range(100, 105))
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    seen: list[set[pd.Timestamp]] = []
    original_fit = LinearForecaster.fit

    def spy(self, train_frame, progress=None, unobserved=None):  # type: ignore[no-untyped-def]
        assert unobserved is not None
        assert len(unobserved) == len(train_frame)
        seen.append({pd.Timestamp(t) for t in train_frame["ds"][unobserved]})
        return original_fit(self, train_frame, progress, unobserved)

    monkeypatch.setattr(LinearForecaster, "fit", spy)
    store = InMemoryObjectStore()
    store.ensure_bucket("dataset")
    store.put_bytes("dataset", "r/train.csv", buffer.getvalue().encode())
    store.put_bytes("dataset", "r/test.csv", test_csv)
    tracker = InMemoryTracker()
    ctx = StageContext(store=store, tracker=tracker, events=RecordingSink())
    request = PreprocessRequest(
        identifier="r",
        train=ObjectRef(bucket="dataset", key="r/train.csv"),
        test=ObjectRef(bucket="dataset", key="r/test.csv"),
    )
    prep = preprocess.run(request, CONFIG, ctx)
    config = TrainStageConfig(model_type=ModelType.LINEAR, train=TrainConfig(seed=1))
    trained = train.run(prep.training, config, ctx)
    # Rows dropped by the lag history at the start never reach the fit; these all lie later.
    assert seen[0] == missing
    assert tracker.runs[trained.run_id].params["train_filled_targets"] == str(len(missing))


def test_models_reading_different_histories_share_origins_after_a_gap() -> None:
    """A test file that does not follow training directly carries no context; a model reading
    a weekly lag and one reading a short lookback must still be scored on the same origins (a
    run on data with nights and weekends missing failed evaluation on exactly this)."""
    from flts.domain.config import PreprocessConfig
    from flts.forecasting.models import create_forecaster
    from flts.forecasting.prepare import prepare_datasets
    from flts.stages import scoring

    hours = pd.date_range("2018-01-01", periods=6 * 168 + 600, freq="h")
    t = np.arange(len(hours))
    rng = np.random.default_rng(5)
    load = 100 + 30 * np.sin(2 * np.pi * t / 24) + 10 * (t % 168 < 120) + rng.normal(0, 2, len(t))
    frame = pd.DataFrame({"time": hours.astype(str), "down": load})
    # A gap longer than the history carried (168 rows), so the test file starts without any.
    train_part, test_part = frame.iloc[: 6 * 168], frame.iloc[6 * 168 + 200 :]
    config = PreprocessConfig(lookback=12, horizon=2)
    prepared = prepare_datasets(
        train_part.to_csv(index=False).encode(),
        test_part.to_csv(index=False).encode(),
        config,
        config_hash="h",
    )
    assert prepared.test_context_rows == 0
    assert prepared.spec.seasonal_periods == (24, 168)
    quick = TrainConfig(epochs=1, hidden_size=8, batch_size=64, seed=1)
    windows = {}
    for model_type in (ModelType.LINEAR, ModelType.GRU, ModelType.PROPHET):
        model = create_forecaster(model_type, prepared.spec, quick)
        model.fit(prepared.train)
        scores = scoring.score_on_test(model, prepared.test, prepared.spec, 0)
        windows[model_type] = scores.windows
    assert len(set(windows.values())) == 1, windows
    assert windows[ModelType.GRU] == len(prepared.test) - 168 - 2 + 1


def test_a_test_file_after_a_gap_too_short_for_the_history_fails_before_training() -> None:
    from flts.domain.config import PreprocessConfig
    from flts.errors import DataValidationError
    from flts.forecasting.prepare import prepare_datasets

    hours = pd.date_range("2018-01-01", periods=6 * 168 + 500, freq="h")
    load = 100 + 30 * np.sin(2 * np.pi * np.arange(len(hours)) / 24)
    frame = pd.DataFrame({"time": hours.astype(str), "down": load})
    train_part, test_part = frame.iloc[: 6 * 168], frame.iloc[6 * 168 + 200 :]  # 300 rows
    with pytest.raises(DataValidationError) as err:
        prepare_datasets(
            train_part.to_csv(index=False).encode(),
            test_part.to_csv(index=False).encode(),
            PreprocessConfig(lookback=12, horizon=2),
            config_hash="h",
        )
    message = str(err.value)
    assert message.startswith("test.csv: test data has 133 rows")  # a week lost to lag history
    assert "a history of 168 rows" in message  # the weekly lag
    assert "start the test file right after the training file" in message


def test_a_short_gap_between_the_files_is_filled_and_every_later_test_row_judged() -> None:
    """A test file that starts ten hours after training ends: the ten steps are filled like a
    gap inside a file (never judged, nor the forecast just after them), the training tail is
    carried, and the persistence errors equal numpy's over every later test row."""
    from flts.domain.config import PreprocessConfig
    from flts.forecasting.prepare import prepare_datasets

    hours = pd.date_range("2018-01-01", periods=6 * 168 + 100, freq="h")
    rng = np.random.default_rng(2)
    load = 100 + 30 * np.sin(2 * np.pi * np.arange(len(hours)) / 24) + rng.normal(0, 2, len(hours))
    frame = pd.DataFrame({"time": hours.astype(str), "down": load})
    train_part, test_part = frame.iloc[: 6 * 168], frame.iloc[6 * 168 + 10 :]
    train_csv = train_part.to_csv(index=False).encode()
    test_csv = test_part.to_csv(index=False).encode()
    config = PreprocessConfig(lookback=12, horizon=1, lags=())
    prepared = prepare_datasets(train_csv, test_csv, config, config_hash="h")
    assert prepared.test_context_rows == 168 + 10  # the tail, then the ten filled hours
    assert any("starts 10 steps after the end of training" in n for n in prepared.test_notes)
    assert prepared.test_unobserved is not None
    flagged = prepared.test["ds"][prepared.test_unobserved]
    assert list(flagged) == list(pd.to_datetime(frame["time"].iloc[6 * 168 : 6 * 168 + 10]))
    done = run_stages(ModelType.LINEAR, train_csv, test_csv, config)
    y = test_part["down"].to_numpy()
    err = y[1:] - y[:-1]  # the first test row follows a filled step: not judged
    assert done.trained.test_windows == len(y)  # every test row is an origin ...
    persistence = done.trained.baselines["PERSISTENCE"]  # type: ignore[index]
    assert persistence.mae == pytest.approx(float(np.mean(np.abs(err))), rel=1e-12)  # ... judged
