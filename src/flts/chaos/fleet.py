"""Chaos on a fleet: evaluator replicas SIGKILLed while the series' promotions are in flight.

Four series (scaled copies of the bundled slice, so each has its own data and config_hash) run
through one set of services with two evaluator replicas over two partitions. Once the first
series has a trained model, one evaluator is SIGKILLed; a few seconds later, the other. Each kill
forces a rebalance of the evaluators' group twice (the victim's session expires, then its
restart joins again), so completion state and promotions move between replicas mid-flight. The
invariants: every series gets its champion, exactly one promotion per (series, config_hash),
every SUCCESS and batch forecast present, no dead letter.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from flts.chaos.audit import lost_outputs, read_run
from flts.chaos.faults import Chaos, TriggerDisplay
from flts.domain.config import ModelType
from flts.domain.series import series_identifier
from flts.errors import FltsError
from flts.infra import procs
from flts.infra.components import StackPorts
from flts.infra.procs import free_port
from flts.infra.stack import LocalStack
from flts.run.fleet import FleetOptions, FleetSeries, execute_fleet
from flts.run.pipeline import RunOptions

#: Each series is the slice times this factor: different data, the same shape.
SCALES = {"cell-a": 1.0, "cell-b": 0.5, "cell-c": 2.0, "cell-d": 0.8}
FLEET_MODELS = (ModelType.LINEAR, ModelType.PROPHET)
EVAL_REPLICAS = 2
#: Seconds between the two evaluator kills.
KILL_GAP_S = 6.0


def kill_evaluators(c: Chaos) -> None:
    """SIGKILL one evaluator replica once a series has trained, then the other."""
    if not c.wait(lambda: any("trained" in what for _, what in c.display.times)):
        return
    for replica in range(EVAL_REPLICAS):
        runner = c.runner
        if runner is None or c.stop.is_set():
            return
        evaluators = [s for s in runner.services if s.name.startswith("eval")]
        live = [s for s in evaluators if s.exited() is None]
        if not live:
            return
        victim = live[replica % len(live)]
        c.fault(f"SIGKILL {victim.name} while the series' lineages are incomplete")
        try:
            os.killpg(victim.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        if c.stop.wait(KILL_GAP_S):
            return
    c.healed()


def write_series(directory: Path, train_csv: Path, test_csv: Path) -> dict[str, tuple[Path, Path]]:
    """One train/test CSV pair per series, the slice scaled (timestamps unchanged)."""
    train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
    numeric = [c for c in train.columns if c != "time"]
    pairs = {}
    for name, scale in SCALES.items():
        folder = directory / name
        folder.mkdir(parents=True, exist_ok=True)
        pair = folder / "train.csv", folder / "test.csv"
        for frame, path in zip((train, test), pair, strict=True):
            frame.assign(**{c: frame[c] * scale for c in numeric}).to_csv(path, index=False)
        pairs[name] = pair
    return pairs


def run_fleet_scenario(
    name: str,
    description: str,
    inject: Callable[[Chaos], None],
    work_dir: Path,
    slices: tuple[Path, Path],
    config: dict[str, Any],
) -> dict[str, Any]:
    """A fleet run with the scenario's faults, over its own stack; the figures."""
    started = time.monotonic()
    stack = LocalStack(work_dir / name / "stack", StackPorts.free())
    chaos = Chaos(stack=stack, display=TriggerDisplay())
    run_id = f"chaos-fleet-{uuid.uuid4().hex[:8]}"
    pairs = write_series(work_dir / name / "series", *slices)
    series = [
        FleetSeries(
            series_id=sid,
            identifier=series_identifier(run_id, sid),
            train_csv=train,
            test_csv=test,
            preprocess_config_json=json.dumps(config),
        )
        for sid, (train, test) in pairs.items()
    ]
    base = RunOptions(
        identifier=run_id,
        train_csv=slices[0],
        test_csv=slices[1],
        run_dir=work_dir / name / "run",
        stack_dir=stack.data_dir,
        models=FLEET_MODELS,
        api_port=free_port(),
        timeout_s=900.0,
        preprocess_config_json=json.dumps(config),
        replicas={"eval": EVAL_REPLICAS},
    )
    summary: dict[str, Any] | None = None
    error: str | None = None
    promotions: dict[str, int] = {}
    lost: list[str] = []
    dead = 0
    try:
        stack.up()
        try:
            summary = execute_fleet(
                FleetOptions(base=base, series=series), chaos.display, chaos.starter(inject)
            )
        except FltsError as exc:
            error = f"{type(exc).__name__}: {exc}"
        chaos.finish()
        from flts.adapters.s3 import S3ObjectStore

        store = S3ObjectStore(stack.endpoints().s3_settings())
        entries = {e["identifier"]: e for e in (summary or {}).get("series", [])}
        for s in series:
            audit = read_run(stack.endpoints().kafka_bootstrap, s.identifier)
            for config_hash, count in audit.promotions.items():
                promotions[f"{s.series_id}:{config_hash}"] = count
            models = [m.value for m in FLEET_MODELS]
            lost += [
                f"{s.series_id}: {x}"
                for x in lost_outputs(audit, models, entries.get(s.identifier), store)
            ]
            dead += audit.dead_letters
    finally:
        chaos.stop.set()
        if chaos.runner is not None:
            procs.stop_all(chaos.runner.services)
        stack.down()
    entries_list = (summary or {}).get("series", [])
    return {
        "description": description,
        "series": len(series),
        "completed": len(entries_list) == len(series)
        and all(e.get("champion") for e in entries_list),
        "promotions": sum(promotions.values()),
        "promotions_per_config_hash": promotions,
        "lost_outputs": len(lost),
        "lost": lost,
        "dead_letters": dead,
        "recovery_s": None,
        "faults": chaos.faults,
        "service_restarts": (summary or {}).get("service_restarts", {}),
        "duration_s": round(time.monotonic() - started, 1),
        "error": error,
    }
