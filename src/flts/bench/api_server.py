"""Serve one saved forecaster with the inference app, for the API benchmark.

Runs in its own process (``python -m flts.bench.api_server --model-dir D --port P``) with one
uvicorn worker on uvloop/httptools, like the inference service, so the load generator never
shares an interpreter with it. ``--profile FILE`` wraps the server in cProfile (main thread:
the event loop, parsing and responses; the batched forward runs in the batcher's thread) and
writes the stats when the server stops on SIGINT.

``--workers N`` (N > 1) measures a multi-process API: this process binds the port and starts N
copies of itself that each load the model and serve the shared socket (``--fd``), each with its
own event loop and micro-batcher; the kernel hands each new connection to one of them.
SIGINT/SIGTERM here stops them all.
"""

from __future__ import annotations

import argparse
import cProfile
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import FrameType

import uvicorn

from flts.api.inference_app import ApiSettings, create_inference_app
from flts.forecasting.models import load_forecaster
from flts.serving.model_state import LoadedModel, ModelState


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=None, help="port to bind (or --fd)")
    parser.add_argument("--fd", type=int, default=None, help="serve this bound socket")
    parser.add_argument("--workers", type=int, default=1, help="API processes (default 1)")
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument(
        "--max-batch-wait-ms", type=float, default=None, help="default: the API's own default"
    )
    parser.add_argument(
        "--forward-in-loop", action="store_true", help="API_FORWARD_IN_LOOP (batcher setting)"
    )
    args = parser.parse_args(argv)
    if (args.port is None) == (args.fd is None):
        parser.error("give exactly one of --port and --fd")
    if args.workers > 1:
        return _supervise(args)
    forecaster = load_forecaster(args.model_dir)
    state = ModelState()
    # The app subscribes to model swaps, so build it before setting the model.
    settings = ApiSettings(api_forward_in_loop=args.forward_in_loop)
    if args.max_batch_wait_ms is not None:
        settings = replace(settings, max_batch_wait_ms=args.max_batch_wait_ms)
    app = create_inference_app(state, settings)
    state.set(
        LoadedModel.of(
            forecaster,
            model_uri=f"file://{args.model_dir}",
            run_id="bench",
            identifier="bench",
            source="registry",
        )
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port or 0,
        loop="uvloop",
        http="httptools",
        workers=1,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # no proxy in front; saves a middleware per request
    )
    server = uvicorn.Server(config)
    sockets = None
    if args.fd is not None:
        # uvicorn's own --fd path opens the descriptor as AF_UNIX, so uvloop never sets
        # TCP_NODELAY on its connections and every response waits out delayed ACKs (~40 ms).
        sockets = [socket.socket(fileno=args.fd)]
    if args.profile is None:
        server.run(sockets=sockets)
        return 0
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        server.run(sockets=sockets)
    finally:
        profiler.disable()
        profiler.dump_stats(str(args.profile))
    return 0


def _supervise(args: argparse.Namespace) -> int:
    """Bind the port here and run ``args.workers`` single-worker servers on the socket."""
    if args.profile is not None:
        raise SystemExit("--profile needs --workers 1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(2048)
    fd = sock.fileno()
    argv = [sys.executable, "-m", "flts.bench.api_server", "--model-dir", str(args.model_dir)]
    argv += ["--fd", str(fd)]
    if args.max_batch_wait_ms is not None:
        argv += ["--max-batch-wait-ms", str(args.max_batch_wait_ms)]
    if args.forward_in_loop:
        argv += ["--forward-in-loop"]
    children = [subprocess.Popen(argv, pass_fds=[fd]) for _ in range(args.workers)]

    def stop(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


if __name__ == "__main__":
    raise SystemExit(main())
