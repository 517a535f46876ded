"""When to promote: the evaluator's decisions as pure functions over its completion state.

The eval service feeds SUCCESS events in and acts on the answer; it never decides itself. One
state per (identifier, config_hash) moves through

    results accumulate -> complete -> evaluated (champion or a reason) -> published

and :func:`next_step` says what to do at each point. *Which* model to promote is decided by the
evaluate stage (``flts.stages.scoring.rank_candidates``); this module decides *when*.

Example::

    state, changed = record_success(state, event)
    step = next_step(state)  # Wait(missing) | Evaluate() | Publish(selected) | Done(why)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from flts.domain.config import ModelType
from flts.domain.messages import ModelSelected, ModelTrained, ModelTrainingFailed


class CompletionState(BaseModel):
    """What the evaluator knows about one (identifier, config_hash)."""

    model_config = ConfigDict(extra="ignore")

    identifier: str
    config_hash: str
    expected: list[str]
    #: model_type -> its latest SUCCESS event.
    results: dict[str, ModelTrained] = {}
    #: model_type -> why it will not come for this lineage (a global fit left the series out).
    waived: dict[str, str] = {}
    evaluated: bool = False
    selected: ModelSelected | None = None
    reason: str | None = None
    published: bool = False
    updated: str = ""

    def missing(self) -> list[str]:
        """Expected model types without a SUCCESS yet, in the expected order."""
        return [m for m in self.expected if m not in self.results and m not in self.waived]

    @property
    def complete(self) -> bool:
        return not self.missing()

    def ordered_results(self) -> tuple[ModelTrained, ...]:
        return tuple(self.results[m] for m in self.expected if m in self.results)


def new_state(identifier: str, config_hash: str, expected: list[str]) -> CompletionState:
    return CompletionState(identifier=identifier, config_hash=config_hash, expected=list(expected))


def record_success(state: CompletionState, event: ModelTrained) -> tuple[CompletionState, bool]:
    """The state with ``event`` recorded, and whether that changed anything.

    Once evaluated, a state never changes again (a promotion happens once); a replay of the same
    run changes nothing; a newer run of the same model type replaces the older one.
    """
    model_type = ModelType.parse(event.model_type).value
    if state.evaluated:
        return state, False
    known = state.results.get(model_type)
    if known is not None and known.run_id == event.run_id:
        return state, False
    results = {**state.results, model_type: event}
    return state.model_copy(update={"results": results}), True


def record_waiver(
    state: CompletionState, model_type: str, reason: str
) -> tuple[CompletionState, bool]:
    """The state no longer waiting for ``model_type`` (it will not come, for ``reason``).

    Ignored once evaluated, for a type that is not expected, or one that already succeeded.
    """
    kind = ModelType.parse(model_type).value
    if state.evaluated or kind not in state.expected or kind in state.results:
        return state, False
    if state.waived.get(kind) == reason:
        return state, False
    return state.model_copy(update={"waived": {**state.waived, kind: reason}}), True


def failure_reason(event: ModelTrainingFailed) -> str:
    """Why a failed model type is not ranked, as the promotion record keeps it."""
    return f"training failed ({event.error_type}: {event.error_details})"


def with_evaluation(
    state: CompletionState, selected: ModelSelected | None, reason: str | None
) -> CompletionState:
    """The state after the evaluate stage ran: its champion (or None) and why."""
    return state.model_copy(update={"evaluated": True, "selected": selected, "reason": reason})


def with_published(state: CompletionState) -> CompletionState:
    return state.model_copy(update={"published": True})


@dataclass(frozen=True)
class Wait:
    kind: Literal["wait"] = "wait"
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Evaluate:
    kind: Literal["evaluate"] = "evaluate"


@dataclass(frozen=True)
class Publish:
    selected: ModelSelected
    kind: Literal["publish"] = "publish"


@dataclass(frozen=True)
class Done:
    why: str
    kind: Literal["done"] = "done"


Step = Wait | Evaluate | Publish | Done


def next_step(state: CompletionState) -> Step:
    """What the evaluator must do now for this state."""
    if state.published:
        return Done("already promoted")
    if not state.complete:
        return Wait(missing=tuple(state.missing()))
    if not state.evaluated:
        return Evaluate()
    if state.selected is None:
        return Done(f"no champion: {state.reason}")
    return Publish(state.selected)
