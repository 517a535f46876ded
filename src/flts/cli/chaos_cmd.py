"""`flts chaos [SCENARIO...]`: kill and cut components mid-run and check the invariants.

Each scenario brings up its own local stack, runs the pipeline on a slice of the bundled data,
injects its fault for real and writes its verdict and figures to ``<out>/chaos.json`` (the
bench result format; bench/RESULTS.md is rebuilt from it). Exit 1 when a scenario failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    from flts.chaos.runner import FAST_SCENARIOS, SCENARIOS

    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "scenarios",
        nargs="*",
        choices=[*SCENARIOS, []],
        metavar="SCENARIO",
        help=f"any of {', '.join(SCENARIOS)} (default: all); --fast: {', '.join(FAST_SCENARIOS)}",
    )
    parser.add_argument("--fast", action="store_true", help="only the scenarios `make test` runs")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="results dir")
    parser.add_argument("--no-markdown", action="store_true", help="do not rebuild RESULTS.md")
    parser.add_argument("--work-dir", type=Path, default=None, help="stacks and runs (temp dir)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flts.bench.common import Timer, make_result, write_result
    from flts.bench.markdown import write_markdown
    from flts.chaos.runner import FAST_SCENARIOS, MODELS, SCENARIOS, SLICE_ROWS, run_suite

    names = list(FAST_SCENARIOS) if args.fast else (args.scenarios or list(SCENARIOS))
    timer = Timer()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="flts-chaos-"))
    figures = run_suite(names, work)
    met = all(f["passed"] for f in figures.values())
    result = make_result(
        "chaos",
        timer,
        quick=set(names) != set(SCENARIOS),
        config={
            "scenarios": names,
            "slice_rows": list(SLICE_ROWS),
            "models": [m.value for m in MODELS],
        },
        figures=figures,
        target={
            "description": "every scenario: run completed, exactly one promotion per "
            "(identifier, config_hash), 0 lost outputs, 0 dead letters not injected",
        },
        target_met=met,
        notes=[
            "recovery_s: from the fault healed (or the service killed) to the run's next event "
            "(for inference-restart: to the first good /predict answer)",
        ],
    )
    path = write_result(result, args.out)
    if not args.no_markdown:
        write_markdown(args.out, args.out.resolve().parent / "RESULTS.md")
    for name, fig in figures.items():
        verdict = "PASS" if fig["passed"] else "FAIL"
        print(
            f"{verdict} {name:18} completed={fig['completed']} promotions={fig['promotions']} "
            f"lost={fig['lost_outputs']} dead_letters={fig['dead_letters']} "
            f"recovery_s={fig['recovery_s']} ({fig['duration_s']}s)"
            + (f" error: {fig['error']}" if fig["error"] else ""),
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
    print(f"chaos: results in {path}", file=sys.stderr)
    return 0 if met else 1
