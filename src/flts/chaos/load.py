"""Scenario f: the inference service restarted under /predict load, as its supervisor would.

A few client threads keep POSTing one valid window (the test data's last rows) to /predict; the
service is SIGKILLed mid-load and restarted after a one-second backoff. Reported: requests,
failed requests, and the recovery time from the kill to the first good answer after it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from flts.chaos.faults import Chaos
from flts.infra import procs

CLIENTS = 4
LOAD_S = 30.0
KILL_AT_S = 8.0


def _body(api_url: str, test_csv: Path, time_col: str) -> dict[str, Any]:
    model = httpx.get(f"{api_url}/model", timeout=10).json()
    columns = list(model["spec"]["raw_columns"])
    frame = pd.read_csv(test_csv).tail(int(model["min_rows"]) + 5)
    rows = [
        {"time": str(row[time_col]), **{c: float(row[c]) for c in columns}}
        for _, row in frame.iterrows()
    ]
    return {"observations": rows}


def restart_under_load(c: Chaos, summary: dict[str, Any], test_csv: Path, time_col: str) -> dict:
    assert c.runner is not None
    api_url = str(summary["api_url"])
    body = _body(api_url, test_csv, time_col)
    outcomes: list[tuple[float, bool]] = []
    lock = threading.Lock()
    until = time.monotonic() + LOAD_S

    def client() -> None:
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < until:
                try:
                    ok = http.post(f"{api_url}/predict", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                    time.sleep(0.05)  # refused while the service is down: do not spin
                with lock:
                    outcomes.append((time.monotonic(), ok))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(KILL_AT_S)
    index = next(i for i, s in enumerate(c.runner.services) if s.name == "inference")
    victim = c.runner.services[index]
    c.fault("inference service SIGKILLed under /predict load")
    killed_at = time.monotonic()
    os.killpg(victim.pid, signal.SIGKILL)
    c.wait(lambda: victim.exited() is not None, 10)
    time.sleep(1.0)  # the supervisor's first backoff
    c.runner.services[index] = procs.restart(victim)
    c.healed()
    for t in threads:
        t.join()
    recovered = next((t for t, ok in outcomes if ok and t > killed_at + 1.0), None)
    after = [ok for t, ok in outcomes if recovered is not None and t > recovered]
    return {
        "requests": len(outcomes),
        "failed_requests": sum(not ok for _, ok in outcomes),
        "failed_after_recovery": sum(not ok for ok in after),
        "recovery_s": None if recovered is None else round(recovered - killed_at, 2),
    }
