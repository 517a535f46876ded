"""The local stack: SeaweedFS (S3), tansu (Kafka protocol, storage on that S3), MLflow and the
claim-check gateway, all on loopback, as child processes this module starts and stops.

State lives in ``data_dir``: ``stack.json`` (pids, commands, ports, endpoints; no secrets),
``credentials.json`` (0600), ``logs/<component>.log``, SeaweedFS data and MLflow's SQLite file.
Because tansu keeps its log in the S3 bucket ``tansu``, topics and committed offsets survive
``down`` / ``up``.

Example::

    stack = LocalStack(Path("/tmp/s"), StackPorts.free())
    endpoints = stack.up()
    ...
    stack.down()
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from flts.errors import FltsError, StackError
from flts.infra import procs
from flts.infra.components import (
    GRPC_OFFSET,
    Credentials,
    StackEndpoints,
    StackPorts,
    default_data_dir,
    gateway_argv,
    load_or_create_credentials,
    mlflow_argv,
    tansu_argv,
    weed_argv,
    write_s3_identities,
)
from flts.stages.ports import ALL_BUCKETS

log = logging.getLogger(__name__)

COMPONENTS = ("seaweedfs", "kafka", "mlflow", "gateway")
#: Stop order: clients of S3 first, S3 last (tansu flushes to it on SIGINT).
STOP_ORDER = ("gateway", "mlflow", "kafka", "seaweedfs")
STOP_SIGNAL = {"kafka": signal.SIGINT}
START_TIMEOUT_S = {"seaweedfs": 90.0, "kafka": 90.0, "mlflow": 180.0, "gateway": 90.0}

__all__ = ["COMPONENTS", "LocalStack", "StackEndpoints", "StackPorts", "default_data_dir"]


class LocalStack:
    def __init__(
        self,
        data_dir: Path | None = None,
        ports: StackPorts | None = None,
        *,
        kafka_advertised_port: int | None = None,
    ) -> None:
        self.data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        self.ports = ports or StackPorts()
        #: Where the broker tells clients to connect (a fault-injecting proxy); None: itself.
        self.kafka_advertised_port = kafka_advertised_port
        self.state_path = self.data_dir / "stack.json"
        self.logs = self.data_dir / "logs"

    # --- state -----------------------------------------------------------------------------
    def _read_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {}
        try:
            state: dict[str, Any] = json.loads(self.state_path.read_text())
        except (OSError, ValueError) as exc:
            raise StackError(f"cannot read {self.state_path}: {exc}") from exc
        return state

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(self.state_path)

    def _ports(self) -> StackPorts:
        state = self._read_state()
        return StackPorts(**state["ports"]) if state.get("ports") else self.ports

    def endpoints(self) -> StackEndpoints:
        """Endpoints of the stack recorded in ``data_dir`` (credentials included)."""
        if not (self.data_dir / "credentials.json").exists():
            raise StackError(f"no stack in {self.data_dir}; start one with `flts stack up`")
        creds = load_or_create_credentials(self.data_dir)
        return StackEndpoints.for_ports(self._ports(), creds, self._advertised())

    def _advertised(self) -> int | None:
        recorded = self._read_state().get("kafka_advertised_port")
        return int(recorded) if recorded else self.kafka_advertised_port

    def signal(self, name: str, sig: int) -> bool:
        """Send ``sig`` to a component's process group, if it still runs the recorded command
        (fault injection, or an operator's manual stop); False when there was nothing to signal."""
        rec = self._read_state().get("components", {}).get(name)
        if not rec or not procs.is_alive(rec["pid"]) or not procs.matches(rec["pid"], rec["argv"]):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec["pid"], sig)
        return True

    def stop_component(self, name: str) -> None:
        """Stop one component (the others keep running); ``up`` starts it again."""
        rec = self._read_state().get("components", {}).get(name)
        if rec:
            sig = STOP_SIGNAL.get(name, signal.SIGTERM)
            procs.stop_group(rec["pid"], rec["argv"], sig, timeout_s=15.0)

    # --- health ----------------------------------------------------------------------------
    def _checks(self, ep: StackEndpoints) -> dict[str, Callable[[], bool]]:
        return {
            "seaweedfs": lambda: _s3_healthy(ep),
            "kafka": lambda: _kafka_healthy(ep.kafka_bootstrap),
            "mlflow": lambda: _http_ok(f"{ep.mlflow_uri}/health", "OK"),
            "gateway": lambda: _http_ok(f"{ep.gateway_url}/healthz"),
        }

    def status(self) -> dict[str, dict[str, Any]]:
        """Per component: endpoint, pid, alive, healthy."""
        state = self._read_state()
        ports = self._ports()
        urls = {
            "seaweedfs": f"http://127.0.0.1:{ports.s3}",
            "kafka": f"127.0.0.1:{ports.kafka}",
            "mlflow": f"http://127.0.0.1:{ports.mlflow}",
            "gateway": f"http://127.0.0.1:{ports.gateway}",
        }
        checks = self._checks(self.endpoints()) if state.get("components") else {}
        out: dict[str, dict[str, Any]] = {}
        for name in COMPONENTS:
            rec = state.get("components", {}).get(name)
            pid: int | None = rec["pid"] if rec else None
            alive = pid is not None and procs.is_alive(pid) and procs.matches(pid, rec["argv"])
            out[name] = {
                "endpoint": urls[name],
                "pid": pid,
                "alive": alive,
                "healthy": alive and checks[name](),
                "log": str(self.logs / f"{name}.log"),
            }
        return out

    def is_running(self) -> bool:
        return all(c["healthy"] for c in self.status().values())

    # --- lifecycle -------------------------------------------------------------------------
    def up(self) -> StackEndpoints:
        """Start every component and wait until each answers; a no-op on a healthy stack."""
        state = self._read_state()
        if state.get("components"):
            unhealthy = self.unhealthy()
            if not unhealthy:
                log.info("stack in %s already running", self.data_dir)
                return self.endpoints()
            log.warning(
                "stack in %s: %s not healthy; restarting only that", self.data_dir, unhealthy
            )
            self._restart(state, unhealthy)
            return self.endpoints()
        self._check_ports_free()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        creds = load_or_create_credentials(self.data_dir)
        ep = StackEndpoints.for_ports(self.ports, creds, self.kafka_advertised_port)
        state = {"data_dir": str(self.data_dir), "ports": asdict(self.ports), "components": {}}
        state["kafka_advertised_port"] = self.kafka_advertised_port
        state["endpoints"] = ep.public()
        self._write_state(state)
        try:
            self._start_all(state, ep, creds)
        except BaseException:
            self.down()
            raise
        log.info("stack up in %s", self.data_dir)
        return ep

    def _check_ports_free(self) -> None:
        """Fail before starting anything when a port is taken, naming the component."""
        owner = {
            "kafka": "kafka",
            "mlflow": "mlflow",
            "gateway": "gateway",
        }
        busy = []
        for name, port in vars(self.ports).items():
            component = owner.get(name, "seaweedfs")
            wanted = [port] if component != "seaweedfs" else [port, port + GRPC_OFFSET]
            busy += [
                f"{p} ({component}, --{name.replace('_', '-')}-port)"
                for p in wanted
                if not procs.port_free(p)
            ]
        if busy:
            raise StackError(f"ports already in use on 127.0.0.1: {', '.join(busy)}; pick others")

    def unhealthy(self) -> list[str]:
        """Components that are down or do not answer their health probe, in start order."""
        return [name for name, c in self.status().items() if not c["healthy"]]

    def _restart(self, state: dict[str, Any], names: list[str]) -> None:
        """Stop what is left of ``names`` and start them again; healthy components (and the
        services using them) are not touched. Data survives: it lives on disk and in S3."""
        ports = self._ports()
        self.kafka_advertised_port = self._advertised()
        ep = self.endpoints()
        for name in reversed(STOP_ORDER):
            rec = state["components"].get(name)
            if name in names and rec:
                procs.stop_group(rec["pid"], rec["argv"], STOP_SIGNAL.get(name, signal.SIGTERM), 15)
        self._start_components(state, ep, names, ports)

    def _start_all(self, state: dict[str, Any], ep: StackEndpoints, creds: Credentials) -> None:
        write_s3_identities(self.data_dir / "s3-identities.json", creds)
        self._start_components(state, ep, list(COMPONENTS), self.ports)

    def _start_components(
        self, state: dict[str, Any], ep: StackEndpoints, names: list[str], ports: StackPorts
    ) -> None:
        """Start ``names`` in dependency order (S3 first: the broker and MLflow store in it)."""
        creds = ep.credentials
        aws = {
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
            "AWS_DEFAULT_REGION": creds.region,
        }
        if "seaweedfs" in names:
            # weed re-applies flags saved from the previous start; ours are always complete.
            (self.data_dir / "weed" / "mini.options").unlink(missing_ok=True)
            (self.data_dir / "weed").mkdir(exist_ok=True)
            argv = weed_argv(self.data_dir, ports, self.data_dir / "s3-identities.json")
            self._spawn(state, "seaweedfs", argv, {}, ("AWS_",))
            self._wait(ep, "seaweedfs")
            _create_buckets(ep)
        if "kafka" in names:
            tansu_env = {**aws, "AWS_ENDPOINT": ep.s3_endpoint, "AWS_ALLOW_HTTP": "true"}
            self._spawn(state, "kafka", tansu_argv(ports, self.kafka_advertised_port), tansu_env)
        if "mlflow" in names:
            mlflow_env = {
                **aws,
                "MLFLOW_S3_ENDPOINT_URL": ep.s3_endpoint,
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "MLFLOW_DISABLE_TELEMETRY": "true",
            }
            self._spawn(state, "mlflow", mlflow_argv(self.data_dir, ports), mlflow_env)
        if "gateway" in names:
            gw_env = {**aws, "S3_ENDPOINT_URL": ep.s3_endpoint}
            self._spawn(state, "gateway", gateway_argv(ports), gw_env, ("GATEWAY_TOKEN",))
        for name in ("kafka", "gateway", "mlflow"):
            if name in names:
                self._wait(ep, name)
                if name == "kafka":
                    _create_topics(ep)

    def _spawn(
        self,
        state: dict[str, Any],
        name: str,
        argv: list[str],
        env: dict[str, str],
        drop: tuple[str, ...] = (),
    ) -> None:
        log_path = self.logs / f"{name}.log"
        child_env = procs.child_env(env, drop_prefixes=drop)
        pid = procs.spawn(argv, child_env, log_path, cwd=self.data_dir)
        state["components"][name] = {"pid": pid, "argv": argv, "log": str(log_path)}
        self._write_state(state)
        log.info("started %s (pid %d), log %s", name, pid, log_path)

    def _wait(self, ep: StackEndpoints, name: str) -> None:
        check = self._checks(ep)[name]
        rec = self._read_state()["components"][name]
        log_path = Path(rec["log"])
        deadline = time.monotonic() + START_TIMEOUT_S[name]
        while time.monotonic() < deadline:
            if not procs.is_alive(rec["pid"]):
                raise _failed(name, "exited during start", log_path)
            if check():
                log.info("%s is healthy", name)
                return
            time.sleep(0.2)
        raise _failed(name, f"did not answer within {START_TIMEOUT_S[name]:.0f}s", log_path)

    def down(self) -> None:
        """Stop every component this stack started (and nothing else), then check the ports."""
        state = self._read_state()
        comps = state.get("components", {})
        for name in STOP_ORDER:
            rec = comps.get(name)
            if not rec:
                continue
            sig = STOP_SIGNAL.get(name, signal.SIGTERM)
            procs.stop_group(rec["pid"], rec["argv"], sig, timeout_s=15.0)
            log.info("stopped %s (pid %d)", name, rec["pid"])
        if comps:
            ports = StackPorts(**state["ports"]) if state.get("ports") else self.ports
            still = procs.wait_ports_closed(ports.all_listening(), timeout_s=10.0)
            if still:
                log.warning("ports still listening after down: %s", still)
            state["components"] = {}
            self._write_state(state)


