"""The end of a fleet run: one row per series, fleet aggregates, a ratio plot, the JSON.

A series' **ratio** is its champion's MAE over persistence's MAE on the same origins
(``mae_vs_persistence`` of the champion's score row). A series without a champion but with
scores is reported with its best learned model's ratio (marked ``champion: none``), so the
fleet view shows how far it missed; a series with no scores (skipped or failed) has no ratio.

Aggregates over the series with a ratio: ``share_beating_persistence`` (ratio < 1),
``median_ratio``, ``worst_series`` (highest ratio), plus counts of series with and without a
champion, and the series whose champion is hedged toward persistence (``hedged_champions``).
"""

from __future__ import annotations

import io
import json
import logging
import statistics
from pathlib import Path
from typing import Any

from flts.run.pipeline import RunOptions
from flts.run.report import champion_or_best_row

RATIO_KEY = "mae_vs_persistence"
log = logging.getLogger(__name__)


def series_ratio(entry: dict[str, Any]) -> float | None:
    """The champion's MAE / persistence's, else the best learned model's; None without scores."""
    row = champion_or_best_row(entry)
    if row is None or row.get(RATIO_KEY) is None:
        return None
    return float(row[RATIO_KEY])


#: A champion of this type came from the global model (``flts run --global-model``).
GLOBAL_TYPES = frozenset({"GLOBAL_LINEAR"})


def champion_is_global(entry: dict[str, Any]) -> bool | None:
    """Whether the series' champion is the global candidate; None without a champion."""
    champion = (entry.get("champion") or {}).get("model_type")
    return None if champion is None else champion in GLOBAL_TYPES


def hedged_champion(entry: dict[str, Any]) -> bool:
    """Whether the series' champion serves forecasts hedged toward persistence (it lost to
    persistence on the held-out end of training; ``persistence_weights`` in its score row)."""
    champion = (entry.get("champion") or {}).get("model_type")
    return any(
        r.get("model_type") == champion and r.get("persistence_weights")
        for r in entry.get("scores") or []
    )


def fleet_aggregates(entries: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = {e["series_id"]: series_ratio(e) for e in entries}
    known = {sid: r for sid, r in ratios.items() if r is not None}
    worst = max(known, key=lambda sid: (known[sid], sid)) if known else None
    kinds = [champion_is_global(e) for e in entries]
    globals_ = {}
    if any("global_model" in e for e in entries):
        globals_ = {
            "global_champions": sum(1 for k in kinds if k is True),
            "local_champions": sum(1 for k in kinds if k is False),
        }
    return {
        **globals_,
        "series": len(entries),
        "with_champion": sum(1 for e in entries if e.get("champion")),
        "without_champion": sum(1 for e in entries if not e.get("champion")),
        "hedged_champions": sorted(e["series_id"] for e in entries if hedged_champion(e)),
        "scored": len(known),
        "share_beating_persistence": (
            sum(1 for r in known.values() if r < 1.0) / len(known) if known else None
        ),
        "median_ratio": statistics.median(known.values()) if known else None,
        "worst_series": None if worst is None else {"series_id": worst, "ratio": known[worst]},
    }


def _table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *body]
    )


def series_table(entries: list[dict[str, Any]]) -> str:
    with_global = any("global_model" in e for e in entries)
    header = ["series", "identifier", "champion", "MAE/pers", "config_hash", "reason"]
    if with_global:
        header.insert(3, "kind")
    body = []
    for e in entries:
        ratio = series_ratio(e)
        line = [
            e["series_id"],
            e["identifier"],
            (e.get("champion") or {}).get("model_type") or "none",
            "-" if ratio is None else f"{ratio:.3f}",
            str(e.get("config_hash") or "-")[:12],
            (e.get("reason") or _global_note(e))[:80],
        ]
        if with_global:
            kind = champion_is_global(e)
            line.insert(3, "-" if kind is None else ("global" if kind else "local"))
        body.append(line)
    return _table(header, body)


def _global_note(entry: dict[str, Any]) -> str:
    """Why a series had no global candidate (left out of the global fit), else nothing."""
    info = entry.get("global_model") or {}
    reason = info.get("excluded")
    return f"no global candidate: {reason}" if reason else ""


