"""``flts live``: train and promote on A, replay B as live observations, report the live loop.

Example::

    flts live --train A.csv --test B.csv --models LINEAR --speed 2000 --shift 0.5 --json
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flts.cli.run_cmd import (
    TqdmDisplay,
    _raise_interrupt,
    add_shared_arguments,
    passed_env,
    prepare_input_files,
    run_options,
    shared_preprocess_config,
)

#: Service settings `flts live` passes through from its own environment (see LiveSettings).
PASSED_ENV_PREFIXES = ("LIVE_", "DRIFT_", "RETRAIN_", "CHALLENGE_")


def register(parser: argparse.ArgumentParser) -> None:
    from flts.datasets import bundled_test_csv, bundled_train_csv

    parser.add_argument("--train", type=Path, default=None, help="A: CSV to train on")
    parser.add_argument(
        "--test",
        type=Path,
        default=None,
        help="B: CSV replayed as observations (default: with --train, its latest "
        "--test-fraction; without, bundled PobleSec_test)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="replay at N x real time (default 0: as fast as possible)",
    )
    parser.add_argument(
        "--shift",
        type=float,
        default=0.0,
        help="multiply B's target by 1+SHIFT from its middle row on (level-shift demo)",
    )
    parser.add_argument(
        "--holdout-rows",
        type=int,
        default=None,
        help="A's last rows that pick the champion (default: a fifth of A, at most 720)",
    )
    parser.add_argument(
        "--settle", type=float, default=300.0, help="seconds to wait for the last forecasts"
    )
    add_shared_arguments(parser, default_models="LINEAR")
    parser.set_defaults(func=run, default_train=bundled_train_csv, default_test=bundled_test_csv)


def run(args: argparse.Namespace) -> int:
    from flts.cli import log_to_file
    from flts.errors import FltsError
    from flts.run.live import LiveOptions, canonical_csv, execute_live, split_training
    from flts.run.pipeline import PipelineFailed

    identifier = args.identifier or "flts-live-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = (args.run_dir or Path("runs") / identifier).resolve()
    try:
        for note in prepare_input_files(args, run_dir):  # --train alone: its latest part is B
            print(f"flts live: {note}", file=sys.stderr)
        train = (args.train or args.default_train()).resolve()
        replay = (args.test or args.default_test()).resolve()
        config = shared_preprocess_config(args)
        # Both files as ISO-UTC (with a Z, so the run's config keeps its zone for the holiday
        # days without shifting them again), comma-delimited plain numbers from here on (the
        # replay sends their rows as observations).
        train = canonical_csv(train, config, run_dir / "live-input-a.csv")
        replay = canonical_csv(replay, config, run_dir / "live-input-b.csv")
        fit, holdout, holdout_rows = split_training(
            train, args.time_col, args.holdout_rows, run_dir
        )
    except (OSError, ValueError, FltsError) as exc:
        print(f"flts live: input rejected: {exc}", file=sys.stderr)
        return 1
    run_options_ = run_options(
        args,
        identifier,
        train_csv=fit,
        test_csv=holdout,
        run_dir=run_dir,
        preprocess_config_json=config.model_dump_json(),
    )
    # flts run's serving settings plus the live loop's own.
    passed = {**run_options_.service_env, **passed_env(PASSED_ENV_PREFIXES)}
    options = LiveOptions(
        # The live phase needs the services: stopped at its end unless --keep-running.
        run=replace(run_options_, keep_running=True, service_env=passed),
        replay_csv=replay,
        speed=args.speed,
        shift=args.shift,
        holdout_rows=holdout_rows,
        settle_s=args.settle,
    )
    log_path = log_to_file(run_dir / "logs" / "flts-live.log")
    display = TqdmDisplay(options.run.models)
    display.note(f"log: {log_path}")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        summary = execute_live(options, display, keep_running=args.keep_running)
    except PipelineFailed as exc:
        display.close()
        print(f"flts live: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        display.close()
    (run_dir / "live-summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(json.dumps(summary, indent=2, default=str) if args.json else render(summary))
    return 0 if summary.get("forecasts") else 2


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def render(summary: dict[str, Any]) -> str:
    coverage = ", ".join(f"{lv}%: {c:.1%}" for lv, c in (summary.get("coverage") or {}).items())
    before = ", ".join(
        f"{lv}%: {c:.1%}" for lv, c in (summary.get("coverage_before_shift") or {}).items()
    )
    lines = [
        f"FLTS live {summary['identifier']}",
        f"observations: {summary.get('observations')}  forecasts: {summary.get('forecasts')}",
        f"live MAE {_num(summary.get('live_mae'))}  persistence MAE "
        f"{_num(summary.get('live_persistence_mae'))}",
        f"coverage: {coverage or '-'}" + (f"  (before the shift: {before})" if before else ""),
        f"latency (ms): {summary.get('latency_ms')}",
        "retrains:",
    ]
    for r in summary.get("retrains") or []:
        lines.append(
            f"  {r['time']}  {'PROMOTED ' + str(r['challenger']) if r['promoted'] else 'kept'}"
            f"  ({r['reason']})"
        )
    for reason in summary.get("no_promotion_reasons") or []:
        lines.append(f"  not promoted: {reason}")
    lines.append(f"plot: {summary.get('artifacts', {}).get('plot_png')}")
    lines.append(f"page: {summary.get('artifacts', {}).get('page')}")
    return "\n".join(lines)
