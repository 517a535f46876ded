"""Serve one saved forecaster with the inference app, for the API benchmark.

Runs in its own process (``python -m flts.bench.api_server --model-dir D --port P``) with one
uvicorn worker on uvloop/httptools, like the inference service, so the load generator never
shares an interpreter with it. ``--profile FILE`` wraps the server in cProfile (main thread:
the event loop, parsing and responses; the batched forward runs in the batcher's thread) and
writes the stats when the server stops on SIGINT.
"""

from __future__ import annotations

import argparse
import cProfile
from pathlib import Path

import uvicorn

from flts.api.inference_app import ApiSettings, create_inference_app
from flts.forecasting.models import load_forecaster
from flts.serving.model_state import LoadedModel, ModelState


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument(
        "--max-batch-wait-ms", type=float, default=None, help="default: the API's own default"
    )
    args = parser.parse_args(argv)
    forecaster = load_forecaster(args.model_dir)
    state = ModelState()
    # The app subscribes to model swaps, so build it before setting the model.
    settings = ApiSettings()
    if args.max_batch_wait_ms is not None:
        settings = ApiSettings(max_batch_wait_ms=args.max_batch_wait_ms)
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
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # no proxy in front; saves a middleware per request
    )
    server = uvicorn.Server(config)
    if args.profile is None:
        server.run()
        return 0
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        server.run()
    finally:
        profiler.disable()
        profiler.dump_stats(str(args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
