"""The live loop's pure logic (flts.stages.live) without a broker: window, gaps, scoring."""

from __future__ import annotations

import numpy as np
import pytest
from tests._stage_data import STEP, make_spec, synthetic_frame

from flts.domain.config import ModelType
from flts.errors import MessageError
from flts.forecasting.intervals import ConformalIntervals
from flts.forecasting.models import create_forecaster
from flts.stages.live import BandScale, Champion, LiveSeries, epoch_us, series_for

US = 1_000_000
T0 = 1_735_689_600 * US  # 2025-01-01T00:00:00Z


def champion(model_type: ModelType = ModelType.PERSISTENCE, band: float | None = 10.0) -> Champion:
    train = synthetic_frame(200)
    model = create_forecaster(model_type, make_spec(train))
    model.fit(train)
    if band is not None:
        model.intervals = ConformalIntervals(
            levels=(80,),
            lower_offsets=((-band, -band),),
            upper_offsets=((band, band),),
            calibration_windows=20,
        )
    return Champion(model, "run-1", model_type.value, "hash-1")


def new_series(champ: Champion) -> LiveSeries:
    return series_for("site-a", champ, history_rows=50, metrics_window=100)


def feed(series: LiveSeries, values: list[float], start: int = 0) -> None:
    for i, v in enumerate(values):
        series.accept(T0 + (start + i) * STEP * US, np.array([v, v / 10]))


def test_no_forecast_until_the_window_holds_what_the_champion_reads() -> None:
    champ = champion()
    series = new_series(champ)
    feed(series, [1.0] * (champ.rows_needed - 1))
    assert series.forecast(champ) is None
    feed(series, [5.0], start=champ.rows_needed - 1)
    forecast = series.forecast(champ)
    assert forecast is not None
    assert [s.step for s in forecast.steps] == [1, 2]
    assert [s.point for s in forecast.steps] == [5.0, 5.0]  # persistence: the last actual
    first = forecast.steps[0].model_dump()
    assert (first["lower_80"], first["upper_80"]) == (-5.0, 15.0)
    assert forecast.levels == [80]
    origin_us = T0 + (champ.rows_needed - 1) * STEP * US
    assert forecast.steps[0].target_timestamp == _iso(origin_us + STEP * US)
    assert forecast.gap_filled is False


def test_locally_scaled_bands_are_at_the_level_of_the_windows_last_rows() -> None:
    """As in batch and /predict: offsets times the larger of the forecast and the mean
    absolute target of the last ``scale_window`` rows (here 3: 3, 6 and 0 -> 3; the
    persistence forecast is 0)."""
    champ = champion(band=0.5)
    intervals = champ.forecaster.intervals
    assert intervals is not None
    champ.forecaster.intervals = intervals.model_copy(
        update={"scale_window": 3, "scale_floor": 0.1}
    )
    series = new_series(champ)
    first_rows = [100.0] * max(0, champ.rows_needed - 3) + [3.0, -6.0, 0.0]
    feed(series, first_rows)
    forecast = series.forecast(champ)
    assert forecast is not None
    first = forecast.steps[0].model_dump()
    assert first["point"] == 0.0
    assert (first["lower_80"], first["upper_80"]) == (-1.5, 1.5)
    feed(series, [-8.0], start=len(first_rows))  # level (6 + 0 + 8) / 3 < |forecast| 8
    later = series.forecast(champ)
    assert later is not None
    step = later.steps[0].model_dump()
    assert (step["lower_80"], step["upper_80"]) == pytest.approx((-8.0 - 4.0, -8.0 + 4.0))


def test_a_model_without_intervals_gives_point_forecasts_only() -> None:
    champ = champion(band=None)
    series = new_series(champ)
    feed(series, [2.0] * champ.rows_needed)
    forecast = series.forecast(champ)
    assert forecast is not None
    assert forecast.levels == []
    assert "lower_80" not in forecast.steps[0].model_dump()


def test_duplicate_and_out_of_order_timestamps_are_dropped_and_counted() -> None:
    series = new_series(champion())
    feed(series, [1.0, 2.0, 3.0])
    assert series.accept(T0 + 2 * STEP * US, np.array([9.0, 0.9])).status == "duplicate"
    assert series.accept(T0 + 1 * STEP * US, np.array([9.0, 0.9])).status == "duplicate"
    assert series.accept(T0 - STEP * US, np.array([9.0, 0.9])).status == "out_of_order"
    assert (series.dropped_duplicate, series.dropped_out_of_order) == (2, 1)
    assert series.rows == 3
    assert series.frame(10)["down"].tolist() == [1.0, 2.0, 3.0]


