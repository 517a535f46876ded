"""A small closed-loop HTTP/1.1 load generator, the fallback when ``wrk`` is not installed.

``python -m flts.bench.loadgen --host H --port P --path /predict --body-file F
--connections 32 --duration 30 --warmup 5`` keeps ``connections`` keep-alive sockets busy
(each sends its next request as soon as the previous answer arrived) and prints one JSON line:
requests, errors, requests/s and latency percentiles in milliseconds. It runs in its own
process but shares the machine's cores with the server, unlike ``wrk`` (C, one thread).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from flts.bench.common import percentile


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _client(
    host: str, port: int, request: bytes, until: float, record_from: float, out: dict
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            started = time.perf_counter()
            if started >= until:
                return
            writer.write(request)
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                out["errors"] += 1
                return
            if started >= record_from:
                out["latencies"].append(time.perf_counter() - started)
                if status != 200:
                    out["errors"] += 1
    finally:
        writer.close()


async def _main(args: argparse.Namespace) -> dict:
    body = Path(args.body_file).read_bytes()
    request = (
        f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    out: dict = {"latencies": [], "errors": 0}
    t0 = time.perf_counter()
    record_from = t0 + args.warmup
    until = record_from + args.duration
    await asyncio.gather(
        *(
            _client(args.host, args.port, request, until, record_from, out)
            for _ in range(args.connections)
        )
    )
    lat = out["latencies"] or [float("nan")]
    ms = [x * 1000 for x in lat]
    return {
        "generator": "flts.bench.loadgen (python asyncio)",
        "requests": len(out["latencies"]),
        "errors": out["errors"],
        "requests_per_s": len(out["latencies"]) / args.duration,
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/predict")
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_main(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
