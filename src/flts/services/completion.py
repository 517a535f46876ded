"""The evaluator's completion tracker, persisted in the object store.

Which models finished for an (identifier, config_hash) decides when to promote, so it must
survive a restart of the evaluator: the state lives at
``model-promotion/_state/<identifier>/<config_hash>.json`` and is written *before* the offset of
the SUCCESS event that changed it is committed. A replay of old events after a restart finds
them already recorded, and after promotion (``published``) nothing happens again.

Lifecycle of one state: results accumulate -> ``evaluated`` (the stage ran once; ``selected``
holds the champion, or None with a ``reason``) -> ``published`` (ModelSelected confirmed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from flts.domain.config import ModelType
from flts.domain.messages import ModelSelected, ModelTrained, utc_now_iso
from flts.errors import ObjectNotFoundError, StorageError
from flts.stages.ports import BUCKET_PROMOTION, ObjectStore

log = logging.getLogger(__name__)


class CompletionState(BaseModel):
    """What the evaluator knows about one (identifier, config_hash)."""

    model_config = ConfigDict(extra="ignore")

    identifier: str
    config_hash: str
    expected: list[str]
    #: model_type -> its latest SUCCESS event.
    results: dict[str, ModelTrained] = {}
    evaluated: bool = False
    selected: ModelSelected | None = None
    reason: str | None = None
    published: bool = False
    updated: str = ""

    def missing(self) -> list[str]:
        """Expected model types without a SUCCESS yet, in the expected order."""
        return [m for m in self.expected if m not in self.results]

    @property
    def complete(self) -> bool:
        return not self.missing()

    def ordered_results(self) -> tuple[ModelTrained, ...]:
        return tuple(self.results[m] for m in self.expected if m in self.results)


class CompletionTracker:
    """Load/record/save completion states; one evaluator instance owns the writes."""

    def __init__(
        self,
        store: ObjectStore,
        expected: Sequence[ModelType | str],
        bucket: str = BUCKET_PROMOTION,
    ) -> None:
        self.store = store
        self.expected = [ModelType.parse(str(m)).value for m in expected]
        self.bucket = bucket

    @staticmethod
    def key(identifier: str, config_hash: str) -> str:
        return f"_state/{identifier}/{config_hash}.json"

    def load(self, identifier: str, config_hash: str) -> CompletionState:
        """The stored state, or a fresh one when none exists yet."""
        key = self.key(identifier, config_hash)
        try:
            raw = self.store.get_bytes(self.bucket, key)
        except ObjectNotFoundError:
            return CompletionState(
                identifier=identifier, config_hash=config_hash, expected=list(self.expected)
            )
        try:
            return CompletionState.model_validate_json(raw)
        except ValidationError as exc:
            raise StorageError(f"corrupt completion state {self.bucket}/{key}: {exc}") from exc

    def save(self, state: CompletionState) -> None:
        state.updated = utc_now_iso()
        key = self.key(state.identifier, state.config_hash)
        self.store.put_bytes(
            self.bucket, key, state.model_dump_json(indent=2).encode(), "application/json"
        )

    def record(self, event: ModelTrained) -> tuple[CompletionState, bool]:
        """Add a SUCCESS event; returns the state and whether it changed (and was saved).

        Events after the state was evaluated change nothing: a promotion happens once.
        """
        state = self.load(event.identifier, event.config_hash)
        model_type = ModelType.parse(event.model_type).value
        if state.evaluated:
            return state, False
        known = state.results.get(model_type)
        if known is not None and known.run_id == event.run_id:
            return state, False
        state.results[model_type] = event
        self.save(state)
        return state, True
