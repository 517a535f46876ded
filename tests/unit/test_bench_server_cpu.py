"""The API benchmark's CPU-per-request meter and py-spy summary."""

from __future__ import annotations

import os

from flts.bench.server_cpu import CpuMeter, summarise_stacks, thread_cpu_s


def test_cpu_meter_counts_this_process_per_request() -> None:
    meter = CpuMeter(os.getpid())
    total = 0
    for i in range(3_000_000):  # about 0.1 s of CPU on the event-loop (main) thread
        total += i
    per = meter.per_request_us(1000)
    assert per["event_loop"] > 0
    assert abs(per["total"] - per["event_loop"] - per["other_threads"]) < 0.2
    assert set(thread_cpu_s(os.getpid())) == {"event_loop", "other_threads"}


def test_stacks_are_summarised_by_own_time() -> None:
    lines = [
        "MainThread (a.py:1);serve (/x/inference_app.py:10);decode (/x/typed_body.py:70) 30",
        "MainThread (a.py:1);serve (/x/inference_app.py:10) 10",
        "flts-batch (t.py:1);forward (/x/rnn.py:77) 60",
        "garbage",
    ]
    out = summarise_stacks(lines, top=2)
    assert out == ["  60.0% forward (rnn.py:77)", "  30.0% decode (typed_body.py:70)"]
    assert summarise_stacks([], top=3) == ["py-spy took no samples"]
