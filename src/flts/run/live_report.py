"""What `flts live` reports: the live forecasts scored against the replayed actuals, and a PNG
of the live period (actuals, one-step forecast, band, shift, retrain and promotion markers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LiveFigures:
    points: int
    mae: float | None
    persistence_mae: float | None
    coverage: dict[str, float]
    mae_before: float | None
    mae_after: float | None
    coverage_before: dict[str, float]
    coverage_after: dict[str, float]
    shift_time: str | None
    #: Observation sent -> forecast published (the service's clock), p50 / p99 in ms.
    latency_ms: dict[str, float]
    #: One-step-ahead forecasts for the plot: target time, point, {level: (lower, upper)}.
    one_step: list[tuple[pd.Timestamp, float, dict[str, tuple[float, float]]]] = field(
        default_factory=list
    )
    actuals: pd.Series | None = None
    #: Where the answering model changed (data time of the first forecast by the new one).
    swaps: list[tuple[pd.Timestamp, str]] = field(default_factory=list)


def _ts(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")


def live_figures(
    forecasts: list[dict[str, Any]],
    replay: pd.DataFrame,
    time_col: str,
    target: str,
    shift_at: int,
) -> LiveFigures:
    """Score every received forecast step whose target time has an actual in the replay."""
    stamps = pd.to_datetime(replay[time_col], utc=True)
    actual = pd.Series(replay[target].to_numpy(dtype=np.float64), index=stamps)
    actual = actual[~actual.index.duplicated()]
    shift_time = stamps.iloc[shift_at] if 0 <= shift_at < len(stamps) else None
    rows = []
    one_step = []
    latencies = []
    swaps: list[tuple[pd.Timestamp, str]] = []
    last_run = None
    for f in forecasts:
        origin = _ts(str(f["origin_timestamp"]))
        if last_run is not None and f.get("run_id") != last_run:
            swaps.append((origin, f"{f.get('model_type')} {f.get('run_id')}"))
        last_run = f.get("run_id")
        persistence = actual.get(origin)
        if f.get("sent_at") and f.get("timestamp"):
            latencies.append((_ts(f["timestamp"]) - _ts(f["sent_at"])).total_seconds() * 1000)
        for step in f.get("steps", []):
            when = _ts(str(step["target_timestamp"]))
            bands = {
                k.removeprefix("lower_"): (float(step[k]), float(step["upper_" + k[6:]]))
                for k in step
                if k.startswith("lower_") and "upper_" + k[6:] in step
            }
            if step.get("step") == 1:
                one_step.append((when, float(step["point"]), bands))
            if when not in actual.index:
                continue
            y = float(actual[when])
            rows.append(
                {
                    "after": shift_time is not None and when >= shift_time,
                    "error": abs(y - float(step["point"])),
                    "persistence": np.nan if persistence is None else abs(y - float(persistence)),
                    **{f"in_{lv}": lo <= y <= hi for lv, (lo, hi) in bands.items()},
                }
            )
    scored = pd.DataFrame(rows)

    def mae(frame: pd.DataFrame, column: str = "error") -> float | None:
        return float(frame[column].mean()) if len(frame) and frame[column].notna().any() else None

    def coverage(frame: pd.DataFrame) -> dict[str, float]:
        cols = [c for c in frame.columns if c.startswith("in_")]
        return {c[3:]: float(frame[c].mean()) for c in cols if len(frame)}

    before = scored[~scored["after"]] if len(scored) else scored
    after = scored[scored["after"]] if len(scored) else scored
    lat = np.asarray(latencies)
    return LiveFigures(
        points=len(scored),
        mae=mae(scored),
        persistence_mae=mae(scored, "persistence"),
        coverage=coverage(scored),
        mae_before=mae(before),
        mae_after=mae(after),
        coverage_before=coverage(before),
        coverage_after=coverage(after),
        shift_time=None if shift_time is None else shift_time.isoformat(),
        latency_ms={"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}
        if len(lat)
        else {},
        one_step=one_step,
        actuals=actual,
        swaps=swaps,
    )


def plot_live(
    figures: LiveFigures,
    retrains: list[dict[str, Any]],
    title: str,
    path: Path,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def x(stamps: list[pd.Timestamp]) -> np.ndarray:
        """Matplotlib's date numbers (UTC), which its typed API takes."""
        return np.asarray(mdates.date2num([s.tz_convert(None).to_pydatetime() for s in stamps]))

    fig, ax = plt.subplots(figsize=(14, 5))
    if figures.actuals is not None:
        ax.plot(
            x(list(figures.actuals.index)),
            figures.actuals.to_numpy(),
            color="black",
            lw=0.8,
            label="actual",
        )
    if figures.one_step:
        times = x([t for t, _, _ in figures.one_step])
        ax.plot(
            times,
            [p for _, p, _ in figures.one_step],
            color="tab:red",
            lw=0.8,
            label="forecast (1 step)",
        )
        levels = sorted({lv for _, _, b in figures.one_step for lv in b}, key=int)
        if levels:
            top = levels[-1]
            lower = [b.get(top, (np.nan, np.nan))[0] for _, _, b in figures.one_step]
            upper = [b.get(top, (np.nan, np.nan))[1] for _, _, b in figures.one_step]
            ax.fill_between(times, lower, upper, color="tab:blue", alpha=0.25, label=f"{top}% band")
    if figures.shift_time is not None:
        shift = float(x([_ts(figures.shift_time)])[0])
        ax.axvline(shift, color="grey", ls=":", label="level shift")
    for i, r in enumerate(retrains):
        ax.axvline(
            float(x([_ts(r["requested_at"])])[0]),
            color="tab:orange",
            ls="--",
            label="retrain requested" if i == 0 else None,
        )
    for i, (when, _model) in enumerate(figures.swaps):
        label = "challenger answering" if i == 0 else None
        ax.axvline(float(x([when])[0]), color="tab:green", ls="-", label=label)
    ax.xaxis_date()
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
