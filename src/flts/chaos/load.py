"""/predict load for the chaos and soak runs, and scenario f: the inference service restarted
under load, as its supervisor would.

:class:`PredictLoad` keeps a few client threads POSTing one valid window (the test data's last
rows, as many as the answering model needs; rebuilt after a hot swap changes that) and records
every outcome. In scenario f the service is SIGKILLed mid-load and restarted after a one-second
backoff; reported are requests, failed requests and the recovery time from the kill to the
first good answer after it.
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


def predict_body(api_url: str, test_csv: Path, time_col: str) -> dict[str, Any]:
    """Raw rows of the test file's tail, exactly the columns and rows the model asks for."""
    model = httpx.get(f"{api_url}/model", timeout=10).json()
    columns = list(model["spec"]["raw_columns"])
    frame = pd.read_csv(test_csv).tail(int(model["min_rows"]) + 5)
    rows = [
        {"time": str(row[time_col]), **{c: float(row[c]) for c in columns}}
        for _, row in frame.iterrows()
    ]
    return {"observations": rows}


class PredictLoad:
    """Closed-loop /predict clients on threads; ``outcomes`` holds (monotonic time, status)."""

    def __init__(self, api_url: str, test_csv: Path, time_col: str, clients: int = CLIENTS):
        self.api_url = api_url
        self.test_csv = test_csv
        self.time_col = time_col
        self.outcomes: list[tuple[float, int]] = []
        self._body = predict_body(api_url, test_csv, time_col)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def start(self) -> PredictLoad:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _client(self) -> None:
        with httpx.Client(timeout=2.0) as http:
            while not self._stop.is_set():
                try:
                    status = http.post(f"{self.api_url}/predict", json=self._body).status_code
                except httpx.HTTPError:
                    status = 0
                    time.sleep(0.05)  # refused while the service is down: do not spin
                with self._lock:
                    self.outcomes.append((time.monotonic(), status))
                if status == 422:  # a swapped-in model needs other rows: ask it again
                    self._refresh()

    def _refresh(self) -> None:
        try:
            self._body = predict_body(self.api_url, self.test_csv, self.time_col)
        except (httpx.HTTPError, KeyError, ValueError):
            time.sleep(0.5)


def restart_under_load(c: Chaos, summary: dict[str, Any], test_csv: Path, time_col: str) -> dict:
    assert c.runner is not None
    load = PredictLoad(str(summary["api_url"]), test_csv, time_col).start()
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
    time.sleep(max(0.0, LOAD_S - KILL_AT_S))
    load.stop()
    outcomes = load.outcomes
    recovered = next((t for t, s in outcomes if s == 200 and t > killed_at + 1.0), None)
    after = [s for t, s in outcomes if recovered is not None and t > recovered]
    return {
        "requests": len(outcomes),
        "failed_requests": sum(s != 200 for _, s in outcomes),
        "failed_after_recovery": sum(s != 200 for s in after),
        "recovery_s": None if recovered is None else round(recovered - killed_at, 2),
    }
