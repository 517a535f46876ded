"""Locust load test that drives FLTS the way the existing pipeline's load-test client does.

That client, unchanged, first asks ``GET /predict_ping`` for ``input_seq_len`` (rows per
request) and ``output_seq_len`` (horizon), waits until ``GET /healthz`` says
``"model_ready": true``, then posts legacy bodies: ``{"data": {"ts": [...], <column>: [...]}}``
with no ``index_col``, timestamps on a synthetic grid at the model's step. Every answer must be
a 200 in the legacy shape with ``output_seq_len`` predictions strictly after the window.

Run it headless against a server (CI does this for a few seconds, see
``tests/load/test_locust_legacy_client.py``)::

    locust -f tests/load/locustfile.py --headless -u 8 -r 8 -t 10s --host http://127.0.0.1:18000

Environment: ``FLTS_LOAD_TOKEN`` (bearer token, if the API needs one).
"""

from __future__ import annotations

import os
import random
import time
from datetime import datetime, timedelta
from typing import Any

from locust import HttpUser, between, events, task

_READY_TIMEOUT_S = 60.0
_START = datetime(2018, 2, 5, 0, 0, 0)


class LegacyPipelineClient(HttpUser):
    """One simulated client of the existing pipeline."""

    wait_time = between(0.0, 0.01)

    def on_start(self) -> None:
        token = os.environ.get("FLTS_LOAD_TOKEN")
        if token:
            self.client.headers["Authorization"] = f"Bearer {token}"
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while True:
            health = self.client.get("/healthz", name="/healthz").json()
            if health.get("model_ready"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the model never became ready")
            time.sleep(0.5)
        ping = self.client.get("/predict_ping", name="/predict_ping").json()
        self.rows = int(ping["input_seq_len"])
        self.horizon = int(ping["output_seq_len"])
        self.step = timedelta(seconds=int(ping["step_seconds"]))
        self.columns = list(ping.get("raw_columns") or ["down"])

    def _body(self) -> tuple[dict[str, Any], datetime]:
        first = _START + self.step * random.randrange(0, 50_000)
        stamps = [first + self.step * i for i in range(self.rows)]
        data: dict[str, Any] = {"ts": [s.strftime("%Y-%m-%d %H:%M:%S") for s in stamps]}
        for column in self.columns:
            data[column] = [random.uniform(5e7, 1.5e8) for _ in range(self.rows)]
        return {"data": data}, stamps[-1]

    @task
    def predict(self) -> None:
        body, last = self._body()
        with self.client.post("/predict", json=body, name="/predict", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}: {r.text[:200]}")
                return
            answer = r.json()
            predictions = answer.get("predictions", [])
            if answer.get("status") != "SUCCESS" or len(predictions) != self.horizon:
                r.failure(f"unexpected answer {r.text[:200]}")
                return
            first = datetime.fromisoformat(predictions[0]["ts"])
            if first != last + self.step:
                r.failure(f"first forecast at {first}, expected {last + self.step}")


@events.quitting.add_listener
def _fail_on_any_failure(environment: Any, **_: Any) -> None:
    """Exit status 1 when any request failed (locust's default only counts errors)."""
    if environment.stats.total.num_failures > 0:
        environment.process_exit_code = 1
