"""The inference service's handlers with in-memory doubles, and the dispatch decisions as a table.

The service returns its events; ``deliver`` plays the worker (send, then ``on_confirmed``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests._stage_data import CONFIG_HASH, IDENTIFIER, Setup

from flts.adapters.memory import MEMORY_SCHEME
from flts.domain.config import ModelType
from flts.domain.messages import (
    DlqRecord,
    InferenceDataReady,
    ModelSelected,
    ModelTrained,
    PerformanceEval,
)
from flts.forecasting.models import create_forecaster
from flts.messaging.records import Output
from flts.services.inference import InferenceService
from flts.serving.model_state import ModelState
from flts.settings import InferenceSettings
from flts.stages import dispatch
from flts.stages.dispatch import ClaimEntry, ModelRef


def deliver(outputs: list[Output]) -> list[Output]:
    for out in outputs:
        if out.on_confirmed is not None:
            out.on_confirmed()
    return outputs


def logged_model(setup: Setup, run_name: str) -> str:
    model = create_forecaster(ModelType.PERSISTENCE, setup.spec)
    model.fit(setup.train)
    run_id = setup.tracker.start_run("flts", run_name, {})
    return setup.tracker.log_forecaster(run_id, model, "model").model_uri


def run_of(uri: str) -> str:
    return uri.removeprefix(MEMORY_SCHEME).split("/")[0]


@pytest.fixture
def setup() -> Iterator[Setup]:
    s = Setup()
    yield s
    s.tracker.close()


def trained_event(uri: str) -> ModelTrained:
    run_id = run_of(uri)
    return ModelTrained(
        model_type="PERSISTENCE",
        config_hash=CONFIG_HASH,
        run_id=run_id,
        test_rmse=1.0,
        test_mae=1.0,
        test_mse=1.0,
        train_start="2025-11-24T12:00:00Z",
        train_end="2025-11-24T12:05:00Z",
        identifier=IDENTIFIER,
        artifact_uri="s3://mlflow/x",
        model_uri=uri,
    )


def selected_event(uri: str) -> ModelSelected:
    return ModelSelected(
        model_uri=uri,
        model_type="PERSISTENCE",
        run_id=run_of(uri),
        config_hash=CONFIG_HASH,
        composite_score=0.9,
        test_rmse=1.0,
        test_mae=1.0,
        test_mse=1.0,
        promotion_time="2025-11-24T12:10:00Z",
        identifier=IDENTIFIER,
    )


def test_pending_claim_runs_on_the_provisional_model_then_again_on_the_champion(
    setup: Setup,
) -> None:
    service = InferenceService(InferenceSettings(), setup.ctx, ModelState())
    assert service.on_claim(setup.inference_claim) == []  # no model yet: kept pending
    provisional = logged_model(setup, "provisional")
    outs = deliver(service.on_trained(trained_event(provisional)))
    assert [o.topic for o in outs] == ["performance-eval"]
    assert isinstance(outs[0].value, PerformanceEval)
    (entry,) = service.claims.for_config(CONFIG_HASH)
    assert entry.runs == [run_of(provisional)]
    assert not entry.champion_done

    champion = logged_model(setup, "champion")
    outs = deliver(service.on_selected(selected_event(champion)))
    assert [o.topic for o in outs] == ["performance-eval"]
    (entry,) = service.claims.for_config(CONFIG_HASH)
    assert entry.champion_done
    assert service.state.current() is not None
    # A replayed promotion runs nothing twice.
    assert service.on_selected(selected_event(champion)) == []


def test_a_claim_is_marked_run_only_after_its_event_was_confirmed(setup: Setup) -> None:
    service = InferenceService(InferenceSettings(), setup.ctx, ModelState())
    service.on_selected(selected_event(logged_model(setup, "champion")))
    unsent = service.on_claim(setup.inference_claim)  # the send never got confirmed
    assert len(unsent) == 1
    (entry,) = service.claims.for_config(CONFIG_HASH)
    assert entry.runs == []
    # After a restart the promotion is redelivered and the unconfirmed claim runs again.
    again = InferenceService(InferenceSettings(), setup.ctx, ModelState())
    again.startup()
    champion = service.state.current()
    assert champion is not None
    assert len(deliver(again.on_selected(selected_event(champion.model_uri)))) == 1
    assert again.on_claim(setup.inference_claim) == []


def test_a_broken_pending_claim_goes_to_the_dlq_and_is_not_retried(setup: Setup) -> None:
    service = InferenceService(InferenceSettings(), setup.ctx, ModelState())
    missing = InferenceDataReady(
        bucket="processed-data",
        object="gone.parquet",
        object_key="gone.parquet",
        size=1,
        identifier=IDENTIFIER,
        config_hash=CONFIG_HASH,
    )
    service.on_claim(missing)
    service.on_claim(setup.inference_claim)
    outs = deliver(service.on_selected(selected_event(logged_model(setup, "champion"))))
    topics = sorted(o.topic for o in outs)
    assert topics == ["DLQ-performance-eval", "performance-eval"]
    dead = next(o.value for o in outs if o.topic == "DLQ-performance-eval")
    assert isinstance(dead, DlqRecord)
    assert dead.error_type == "ObjectNotFoundError"
    failed = [e for e in service.claims.for_config(CONFIG_HASH) if e.failed]
    assert len(failed) == 1
    assert service.on_selected(selected_event(logged_model(setup, "next"))) != []


CLAIM = InferenceDataReady(
    bucket="b", object="o", object_key="o", size=1, identifier="i", config_hash="h"
)


@pytest.mark.parametrize(
    ("entry", "model", "runs"),
    [
        (ClaimEntry(claim=CLAIM), ModelRef("p", champion=False), True),
        (ClaimEntry(claim=CLAIM, runs=["p"]), ModelRef("p2", champion=False), False),
        (ClaimEntry(claim=CLAIM, runs=["p"]), ModelRef("c", champion=True), True),
        (ClaimEntry(claim=CLAIM, runs=["c"]), ModelRef("c", champion=True), False),
        (ClaimEntry(claim=CLAIM, failed="boom"), ModelRef("c", champion=True), False),
    ],
    ids=["first-provisional", "second-provisional", "champion-after", "same-run", "failed"],
)
def test_eligible(entry: ClaimEntry, model: ModelRef, runs: bool) -> None:
    assert dispatch.eligible(entry, model) is runs


def test_load_provisional_only_when_enabled_and_nothing_loaded() -> None:
    assert dispatch.load_provisional(True, "h", [])
    assert not dispatch.load_provisional(True, "h", ["h"])
    assert not dispatch.load_provisional(False, "h", [])


def test_with_run_records_once() -> None:
    entry = dispatch.with_run(ClaimEntry(claim=CLAIM), ModelRef("c", champion=True))
    assert dispatch.with_run(entry, ModelRef("c", champion=True)).runs == ["c"]
    assert entry.champion_done


def test_loaded_models_are_bounded_and_the_champion_is_kept(setup: Setup) -> None:
    settings = InferenceSettings(MAX_LOADED_MODELS=2)
    service = InferenceService(settings, setup.ctx, ModelState())
    champion = logged_model(setup, "champion")
    service.on_selected(selected_event(champion))
    for i in range(4):
        uri = logged_model(setup, f"other-{i}")
        event = trained_event(uri).model_copy(update={"config_hash": f"hash-{i}"})
        service.on_trained(event)
    assert len(service.models) == 2
    assert CONFIG_HASH in service.models  # the answering champion is never evicted


def test_a_claim_after_its_promoted_model_was_evicted_reloads_it(setup: Setup) -> None:
    """A fleet promotes many series before their batch claims arrive: the bounded model cache
    evicts a series' champion first. Its claim must still run (it waited forever before)."""
    from flts.serving.series_models import SeriesModels

    settings = InferenceSettings(MAX_LOADED_MODELS=1)
    cache = SeriesModels(max_models=8, max_bytes=1 << 40)
    service = InferenceService(settings, setup.ctx, ModelState(), series=cache)
    champion = logged_model(setup, "champion")
    service.on_selected(selected_event(champion).model_copy(update={"identifier": "fleet/a"}))
    other = logged_model(setup, "other")
    later = selected_event(other).model_copy(
        update={"identifier": "fleet/b", "config_hash": "hash-b"}
    )
    service.on_selected(later)
    assert CONFIG_HASH not in service.models  # evicted by the later series' champion
    claim = setup.inference_claim.model_copy(update={"identifier": "fleet/a"})
    outs = deliver(service.on_claim(claim))
    assert [o.topic for o in outs] == ["performance-eval"]
    event = outs[0].value
    assert isinstance(event, PerformanceEval)
    assert event.run_id == run_of(champion)  # the promoted model, reloaded
    (entry,) = service.claims.for_config(CONFIG_HASH)
    assert entry.champion_done


