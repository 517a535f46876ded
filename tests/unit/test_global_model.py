"""The global model (issue 13): one regression-on-lags fit over many series, each series with
its own scaler, intervals and test scores; the global train stage; eval's waiver for series a
global fit left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _stage_data import CONFIG_HASH, STEP, make_spec, processed_bytes, synthetic_frame
from flts.adapters.memory import FixedClock, InMemoryObjectStore, InMemoryTracker, RecordingSink
from flts.domain.config import ModelType, TrainConfig
from flts.domain.messages import GlobalTrainingRequested, ModelTrained, TrainingDataReady
from flts.forecasting.models import create_forecaster
from flts.forecasting.models.global_linear import GlobalMember, fit_global, plan_global
from flts.forecasting.spec import TIME_COLUMN, ForecastSpec, ScalerParams
from flts.stages import promotion, scoring, train_global
from flts.stages.contracts import TrainStageConfig
from flts.stages.ports import BUCKET_PROCESSED, StageContext

CONFIG = TrainConfig(interval_levels=(80,))
SCALE, SHIFT = 7.0, 5_000.0


def scaled(frame: pd.DataFrame, a: float = SCALE, b: float = SHIFT) -> pd.DataFrame:
    out = frame.copy()
    out["down"] = a * frame["down"] + b
    out["up"] = a * frame["up"] + b / 10
    return out


def pair(rows: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = synthetic_frame(rows, seed=3)
    start = train[TIME_COLUMN].iloc[-1] + pd.Timedelta(seconds=STEP)
    return train, synthetic_frame(80, start=str(start), seed=4)


def test_scaled_copies_share_scaled_weights_and_forecast_in_their_own_units() -> None:
    train_a, test_a = pair()
    train_b, test_b = scaled(train_a), scaled(test_a)
    spec_a, spec_b = make_spec(train_a), make_spec(train_b)
    plan = plan_global([GlobalMember("a", spec_a, train_a), GlobalMember("b", spec_b, train_b)])
    assert not plan.excluded
    fit = fit_global(plan, CONFIG)
    a, b = fit.models["a"], fit.models["b"]
    assert a.fitted_on_series == b.fitted_on_series == 2
    np.testing.assert_array_equal(a._coef, b._coef)  # one set of weights, in scaled units
    origins = np.arange(30, len(test_a) - spec_a.horizon + 1)
    frame_a = pd.concat([train_a.tail(40), test_a], ignore_index=True)
    frame_b = pd.concat([train_b.tail(40), test_b], ignore_index=True)
    pred_a, pred_b = a.predict(frame_a, origins), b.predict(frame_b, origins)
    np.testing.assert_allclose(pred_b, SCALE * pred_a + SHIFT, rtol=1e-9)
    # The weights are a real forecaster: better than persistence once a whole season of the
    # test file is history (the synthetic test file restarts its phase).
    late = origins[origins >= 40 + 24]
    actual = frame_a["down"].to_numpy()
    model_mae = np.mean(np.abs(a.predict(frame_a, late)[:, 0] - actual[late]))
    assert model_mae < np.mean(np.abs(actual[late - 1] - actual[late]))


def test_each_series_keeps_the_scaler_of_its_own_training_file() -> None:
    train_a, test_a = pair()
    train_b = scaled(train_a, 3.0, 100.0)
    spec_a, spec_b = make_spec(train_a), make_spec(train_b)
    fit = fit_global(
        plan_global([GlobalMember("a", spec_a, train_a), GlobalMember("b", spec_b, train_b)])
    )
    for key, train in (("a", train_a), ("b", train_b)):
        scaler = fit.models[key].spec.scaler
        assert scaler == ScalerParams.fit(("down", "up"), train[["down", "up"]].to_numpy())
    # Fitted on the training rows only: the test file (another level) changes nothing.
    assert fit.models["a"].spec.scaler.mean[0] == pytest.approx(train_a["down"].mean())
    assert abs(test_a["down"].mean() - 1000.0) < 50  # sanity of the synthetic data


def test_mismatched_columns_and_too_short_series_are_left_out_with_a_reason() -> None:
    train_a, _ = pair()
    train_b = scaled(train_a)
    odd = train_a.rename(columns={"up": "other"})
    odd_spec = ForecastSpec(
        **{
            **make_spec(train_a).model_dump(),
            "feature_order": ("down", "other"),
            "raw_columns": ("down", "other"),
            "scaler": ScalerParams.fit(("down", "other"), odd[["down", "other"]].to_numpy()),
        }
    )
    short = train_a.head(40)
    plan = plan_global(
        [
            GlobalMember("a", make_spec(train_a), train_a),
            GlobalMember("odd", odd_spec, odd),
            GlobalMember("b", make_spec(train_b), train_b),
            GlobalMember("short", make_spec(short), short),
        ]
    )
    assert [m.key for m in plan.members] == ["a", "b"]
    assert "covariates [other]" in plan.excluded["odd"]
    assert "covariates [up]" in plan.excluded["odd"]
    assert "40 rows; at least" in plan.excluded["short"]
    assert set(fit_global(plan).models) == {"a", "b"}


def _ctx() -> StageContext:
    return StageContext(
        store=InMemoryObjectStore(),
        tracker=InMemoryTracker(),
        events=RecordingSink(),
        clock=FixedClock(),
    )


def _claim(
    ctx: StageContext, name: str, train: pd.DataFrame, test: pd.DataFrame
) -> TrainingDataReady:
    spec = make_spec(train)
    config_hash = CONFIG_HASH[:-4] + f"{abs(hash(name)) % 10_000:04d}"
    spec = spec.model_copy(update={"config_hash": config_hash})
    context = train.tail(40)
    for split, frame in (("train", train), ("test", pd.concat([context, test], ignore_index=True))):
        body = processed_bytes(frame, spec, split, config_hash)
        if split == "test":  # the training tail is history, never scored
            from flts.forecasting.dataset import read_processed, write_processed

            data, meta = read_processed(body, "x")
            body = write_processed(data, meta.model_copy(update={"context_rows": len(context)}))
        ctx.store.put_bytes(BUCKET_PROCESSED, f"{name}/{split}.parquet", body)
    return TrainingDataReady(
        bucket=BUCKET_PROCESSED,
        object=f"{name}/train.parquet",
        size=1,
        identifier=f"fleet/{name}",
        config_hash=config_hash,
        test_object=f"{name}/test.parquet",
    )


def test_global_stage_emits_one_ordinary_scored_model_per_series_and_names_who_was_left_out() -> (
    None
):
    ctx = _ctx()
    train_a, test_a = pair()
    claims = [
        _claim(ctx, "a", train_a, test_a),
        _claim(ctx, "b", scaled(train_a), scaled(test_a)),
        _claim(ctx, "short", train_a.head(40), test_a),
    ]
    request = GlobalTrainingRequested(identifier="fleet/_global", claims=claims)
    config = TrainStageConfig(model_type=ModelType.GLOBAL_LINEAR, train=CONFIG)
    outcome = train_global.run(request, config, ctx)
    tracker = ctx.tracker
    assert isinstance(tracker, InMemoryTracker)
    assert [e.identifier for e in outcome.trained] == ["fleet/a", "fleet/b"]
    assert outcome.done.members == ["fleet/a", "fleet/b"]
    assert [x.identifier for x in outcome.done.excluded] == ["fleet/short"]
    assert outcome.done.excluded[0].config_hash == claims[2].config_hash
    by_id = {e.identifier: e for e in outcome.trained}
    for claim in claims[:2]:
        event = by_id[claim.identifier]
        assert isinstance(event, ModelTrained)
        assert event.model_type == "GLOBAL_LINEAR"
        assert event.global_series == 2
        assert event.config_hash == claim.config_hash
        assert event.test_intervals  # calibrated on that series' own training file
        # The logged model loads and forecasts like a local one, in that series' units.
        model = tracker.load_forecaster(str(event.model_uri))
        assert model.model_type is ModelType.GLOBAL_LINEAR
        from flts.stages.train import load_training_data

        data = load_training_data(claim, ctx)
        scores = scoring.score_on_test(model, data.test, data.spec, data.test_context_rows)
        assert scores.model.mae == pytest.approx(event.test_mae)
        assert scores.windows == event.test_windows
    # Scaled copies: the errors scale with the series.
    assert by_id["fleet/b"].test_mae == pytest.approx(SCALE * by_id["fleet/a"].test_mae)
    # Replayed: every member's run is found, nothing is fitted or logged again.
    runs_before = len(tracker.runs)
    again = train_global.run(request, config, ctx)
    assert [e.run_id for e in again.trained] == [e.run_id for e in outcome.trained]
    assert len(ctx.tracker.runs) == runs_before  # type: ignore[attr-defined]


def test_global_and_local_linear_are_scored_alike_on_one_series() -> None:
    train, test = pair()
    spec = make_spec(train)
    local = create_forecaster(ModelType.LINEAR, spec, CONFIG)
    local.fit(train)
    one = create_forecaster(ModelType.GLOBAL_LINEAR, spec, CONFIG)
    one.fit(train)
    frame = pd.concat([train.tail(40), test], ignore_index=True)
    origins = np.arange(30, len(frame) - 1)
    # A global fit over one series is that series' linear model.
    np.testing.assert_allclose(one.predict(frame, origins), local.predict(frame, origins))


def test_eval_stops_waiting_for_a_global_candidate_the_fit_left_out() -> None:
    state = promotion.new_state("fleet/short", "h", ["LINEAR", "GLOBAL_LINEAR"])
    state, changed = promotion.record_waiver(state, "GLOBAL_LINEAR", "too short")
    assert changed
    assert state.missing() == ["LINEAR"]
    again, changed = promotion.record_waiver(state, "GLOBAL_LINEAR", "too short")
    assert not changed
    assert again == state
    # A type that is not expected, or one that already succeeded, is not waived.
    _, changed = promotion.record_waiver(state, "LSTM", "n/a")
    assert not changed
