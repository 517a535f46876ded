"""Like-for-like CPU per /predict request of two source trees, in process (no sockets, no wrk).

wrk and the server share this machine's two cores, and its req/s moves by +-15 % between runs
of the same tree; the server's CPU per request, measured in process, moves less and compares two
releases without the HTTP layer they share (uvicorn, httptools). Each tree trains the api
benchmark's GRU with its own code (``--config '{"lags": []}'``: the 30-row body of the earlier
releases), then the app answers 16 concurrent clients on uvloop; interleave the trees.

    python bench/api_ab.py prepare /tmp/ab/new                       # this tree
    PYTHONPATH=/tmp/old/src python bench/api_ab.py prepare /tmp/ab/old  # a worktree of the old one
    for i in 1 2 3 4 5; do
      PYTHONPATH=/tmp/old/src python bench/api_ab.py measure /tmp/ab/old
      python bench/api_ab.py measure /tmp/ab/new
    done

Each ``measure`` prints ``cpu/req`` (process CPU, every thread, over 8,000 requests after a
warm-up). Works with any tree since the serving split (``flts.serving``) and with the release
before it (``flts.api.model_state``).
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import sys
import time
from pathlib import Path
from typing import Any

CONNECTIONS = 16
REQUESTS = 8000


def prepare(out: Path) -> None:
    from flts.bench import api_bench, workload
    from flts.domain.config import ModelType

    takes_config = len(inspect.signature(workload.workload).parameters) > 1
    wl = workload.workload(False, '{"lags": []}') if takes_config else workload.workload(False)
    model = wl.ensure((ModelType.GRU,))[ModelType.GRU]
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model.model_dir, out / "model", dirs_exist_ok=True)
    (out / "body.json").write_bytes(api_bench.request_body(wl, model.model_dir))
    print(f"prepared {out}: body {len((out / 'body.json').read_bytes())} bytes")


def _app(out: Path) -> Any:
    import flts.api.inference_app as app_module
    from flts.forecasting.models import load_forecaster

    try:
        from flts.serving.model_state import LoadedModel, ModelState
    except ImportError:  # the release before the serving split
        from flts.api.model_state import LoadedModel, ModelState  # type: ignore[no-redef]
    state = ModelState()
    extra = {}
    if hasattr(app_module, "one_torch_thread"):
        extra["thread_initializer"] = app_module.one_torch_thread
    app = app_module.create_inference_app(state, app_module.ApiSettings(), **extra)
    forecaster = load_forecaster(out / "model")
    state.set(
        LoadedModel.of(
            forecaster, model_uri=f"file://{out}", run_id="ab", identifier="ab", source="registry"
        )
    )
    return app


async def _measure(app: Any, body: bytes) -> float:
    shutdown = asyncio.Event()
    started = asyncio.Event()

    async def lifespan() -> None:
        sent = False

        async def receive() -> dict[str, str]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "lifespan.startup"}
            await shutdown.wait()
            return {"type": "lifespan.shutdown"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/predict", "raw_path": b"/predict", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2), "state": {},
    }  # fmt: skip

    async def one() -> None:
        delivered = False
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [200]:
            raise RuntimeError(f"/predict answered {status}")

    async def client(count: int) -> None:
        for _ in range(count):
            await one()

    task = asyncio.create_task(lifespan())
    await started.wait()
    await asyncio.gather(*(client(50) for _ in range(CONNECTIONS)))  # warm-up
    cpu = time.process_time()
    await asyncio.gather(*(client(REQUESTS // CONNECTIONS) for _ in range(CONNECTIONS)))
    per_request = (time.process_time() - cpu) / REQUESTS
    shutdown.set()
    await task
    return per_request


def measure(out: Path) -> None:
    import uvloop

    app = _app(out)
    per_request = uvloop.run(_measure(app, (out / "body.json").read_bytes()))
    print(f"{out}: cpu/req {1e6 * per_request:.0f} us ({REQUESTS} requests, {CONNECTIONS} clients)")


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    {"prepare": prepare, "measure": measure}[command](folder)
