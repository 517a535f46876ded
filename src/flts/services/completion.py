"""Where the evaluator keeps its completion states: the object store.

The decisions live in :mod:`flts.stages.promotion`; this module only loads and saves. A state is
at ``model-promotion/_state/<identifier>/<config_hash>.json`` and is written *before* the offset
of the SUCCESS event that changed it is committed, so a restart of the evaluator loses nothing:
a replay of old events finds them recorded, and after ``published`` nothing happens again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError

from flts.domain.config import ModelType
from flts.domain.messages import utc_now_iso
from flts.errors import ObjectNotFoundError, StorageError
from flts.stages.ports import BUCKET_PROMOTION, ObjectStore
from flts.stages.promotion import CompletionState, new_state

log = logging.getLogger(__name__)

__all__ = ["CompletionState", "CompletionTracker"]


class CompletionTracker:
    """Load and save completion states; one evaluator instance per group owns the writes."""

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
            return new_state(identifier, config_hash, self.expected)
        try:
            return CompletionState.model_validate_json(raw)
        except ValidationError as exc:
            raise StorageError(f"corrupt completion state {self.bucket}/{key}: {exc}") from exc

    def save(self, state: CompletionState) -> CompletionState:
        """Write ``state`` (stamped with the time) and return what was written."""
        stamped = state.model_copy(update={"updated": utc_now_iso()})
        key = self.key(stamped.identifier, stamped.config_hash)
        self.store.put_bytes(
            self.bucket, key, stamped.model_dump_json(indent=2).encode(), "application/json"
        )
        return stamped
