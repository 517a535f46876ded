"""The end of `flts run`: summary JSON, a readable table, and a forecast-vs-actual plot."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.4e}"
    return str(value)


def _rank(row: dict[str, Any]) -> tuple[float, str]:
    """Best composite score first (a row without one last), ties by model type."""
    return (row.get("composite_score", float("inf")), row["model_type"])


def champion_or_best_row(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The champion's score row, else (nothing promoted) the best learned model's; None when no
    model was scored."""
    rows = [r for r in summary.get("scores") or [] if not r.get("is_baseline")]
    champion = (summary.get("champion") or {}).get("model_type")
    return next((r for r in rows if r["model_type"] == champion), None) or min(
        rows, key=_rank, default=None
    )


def score_table(rows: list[dict[str, Any]], champion: str | None) -> str:
    """Fixed-width table of every model and baseline, best composite score first.

    ``/pers`` columns are ratios to persistence; ``/best`` to the better of persistence and
    seasonal naive on that metric, the bar the promotion gate uses (score < 1 beats it).
    MAPE reads ``n/a`` when every actual is zero (undefined there, never infinite).
    """
    header = ["model", "MAE", "RMSE", "MAPE %", "MAE/pers", "MAE/best", "RMSE/best", "score", ""]
    ordered = sorted(rows, key=_rank)
    body = []
    for row in ordered:
        mark = (
            "champion"
            if row["model_type"] == champion
            else ("baseline" if row.get("is_baseline") else "")
        )
        body.append(
            [
                row["model_type"],
                _fmt(row.get("mae")),
                _fmt(row.get("rmse")),
                "n/a" if row.get("mape") is None else _fmt(row.get("mape"), 3),
                _fmt(row.get("mae_vs_persistence"), 3),
                _fmt(row.get("mae_vs_best_baseline"), 3),
                _fmt(row.get("rmse_vs_best_baseline"), 3),
                _fmt(row.get("composite_score"), 3),
                mark,
            ]
        )
    return _table(header, body)


def hedging_note(rows: list[dict[str, Any]]) -> str | None:
    """Which models lost to persistence on the held-out end of training and so serve forecasts
    hedged toward the last value, with their weights; None when none did."""
    from flts.forecasting.point_calibration import weights_text

    hedged = [
        f"{row['model_type']} {weights_text(row['persistence_weights'])}"
        for row in sorted(rows, key=lambda r: str(r["model_type"]))
        if row.get("persistence_weights")
    ]
    if not hedged:
        return None
    return (
        "hedged toward persistence (lost to it on the held-out end of training; weight of the "
        "model's forecast): " + ", ".join(hedged)
    )


def _table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def shown_steps(horizon: int, most: int = 6) -> list[int]:
    """Up to ``most`` horizon steps (1-based), evenly spread, always the first and the last."""
    if horizon <= most:
        return list(range(1, horizon + 1))
    picks = {round(1 + i * (horizon - 1) / (most - 1)) for i in range(most)}
    return sorted(picks)


def step_table(rows: list[dict[str, Any]]) -> str:
    """MAE per horizon step for every row that reports it; empty when the horizon is 1."""
    horizon = max((len(r.get("mae_by_step") or ()) for r in rows), default=0)
    if horizon <= 1:
        return ""
    steps = shown_steps(horizon)
    header = ["MAE at step", *(str(k) for k in steps)]
    body = [
        [r["model_type"], *(_fmt(r["mae_by_step"][k - 1]) for k in steps)]
        for r in sorted(rows, key=lambda r: r["model_type"])
        if len(r.get("mae_by_step") or ()) == horizon
    ]
    return _table(header, body)


def interval_table(rows: list[dict[str, Any]]) -> str:
    """Coverage, mean width and Winkler score per level for every model with intervals; empty
    when none has them. Coverage near the nominal level is the goal; width and Winkler score
    (lower is better) say how much the band costs. "static": the bands as calibrated in
    training (what ``POST /predict`` serves); "adapted": as batch inference and the live loop
    serve them, scaled after each revealed actual ("-" for runs scored before they existed)."""
    scored = [r for r in rows if r.get("intervals")]
    if not scored:
        return ""
    header = [
        "intervals",
        "level",
        "static coverage %",
        "mean width",
        "Winkler",
        "adapted coverage %",
        "adapted width",
    ]
    body = [
        [
            r["model_type"],
            f"{item['level']}%",
            f"{100.0 * item['coverage']:.1f}",
            _fmt(item["mean_width"]),
            _fmt(item["winkler"]),
            _percent(item.get("adaptive_coverage")),
            _fmt(item.get("adaptive_mean_width")),
        ]
        for r in sorted(scored, key=lambda r: r["model_type"])
        for item in r["intervals"]
    ]
    return _table(header, body)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100.0 * share:.1f}"