def plot_ratios(entries: list[dict[str, Any]], title: str, path: Path) -> Path | None:
    """Histogram of the series' ratios to persistence, with the line at 1; None if none."""
    ratios = [r for r in (series_ratio(e) for e in entries) if r is not None]
    if not ratios:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    low, high = min(ratios), max(ratios)
    # Equal ratios (e.g. one series, or scaled copies) leave no range to split into bins.
    span = (low - 0.05, high + 0.05) if high - low < 1e-6 else (low, high)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.hist(ratios, bins=max(5, min(40, len(ratios))), range=span, color="#1c7ed6", alpha=0.85)
    ax.axvline(1.0, color="#c92a2a", lw=1.2, label="persistence")
    ax.set_xlabel("champion MAE / persistence MAE (per series)")
    ax.set_ylabel("series")
    ax.set_title(title)
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path.write_bytes(buf.getvalue())
    return path


def fleet_summary(
    base: RunOptions,
    entries: list[dict[str, Any]],
    *,
    t0: float,
    t_infra: float,
    t_end: float,
) -> dict[str, Any]:
    """The fleet's summary JSON: ``series`` (one entry each), aggregates, timings, artifacts."""
    aggregates = fleet_aggregates(entries)
    artifacts: dict[str, Any] = {"summary_json": str(base.run_dir / "summary.json")}
    try:
        plot = plot_ratios(
            entries, f"{base.identifier}: ratio to persistence", base.run_dir / "ratios.png"
        )
    except Exception:  # a plot must never cost the fleet its summary
        log.exception("the ratio plot of %s failed", base.identifier)
        plot = None
    if plot is not None:
        artifacts["ratio_png"] = str(plot)
    pipeline_s = t_end - t_infra
    ran = sum(1 for e in entries if e.get("scores"))
    return {
        "identifier": base.identifier,
        "fleet": aggregates,
        "target": base.target,
        "series": entries,
        "timings": {
            "infrastructure_s": t_infra - t0,
            "pipeline_s": pipeline_s,
            "total_s": t_end - t0,
            "series_per_minute": 60.0 * ran / pipeline_s if pipeline_s > 0 else None,
        },
        "artifacts": artifacts,
    }


def render_fleet(summary: dict[str, Any]) -> str:
    agg = summary["fleet"]
    share = agg.get("share_beating_persistence")
    median = agg.get("median_ratio")
    worst = agg.get("worst_series")
    lines = [
        f"FLTS fleet run {summary['identifier']}: {agg['series']} series, "
        f"{agg['with_champion']} with a champion, {agg['without_champion']} without",
        "",
        series_table(summary["series"]),
        "",
        *(
            [f"champions: {agg['global_champions']} global, {agg['local_champions']} local"]
            if "global_champions" in agg
            else []
        ),
        *(
            [
                f"champions hedged toward persistence: {len(hedged)} "
                f"({', '.join(hedged[:10])}{', ...' if len(hedged) > 10 else ''})"
            ]
            if (hedged := agg.get("hedged_champions"))
            else []
        ),
        "share beating persistence: " + ("-" if share is None else f"{share:.0%}"),
        "median ratio to persistence: " + ("-" if median is None else f"{median:.3f}"),
        "worst series: "
        + ("-" if worst is None else f"{worst['series_id']} ({worst['ratio']:.3f})"),
        f"pipeline: {summary['timings']['pipeline_s']:.1f} s"
        + (
            f" ({summary['timings']['series_per_minute']:.2f} series/minute)"
            if summary["timings"].get("series_per_minute")
            else ""
        ),
        f"summary: {summary['artifacts']['summary_json']}",
    ]
    if "ratio_png" in summary["artifacts"]:
        lines.append(f"plot:    {summary['artifacts']['ratio_png']}")
    if summary.get("api_url"):
        lines.append(
            f'API:     {summary["api_url"]}  (POST /predict with "identifier", GET /models)'
        )
    return "\n".join(lines)


def write_fleet_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    path = run_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return path
