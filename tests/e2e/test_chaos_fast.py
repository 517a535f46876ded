"""The fast chaos scenarios in CI (the whole suite: `make chaos`): a real fault in the middle of a
real pipeline run, and the invariants that must hold afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from flts.chaos.runner import FAST_SCENARIOS, SCENARIOS, run_scenario

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize("name", FAST_SCENARIOS)
def test_fast_scenario_keeps_the_invariants(name: str, tmp_path: Path) -> None:
    figures = run_scenario(SCENARIOS[name], tmp_path)
    assert figures["faults"], "the fault was never injected"
    assert figures["error"] is None
    assert figures["completed"]
    assert figures["promotions"] == 1
    assert figures["lost"] == []
    assert figures["dead_letters"] == 0
    assert figures["recovery_s"] is not None
    assert figures["passed"]
    if name == "inference-restart":
        assert figures["failed_after_recovery"] == 0
        assert figures["requests"] > figures["failed_requests"]
