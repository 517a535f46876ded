"""Which inference claims a model runs: the inference service's decisions as pure functions.

An inference-data claim may arrive before any model of its lineage exists; a provisional model
(from a training SUCCESS, with RUN_INFERENCE_ON_TRAIN_SUCCESS) may run it first; the promoted
champion always runs it (again), so every claim ends with the champion's forecast. The service
keeps a :class:`ClaimEntry` per claim and asks these functions what to do.

Example::

    model = ModelRef(run_id="abc", champion=True)
    for entry in claims_to_run(entries, model):
        ...  # run it, then store with_run(entry, model)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from flts.domain.messages import InferenceDataReady

#: Claims without a config_hash are filed under this name.
NO_HASH = "_none"


class ClaimEntry(BaseModel):
    """One claim and what has been done with it."""

    model_config = ConfigDict(extra="ignore")

    claim: InferenceDataReady
    #: run_ids of models whose inference over this claim was published.
    runs: list[str] = []
    #: True once a promoted champion (not a provisional model) ran it.
    champion_done: bool = False
    failed: str | None = None

    @property
    def config_hash(self) -> str:
        return self.claim.config_hash or NO_HASH


@dataclass(frozen=True)
class ModelRef:
    """What the decisions need to know of a loaded model."""

    run_id: str
    #: A promoted (or registry) champion, as opposed to a provisional model.
    champion: bool


def eligible(entry: ClaimEntry, model: ModelRef) -> bool:
    """Should ``model`` run ``entry`` now?

    Never a failed claim or one this run already did; a champion runs everything else; a
    provisional model only claims nothing has run yet.
    """
    if entry.failed or model.run_id in entry.runs:
        return False
    return model.champion or not entry.runs


def claims_to_run(entries: Iterable[ClaimEntry], model: ModelRef) -> list[ClaimEntry]:
    return [entry for entry in entries if eligible(entry, model)]


def with_run(entry: ClaimEntry, model: ModelRef) -> ClaimEntry:
    """The entry after ``model``'s forecast over it was published."""
    runs = entry.runs if model.run_id in entry.runs else [*entry.runs, model.run_id]
    return entry.model_copy(
        update={"runs": runs, "champion_done": entry.champion_done or model.champion}
    )


def with_failure(entry: ClaimEntry, error: str) -> ClaimEntry:
    """The entry after a run failed for a reason a retry cannot fix (it is not tried again)."""
    return entry.model_copy(update={"failed": error})


def load_provisional(enabled: bool, config_hash: str, loaded: Iterable[str]) -> bool:
    """Load a just-trained model for its lineage? Only when enabled and none is loaded yet: a
    champion (or an earlier provisional model) already there wins."""
    return enabled and config_hash not in set(loaded)
