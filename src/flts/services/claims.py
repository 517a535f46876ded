"""Where the inference service keeps the claims it has seen: the object store.

An inference-data claim can arrive before any model of its lineage exists, and batch
inference must (re)run once the promoted champion arrives (the decisions are
``flts.stages.dispatch``'s). Keeping the claims in
``inference-logs/_claims/<config_hash>/<claim digest>.json`` lets the service commit the
claim's offset at once and still run it later, across restarts.
"""

from __future__ import annotations

import hashlib
import logging

from pydantic import ValidationError

from flts.domain.config import canonical_json
from flts.domain.messages import InferenceDataReady
from flts.stages.dispatch import NO_HASH, ClaimEntry
from flts.stages.ports import BUCKET_INFERENCE_LOGS, ObjectStore

log = logging.getLogger(__name__)
PREFIX = "_claims/"

__all__ = ["ClaimBook", "ClaimEntry", "claim_digest"]


def claim_digest(claim: InferenceDataReady) -> str:
    return hashlib.sha256(canonical_json(claim.to_wire()).encode()).hexdigest()[:24]


#: Settled claims (run by a champion, or failed) kept in the in-memory index at most; older ones
#: stay in the store only. Pending claims are never dropped.
MAX_SETTLED_IN_MEMORY = 1000


class ClaimBook:
    """In-memory index of the stored claims; every change is written through."""

    def __init__(
        self,
        store: ObjectStore,
        bucket: str = BUCKET_INFERENCE_LOGS,
        max_settled: int = MAX_SETTLED_IN_MEMORY,
    ) -> None:
        self.store = store
        self.bucket = bucket
        self.max_settled = max_settled
        self._entries: dict[str, ClaimEntry] = {}

    def _key(self, entry: ClaimEntry) -> str:
        return f"{PREFIX}{entry.config_hash}/{claim_digest(entry.claim)}.json"

    def load_all(self) -> int:
        """Read every stored claim (at start-up); returns how many."""
        self.store.ensure_bucket(self.bucket)
        for key in self.store.list_keys(self.bucket, PREFIX):
            try:
                entry = ClaimEntry.model_validate_json(self.store.get_bytes(self.bucket, key))
            except ValidationError as exc:
                log.warning("skipping unreadable claim record %s: %s", key, exc)
                continue
            self._entries[self._key(entry)] = entry
        self._prune()
        return len(self._entries)

    def add(self, claim: InferenceDataReady) -> ClaimEntry:
        """The entry of ``claim`` (stored on first sight)."""
        entry = ClaimEntry(claim=claim)
        key = self._key(entry)
        if key not in self._entries:
            self.save(entry)
        return self._entries[key]

    def current(self, entry: ClaimEntry) -> ClaimEntry:
        """The latest stored version of ``entry``'s claim."""
        return self._entries.get(self._key(entry), entry)

    def save(self, entry: ClaimEntry) -> None:
        self.store.ensure_bucket(self.bucket)
        data = entry.model_dump_json(indent=2).encode()
        self.store.put_bytes(self.bucket, self._key(entry), data, "application/json")
        self._entries[self._key(entry)] = entry
        self._prune()

    def __len__(self) -> int:
        return len(self._entries)

    def _prune(self) -> None:
        """Forget the oldest settled claims beyond ``max_settled`` (a long-running service
        would otherwise hold every claim it ever saw)."""
        settled = [k for k, e in self._entries.items() if e.champion_done or e.failed]
        for key in settled[: max(0, len(settled) - self.max_settled)]:
            del self._entries[key]

    def for_config(self, config_hash: str | None) -> list[ClaimEntry]:
        """Claims of one lineage (``None``: claims that carry no config_hash)."""
        wanted = config_hash or NO_HASH
        return [e for e in self._entries.values() if e.config_hash == wanted]