def _failed(name: str, why: str, log_path: Path) -> StackError:
    return StackError(f"{name} {why}; see its log {log_path}. Last lines:\n{procs.tail(log_path)}")


def _http_ok(url: str, body: str | None = None) -> bool:
    try:
        resp = httpx.get(url, timeout=2.0)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200 and (body is None or resp.text.strip() == body)


def _store(ep: StackEndpoints) -> Any:
    from flts.adapters.s3 import S3ObjectStore

    return S3ObjectStore(ep.s3_settings())


def _s3_healthy(ep: StackEndpoints) -> bool:
    if not _http_ok(f"{ep.s3_endpoint}/healthz"):
        return False
    try:
        _store(ep).list_buckets()
    except FltsError:
        return False
    return True


def _create_buckets(ep: StackEndpoints) -> None:
    store = _store(ep)
    try:
        store.ensure_buckets(("tansu", *ALL_BUCKETS))
    except FltsError as exc:
        raise StackError(f"seaweedfs: cannot create buckets: {exc}") from exc


def _kafka_healthy(bootstrap: str) -> bool:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    if not procs.port_open(int(bootstrap.rsplit(":", 1)[1])):
        return False
    try:
        conf: dict[str, Any] = {"bootstrap.servers": bootstrap}
        conf["logger"] = logging.getLogger("flts.librdkafka")
        AdminClient(conf).list_topics(timeout=3)
    except KafkaException:
        return False
    return True


def _create_topics(ep: StackEndpoints) -> None:
    from flts.kafka_utils import ensure_topics, topic_names
    from flts.settings import KafkaSettings

    try:
        ensure_topics(
            ep.kafka_bootstrap,
            topic_names(),
            settings=KafkaSettings(bootstrap_servers=ep.kafka_bootstrap),
        )
    except FltsError as exc:
        raise StackError(f"kafka: cannot create topics: {exc}") from exc
