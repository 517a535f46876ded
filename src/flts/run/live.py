"""`flts live`: train and promote on A with `flts run`'s machinery, then replay B as live
observations and report what the live loop did.

1. A is split in time: all but its last ``holdout_rows`` train, those rows test (they pick and
   score the first champion). `flts run` (``execute_run``) brings up the local stack and the
   services and leaves them running.
2. The tail of A is sent as warm-up observations (history only), then B's rows in time order,
   as fast as possible or ``speed`` times real time; with ``shift`` the target of B's second
   half is multiplied by ``1 + shift`` (the issue's level-shift demonstration).
3. The driver follows ``forecasts``, the live ``performance-eval`` events, retraining requests
   and promotions of its identifier, waits for the forecast of the last observation (and for a
   retraining in flight), then scores every forecast itself against B's actuals (so the summary
   does not just repeat the service's numbers) and reads the service's retrain history from
   ``/live/state``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from flts.domain.config import PreprocessConfig
from flts.domain.messages import Observation, utc_now_iso
from flts.forecasting.data import read_csv_with_notes
from flts.forecasting.spec import TIME_COLUMN
from flts.run.live_report import LiveFigures, live_figures, plot_live
from flts.run.monitor import ObservedEvent, TopicMonitor
from flts.run.pipeline import RunDisplay, RunOptions
from flts.settings import LiveSettings, pipeline_topics

log = logging.getLogger(__name__)
TOPICS = pipeline_topics()
_LIVE = LiveSettings.model_fields


@dataclass
class LiveOptions:
    run: RunOptions
    replay_csv: Path
    speed: float = 0.0  # 0: as fast as possible
    shift: float = 0.0
    holdout_rows: int = 720
    #: A's last rows sent as warm-up (history only); 0: all of A (a champion with weekly
    #: seasons reads a week and more before its first forecast).
    warmup_rows: int = 0
    #: Seconds to wait after the last observation for its forecast and a retraining in flight.
    settle_s: float = 300.0


@dataclass
class _Seen:
    forecasts: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    promotions: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    no_promotion: list[str] = field(default_factory=list)


def canonical_csv(path: Path, config: PreprocessConfig, out: Path) -> Path:
    """``path`` rewritten as the live replay reads it: ISO 8601 UTC timestamps in the time
    column, comma-delimited plain numbers, target first, read by preprocessing's own reader (so
    any delimiter, decimal comma, date format or clock zone ``flts run`` takes works here too)."""
    frame, _notes = read_csv_with_notes(path.read_bytes(), source=str(path), config=config)
    frame = frame.rename(columns={TIME_COLUMN: config.time_col})
    frame[config.time_col] = frame[config.time_col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return out


#: Rows of A held out to pick the first champion when not given (a day at two minutes), at most
#: a fifth of A (15 years of monthly data hold out their last 36 months).
DEFAULT_HOLDOUT_ROWS = 720


def split_training(
    train_csv: Path, time_col: str, holdout_rows: int | None, out_dir: Path
) -> tuple[Path, Path, int]:
    """A's training and holdout CSVs (the holdout is A's last rows, in time order) and how many
    rows were held out (``holdout_rows``, or a fifth of A up to :data:`DEFAULT_HOLDOUT_ROWS`)."""
    frame = pd.read_csv(train_csv)
    if time_col not in frame.columns:
        raise ValueError(f"{train_csv}: no time column {time_col!r}; it has {list(frame.columns)}")
    frame = frame.sort_values(time_col, kind="stable")
    if holdout_rows is None:
        holdout_rows = max(1, min(DEFAULT_HOLDOUT_ROWS, len(frame) // 5))
    if len(frame) <= 2 * holdout_rows:
        raise ValueError(
            f"{train_csv}: {len(frame)} rows is too few to hold out the last {holdout_rows} for "
            "picking the first champion (use a longer file or --holdout-rows)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    fit, holdout = out_dir / "live-train.csv", out_dir / "live-holdout.csv"
    frame.iloc[:-holdout_rows].to_csv(fit, index=False)
    frame.iloc[-holdout_rows:].to_csv(holdout, index=False)
    return fit, holdout, holdout_rows


def observations_of(
    frame: pd.DataFrame, identifier: str, time_col: str, *, warmup: bool
) -> list[Observation]:
    """One observation per row with every numeric column; a row with a missing value is
    skipped (the service fills the gap as preprocessing would)."""
    numeric = [
        c for c in frame.columns if c != time_col and pd.api.types.is_numeric_dtype(frame[c])
    ]
    stamps = pd.to_datetime(frame[time_col], utc=True)
    values = frame[numeric].to_numpy(dtype=np.float64)
    out = []
    for stamp, row in zip(stamps, values, strict=True):
        if not np.isfinite(row).all():
            continue
        out.append(
            Observation(
                identifier=identifier,
                timestamp=stamp.to_pydatetime(),
                values=dict(zip(numeric, row.tolist(), strict=True)),
                warmup=warmup or None,
            )
        )
    return out


def with_level_shift(frame: pd.DataFrame, target: str, shift: float) -> tuple[pd.DataFrame, int]:
    """B with its target multiplied by ``1 + shift`` from the middle row on; that row's index."""
    at = len(frame) // 2
    shifted = frame.copy()
    if shift:
        shifted.loc[shifted.index[at:], target] = shifted[target].iloc[at:] * (1.0 + shift)
    return shifted, at


