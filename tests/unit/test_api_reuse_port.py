"""API_REUSE_PORT: inference replicas on one host share API_PORT (SO_REUSEPORT) instead of each
taking the next port; both APIs answer on the one port."""

from __future__ import annotations

import httpx
import pytest

from flts.errors import ConfigError
from flts.infra.procs import free_port
from flts.services.inference import start_api
from flts.services.wiring import reuses_port
from flts.serving.model_state import ModelState
from flts.settings import InferenceSettings, load_settings


@pytest.mark.parametrize(
    ("env", "shared"),
    [({}, False), ({"API_REUSE_PORT": "true"}, True), ({"API_REUSE_PORT": "0"}, False)],
)
def test_replicas_share_the_port_only_when_asked(env: dict[str, str], shared: bool) -> None:
    assert reuses_port(env) is shared


def test_a_bad_reuse_port_value_is_named() -> None:
    with pytest.raises(ConfigError, match="API_REUSE_PORT='maybe'"):
        reuses_port({"API_REUSE_PORT": "maybe"})


def test_two_apis_serve_one_port_with_reuse_port() -> None:
    settings = load_settings(InferenceSettings, api_port=free_port(), api_reuse_port=True)
    servers = [start_api(ModelState(), settings) for _ in range(2)]
    try:
        for _ in range(4):  # new connections: the kernel may hand each to either API
            reply = httpx.get(f"http://127.0.0.1:{settings.api_port}/healthz", timeout=10)
            assert reply.status_code == 200
            assert reply.json()["model_ready"] is False
    finally:
        for server, thread in servers:
            server.should_exit = True
            thread.join(10)
    assert not any(thread.is_alive() for _, thread in servers)


def test_without_reuse_port_a_second_api_on_the_port_is_refused() -> None:
    from flts.errors import StackError

    settings = load_settings(InferenceSettings, api_port=free_port())
    server, thread = start_api(ModelState(), settings)
    try:
        with pytest.raises(StackError, match="could not start"):
            start_api(ModelState(), settings)
    finally:
        server.should_exit = True
        thread.join(10)


def test_flts_run_hands_serving_settings_to_its_services(monkeypatch: pytest.MonkeyPatch) -> None:
    from flts.cli.run_cmd import SERVING_ENV_PREFIXES, passed_env

    monkeypatch.setenv("API_REUSE_PORT", "true")
    monkeypatch.setenv("MAX_BATCH_WAIT_MS", "1")
    monkeypatch.setenv("FLTS_UNRELATED", "x")
    passed = passed_env(SERVING_ENV_PREFIXES)
    assert passed["API_REUSE_PORT"] == "true"
    assert passed["MAX_BATCH_WAIT_MS"] == "1"
    assert "FLTS_UNRELATED" not in passed
    assert reuses_port(passed)
