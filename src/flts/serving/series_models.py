"""Champions per identifier for the HTTP API: a bounded LRU of ready-to-serve runtimes.

A fleet has one champion per series (``flts.domain.series``). The API answers a request that
names an ``identifier`` with that series' champion: taken from this cache, or loaded on a miss
by the ``loader`` the inference service supplies (it resolves the identifier's registry alias);
an identifier with no champion anywhere is ``None`` (the API answers 404).

The cache is bounded twice: at most ``max_models`` entries and at most ``max_bytes`` of
estimated model memory (:func:`model_bytes`: array and tensor buffers reachable from the
forecaster). The least recently used entry goes first; the newest entry always stays, even
when it alone passes the byte bound (a model that is too big to cache must still answer).

Example::

    cache = SeriesModels(max_models=64, max_bytes=512 << 20, loader=load_champion)
    cache.put(loaded)                         # on promotion
    runtime = await cache.resolve("fleet-1/cell_7")
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from flts.serving.model_state import LoadedModel
from flts.serving.runtime import ModelRuntime

logger = logging.getLogger(__name__)

#: Loads the champion of an identifier, or None when the registry has none.
Loader = Callable[[str], LoadedModel | None]


def model_bytes(obj: Any, _seen: set[int] | None = None, _depth: int = 0) -> int:
    """Estimated memory of a forecaster: numpy/torch buffers plus plain containers, shallowly."""
    seen = _seen if _seen is not None else set()
    if id(obj) in seen or _depth > 6:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    module = type(obj).__module__
    if module.startswith("torch"):
        params = getattr(obj, "parameters", None)
        if callable(params):
            total = sum(int(p.numel() * p.element_size()) for p in params())
            buffers = getattr(obj, "buffers", None)
            if callable(buffers):
                total += sum(int(b.numel() * b.element_size()) for b in buffers())
            return total
        numel = getattr(obj, "numel", None)
        if callable(numel):
            return int(numel() * obj.element_size())
    if isinstance(obj, dict):
        items: list[Any] = [*obj.keys(), *obj.values()]
    elif isinstance(obj, list | tuple | set | frozenset):
        items = list(obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        items = list(vars(obj).values())
    else:
        return sys.getsizeof(obj)
    return sys.getsizeof(obj) + sum(model_bytes(i, seen, _depth + 1) for i in items)


class SeriesModels:
    """LRU of identifier -> ModelRuntime, bounded by count and estimated bytes."""

    def __init__(self, max_models: int, max_bytes: int, loader: Loader | None = None) -> None:
        if max_models < 1 or max_bytes < 1:
            raise ValueError("max_models and max_bytes must be at least 1")
        self.max_models = max_models
        self.max_bytes = max_bytes
        self.loader = loader
        self._entries: OrderedDict[str, tuple[ModelRuntime, int]] = OrderedDict()
        self._lock = threading.Lock()
        #: Identifiers the loader found nothing for (a 404 must not hit the registry each time
        #: until a promotion for it arrives).
        self._unknown: set[str] = set()
        self.evictions = 0

    def put(self, loaded: LoadedModel) -> ModelRuntime:
        """Serve ``loaded`` for its identifier from now on; evicts down to both bounds."""
        runtime = ModelRuntime(loaded)
        size = model_bytes(loaded.forecaster)
        with self._lock:
            self._entries[loaded.identifier] = (runtime, size)
            self._entries.move_to_end(loaded.identifier)
            self._unknown.discard(loaded.identifier)
            self._evict()
        return runtime

    def _evict(self) -> None:
        while len(self._entries) > 1 and (
            len(self._entries) > self.max_models or self.total_bytes() > self.max_bytes
        ):
            identifier, _ = self._entries.popitem(last=False)
            self.evictions += 1
            logger.info("evicted the champion of %s (cache bound)", identifier)

    def __len__(self) -> int:
        return len(self._entries)

    def total_bytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    def get(self, identifier: str) -> ModelRuntime | None:
        with self._lock:
            entry = self._entries.get(identifier)
            if entry is None:
                return None
            self._entries.move_to_end(identifier)
            return entry[0]

    def load(self, identifier: str) -> ModelRuntime | None:
        """The cached runtime, else the loader's champion (cached), else None."""
        runtime = self.get(identifier)
        if runtime is not None or self.loader is None or identifier in self._unknown:
            return runtime
        loaded = self.loader(identifier)
        if loaded is None:
            with self._lock:
                self._unknown.add(identifier)
            return None
        return self.put(loaded)

    async def resolve(self, identifier: str) -> ModelRuntime | None:
        """:meth:`load` off the event loop when it has to reach the registry."""
        runtime = self.get(identifier)
        if runtime is not None:
            return runtime
        return await asyncio.to_thread(self.load, identifier)

    def describe(self) -> list[dict[str, Any]]:
        """Every cached champion, most recently used last."""
        with self._lock:
            entries = list(self._entries.items())
        return [
            {**describe_loaded(runtime.loaded), "estimated_bytes": size}
            for _, (runtime, size) in entries
        ]


def describe_loaded(loaded: LoadedModel) -> dict[str, Any]:
    return {
        "identifier": loaded.identifier,
        "model_type": loaded.model_type,
        "run_id": loaded.run_id,
        "model_uri": loaded.model_uri,
        "config_hash": loaded.config_hash,
        "source": loaded.source,
        "loaded_at": loaded.loaded_at.isoformat(),
    }