def test_settled_claims_are_pruned_from_memory_but_stay_stored(setup: Setup) -> None:
    from flts.services.claims import ClaimBook

    book = ClaimBook(setup.store, max_settled=2)
    for i in range(5):
        claim = CLAIM.model_copy(update={"object": f"o-{i}"})
        book.save(ClaimEntry(claim=claim, runs=["c"], champion_done=True))
    book.add(CLAIM.model_copy(update={"object": "pending"}))
    assert len(book) == 3  # two settled + the pending one
    assert ClaimBook(setup.store, max_settled=100).load_all() == 6


def test_a_fleet_promotion_joins_the_series_cache_and_never_replaces_the_default(
    setup: Setup,
) -> None:
    from flts.domain.series import champion_alias
    from flts.serving.series_models import SeriesModels

    state, cache = ModelState(), SeriesModels(max_models=8, max_bytes=1 << 40)
    service = InferenceService(InferenceSettings(), setup.ctx, state, series=cache)
    default_uri = logged_model(setup, "default")
    service.on_selected(selected_event(default_uri))
    fleet_uri = logged_model(setup, "fleet")
    fleet_event = selected_event(fleet_uri).model_copy(update={"identifier": "fleet/a"})
    service.on_selected(fleet_event)
    current = state.current()
    assert current is not None
    assert current.run_id == run_of(default_uri)
    assert cache.get("fleet/a") is not None
    # Another series' champion comes from its own registry alias; a plain id never does.
    other_uri = logged_model(setup, "other")
    setup.tracker.register_champion(
        other_uri, "flts-forecaster", champion_alias("fleet/b", "champion")
    )
    loaded = service.load_series_champion("fleet/b")
    assert loaded is not None
    assert (loaded.identifier, loaded.model_uri) == ("fleet/b", other_uri)
    assert service.load_series_champion("fleet/none") is None
    assert service.load_series_champion(IDENTIFIER) is None


