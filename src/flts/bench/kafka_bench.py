"""Kafka benchmark: ``flts.kafka_utils`` against raw confluent-kafka, side by side, one run.

(Longer than the ~400-line norm on purpose: each measured pair keeps the project side and the
raw side next to each other, so a reader can check they do the same work.)

Pairs compare like with like, on the same broker, the same producer/consumer settings and the
same pre-built 200-byte JSON events (both sides serialise them with orjson):

* confirmed produce: ``produce_message`` (waits for each delivery report) versus raw
  ``produce`` + ``flush`` per message;
* batched produce: ``produce_messages`` versus a raw ``produce`` loop with a counting delivery
  callback and one ``flush`` at the end;
* consume: ``consume_messages`` (poll, JSON decode, callback) versus a raw ``poll`` loop doing
  the same, timed from the first record to the last (the group join is not throughput).

Rounds alternate which side goes first; figures are medians over rounds. Latency is one event
at a time, from the ``produce_message`` call to the consumer callback in another thread.
"""

from __future__ import annotations

import operator
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Message, Producer

from flts import kafka_utils
from flts.bench import BenchOptions
from flts.bench.common import BenchResult, Timer, make_result, median, percentile
from flts.errors import MessagingError

EVENT_BYTES = 200
#: A latency run stops after this many events missed the 2 s wait (a stuck consumer).
MAX_LOST = 10
PRODUCER_CONF = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}
CONSUMER_CONF = {
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
}
TARGET_RATIO = 0.8
TARGET_P99_MS = 20.0


def make_events(n: int, size: int = EVENT_BYTES) -> list[dict[str, Any]]:
    """``n`` JSON events of exactly ``size`` bytes each once serialised."""
    base = {"identifier": "bench", "seq": "0" * 8, "sent_ns": 10**18, "payload": ""}
    pad = size - len(orjson.dumps(base))
    if pad < 0:
        raise ValueError(f"events cannot be smaller than {size - pad} bytes")
    return [{**base, "seq": f"{i:08d}", "payload": "x" * pad} for i in range(n)]


@contextmanager
def broker(options: BenchOptions, notes: list[str]) -> Iterator[str]:
    """The given bootstrap, or a fresh local stack (tansu on SeaweedFS) stopped afterwards."""
    if options.bootstrap:
        notes.append(f"broker: given bootstrap {options.bootstrap}")
        yield options.bootstrap
        return
    from flts.infra.stack import LocalStack, StackPorts

    with tempfile.TemporaryDirectory(prefix="flts-bench-kafka-") as tmp:
        stack = LocalStack(Path(tmp) / "stack", StackPorts.free())
        try:
            endpoints = stack.up()
            notes.append("broker: fresh local stack (tansu, s3:// storage on SeaweedFS), loopback")
            yield endpoints.kafka_bootstrap
        finally:
            stack.down()


