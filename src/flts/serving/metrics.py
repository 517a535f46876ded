"""Prometheus metrics of the inference API, on a registry of their own.

A registry per app (not the process-global default) lets tests build many apps in one process and
keeps the service's /metrics free of unrelated collectors. Label children are cached because
``.labels()`` costs more than the observation itself on the hot path.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from flts.serving.model_state import LoadedModel

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class InferenceMetrics:
    """Request counts by endpoint and status, latency and batch-size histograms, model info."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "flts_inference_requests",
            "HTTP requests answered, by endpoint and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "flts_inference_request_seconds",
            "Time from receiving a request body to sending the answer",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "flts_inference_batch_size",
            "Windows per batched model forward",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "flts_inference_model_info",
            "The answering model (value 1) and its lineage",
            ["model_type", "run_id", "model_uri", "config_hash", "source", "mode"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "flts_inference_model_version",
            "How many times a model was swapped in since start",
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(endpoint, str(status))
        child.inc()
        hist = self._latency_children.get(endpoint)
        if hist is None:
            hist = self._latency_children[endpoint] = self.latency.labels(endpoint)
        hist.observe(seconds)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def set_model(self, loaded: LoadedModel, version: int, mode: str) -> None:
        self.model_info.clear()
        self.model_info.labels(
            loaded.model_type,
            loaded.run_id,
            loaded.model_uri,
            loaded.config_hash,
            loaded.source,
            mode,
        ).set(1)
        self.model_version.set(version)

    def render(self) -> bytes:
        out: bytes = generate_latest(self.registry)
        return out
