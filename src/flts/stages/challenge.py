"""Champion against challenger: a new lineage of an identifier must beat the model answering
for it now, on the new lineage's test windows (its most recent data), before it is promoted.

The champion of each identifier is recorded at ``model-promotion/<identifier>/champion.json``
when evaluation promotes one. When evaluation of another config_hash of the same identifier
picks a candidate (the live loop's retraining on recent data, issue 12), both models forecast
the same origins of that lineage's processed test object, and the candidate is promoted only
if its MAE *and* RMSE are strictly lower. The reason names both scores; it goes into the
promotion record. A champion that cannot forecast the new data (other features) cannot defend
its title: the candidate is promoted, and the reason says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd

from flts.domain.messages import ModelSelected, ModelTrained
from flts.forecasting import windows
from flts.forecasting.base import Forecaster
from flts.forecasting.metrics import ErrorMetrics, error_metrics
from flts.forecasting.spec import TIME_COLUMN
from flts.stages.ports import BUCKET_PROCESSED, BUCKET_PROMOTION, StageContext

DEFAULT_MODEL_NAME = "model"


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str
    champion_run_id: str
    champion: ErrorMetrics | None
    challenger: ErrorMetrics | None
    windows: int


def champion_key(identifier: str) -> str:
    return f"{identifier}/champion.json"


def current_champion(ctx: StageContext, identifier: str) -> ModelSelected | None:
    key = champion_key(identifier)
    if not ctx.store.exists(BUCKET_PROMOTION, key):
        return None
    try:
        return ModelSelected.model_validate_json(ctx.store.get_bytes(BUCKET_PROMOTION, key))
    except ValueError:
        ctx.logger.warning("champion record %s/%s unreadable; no challenge", BUCKET_PROMOTION, key)
        return None


def record_champion(ctx: StageContext, selected: ModelSelected) -> None:
    ctx.store.ensure_bucket(BUCKET_PROMOTION)
    body = orjson.dumps(selected.to_wire(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    ctx.store.put_bytes(
        BUCKET_PROMOTION, champion_key(selected.identifier), body, "application/json"
    )


def challenge(
    ctx: StageContext, identifier: str, config_hash: str, candidate: ModelTrained
) -> Verdict | None:
    """None when there is nothing to defend (no champion, or it is of this very lineage)."""
    from flts.forecasting.dataset import read_processed
    from flts.stages.preprocess import processed_keys

    incumbent = current_champion(ctx, identifier)
    if incumbent is None or incumbent.config_hash == config_hash:
        return None
    if incumbent.run_id == candidate.run_id:
        return None
    key = processed_keys(identifier, config_hash)[1]
    test, meta = read_processed(ctx.store.get_bytes(BUCKET_PROCESSED, key), key)
    challenger_model = ctx.tracker.load_forecaster(
        candidate.model_uri or f"runs:/{candidate.run_id}/{DEFAULT_MODEL_NAME}"
    )
    champion_model = ctx.tracker.load_forecaster(incumbent.model_uri)
    spec = challenger_model.spec
    missing = [c for c in champion_model.spec.feature_order if c not in test.columns]
    if missing:
        return Verdict(
            True,
            f"champion {incumbent.model_type} run {incumbent.run_id} cannot read the new data "
            f"(lacks {missing}); challenger promoted unchallenged",
            incumbent.run_id,
            None,
            None,
            0,
        )
    need = max(challenger_model.min_history, champion_model.min_history)
    context = meta.context_rows
    unobserved = meta.unobserved_mask()
    if need > context:  # the champion reads more history than the new lineage carries
        train_key = processed_keys(identifier, config_hash)[0]
        train, _ = read_processed(ctx.store.get_bytes(BUCKET_PROCESSED, train_key), train_key)
        before = train[train[TIME_COLUMN] < test[TIME_COLUMN].iloc[0]].tail(need - context)
        test = pd.concat([before, test], ignore_index=True)
        context += len(before)
        # Rows brought in from training carry no fill marks: the test object's metadata covers
        # its own rows, and these are history only.
        unobserved = np.concatenate([np.zeros(len(before), dtype=bool), unobserved])
    # The scored windows stay those of the new test rows; only their history grew.
    origins = windows.evaluation_origins(len(test), spec, context)
    origins = origins[origins >= need]
    if len(origins) == 0:  # a champion reading more history than the whole retraining holds
        return Verdict(
            True,
            f"champion {incumbent.model_type} run {incumbent.run_id} needs {need} rows of "
            f"history, more than the new test data ({len(test)} rows) holds before any window; "
            "challenger promoted unchallenged",
            incumbent.run_id,
            None,
            None,
            0,
        )
    target = test[spec.target].to_numpy(dtype=np.float64)
    actual = windows.scorable_actuals(target, origins, spec.horizon, unobserved)
    if not np.isfinite(actual).any():
        return Verdict(
            True,
            "every target of the new test data was filled in, none observed: nothing to compare "
            "the champion and the challenger on; challenger promoted unchallenged",
            incumbent.run_id,
            None,
            None,
            0,
        )
    challenger = _errors(challenger_model, test, origins, actual)
    champion = _errors(champion_model, test, origins, actual)
    better = challenger.mae < champion.mae and challenger.rmse < champion.rmse
    verb = "beats" if better else "does not beat"
    reason = (
        f"challenger {candidate.model_type} run {candidate.run_id} {verb} champion "
        f"{incumbent.model_type} run {incumbent.run_id} on the same {len(origins)} most recent "
        f"windows: MAE {challenger.mae:.6g} vs {champion.mae:.6g}, "
        f"RMSE {challenger.rmse:.6g} vs {champion.rmse:.6g}"
    )
    return Verdict(better, reason, incumbent.run_id, champion, challenger, len(origins))


def _errors(
    model: Forecaster, test: pd.DataFrame, origins: np.ndarray, actual: np.ndarray
) -> ErrorMetrics:
    return error_metrics(actual, np.asarray(model.predict(test, origins), dtype=np.float64))