def test_a_gap_is_filled_linearly_flagged_and_never_scored() -> None:
    champ = champion(ModelType.SEASONAL_NAIVE)  # reads a season: the filled rows are in it
    series = new_series(champ)
    n = champ.rows_needed
    feed(series, [10.0] * n)
    assert series.forecast(champ) is not None  # points pending for n and n + 1
    accepted = series.accept(T0 + (n + 2) * STEP * US, np.array([40.0, 4.0]))
    assert accepted.filled_steps == 2
    assert series.frame(3)["down"].tolist() == [20.0, 30.0, 40.0]
    assert series.gap_filled_steps == 2
    assert series.metrics().points == 0  # the targets n, n + 1 were filled: no actuals
    forecast = series.forecast(champ)
    assert forecast is not None
    assert forecast.gap_filled
    assert forecast.gap_filled_steps == 2
    # Persistence reads only the last (real) row: its forecast used no filled value.
    persistence = champion()
    assert series.forecast(persistence) is not None
    assert series.last_forecast is not None
    assert not series.last_forecast.gap_filled


def test_off_grid_timestamps_snap_to_the_next_slot() -> None:
    series = new_series(champion())
    feed(series, [1.0])
    accepted = series.accept(T0 + STEP * US + 7 * US, np.array([2.0, 0.2]))
    assert accepted.timestamp_us == T0 + STEP * US


def test_scoring_matches_hand_computed_mae_persistence_and_coverage() -> None:
    champ = champion(ModelType.SEASONAL_NAIVE, band=3.0)
    series = new_series(champ)
    n = champ.rows_needed  # one season (24 rows)
    season = [float(i % 24) for i in range(n)]
    feed(series, season)
    forecast = series.forecast(champ)
    assert forecast is not None
    points = [s.point for s in forecast.steps]
    assert points == [0.0, 1.0]  # a season ago
    feed(series, [4.0], start=n)  # actual of step 1: error 4, persistence error |4 - 23| = 19
    metrics = series.metrics()
    assert metrics.points == 1
    assert metrics.mae == pytest.approx(4.0)
    assert metrics.persistence_mae == pytest.approx(19.0)
    assert metrics.coverage == {80: 0.0}  # 4 is outside [-3, 3]
    second = series.forecast(champ)
    assert second is not None
    feed(series, [2.0], start=n + 1)  # step 2 of the first (1.0) and step 1 of the second
    metrics = series.metrics()
    assert metrics.points == 3
    # errors: 4, |2 - 1| = 1, |2 - second.step1|
    s1 = second.steps[0].point
    assert metrics.mae == pytest.approx((4 + 1 + abs(2 - s1)) / 3)
    assert metrics.persistence_mae == pytest.approx((19 + 21 + 2) / 3)
    assert metrics.total_points == 3


def test_missing_column_is_a_message_error_naming_it() -> None:
    series = new_series(champion())
    with pytest.raises(MessageError, match=r"lack \['up'\]"):
        series.row_values({"down": 1.0}, "observation site-a")


def test_a_glitch_reading_is_refused_and_its_slot_filled_like_a_gap() -> None:
    """The champion's training fences (``ForecastSpec.outlier_fences``) travel with it: a live
    reading preprocessing would have removed is refused (dead-lettered by the service), and
    the next reading fills its slot, which is never scored."""
    champ = champion(ModelType.SEASONAL_NAIVE)
    fences = {"down": (10.0, 50.0)}  # as preprocessing fits them (tests/unit/test_outliers.py)
    spec = champ.forecaster.spec.model_copy(update={"outlier_fences": fences})
    champ.forecaster.spec = spec
    series = new_series(champ)
    n = champ.rows_needed
    feed(series, [10.0] * n)
    assert series.forecast(champ) is not None
    median, reach = spec.outlier_fences["down"]
    glitch = median + 2 * reach
    with pytest.raises(MessageError, match=r"down = .* a glitch or sentinel reading"):
        series.row_values({"down": glitch, "up": 1.0}, "observation of site-a")
    assert series.row_values({"down": median + reach / 2, "up": 1.0}, "ok").shape == (2,)
    accepted = series.accept(T0 + (n + 1) * STEP * US, np.array([12.0, 1.2]))
    assert accepted.filled_steps == 1  # the refused reading's slot
    assert series.frame(2)["down"].tolist() == [11.0, 12.0]
    assert glitch not in series.frame(n)["down"].tolist()


def test_window_keeps_only_the_newest_rows() -> None:
    champ = champion()
    series = new_series(champ)
    feed(series, [float(i) for i in range(500)])
    assert series.rows <= series.keep_rows
    frame = series.frame(series.keep_rows)
    assert frame["down"].iloc[-1] == 499.0
    diffs = np.diff(frame["ds"].to_numpy().astype("int64"))
    assert (diffs == STEP * 1_000_000_000).all()


