"""The champion the inference API answers with, swappable while requests are in flight.

The inference service loads a model (on promotion, on a training success, or from the registry
at start-up) and calls :meth:`ModelState.set`; the HTTP app reads :meth:`ModelState.current`
once per request and keeps that object for the whole request. A swap therefore never mixes two
models inside one answer: requests that started before it finish on the old model, later ones
use the new one. ``LoadedModel`` is immutable, so sharing it between threads needs no lock.

Example::

    state = ModelState()
    state.set(LoadedModel.of(forecaster, model_uri="runs:/abc/model", run_id="abc",
                             identifier="run-xyz", source="promotion"))
    model = state.current()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from flts.forecasting.base import Forecaster

logger = logging.getLogger(__name__)

ModelSource = Literal["promotion", "training-success", "registry"]
SOURCES: tuple[ModelSource, ...] = ("promotion", "training-success", "registry")


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One loaded forecaster plus the lineage the API reports with every answer."""

    forecaster: Forecaster
    model_uri: str
    model_type: str
    run_id: str
    config_hash: str
    identifier: str
    source: ModelSource
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")

    @classmethod
    def of(
        cls,
        forecaster: Forecaster,
        *,
        model_uri: str,
        run_id: str,
        identifier: str,
        source: ModelSource,
        config_hash: str | None = None,
    ) -> LoadedModel:
        """Build from a forecaster, taking model type and config hash from it when not given."""
        return cls(
            forecaster=forecaster,
            model_uri=model_uri,
            model_type=forecaster.model_type.value,
            run_id=run_id,
            config_hash=forecaster.spec.config_hash if config_hash is None else config_hash,
            identifier=identifier,
            source=source,
        )


Listener = Callable[[LoadedModel], None]


class ModelState:
    """Thread-safe holder of the current champion with a version counter.

    Readers take no lock: assigning one attribute is atomic in CPython, and the ``(version,
    model)`` pair is stored as one tuple so a reader never sees a version from one swap and a
    model from another.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slot: tuple[int, LoadedModel | None] = (0, None)
        self._listeners: list[Listener] = []

    def set(self, loaded: LoadedModel) -> int:
        """Make ``loaded`` the answering model; returns the new version (1 for the first).

        Listeners run in the caller's thread after the swap: the HTTP service builds and
        checks the new runtime there, off the event loop, and keeps answering with the old one
        until it is ready. A failing listener is logged, not raised, because the swap itself
        has already happened.
        """
        with self._lock:
            version = self._slot[0] + 1
            self._slot = (version, loaded)
            listeners = list(self._listeners)
        logger.info(
            "model swapped in: version=%d type=%s run_id=%s source=%s uri=%s",
            version,
            loaded.model_type,
            loaded.run_id,
            loaded.source,
            loaded.model_uri,
        )
        for listener in listeners:
            try:
                listener(loaded)
            except Exception:
                logger.exception("model-state listener failed for run_id=%s", loaded.run_id)
        return version

    def current(self) -> LoadedModel | None:
        """The model new requests should use, or None before the first load."""
        return self._slot[1]

    def snapshot(self) -> tuple[int, LoadedModel | None]:
        """Version and model, consistent with each other."""
        return self._slot

    @property
    def version(self) -> int:
        """How many times a model was set (0: never)."""
        return self._slot[0]

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(loaded)`` after every future :meth:`set`."""
        with self._lock:
            self._listeners.append(listener)
