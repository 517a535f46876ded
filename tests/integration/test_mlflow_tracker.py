"""MlflowTracker against a real MLflow server (proxied artifacts on SeaweedFS)."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from _stage_data import SEASON, Setup
from flts.adapters.mlflow_tracker import MlflowTracker
from flts.domain.config import ModelType, TrainConfig
from flts.errors import TrackingError
from flts.forecasting.models import create_forecaster
from flts.forecasting.spec import TIME_COLUMN

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tracker(mlflow_uri: str) -> MlflowTracker:
    return MlflowTracker(mlflow_uri)


def test_log_find_load_pyfunc_and_register(tracker: MlflowTracker, mlflow_uri: str) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    s = Setup(train_rows=300, test_rows=80)
    model = create_forecaster(
        ModelType.GRU, s.spec, TrainConfig(epochs=1, hidden_size=8, num_layers=1, batch_size=64)
    )
    model.fit(s.train)
    experiment = f"test-{uuid.uuid4().hex[:8]}"
    tags = {"identifier": "it", "config_hash": uuid.uuid4().hex, "model_type": "GRU"}

    assert tracker.find_finished_run(experiment, tags) is None
    run_id = tracker.start_run(experiment, "gru-it", tags)
    tracker.log_params(run_id, {"spec.lookback": 8})
    tracker.log_metrics(run_id, {"train_loss": 1.0}, step=1)
    tracker.log_metrics(run_id, {"test_rmse": 12.5})
    tracker.log_artifact_bytes(run_id, "score_report.json", b'{"ok": true}')
    logged = tracker.log_forecaster(run_id, model, "model")
    # Still running: not "finished" yet.
    assert tracker.find_finished_run(experiment, tags) is None
    tracker.end_run(run_id)

    found = tracker.find_finished_run(experiment, tags)
    assert found is not None
    assert found.run_id == run_id
    assert found.model_uri == logged.model_uri
    assert found.metrics["test_rmse"] == 12.5
    assert found.params["spec.lookback"] == "8"
    assert tracker.find_finished_run(experiment, {**tags, "model_type": "LSTM"}) is None

    # Fast path: identical predictions after the round trip through MLflow and S3.
    origins = np.arange(SEASON, len(s.test) - s.spec.horizon + 1)
    expected = model.predict(s.test, origins)
    reloaded = tracker.load_forecaster(logged.model_uri)
    np.testing.assert_allclose(reloaded.predict(s.test, origins), expected, rtol=1e-6)
    # The spec's runs:/ form resolves to the same logged model.
    by_run = tracker.load_forecaster(f"runs:/{run_id}/model")
    np.testing.assert_allclose(by_run.predict(s.test, origins), expected, rtol=1e-6)

    # Pyfunc: a raw window in, the next horizon out, in original units.
    mlflow.set_tracking_uri(mlflow_uri)
    pyfunc = mlflow.pyfunc.load_model(logged.model_uri)
    window = s.test.iloc[:40][[TIME_COLUMN, "down", "up"]]
    out = pyfunc.predict(window)
    assert list(out.columns) == [TIME_COLUMN, "step", "prediction"]
    np.testing.assert_allclose(
        out["prediction"].to_numpy(), model.predict(s.test, np.array([40]))[0], rtol=1e-6
    )
    assert out[TIME_COLUMN].iloc[0] == window[TIME_COLUMN].iloc[-1] + pd.Timedelta(seconds=120)
    assert out["prediction"].abs().mean() > 100  # original units of a ~1e3 target

    name = f"flts-it-{uuid.uuid4().hex[:8]}"
    version = tracker.register_champion(logged.model_uri, name, "champion")
    mv = MlflowClient(mlflow_uri).get_model_version_by_alias(name, "champion")
    assert str(mv.version) == version
    assert mv.run_id == run_id
    second = tracker.register_champion(logged.model_uri, name, "champion")
    assert int(second) == int(version) + 1
    champion = tracker.load_forecaster(f"models:/{name}@champion")
    np.testing.assert_allclose(champion.predict(s.test, origins), expected, rtol=1e-6)


def test_missing_model_is_a_tracking_error(tracker: MlflowTracker) -> None:
    with pytest.raises(TrackingError):
        tracker.load_forecaster("models:/m-doesnotexist0000000000000000000000")
