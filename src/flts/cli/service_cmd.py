"""``flts service <name>``: run one pipeline service in the foreground.

Settings come from the spec's env vars, read once at start-up; a missing or malformed variable
exits non-zero with its name. Services log JSON lines to stderr and stop cleanly on
SIGTERM/SIGINT (the in-flight message is left uncommitted and is redelivered).

Examples::

    MODEL_TYPE=GRU CONSUMER_GROUP_ID=train-gru flts service train
    flts service preprocess --train PobleSec.csv --test PobleSec_test.csv --identifier run-1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from flts.logging_setup import configure_json_logging
from flts.services.wiring import SERVICE_NAMES, reuses_port


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="service", metavar="SERVICE", required=True)
    pre = sub.add_parser("preprocess", help="one-shot: CSVs -> processed data -> claim checks")
    pre.add_argument("--train", type=Path, help="training CSV (default: the bundled data set)")
    pre.add_argument("--test", type=Path, help="test CSV (default: the bundled data set)")
    pre.add_argument("--time-col", help="time column (default from PreprocessConfig: time)")
    pre.add_argument("--target", help="target column (default from PreprocessConfig: down)")
    pre.add_argument("--identifier", help="run identifier (default: derived from the data)")
    pre.add_argument("--config", help="PreprocessConfig as JSON, e.g. '{\"lookback\": 24}'")
    pre.add_argument(
        "--listen",
        action="store_true",
        help="on-request mode: serve PreprocessRequested events from PREPROCESS_REQUEST_TOPIC",
    )
    pre.set_defaults(func=_preprocess)
    for name, text in (
        ("train", "trainer for MODEL_TYPE (consumes training-data)"),
        ("train-global", "one model across a fleet's series (consumes global-training-requests)"),
        ("eval", "evaluator/promoter (consumes model-training)"),
        ("inference", "batch inference consumer + HTTP API"),
        ("gateway", "claim-check HTTP gateway"),
    ):
        sp = sub.add_parser(name, help=text)
        if name != "gateway":
            sp.add_argument(
                "--replicas",
                type=int,
                default=1,
                help="members of the consumer group to run (this process plus N-1 children; "
                "inference children serve API_PORT+1, +2, ..., or all API_PORT with "
                "API_REUSE_PORT=true)",
            )
        sp.set_defaults(func=_long_running(name))
    assert set(sub.choices) == set(SERVICE_NAMES)


def _setup_logging(service: str, args: argparse.Namespace) -> None:
    verbose = bool(getattr(args, "verbose", False))
    configure_json_logging(service, logging.DEBUG if verbose else logging.INFO)


def _preprocess(args: argparse.Namespace) -> int:
    from flts.datasets import bundled_test_csv, bundled_train_csv
    from flts.services import preprocess as svc_preprocess

    _setup_logging("preprocess", args)
    if args.listen:
        from flts.messaging.worker import install_signal_handlers

        stop = threading.Event()
        install_signal_handlers(stop)
        return svc_preprocess.serve(stop)
    job = svc_preprocess.PreprocessJob(
        train_csv=args.train or bundled_train_csv(),
        test_csv=args.test or bundled_test_csv(),
        identifier=args.identifier,
        config=svc_preprocess.build_config(args.config, args.time_col, args.target),
    )
    result = svc_preprocess.run(job)
    summary = {
        "identifier": result.training.identifier,
        "config_hash": result.config_hash,
        "reused": result.reused,
        "training": result.training.to_wire(),
        "inference": result.inference.to_wire(),
    }
    print(json.dumps(summary))
    return 0


def _long_running(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from flts.messaging.worker import install_signal_handlers

        _setup_logging(name, args)
        if name == "gateway":
            from flts.api.gateway import run_gateway
            from flts.settings import GatewaySettings, load_settings

            run_gateway(load_settings(GatewaySettings))  # uvicorn handles SIGTERM itself
            return 0
        stop = threading.Event()
        install_signal_handlers(stop)
        replicas = int(getattr(args, "replicas", 1) or 1)
        if replicas < 1:
            raise SystemExit("--replicas must be at least 1")
        children = _start_replicas(name, replicas - 1)
        try:
            return _serve(name, stop)
        finally:
            _stop_replicas(children)

    return run


def _start_replicas(name: str, count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` more processes of service ``name`` with this environment (same group)."""
    children = []
    for i in range(1, count + 1):
        env = dict(os.environ)
        if name == "inference" and not reuses_port(env):
            env["API_PORT"] = str(int(env.get("API_PORT", "18000")) + i)
        argv = [sys.executable, "-m", "flts", "service", name]
        children.append(subprocess.Popen(argv, env=env))
        logging.getLogger(__name__).info(
            "started replica %d of %s (pid %d)", i + 1, name, children[-1].pid
        )
    return children


def _stop_replicas(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


def _serve(name: str, stop: threading.Event) -> int:
    if name == "train":
        from flts.services import train as svc
    elif name == "train-global":
        from flts.services import train_global as svc  # type: ignore[no-redef]
    elif name == "eval":
        from flts.services import eval as svc  # type: ignore[no-redef]
    else:
        from flts.services import inference as svc  # type: ignore[no-redef]
    return svc.run(stop)


if __name__ == "__main__":
    from flts.cli import main

    sys.exit(main(["service", *sys.argv[1:]]))