def execute_live(
    options: LiveOptions, display: RunDisplay, *, keep_running: bool = False
) -> dict[str, Any]:
    """Train on A, replay B, summarise; stops what it started unless ``keep_running``."""
    from flts.infra import procs
    from flts.infra.stack import LocalStack
    from flts.kafka_utils import create_producer
    from flts.run.flow import execute_run

    run = options.run
    stack = LocalStack(run.stack_dir)
    was_running = stack.is_running()
    train_summary = execute_run(run, display)  # leaves stack and services up (keep_running)
    stopped = False
    try:
        if train_summary.get("champion") is None:
            return {"identifier": run.identifier, "training": train_summary, "error": "no champion"}
        endpoints = stack.endpoints()
        monitor = TopicMonitor(
            endpoints.kafka_bootstrap,
            [
                _LIVE["forecasts_topic"].default,
                TOPICS.performance_eval,
                TOPICS.model_selected,
                TOPICS.preprocess_requests,
                TOPICS.progress,
                f"DLQ-{_LIVE['observations_topic'].default}",
            ],
            run.identifier,
        )
        monitor.start()
        monitor.assigned.wait(30)
        replay, shift_at = with_level_shift(
            pd.read_csv(options.replay_csv), run.target, options.shift
        )
        replay = replay.sort_values(run.time_col, kind="stable").reset_index(drop=True)
        # A's last rows (its training part, then the holdout) fill the window before B.
        seen_a = [pd.read_csv(run.train_csv), pd.read_csv(run.test_csv)]
        warm = pd.concat(seen_a, ignore_index=True)
        if options.warmup_rows:
            warm = warm.tail(options.warmup_rows)
        producer = create_producer(bootstrap_servers=endpoints.kafka_bootstrap)
        seen = _Seen()
        topic = str(_LIVE["observations_topic"].default)
        display.phase(
            "live",
            f"warm-up {len(warm)} rows, then {len(replay)} rows of {options.replay_csv.name}",
        )
        for obs in observations_of(warm, run.identifier, run.time_col, warmup=True):
            producer.produce(topic, obs.to_json_bytes(), key=run.identifier)
            producer.poll(0)
        producer.flush(30)
        started = time.monotonic()
        sent = _replay(producer, topic, replay, options, seen, monitor)
        display.phase(
            "settle", f"{len(sent)} observations sent in {time.monotonic() - started:.1f} s"
        )
        _settle(monitor, seen, sent, options.settle_s)
        state = _live_state(run.api_port)
        figures = live_figures(seen.forecasts, replay, run.time_col, run.target, shift_at)
        retrains = [r for r in state.get("retrains", []) if r.get("identifier") == run.identifier]
        title = f"{run.identifier}: live forecasts ({run.target})"
        png = plot_live(figures, retrains, title, run.run_dir / "live.png")
        summary = _summary(options, train_summary, seen, sent, figures, state, shift_at, png)
        # Before the broker goes: a consumer left polling a stopped broker logs a refused
        # connection every 50 ms until it is closed.
        monitor.stop()
        if not keep_running:
            procs.stop_remembered(run.stack_dir)
            stopped = True
            if not was_running:
                stack.down()
        return summary
    finally:
        if not keep_running and not stopped:
            procs.stop_remembered(run.stack_dir)
            if not was_running:
                stack.down()


def _replay(
    producer: Any,
    topic: str,
    replay: pd.DataFrame,
    options: LiveOptions,
    seen: _Seen,
    monitor: TopicMonitor,
) -> list[Observation]:
    run = options.run
    items = observations_of(replay, run.identifier, run.time_col, warmup=False)
    t0 = time.monotonic()
    first = items[0].timestamp if items else None
    for obs in items:
        if options.speed > 0 and first is not None:
            due = (obs.timestamp - first).total_seconds() / options.speed
            while (wait := due - (time.monotonic() - t0)) > 0:
                _drain(monitor, seen)
                time.sleep(min(wait, 0.05))
        stamped = obs.model_copy(update={"sent_at": utc_now_iso()})
        producer.produce(topic, stamped.to_json_bytes(), key=run.identifier)
        producer.poll(0)
    producer.flush(30)
    return items


