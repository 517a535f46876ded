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


def score_table(rows: list[dict[str, Any]], champion: str | None) -> str:
    """Fixed-width table of every model and baseline, best composite score first."""
    header = ["model", "MAE", "RMSE", "MAPE %", "MAE/pers", "RMSE/pers", "score", ""]
    ordered = sorted(rows, key=lambda r: (r.get("composite_score", float("inf")), r["model_type"]))
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
                _fmt(row.get("mape"), 3),
                _fmt(row.get("mae_vs_persistence"), 3),
                _fmt(row.get("rmse_vs_persistence"), 3),
                _fmt(row.get("composite_score"), 3),
                mark,
            ]
        )
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


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


def plot_forecast(rows: list[dict[str, Any]], target: str, title: str, path: Path) -> Path:
    """Forecast against actual over the test period (first horizon step of each origin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    first = [r for r in rows if r.get("horizon_step") == 1]
    ts = np.array([np.datetime64(str(r["target_ts"]).rstrip("Z")) for r in first])
    pred = np.array([r["prediction"] for r in first], dtype=float)
    actual = np.array(
        [np.nan if r.get("actual") is None else r["actual"] for r in first], dtype=float
    )
    # Whole test period on top; the last day below, where single forecasts can be read.
    fig, (ax, zoom) = plt.subplots(2, 1, figsize=(13, 7.5), dpi=110, height_ratios=(3, 2))
    day = np.timedelta64(1, "D")
    recent = ts >= ts[-1] - day if len(ts) else np.zeros(0, dtype=bool)
    for axis, mask in ((ax, slice(None)), (zoom, recent)):
        axis.plot(ts[mask], actual[mask], lw=0.8, color="#444444", label="actual")
        axis.plot(ts[mask], pred[mask], lw=0.8, color="#d9480f", alpha=0.85, label="forecast")
        axis.set_ylabel(f"{target} (original units)")
        axis.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="upper right")
    zoom.set_title("last day of the test period (forecast 1 step ahead)", fontsize=10)
    for axis in (ax, zoom):  # not autofmt_xdate: it hides the top axis' dates
        axis.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path.write_bytes(buf.getvalue())
    return path