def test_a_promotion_seen_by_another_replica_is_served_once(setup: Setup) -> None:
    """The follower's path: swap in what this replica does not serve yet, skip what it does,
    never run claims (the replica owning the partition runs them)."""
    from flts.serving.series_models import SeriesModels

    state, cache = ModelState(), SeriesModels(max_models=8, max_bytes=1 << 40)
    replica = InferenceService(InferenceSettings(), setup.ctx, state, series=cache)
    first = selected_event(logged_model(setup, "first"))
    assert replica.follow_promotion(first) is True
    current = state.current()
    assert current is not None
    assert current.run_id == first.run_id
    assert replica.follow_promotion(first) is False  # already served
    second = selected_event(logged_model(setup, "second"))
    replica.on_selected(second)  # this replica got it from the group first
    assert replica.follow_promotion(second) is False
    series = selected_event(logged_model(setup, "series")).model_copy(
        update={"identifier": "fleet/a"}
    )
    assert replica.follow_promotion(series) is True
    runtime = cache.get("fleet/a")
    assert runtime is not None
    assert runtime.loaded.run_id == series.run_id
    current = state.current()
    assert current is not None
    assert current.run_id == second.run_id  # a series' champion never replaces the default


def test_the_owner_runs_claims_on_the_model_its_follower_swapped_in(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = InferenceService(InferenceSettings(), setup.ctx, ModelState())
    assert service.on_claim(setup.inference_claim) == []  # pending until a model comes
    promoted = selected_event(logged_model(setup, "champion"))
    loads: list[str] = []
    real_load = setup.tracker.load_forecaster
    monkeypatch.setattr(
        setup.tracker, "load_forecaster", lambda uri: loads.append(uri) or real_load(uri)
    )
    assert service.follow_promotion(promoted) is True  # the follower saw it first
    outs = deliver(service.on_selected(promoted))  # then the group delivers it here
    assert loads == [promoted.model_uri]  # loaded once
    assert [o.topic for o in outs] == ["performance-eval"]
    (entry,) = service.claims.for_config(CONFIG_HASH)
    assert entry.champion_done