def _drain(monitor: TopicMonitor, seen: _Seen) -> None:
    while not monitor.events.empty():
        _take(monitor.events.get_nowait(), seen)


def _take(event: ObservedEvent, seen: _Seen) -> None:
    value = event.value
    if event.topic == _LIVE["forecasts_topic"].default:
        seen.forecasts.append(value)
    elif event.topic == TOPICS.performance_eval and value.get("kind") == "live":
        seen.metrics.append(value)
    elif event.topic == TOPICS.preprocess_requests:
        seen.requests.append(value)
    elif event.topic == TOPICS.model_selected:
        seen.promotions.append(value)
    elif event.topic == TOPICS.progress and "no champion promoted" in str(value.get("message")):
        seen.no_promotion.append(str(value.get("message")))
    elif event.topic.startswith("DLQ-"):
        seen.dead_letters.append(value)


def _settle(monitor: TopicMonitor, seen: _Seen, sent: list[Observation], timeout_s: float) -> None:
    """Until the last observation's forecast is in and every retraining came to a decision."""
    last = sent[-1].timestamp.strftime("%Y-%m-%dT%H:%M:%SZ") if sent else None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _drain(monitor, seen)
        have_last = last is None or any(f.get("origin_timestamp") == last for f in seen.forecasts)
        # The first request is `flts run`'s own (answered by the first promotion).
        decided = len(seen.promotions) + len(seen.no_promotion) >= len(seen.requests)
        if have_last and decided:
            return
        time.sleep(0.2)
    log.warning(
        "live: gave up waiting after %.0f s (forecast of the last row or a retraining)", timeout_s
    )


def _live_state(port: int) -> dict[str, Any]:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/live/state", timeout=10)
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state
    except httpx.HTTPError as exc:
        log.warning("live: /live/state unavailable: %s", exc)
        return {}


def _summary(
    options: LiveOptions,
    train_summary: dict[str, Any],
    seen: _Seen,
    sent: list[Observation],
    figures: LiveFigures,
    state: dict[str, Any],
    shift_at: int,
    png: Path,
) -> dict[str, Any]:
    run = options.run
    view = (state.get("identifiers") or {}).get(run.identifier, {})
    promoted = {p.get("run_id"): p for p in seen.promotions[1:]}
    retrains = []
    for r in state.get("retrains", []):
        if r.get("identifier") != run.identifier:
            continue
        winner = promoted.get(r.get("promoted_run_id"))
        retrains.append(
            {
                "time": r.get("requested_at"),
                "reason": r.get("reason"),
                "champion": f"{r.get('champion_model_type')} {r.get('champion_run_id')}",
                "champion_live_mae": r.get("live_mae"),
                "promoted": r.get("promoted_run_id") is not None,
                "challenger": None
                if winner is None
                else f"{winner.get('model_type')} {winner.get('run_id')}",
                "challenger_test_mae": None if winner is None else winner.get("test_mae"),
            }
        )
    return {
        "identifier": run.identifier,
        "initial_champion": train_summary.get("champion"),
        "observations": len(sent),
        "forecasts": len(seen.forecasts),
        "live_mae": figures.mae,
        "live_persistence_mae": figures.persistence_mae,
        "coverage": figures.coverage,
        "coverage_before_shift": figures.coverage_before,
        "coverage_after_shift": figures.coverage_after,
        "mae_before_shift": figures.mae_before,
        "mae_after_shift": figures.mae_after,
        "shift": options.shift,
        "shift_at": figures.shift_time if options.shift else None,
        "service_metrics": view.get("metrics"),
        # The live band scales at the end ("level/step": factor on the trained offsets).
        "band_scale": view.get("band_scale"),
        "dropped": {
            "duplicate": view.get("dropped_duplicate"),
            "out_of_order": view.get("dropped_out_of_order"),
        },
        "dead_letters": len(seen.dead_letters),
        "retrains": retrains,
        "no_promotion_reasons": seen.no_promotion,
        "latency_ms": figures.latency_ms,
        "artifacts": {"plot_png": str(png), "page": f"http://127.0.0.1:{run.api_port}/live"},
        "training": {k: train_summary.get(k) for k in ("config_hash", "scores", "artifacts")},
    }
