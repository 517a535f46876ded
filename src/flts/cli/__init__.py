"""The ``flts`` command. Each subcommand lives in its own module with a ``register`` function,
imported lazily so ``flts stack status`` does not pay for importing torch."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from flts import __version__
from flts.errors import FltsError

#: subcommand -> (module, help). Each module defines ``register(parser)`` and sets ``func``.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("flts.cli.run_cmd", "run the whole pipeline on one machine"),
    "live": ("flts.cli.live_cmd", "train on A, then replay B as live observations"),
    "stack": ("flts.cli.stack_cmd", "start, inspect or stop the local infrastructure"),
    "service": ("flts.cli.service_cmd", "run one pipeline service (Kafka worker or HTTP app)"),
    "schema": ("flts.cli.schema_cmd", "export the wire messages' JSON Schemas"),
    "kfp": ("flts.cli.kfp_cmd", "compile, run locally or submit the Kubeflow pipeline"),
    "bench": ("flts.cli.bench_cmd", "run benchmarks and write bench/results"),
    "chaos": ("flts.cli.chaos_cmd", "inject faults into a pipeline run and check the invariants"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flts", description=__doc__)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show library and component log lines"
    )
    # Deployment checks (`podman run IMAGE --version`) need it without importing a subcommand.
    parser.add_argument("--version", action="version", version=f"flts {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text)
        # Import only the module of the subcommand in use (or all of them for --help).
        if wanted is None or wanted == name:
            importlib.import_module(module).register(sp)
        _accept_verbose(sp)
    return parser


def _accept_verbose(parser: argparse.ArgumentParser) -> None:
    """``--verbose`` is accepted after any (sub-)subcommand, e.g. ``flts stack status -v``."""
    if not any("--verbose" in action.option_strings for action in parser._actions):
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show library and component log lines on the terminal too",
        )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _accept_verbose(child)


#: Process-wide defaults for libraries, set before any of them is imported. MLflow's telemetry
#: thread adds and removes an env var while requests iterates os.environ in other threads,
#: which fails MLflow calls at random (KeyError '_MLFLOW_TELEMETRY_SESSION_ID'); its artifact
#: progress bars would litter service logs.
LIBRARY_ENV_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_cli_logging(*, verbose: bool) -> None:
    """The terminal shows the command's own output (progress, tables, warnings); library INFO
    lines (HTTP requests, MLflow links, component start-up) only with ``--verbose``. Commands
    that keep a log file add it with :func:`log_to_file`, which records INFO either way."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter(LOG_FORMAT))
    root.handlers[:] = [console]


def log_to_file(path: Path) -> Path:
    """Also write every INFO (and up) line of this process to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    for name, value in LIBRARY_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    configure_cli_logging(verbose=args.verbose)
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
