"""`flts bench <name|all>`: run benchmarks, write one JSON file each, rebuild RESULTS.md."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    from flts.bench import BENCHMARKS

    parser.add_argument("name", choices=[*BENCHMARKS, "all"], help="benchmark to run, or all")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shrunk workloads (smoke check, minutes); results are marked quick",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="results directory")
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="RESULTS.md to rebuild (default: RESULTS.md next to the results directory)",
    )
    parser.add_argument("--no-markdown", action="store_true", help="do not rebuild RESULTS.md")
    parser.add_argument(
        "--bootstrap", default=None, help="Kafka bootstrap to use instead of a fresh local stack"
    )
    parser.add_argument(
        "--config",
        default=None,
        help="preprocess config overrides as JSON for train/batch/api, e.g. '{\"lags\": []}'",
    )
    parser.add_argument(
        "--series",
        default=None,
        help="accuracy: only these panel series NAME,... (default: all); "
        "fleet: the first N simbench profiles (default: all 96)",
    )
    parser.add_argument(
        "--models",
        default=None,
        help="accuracy: only these model types TYPE,... (default: all); "
        "fleet: the one model type every series trains (default: LINEAR)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flts.bench import BenchOptions, all_benchmarks, runner
    from flts.bench.common import write_result
    from flts.bench.markdown import write_markdown

    out_dir: Path = args.out
    extra = {"preprocess_config": args.config} if args.config else {}
    extra.update({k: v for k, v in (("series", args.series), ("models", args.models)) if v})
    options = BenchOptions(quick=args.quick, out_dir=out_dir, bootstrap=args.bootstrap, extra=extra)
    names = all_benchmarks() if args.name == "all" else [args.name]
    done: set[str] = set()
    failed: list[str] = []
    for name in names:
        if name in done:
            continue  # produced by an earlier benchmark (the training pass writes accuracy)
        print(f"== bench {name}{' (quick)' if args.quick else ''}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            results = runner(name)(options)
        except Exception:
            traceback.print_exc()
            print(f"== bench {name}: FAILED", file=sys.stderr)
            failed.append(name)
            continue
        for result in results:
            path = write_result(result, out_dir)
            done.add(result.benchmark)
            verdict = "met" if result.target_met else "MISSED"
            print(f"   {result.benchmark}: target {verdict} -> {path}", file=sys.stderr)
        done.add(name)
        print(f"== bench {name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    if not args.no_markdown:
        md = args.markdown or out_dir.resolve().parent / "RESULTS.md"
        write_markdown(out_dir, md)
        print(f"== {md} rebuilt from {out_dir}", file=sys.stderr)
    if failed:
        print(f"flts bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