def run_configuration(meta: Any) -> dict[str, Any]:
    """The configuration a run used, from a processed object's ``DatasetMeta``."""
    spec = meta.spec
    return {
        "step_seconds": spec.step_seconds,
        # Calendar months per step (monthly, quarterly data); None: the step is step_seconds.
        "step_months": spec.step_months or None,
        "horizon": spec.horizon,
        "lookback": spec.lookback,
        "seasonal_periods": list(spec.seasonal_periods),
        "season_steps": spec.season_steps,
        "lags": list(spec.lags),
        "covariates": [c for c in spec.raw_columns if c != spec.target],
        "time_features": spec.time_features,
        "holidays": spec.holidays,
        # The zone whose clock the seasonal lags follow; None: UTC steps.
        "clock_zone": spec.clock_zone,
        "test_context_rows": meta.context_rows,
        # Test targets preprocessing filled in (never judged, nor forecasts just after one).
        "test_filled_targets": int(meta.unobserved_mask()[meta.context_rows :].sum()),
        "preprocess_config": meta.config.model_dump(mode="json"),
    }


def configuration_text(config: dict[str, Any]) -> str:
    """One readable line per decision, for the CLI."""
    if not config:
        return "configuration: (not available)"
    periods = ", ".join(str(p) for p in config.get("seasonal_periods", [])) or "none"
    lags = ", ".join(str(k) for k in config.get("lags", [])) or "none"
    months = config.get("step_months")
    step = f"{config.get('step_seconds')} s" if not months else f"{months} calendar month(s)"
    return "\n".join(
        [
            f"configuration: step {step}, horizon "
            f"{config.get('horizon')}, lookback {config.get('lookback')}",
            f"  seasonal periods (steps): {periods}; seasonal naive season "
            f"{config.get('season_steps')}",
            f"  target lags: {lags}"
            + (f" (at the same {zone} clock time)" if (zone := config.get("clock_zone")) else ""),
            f"  past covariates: {', '.join(config.get('covariates', [])) or 'none'}",
            *(
                [f"  public holidays: {code} (LightGBM inputs)"]
                if (code := config.get("holidays"))
                else []
            ),
            *(
                [
                    f"  filled-in test targets: {filled} (never judged, nor the forecasts "
                    "from just after one)"
                ]
                if (filled := config.get("test_filled_targets"))
                else []
            ),
        ]
    )


def timings_table(timings: dict[str, Any]) -> str:
    lines = []
    for key, value in timings.items():
        if isinstance(value, dict):
            for sub, seconds in value.items():
                lines.append(f"  {key + '.' + sub:<30} {seconds:8.3f} s")
        elif isinstance(value, float):
            unit = "" if "fraction" in key else " s"
            lines.append(f"  {key:<30} {value:8.3f}{unit}")
    return "\n".join(lines)


def read_jsonl(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def plot_forecast(
    rows: list[dict[str, Any]], target: str, title: str, path: Path, step: int = 1
) -> Path:
    """Forecast against actual over the test period, ``step`` steps ahead of each origin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    first = [r for r in rows if r.get("horizon_step") == step]
    ts = np.array([np.datetime64(str(r["target_ts"]).rstrip("Z")) for r in first])
    pred = np.array([r["prediction"] for r in first], dtype=float)
    bands = _plot_bands(first)
    actual = np.array(
        [np.nan if r.get("actual") is None else r["actual"] for r in first], dtype=float
    )
    # Whole test period on top; the last day below, where single forecasts can be read.
    fig, (ax, zoom) = plt.subplots(2, 1, figsize=(13, 7.5), dpi=110, height_ratios=(3, 2))
    day = np.timedelta64(1, "D")
    recent = ts >= ts[-1] - day if len(ts) else np.zeros(0, dtype=bool)
    for axis, mask in ((ax, slice(None)), (zoom, recent)):
        # Widest band first, so each narrower one is drawn darker on top of it.
        for level, alpha in zip(sorted(bands, reverse=True), _BAND_ALPHAS, strict=False):
            lower, upper = bands[level]
            axis.fill_between(
                ts[mask],
                lower[mask],
                upper[mask],
                color="#d9480f",
                alpha=alpha,
                lw=0,
                label=f"{level}% interval",
            )
        axis.plot(ts[mask], actual[mask], lw=0.8, color="#444444", label="actual")
        axis.plot(ts[mask], pred[mask], lw=0.8, color="#d9480f", alpha=0.85, label="forecast")
        axis.set_ylabel(f"{target} (original units)")
        axis.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="upper right")
    ahead = "1 step" if step == 1 else f"{step} steps"
    zoom.set_title(f"last day of the test period (forecast {ahead} ahead)", fontsize=10)
    for axis in (ax, zoom):  # not autofmt_xdate: it hides the top axis' dates
        axis.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path.write_bytes(buf.getvalue())
    return path


#: Opacity of the bands, widest level first.
_BAND_ALPHAS = (0.15, 0.25, 0.35, 0.45)


def _plot_bands(rows: list[dict[str, Any]]) -> dict[int, tuple[Any, Any]]:
    """Level -> (lower, upper) arrays from the rows' ``lower_<level>``/``upper_<level>``
    (every row must have them; a log written by a model without intervals has none)."""
    import numpy as np

    if not rows:
        return {}
    levels = sorted(
        int(key.removeprefix("lower_"))
        for key in rows[0]
        if key.startswith("lower_") and key.removeprefix("lower_").isdigit()
    )
    bands: dict[int, tuple[Any, Any]] = {}
    for level in levels:
        lo, hi = f"lower_{level}", f"upper_{level}"
        if all(lo in r and hi in r for r in rows):
            bands[level] = (
                np.array([r[lo] for r in rows], dtype=float),
                np.array([r[hi] for r in rows], dtype=float),
            )
    return bands
