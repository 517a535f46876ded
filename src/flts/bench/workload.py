"""The training workload several benchmarks share: preprocess the bundled data and train models
with in-memory doubles (object store, tracker), so figures measure compute, not MLflow or S3.

One process trains each model type once: ``flts bench all`` trains in the train benchmark and
the batch and API benchmarks reuse the saved models. Quick mode uses a slice of the data, a
short lookback and season, and one epoch.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from flts.adapters.memory import InMemoryObjectStore, InMemoryTracker
from flts.datasets import bundled_test_csv, bundled_train_csv
from flts.domain.config import ModelType, PreprocessConfig, TrainConfig
from flts.domain.messages import ModelTrained
from flts.stages import preprocess, train
from flts.stages.contracts import ObjectRef, PreprocessRequest, PreprocessResult, TrainStageConfig
from flts.stages.ports import BUCKET_DATASET, StageContext

QUICK_TRAIN_ROWS = 3000
QUICK_TEST_ROWS = 1000
#: A slice too short for the data-driven daily lags (720 rows at 2 minutes): none, explicitly.
QUICK_CONFIG = {"season_steps": 30, "lookback": 12, "lags": []}
IDENTIFIER = "bench"


@dataclass(frozen=True)
class TrainedModel:
    model_type: ModelType
    event: ModelTrained
    #: ``fit`` only, as the stage measured it; ``stage_s`` adds scoring and saving.
    fit_s: float
    stage_s: float
    epochs_run: int
    model_dir: Path


@dataclass
class Workload:
    quick: bool
    preprocess_config: PreprocessConfig
    train_config: TrainConfig
    ctx: StageContext
    tracker: InMemoryTracker
    prep: PreprocessResult
    preprocess_s: float
    data: dict[str, int]
    trained: dict[ModelType, TrainedModel] = field(default_factory=dict)

    def ensure(self, model_types: tuple[ModelType, ...]) -> dict[ModelType, TrainedModel]:
        """Train whichever of ``model_types`` this process has not trained yet."""
        for model_type in model_types:
            if model_type not in self.trained:
                self.trained[model_type] = self._train(model_type)
        return {mt: self.trained[mt] for mt in model_types}

    def _train(self, model_type: ModelType) -> TrainedModel:
        config = TrainStageConfig(model_type=model_type, train=self.train_config)
        started = time.perf_counter()
        event = train.run(self.prep.training, config, self.ctx)
        stage_s = time.perf_counter() - started
        run = self.tracker.runs[event.run_id]
        return TrainedModel(
            model_type=model_type,
            event=event,
            fit_s=run.metrics["fit_seconds"],
            stage_s=stage_s,
            epochs_run=int(run.metrics["epochs_run"]),
            model_dir=self.tracker.root / event.run_id / train.MODEL_NAME,
        )


_CACHE: dict[tuple[bool, str | None], Workload] = {}


def head_lines(data: bytes, rows: int) -> bytes:
    """The header and the first ``rows`` data lines of a CSV."""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[: rows + 1])


def tail_lines(data: bytes, rows: int) -> bytes:
    """The header and the last ``rows`` data lines of a CSV."""
    lines = data.splitlines(keepends=True)
    return b"".join([lines[0], *lines[max(1, len(lines) - rows) :]])


def contiguous_quick_data() -> tuple[bytes, bytes]:
    """The end of the training file and the start of the test file: a slice whose test part
    follows its training part, so forecasts may read the training tail as history (as in a
    full run) and daily lags fit in it."""
    train_bytes = bundled_train_csv().read_bytes()
    test_bytes = bundled_test_csv().read_bytes()
    return tail_lines(train_bytes, QUICK_TRAIN_ROWS), head_lines(test_bytes, QUICK_TEST_ROWS)


def raw_data(quick: bool) -> tuple[bytes, bytes]:
    train_bytes = bundled_train_csv().read_bytes()
    test_bytes = bundled_test_csv().read_bytes()
    if quick:
        return head_lines(train_bytes, QUICK_TRAIN_ROWS), head_lines(test_bytes, QUICK_TEST_ROWS)
    return train_bytes, test_bytes


def workload(quick: bool, config_json: str | None = None) -> Workload:
    """Preprocessed data in memory (cached per process and mode)."""
    key = (quick, config_json)
    if key in _CACHE:
        return _CACHE[key]
    store = InMemoryObjectStore()
    tracker = InMemoryTracker(Path(tempfile.mkdtemp(prefix="flts-bench-models-")))
    atexit.register(shutil.rmtree, tracker.root, True)
    ctx = StageContext(store=store, tracker=tracker)
    train_bytes, test_bytes = raw_data(quick)
    store.ensure_bucket(BUCKET_DATASET)
    store.put_bytes(BUCKET_DATASET, "train.csv", train_bytes, "text/csv")
    store.put_bytes(BUCKET_DATASET, "test.csv", test_bytes, "text/csv")
    # ``config_json`` (flts bench --config) overrides the default or quick preprocess config, e.g.
    # to measure with an earlier release's defaults next to today's.
    base = PreprocessConfig(**QUICK_CONFIG) if quick else PreprocessConfig()  # type: ignore[arg-type]
    overrides = PreprocessConfig.model_validate_json(config_json) if config_json else None
    pre_config = (
        base.model_copy(update=overrides.model_dump(exclude_unset=True)) if overrides else base
    )
    request = PreprocessRequest(
        identifier=IDENTIFIER,
        train=ObjectRef(bucket=BUCKET_DATASET, key="train.csv"),
        test=ObjectRef(bucket=BUCKET_DATASET, key="test.csv"),
    )
    started = time.perf_counter()
    prep = preprocess.run(request, pre_config, ctx)
    preprocess_s = time.perf_counter() - started
    wl = Workload(
        quick=quick,
        preprocess_config=pre_config,
        train_config=TrainConfig(epochs=1) if quick else TrainConfig(),
        ctx=ctx,
        tracker=tracker,
        prep=prep,
        preprocess_s=preprocess_s,
        data={
            "train_csv_rows": train_bytes.count(b"\n") - 1,
            "test_csv_rows": test_bytes.count(b"\n") - 1,
            "train_rows": prep.train_rows,
            "test_rows": prep.test_rows,
        },
    )
    _CACHE[key] = wl
    return wl
