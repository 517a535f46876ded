"""`flts run --series-col COL` (long CSV), `--series-cols COL,...|all` (wide CSV) or --train DIR
--test DIR: a fleet of series in one run.

Exit codes: 0 every series got a champion; 1 the input was rejected as a whole or the run
failed; 2 some series got no champion (each has its reason in the table and the JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from flts.domain.config import PreprocessConfig


def parse_replicas(text: str) -> dict[str, int]:
    """``train-gru=2,inference=2`` -> {"train-gru": 2, "inference": 2}; names are checked."""
    from flts.services.wiring import SPEC_SERVICES

    out: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, count = part.partition("=")
        if not sep or name.strip() not in SPEC_SERVICES:
            known = ", ".join(SPEC_SERVICES)
            raise argparse.ArgumentTypeError(f"--replicas takes SERVICE=N with SERVICE in {known}")
        try:
            value = int(count)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--replicas {part}: N must be a number") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"--replicas {part}: N must be at least 1")
        out[name.strip()] = value
    return out


def is_fleet(args: argparse.Namespace) -> bool:
    wide = bool(getattr(args, "series_cols", None))
    return bool(args.series_col) or wide or (args.train is not None and args.train.is_dir())


def run_fleet(args: argparse.Namespace, identifier: str) -> int:
    from flts.cli import log_to_file
    from flts.cli.fleet_inputs import (
        WIDE_TARGET,
        fleet_series,
        pair_directories,
        split_long_csv,
        split_wide_csv,
    )
    from flts.cli.run_cmd import TqdmDisplay, _raise_interrupt, run_options, run_preprocess_config
    from flts.cli.run_inputs import validate_inputs
    from flts.errors import FltsError
    from flts.run.fleet import FleetOptions, execute_fleet
    from flts.run.fleet_report import render_fleet
    from flts.run.pipeline import PipelineFailed

    if args.train is None or args.test is None:
        print("flts run: a fleet run needs --train and --test", file=sys.stderr)
        return 1
    if args.series_cols and args.series_col:
        print("flts run: --series-col (long) or --series-cols (wide), not both", file=sys.stderr)
        return 1
    if args.series_cols:  # each series' own file names its target WIDE_TARGET
        args.target = WIDE_TARGET
    run_dir = (args.run_dir or Path("runs") / identifier).resolve()

    def config_for(train_csv: Path) -> PreprocessConfig:
        return run_preprocess_config(args, train_csv)

    started = time.monotonic()
    try:
        if args.train.is_dir():
            pairs, raw_ids, notices = pair_directories(args.train, args.test)
        elif args.series_cols:
            pairs, raw_ids, notices = split_wide_csv(
                args.train, args.test, args.time_col, args.series_cols, run_dir / "inputs"
            )
        else:
            pairs, raw_ids, notices = split_long_csv(
                args.train, args.test, args.series_col, run_dir / "inputs"
            )
        series = fleet_series(
            identifier,
            pairs,
            raw_ids,
            args.target,
            config_for,
            validate_inputs,
            time_col=args.time_col,
        )
    except FltsError as exc:
        print(f"flts run: input rejected before starting anything: {exc}", file=sys.stderr)
        return 1
    runnable = [s for s in series if s.reason is None]
    print(
        f"flts run: {len(series)} series checked in {time.monotonic() - started:.1f} s, "
        f"{len(runnable)} runnable",
        file=sys.stderr,
    )
    for notice in notices:
        print(f"  {notice}", file=sys.stderr)
    for s in series:
        if s.reason is not None:
            print(f"  series {s.series_id!r} skipped: {s.reason}", file=sys.stderr)
    if not runnable:
        print("flts run: input rejected: no series can be run", file=sys.stderr)
        return 1
    base = run_options(
        args,
        identifier,
        train_csv=args.train.resolve(),
        test_csv=args.test.resolve(),
        run_dir=run_dir,
    )
    log_path = log_to_file(run_dir / "logs" / "flts-run.log")
    display = TqdmDisplay(base.models)
    display.note(f"log: {log_path} (add --verbose to see it here)")
    import signal

    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        summary = execute_fleet(FleetOptions(base=base, series=series), display)
    except PipelineFailed as exc:
        print(f"flts run: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        display.close()
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    else:
        print(render_fleet(summary))
    return 0 if summary["fleet"]["without_champion"] == 0 else 2
