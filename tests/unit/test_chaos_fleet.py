"""The fleet chaos scenario's fault and verdict, without a stack: the evaluator replicas are
real processes (each in its own process group, as the run starts services) and get SIGKILLed."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any

from flts.chaos import fleet
from flts.chaos.faults import Chaos, TriggerDisplay
from flts.chaos.runner import SCENARIOS, passed


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> int | None:
        return self.proc.poll()


@dataclass
class Runner:
    services: list[Service]


def _sleeper(name: str) -> Service:
    argv = [sys.executable, "-c", "import time; time.sleep(120)"]
    return Service(name, subprocess.Popen(argv, start_new_session=True))


def test_each_evaluator_replica_is_killed_once_after_a_series_trained(monkeypatch: Any) -> None:
    monkeypatch.setattr(fleet, "KILL_GAP_S", 0.1)
    services = [_sleeper("eval"), _sleeper("eval-2"), _sleeper("train-linear")]
    chaos = Chaos(stack=None, display=TriggerDisplay())  # type: ignore[arg-type]
    chaos.runner = Runner(services)  # type: ignore[assignment]
    injector = threading.Thread(target=fleet.kill_evaluators, args=(chaos,))
    try:
        injector.start()
        injector.join(0.5)
        assert injector.is_alive()  # nothing trained yet: no fault
        assert chaos.faults == []
        chaos.display.note("[cell-a] LINEAR: trained, test RMSE 1.0e+07")
        injector.join(10)
        assert not injector.is_alive()
        for svc in services[:2]:
            assert svc.proc.wait(10) == -9
        assert services[2].exited() is None  # only evaluators
        assert [f.split()[1] for f in chaos.faults] == ["eval", "eval-2"]
        assert chaos.healed_at
    finally:
        chaos.stop.set()
        for svc in services:
            svc.proc.kill()
            svc.proc.wait()


def test_a_fleet_passes_only_with_one_promotion_per_series() -> None:
    figures: dict[str, Any] = {
        "series": 4,
        "completed": True,
        "promotions": 4,
        "promotions_per_config_hash": {f"cell-{c}:h{c}": 1 for c in "abcd"},
        "lost_outputs": 0,
        "dead_letters": 0,
        "faults": ["SIGKILL eval"],
    }
    assert passed(figures)
    assert not passed({**figures, "promotions": 5, "promotions_per_config_hash": {"a:h": 2}})
    assert not passed({**figures, "promotions": 3})
    assert SCENARIOS["fleet-eval-kill"].fleet
