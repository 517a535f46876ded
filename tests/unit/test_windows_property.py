"""Property tests: no window reads the future, and no test timestamp reaches training."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from _rawcsv import START, raw_frame, to_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flts.domain.config import PreprocessConfig
from flts.errors import DataValidationError
from flts.forecasting.prepare import prepare_datasets
from flts.forecasting.spec import ForecastSpec, ScalerParams
from flts.forecasting.windows import actuals, evaluation_origins, input_windows


def spec_for(lookback: int, horizon: int, season: int) -> ForecastSpec:
    return ForecastSpec(
        target="y",
        feature_order=("y", "x"),
        lookback=lookback,
        horizon=horizon,
        step_seconds=60,
        season_steps=season,
        scaler=ScalerParams(columns=("y", "x"), mean=(0.0, 0.0), scale=(1.0, 1.0)),
    )


@settings(max_examples=200, deadline=None)
@given(
    n_rows=st.integers(1, 300),
    lookback=st.integers(1, 40),
    horizon=st.integers(1, 12),
    season=st.integers(1, 60),
    context=st.integers(0, 80),
)
def test_windows_never_include_a_row_at_or_after_the_origin(
    n_rows: int, lookback: int, horizon: int, season: int, context: int
) -> None:
    spec = spec_for(lookback, horizon, season)
    # Each cell holds its own row index, so a window shows exactly which rows it read.
    matrix = np.repeat(np.arange(n_rows, dtype=np.float64)[:, None], 2, axis=1)
    try:
        origins = evaluation_origins(n_rows, spec, context)
    except DataValidationError:
        assert n_rows < max(lookback, season, context) + horizon
        return
    # Never a context row as a target; from the first test row on when the context suffices.
    assert origins[0] >= context
    if context >= max(lookback, season):
        assert origins[0] == context
    windows = input_windows(matrix, origins, lookback)
    assert windows.shape == (len(origins), lookback, 2)
    assert (windows.max(axis=(1, 2)) < origins).all()
    np.testing.assert_array_equal(windows[:, -1, 0], origins - 1)  # the latest row it may read
    truth = actuals(matrix[:, 0], origins, horizon)
    assert (truth.min(axis=1) >= origins).all()
    assert truth.max() < n_rows


@st.composite
def split_files(draw: st.DrawFn) -> tuple[bytes, bytes, PreprocessConfig]:
    """A training file, a later test file (maybe after a gap), holes in both, random config."""
    train_rows = draw(st.integers(125, 170))
    gap_steps = draw(st.integers(0, 30))
    test_rows = draw(st.integers(30, 50))
    train = raw_frame(train_rows, seed=draw(st.integers(0, 5)))
    test_start = START + pd.Timedelta(minutes=train_rows + gap_steps)
    test = raw_frame(test_rows, start=test_start, seed=7)
    holes = draw(st.lists(st.integers(1, train_rows - 2), max_size=5, unique=True))
    train = train.drop(index=holes)
    config = PreprocessConfig(
        lookback=draw(st.integers(1, 5)),
        horizon=draw(st.integers(1, 3)),
        season_steps=draw(st.integers(1, 10)),
        lags=tuple(draw(st.lists(st.integers(1, 12), max_size=2, unique=True))),
        time_features=draw(st.booleans()),
        clip_quantiles=draw(st.sampled_from([None, (0.01, 0.99)])),
    )
    return to_csv(train), to_csv(test), config


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=split_files())
def test_every_processed_test_timestamp_is_after_every_training_timestamp(
    files: tuple[bytes, bytes, PreprocessConfig],
) -> None:
    train_bytes, test_bytes, config = files
    prepared = prepare_datasets(train_bytes, test_bytes, config, config_hash="h")
    context = prepared.test_context_rows
    scored = prepared.test.iloc[context:]
    assert scored["ds"].min() > prepared.train["ds"].max()
    # The context rows are the training file's tail, unchanged: history, not new data; after a
    # short gap between the files, followed by the missing steps, filled and flagged (never
    # judged, nor the forecast just after them), strictly between the two files.
    train_end = prepared.train["ds"].max()
    head = prepared.test.iloc[:context]
    carried = int((head["ds"] <= train_end).sum())
    tail = prepared.train.tail(carried).reset_index(drop=True)
    pd.testing.assert_frame_equal(head.iloc[:carried].reset_index(drop=True), tail)
    first_test = pd.read_csv(io.BytesIO(test_bytes))["time"].iloc[0]
    bridge = head.iloc[carried:]
    assert (bridge["ds"] > train_end).all()
    assert (bridge["ds"] < pd.Timestamp(first_test)).all()
    if len(bridge):
        assert prepared.test_unobserved is not None
        assert prepared.test_unobserved[carried:context].all()
    # And the scored rows lie in the test file's span: no training row leaked in.
    assert scored["ds"].iloc[0] >= pd.Timestamp(first_test)
    # Every test timestamp with a full horizon after it is an origin, and nothing else is.
    # After a gap longer than the history no context is carried and the first origins are
    # history from the test file itself.
    spec = prepared.spec
    first = context if context else max(spec.lookback, spec.season_steps)
    origins = evaluation_origins(len(prepared.test), spec, context)
    np.testing.assert_array_equal(origins, np.arange(first, len(prepared.test) - spec.horizon + 1))
    assert prepared.train["ds"].is_monotonic_increasing
    assert not prepared.train.isna().any().any()
    assert not prepared.test.isna().any().any()


@settings(max_examples=200, deadline=None)
@given(
    flags=st.lists(st.booleans(), min_size=8, max_size=120),
    horizon=st.integers(1, 6),
)
def test_no_judged_pair_touches_a_filled_value_or_an_interpolation_of_the_future(
    flags: list[bool], horizon: int
) -> None:
    from flts.forecasting.windows import mask_of, runs_of, scorable_actuals

    unobserved = np.asarray(flags, dtype=bool)
    assert np.array_equal(mask_of(runs_of(unobserved), len(flags)), unobserved)
    target = np.arange(len(flags), dtype=np.float64) + 1.0
    origins = np.arange(1, len(flags) - horizon + 1)
    if len(origins) == 0:
        return
    judged = ~np.isnan(scorable_actuals(target, origins, horizon, unobserved))
    plain = actuals(target, origins, horizon)
    for row, origin in enumerate(origins):
        for step in range(horizon):
            expected = not unobserved[origin + step] and not unobserved[origin - 1]
            assert judged[row, step] == expected
            if judged[row, step]:
                assert plain[row, step] == target[origin + step]
    # Training learns from exactly the pairs scoring would judge (``Forecaster.fit``).
    from flts.forecasting.models.lag_features import ScaledSeries, labels

    series = ScaledSeries(target, np.empty((len(flags), 0)), target * 60.0, 60, unobserved)
    for step in range(horizon):
        assert np.array_equal(np.isfinite(labels(series, origins, step)), judged[:, step])


def test_error_metrics_skip_pairs_that_are_not_judged() -> None:
    from flts.forecasting.metrics import error_metrics

    actual = np.array([[1.0, np.nan], [3.0, 5.0]])
    predicted = np.array([[2.0, 100.0], [3.0, 1.0]])
    metrics = error_metrics(actual, predicted)
    assert metrics.n == 3
    assert metrics.mae == 5.0 / 3
    assert metrics.mae_by_step == (0.5, 4.0)
    assert metrics.mape == (100.0 + 0.0 + 80.0) / 3
