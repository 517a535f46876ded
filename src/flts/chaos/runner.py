"""Runs chaos scenarios and judges them; `flts chaos` and `make chaos` call :func:`run_suite`."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from flts.chaos import faults, fleet, load
from flts.chaos.audit import lost_outputs, read_run
from flts.chaos.faults import Chaos, TriggerDisplay
from flts.chaos.proxy import TcpProxy
from flts.datasets import bundled_test_csv, bundled_train_csv
from flts.domain.config import ModelType
from flts.errors import FltsError
from flts.infra import procs
from flts.infra.components import StackPorts
from flts.infra.procs import free_port
from flts.infra.stack import LocalStack
from flts.run.flow import execute_run
from flts.run.pipeline import RunOptions

log = logging.getLogger(__name__)

#: A small slice of the bundled data: a run takes about a minute on 2 cores.
SLICE_ROWS = (6000, 1000)
SLICE_CONFIG = {"lookback": 30, "season_steps": 360}
MODELS = (ModelType.GRU, ModelType.LSTM, ModelType.PROPHET)
EPOCHS = 3


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    inject: Callable[[Chaos], None]
    proxy: bool = False
    #: After a completed run (services left up): more faults, returning extra figures.
    after: Callable[[Chaos, dict[str, Any], Path, str], dict[str, Any]] | None = None
    #: A fleet of series (:mod:`flts.chaos.fleet`) instead of one series.
    fleet: bool = False


def _nothing(_: Chaos) -> None:
    return None


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("broker-kill", "a. broker SIGKILLed mid-training, restarted", faults.broker_kill),
        Scenario("s3-outage", "b. S3 down 20 s mid-preprocess and mid-inference", faults.s3_outage),
        Scenario(
            "mlflow-outage", "c. MLflow down 20 s in training and promotion", faults.mlflow_outage
        ),
        Scenario(
            "network-cut", "d. services-broker network cut 15 s", faults.network_cut, proxy=True
        ),
        Scenario("random-kills", "e. 20 random SIGKILLs of services", faults.random_kills),
        Scenario(
            "inference-restart",
            "f. inference service restarted under /predict load",
            _nothing,
            after=load.restart_under_load,
        ),
        Scenario(
            "fleet-eval-kill",
            "g. fleet of 4 series, 2 evaluator replicas over 2 partitions, each SIGKILLed "
            "between the first SUCCESS and the series' promotions",
            fleet.kill_evaluators,
            fleet=True,
        ),
    )
}
#: Short enough for `make test` (the others run with `make chaos`).
FAST_SCENARIOS = ("broker-kill", "inference-restart")


def make_slices(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    train, test = directory / "train.csv", directory / "test.csv"
    if not train.exists():
        # The end of training and the start of test: the test file follows on, so its first
        # rows are scored with training's tail as their history.
        pd.read_csv(bundled_train_csv()).tail(SLICE_ROWS[0]).to_csv(train, index=False)
        pd.read_csv(bundled_test_csv()).head(SLICE_ROWS[1]).to_csv(test, index=False)
    return train, test


def run_scenario(scenario: Scenario, work_dir: Path) -> dict[str, Any]:
    """One pipeline run with the scenario's faults, over its own stack; the figures."""
    if scenario.fleet:
        slices = make_slices(work_dir / "data")
        of_fleet = fleet.run_fleet_scenario(
            scenario.name, scenario.description, scenario.inject, work_dir, slices, SLICE_CONFIG
        )
        of_fleet["passed"] = passed(of_fleet)
        return of_fleet
    started = time.monotonic()
    train_csv, test_csv = make_slices(work_dir / "data")
    ports = StackPorts.free()
    proxy = TcpProxy(free_port(), ports.kafka).start() if scenario.proxy else None
    stack = LocalStack(
        work_dir / scenario.name / "stack",
        ports,
        kafka_advertised_port=proxy.listen_port if proxy else None,
    )
    chaos = Chaos(stack=stack, display=TriggerDisplay(), proxy=proxy)
    identifier = f"chaos-{scenario.name}-{uuid.uuid4().hex[:8]}"
    options = RunOptions(
        identifier=identifier,
        train_csv=train_csv,
        test_csv=test_csv,
        run_dir=work_dir / scenario.name / "run",
        stack_dir=stack.data_dir,
        models=MODELS,
        epochs=EPOCHS,
        keep_running=scenario.after is not None,
        api_port=free_port(),
        timeout_s=900.0,
        preprocess_config_json=json.dumps(SLICE_CONFIG),
    )
    summary: dict[str, Any] | None = None
    error: str | None = None
    extra: dict[str, Any] = {}
    try:
        stack.up()
        try:
            summary = execute_run(options, chaos.display, on_started=chaos.starter(scenario.inject))
        except FltsError as exc:
            error = f"{type(exc).__name__}: {exc}"
        chaos.finish()
        if scenario.after is not None and summary is not None:
            extra = scenario.after(chaos, summary, test_csv, options.time_col)
        audit = read_run(stack.endpoints().kafka_bootstrap, identifier)
        from flts.adapters.s3 import S3ObjectStore

        store = S3ObjectStore(stack.endpoints().s3_settings())
        lost = lost_outputs(audit, [m.value for m in MODELS], summary, store)
    finally:
        chaos.stop.set()
        if scenario.after is not None and chaos.runner is not None:
            procs.stop_all(chaos.runner.services)
        if proxy is not None:
            proxy.stop()
        stack.down()
    heal = chaos.healed_at[-1] if chaos.healed_at else None
    resumed = chaos.display.first_after(heal) if heal is not None else None
    promotions = dict(audit.promotions)
    figures: dict[str, Any] = {
        "description": scenario.description,
        "completed": summary is not None and summary.get("champion") is not None,
        "promotions": sum(promotions.values()),
        "promotions_per_config_hash": promotions,
        "lost_outputs": len(lost),
        "lost": lost,
        "dead_letters": audit.dead_letters,
        "recovery_s": None if heal is None or resumed is None else round(resumed - heal, 2),
        "faults": chaos.faults,
        "service_restarts": (summary or {}).get("service_restarts", {}),
        "duration_s": round(time.monotonic() - started, 1),
        "error": error,
        **extra,
    }
    figures["recovery_s"] = extra.get("recovery_s", figures["recovery_s"])
    figures["passed"] = passed(figures)
    return figures


def passed(figures: dict[str, Any]) -> bool:
    """The invariants: completed, one promotion per lineage (per series in a fleet), nothing
    lost, no dead letter, and (under load) no failure once the service had recovered."""
    return bool(
        figures["completed"]
        and figures["promotions"] == figures.get("series", 1)
        and all(n == 1 for n in figures["promotions_per_config_hash"].values())
        and figures["lost_outputs"] == 0
        and figures["dead_letters"] == 0
        and figures.get("failed_after_recovery", 0) == 0
        and figures["faults"]
    )


def run_suite(names: Sequence[str], work_dir: Path) -> dict[str, dict[str, Any]]:
    results = {}
    for name in names:
        log.warning("chaos scenario %s", name)
        results[name] = run_scenario(SCENARIOS[name], work_dir)
    return results