def test_naive_timestamps_are_utc() -> None:
    from datetime import UTC, datetime

    naive = datetime(2025, 1, 1)
    assert epoch_us(naive) == epoch_us(naive.replace(tzinfo=UTC)) == T0


def _iso(us: int) -> str:
    return str(np.datetime_as_string(np.datetime64(us, "us").astype("datetime64[s]"))) + "Z"


def test_band_scale_follows_misses_and_hits() -> None:
    scale = BandScale(0.05)
    scale.update(80, 1, inside=False)
    assert scale.of(80, 1) == pytest.approx(np.exp(0.05 * 0.8))
    scale.update(80, 1, inside=True)
    assert scale.of(80, 1) == pytest.approx(np.exp(0.05 * 0.8 - 0.05 * 0.2))
    assert scale.of(95, 1) == scale.of(80, 2) == 1.0  # levels and steps are independent
    frozen = BandScale(0.0)
    frozen.update(80, 1, inside=False)
    assert frozen.of(80, 1) == 1.0


def _live_coverage(rate: float) -> tuple[float, BandScale]:
    """Persistence with 80 % bands calibrated for a random walk of sd 1, fed one of sd 2."""
    champ = champion(band=1.2816)
    series = series_for("site-a", champ, history_rows=50, metrics_window=5000, band_adaptation=rate)
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.normal(0.0, 2.0, 3000))
    for i, value in enumerate(walk):
        feed(series, [float(value)], start=i)
        series.forecast(champ)
    return series.metrics().total_coverage[80], series.band_scale


def test_adaptive_bands_bring_live_coverage_to_nominal_where_trained_bands_fail() -> None:
    # Horizon 2: step h misses when |N(0, 2 sqrt(h))| > 1.28, so (0.478 + 0.349) / 2 = 0.41.
    assert _live_coverage(0.0)[0] == pytest.approx(0.41, abs=0.04)
    coverage, scale = _live_coverage(0.05)
    assert coverage == pytest.approx(0.80, abs=0.03)
    # Each step's band grew by about its error's sd ratio: 2 at step 1, 2 sqrt(2) at step 2.
    assert scale.of(80, 1) == pytest.approx(2.0, rel=0.25)
    assert scale.of(80, 2) == pytest.approx(2.0 * np.sqrt(2.0), rel=0.25)


def test_live_bands_are_the_bands_batch_inference_replays_over_the_same_rows() -> None:
    """Batch inference serves ``replayed_bands`` as "the bands the live loop would have
    served": fed the same rows, the live loop's bands (scaled, asymmetric, adapting, floored)
    are those bands, origin for origin and step for step."""
    from flts.stages.bands import replayed_bands

    champ = champion(band=None)
    champ.forecaster.intervals = ConformalIntervals(
        levels=(80, 95),
        lower_offsets=((-0.02, -0.05), (-0.1, -0.2)),
        upper_offsets=((0.08, 0.1), (0.2, 0.3)),
        calibration_windows=50,
        floor=0.0,
        scale_window=4,
        scale_floor=0.5,
    )
    series = series_for("site-a", champ, history_rows=50, metrics_window=500, band_adaptation=0.05)
    rng = np.random.default_rng(11)
    walk = np.abs(50.0 + np.cumsum(rng.normal(0.0, 4.0, 400)))
    live: list[dict[str, float]] = []
    for i, value in enumerate(walk):
        feed(series, [float(value)], start=i)
        forecast = series.forecast(champ)
        assert forecast is not None
        live.extend(step.model_dump() for step in forecast.steps)

    origins = np.arange(1, len(walk) + 1)
    point = np.array([s["point"] for s in live]).reshape(-1, 2)
    padded = np.append(walk, [np.nan, np.nan])
    actual = np.stack([padded[origins], padded[origins + 1]], axis=1)
    intervals = champ.forecaster.intervals
    replayed = replayed_bands(
        intervals, point, actual, 0.05, origins, intervals.scales_at(walk, origins)
    )
    for level in (80, 95):
        lower = np.array([s[f"lower_{level}"] for s in live]).reshape(-1, 2)
        upper = np.array([s[f"upper_{level}"] for s in live]).reshape(-1, 2)
        np.testing.assert_allclose(lower, replayed[level][0], rtol=1e-12)
        np.testing.assert_allclose(upper, replayed[level][1], rtol=1e-12)
    assert series.band_scale.of(80, 1) != 1.0  # the bands did adapt along the way