@contextmanager
def memory_broker() -> Iterator[str]:
    """A bare tansu broker with the in-memory storage engine (no S3 round trip per write)."""
    from flts.infra.components import StackPorts, tansu_argv
    from flts.infra.procs import free_port

    port = free_port()
    argv = [*tansu_argv(StackPorts.free())[:-1], "memory://tansu/"]
    url = f"tcp://127.0.0.1:{port}"
    argv[argv.index("--listener-url") + 1] = url
    argv[argv.index("--advertised-listener-url") + 1] = url
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        bootstrap = f"127.0.0.1:{port}"
        while True:
            try:
                kafka_utils.ensure_topics(bootstrap, [], timeout_s=2.0)
                break
            except MessagingError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        yield bootstrap
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- produce ------------------------------------------------------------------------------------
def flts_confirmed(producer: Producer, topic: str, events: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter()
    for event in events:
        if not kafka_utils.produce_message(producer, topic, event):
            raise RuntimeError(f"produce_message to {topic} failed")
    return len(events) / (time.perf_counter() - t0)


def raw_confirmed(producer: Producer, topic: str, events: list[dict[str, Any]]) -> float:
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    t0 = time.perf_counter()
    for event in events:
        producer.produce(topic, value=orjson.dumps(event), on_delivery=on_delivery)
        producer.flush()
    rate = len(events) / (time.perf_counter() - t0)
    if errors:
        raise RuntimeError(f"raw confirmed produce to {topic}: {errors[0]}")
    return rate


def flts_batched(producer: Producer, topic: str, events: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter()
    confirmed = kafka_utils.produce_messages(producer, topic, events)
    rate = len(events) / (time.perf_counter() - t0)
    if confirmed != len(events):
        raise RuntimeError(f"produce_messages confirmed {confirmed} of {len(events)}")
    return rate


def raw_batched(producer: Producer, topic: str, events: list[dict[str, Any]]) -> float:
    confirmed = [0]

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            confirmed[0] += 1

    t0 = time.perf_counter()
    for event in events:
        data = orjson.dumps(event)
        while True:
            try:
                producer.produce(topic, value=data, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(60)
    rate = len(events) / (time.perf_counter() - t0)
    if confirmed[0] != len(events):
        raise RuntimeError(f"raw batched produce confirmed {confirmed[0]} of {len(events)}")
    return rate


# -- consume ------------------------------------------------------------------------------------
class _Clock:
    """First/last record times seen by a consume callback."""

    def __init__(self) -> None:
        self.first = 0.0
        self.last = 0.0
        self.count = 0

    def __call__(self, _value: Any, _msg: Message) -> None:
        now = time.perf_counter()
        if self.count == 0:
            self.first = now
        self.last = now
        self.count += 1

    def rate(self) -> float:
        span = self.last - self.first
        return (self.count - 1) / span if span > 0 else float("nan")


def flts_consume(bootstrap: str, topic: str, n: int) -> float:
    consumer = kafka_utils.create_consumer_configurable(
        topic, f"bench-flts-{uuid.uuid4().hex[:8]}", bootstrap_servers=bootstrap
    )
    clock = _Clock()
    try:
        got = kafka_utils.consume_messages(consumer, clock, max_messages=n, timeout_s=120)
    finally:
        consumer.close()
    if got != n:
        raise RuntimeError(f"consume_messages read {got} of {n} records from {topic}")
    return clock.rate()


def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    group = f"bench-raw-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **CONSUMER_CONF})
    consumer.subscribe([topic])
    clock = _Clock()
    deadline = time.monotonic() + 120
    try:
        while clock.count < n and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                continue
            clock(orjson.loads(msg.value() or b"null"), msg)
    finally:
        consumer.close()
    if clock.count != n:
        raise RuntimeError(f"raw consumer read {clock.count} of {n} records from {topic}")
    return clock.rate()


# -- latency ------------------------------------------------------------------------------------
def end_to_end_latency(
    bootstrap: str, n: int, consumer_config: dict[str, Any] | None = None
) -> dict[str, float]:
    """Milliseconds from each ``produce_message`` call to the consumer callback, one at a time."""
    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    kafka_utils.ensure_topics(bootstrap, [topic])
    received: dict[str, float] = {}
    events_sent = [0]
    arrived = threading.Condition()
    stop = threading.Event()
    ready = threading.Event()

    def on_event(value: Any, _msg: Message) -> None:
        now = time.perf_counter_ns()
        if value.get("identifier") == "warmup":
            ready.set()
            return
        with arrived:
            received[str(value["seq"])] = (now - int(value["sent_ns"])) / 1e6
            arrived.notify_all()

    consumer = kafka_utils.create_consumer_configurable(
        topic,
        f"bench-latency-{uuid.uuid4().hex[:8]}",
        bootstrap_servers=bootstrap,
        config=consumer_config,
    )
    thread = threading.Thread(
        target=kafka_utils.consume_messages,
        args=(consumer, on_event),
        kwargs={"stop": stop, "poll_timeout_s": 0.1},
        daemon=True,
    )
    thread.start()
    producer = kafka_utils.create_producer(bootstrap_servers=bootstrap)
    try:
        warm = {**make_events(1)[0], "identifier": "warmup"}
        deadline = time.monotonic() + 60
        while not ready.is_set():  # until the group is joined and records flow
            if time.monotonic() > deadline:
                raise RuntimeError("latency consumer never received a record within 60 s")
            kafka_utils.produce_message(producer, topic, warm)
            ready.wait(1.0)
        time.sleep(0.5)  # let duplicate warm-ups drain
        lost = 0
        for event in make_events(n):
            event["sent_ns"] = time.perf_counter_ns()
            if not kafka_utils.produce_message(producer, topic, event):
                raise RuntimeError("produce_message failed during the latency run")
            events_sent[0] += 1
            seq = str(event["seq"])
            with arrived:  # an event later than 2 s counts as lost (reported, not fatal)
                if not arrived.wait_for(partial(operator.contains, received, seq), timeout=2.0):
                    lost += 1
            if lost >= MAX_LOST:
                break
    finally:
        stop.set()
        thread.join(5.0)
        consumer.close()
    latencies = list(received.values())
    sent = int(events_sent[0])
    if not latencies:
        raise RuntimeError(f"no latency event reached the consumer on {topic}")
    return {
        "lost_or_late_over_2s": lost,
        "sent": sent,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
        "events": len(latencies),
    }


# -- driver -------------------------------------------------------------------------------------
Measure = Callable[[], float]


def interleaved(pairs: dict[str, tuple[Measure, Measure]], rounds: int) -> dict[str, Any]:
    """Run each pair's two sides alternately for ``rounds``; medians and their ratio."""
    figures: dict[str, Any] = {}
    for name, (ours, raw) in pairs.items():
        ours_rates: list[float] = []
        raw_rates: list[float] = []
        for r in range(rounds):
            if r % 2 == 0:
                ours_rates.append(ours())
                raw_rates.append(raw())
            else:
                raw_rates.append(raw())
                ours_rates.append(ours())
        figures[name] = {
            "flts_msgs_per_s": median(ours_rates),
            "raw_msgs_per_s": median(raw_rates),
            "ratio": median(ours_rates) / median(raw_rates),
            "ratio_per_round": [o / w for o, w in zip(ours_rates, raw_rates, strict=True)],
        }
    return figures


TUNED_CONSUMER = {"fetch.wait.max.ms": 5}


def throughput(bootstrap: str, config: dict[str, Any]) -> dict[str, Any]:
    """The three pairs on one broker; clients live only inside this call."""
    run_id = uuid.uuid4().hex[:6]
    rounds = int(config["rounds"])
    names = [
        f"bench-{run_id}-{kind}-{side}-{r}"
        for kind in ("confirmed", "batched")
        for side in ("flts", "raw")
        for r in range(rounds)
    ]
    kafka_utils.ensure_topics(bootstrap, names)
    queues = {
        (kind, side): iter(n for n in names if f"-{kind}-{side}-" in n)
        for kind in ("confirmed", "batched")
        for side in ("flts", "raw")
    }
    # The consume pair reads the batched topics (flts reads raw's and vice versa).
    reads = {side: iter(n for n in names if f"-batched-{side}-" in n) for side in ("flts", "raw")}
    flts_p = kafka_utils.create_producer(bootstrap_servers=bootstrap)
    raw_p = Producer({"bootstrap.servers": bootstrap, **PRODUCER_CONF})
    warm = f"bench-{run_id}-warmup"
    kafka_utils.ensure_topics(bootstrap, [warm])
    for _ in range(20):  # connections, metadata and the idempotent producer id, for both sides
        flts_confirmed(flts_p, warm, make_events(1))
        raw_confirmed(raw_p, warm, make_events(1))
    confirmed = make_events(int(config["confirmed_messages"]))
    batched = make_events(int(config["batched_messages"]))
    n = len(batched)
    pairs: dict[str, tuple[Measure, Measure]] = {
        "produce_confirmed": (
            lambda: flts_confirmed(flts_p, next(queues["confirmed", "flts"]), confirmed),
            lambda: raw_confirmed(raw_p, next(queues["confirmed", "raw"]), confirmed),
        ),
        "produce_batched": (
            lambda: flts_batched(flts_p, next(queues["batched", "flts"]), batched),
            lambda: raw_batched(raw_p, next(queues["batched", "raw"]), batched),
        ),
        "consume": (
            lambda: flts_consume(bootstrap, next(reads["raw"]), n),
            lambda: raw_consume(bootstrap, next(reads["flts"]), n),
        ),
    }
    return interleaved(pairs, rounds)


def run(options: BenchOptions) -> list[BenchResult]:
    timer = Timer()
    q = options.quick
    config: dict[str, Any] = {
        "event_bytes": EVENT_BYTES,
        "confirmed_messages": 100 if q else 1000,
        "batched_messages": 5000 if q else 50_000,
        "rounds": 1 if q else 3,
        "latency_events": 30 if q else 300,
        "producer": PRODUCER_CONF,
        "consumer": CONSUMER_CONF,
        "latency_tuned_consumer": TUNED_CONSUMER,
    }
    notes = [
        "both sides share producer/consumer settings and serialise the same dicts with orjson",
        "consume rates are timed from the first record to the last (group join excluded)",
        "latency_ms uses kafka_utils' default consumer settings (what the services run); "
        "latency_ms_tuned adds fetch.wait.max.ms=5 (diagnostic)",
    ]
    main = memory_broker() if q and not options.bootstrap else broker(options, notes)
    if q and not options.bootstrap:
        notes.append("quick: bare tansu broker with memory:// storage (fast start)")
    with main as bootstrap:
        figures = throughput(bootstrap, config)
        n_lat = int(config["latency_events"])
        figures["latency_ms"] = end_to_end_latency(bootstrap, n_lat)
        figures["latency_ms_tuned"] = end_to_end_latency(bootstrap, n_lat, TUNED_CONSUMER)
    if not q:
        with memory_broker() as bootstrap:
            figures["memory_broker_latency_ms_tuned"] = end_to_end_latency(
                bootstrap, n_lat, TUNED_CONSUMER
            )
        notes.append(
            "memory_broker_latency_ms_tuned: the same latency run on a bare tansu broker with "
            "memory:// storage, to separate the broker's S3 write from the client path"
        )
    ratios = [figures[k]["ratio"] for k in ("produce_confirmed", "produce_batched", "consume")]
    lat = figures["latency_ms"]
    met = (
        min(ratios) >= TARGET_RATIO
        and lat["p99"] < TARGET_P99_MS
        and lat["lost_or_late_over_2s"] == 0
    )
    target = {
        "description": "kafka_utils >= 80% of raw confluent-kafka in each pair; "
        "end-to-end p99 < 20 ms",
        "min_ratio": TARGET_RATIO,
        "max_p99_ms": TARGET_P99_MS,
    }
    return [
        make_result(
            "kafka",
            timer,
            quick=q,
            config=config,
            figures=figures,
            target=target,
            target_met=met,
            notes=notes,
        )
    ]
