"""The ``flts`` command. Each subcommand lives in its own module with a ``register`` function,
imported lazily so ``flts stack status`` does not pay for importing torch."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from flts import __version__
from flts.errors import FltsError

#: subcommand -> (module, help). Each module defines ``register(parser)`` and sets ``func``.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("flts.cli.run_cmd", "run the whole pipeline on one machine"),
    "stack": ("flts.cli.stack_cmd", "start, inspect or stop the local infrastructure"),
    "service": ("flts.cli.service_cmd", "run one pipeline service (Kafka worker or HTTP app)"),
    "schema": ("flts.cli.schema_cmd", "export the wire messages' JSON Schemas"),
    "kfp": ("flts.cli.kfp_cmd", "compile, run locally or submit the Kubeflow pipeline"),
    "bench": ("flts.cli.bench_cmd", "run benchmarks and write bench/results"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flts", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # Deployment checks (`podman run IMAGE --version`) need it without importing a subcommand.
    parser.add_argument("--version", action="version", version=f"flts {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text)
        # Import only the module of the subcommand in use (or all of them for --help).
        if wanted is None or wanted == name:
            importlib.import_module(module).register(sp)
    return parser


#: Process-wide defaults for libraries, set before any of them is imported. MLflow's telemetry
#: thread adds and removes an env var while requests iterates os.environ in other threads,
#: which fails MLflow calls at random (KeyError '_MLFLOW_TELEMETRY_SESSION_ID'); its artifact
#: progress bars would litter service logs.
LIBRARY_ENV_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def main(argv: Sequence[str] | None = None) -> int:
    for name, value in LIBRARY_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        rc = args.func(args)
    except FltsError as exc:
        print(f"flts {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
