"""Submit the pipeline to a Kubeflow Pipelines server (or say what would be submitted)."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flts.domain.config import ModelType
from flts.errors import ConfigError, FltsError
from flts.kfp.components import DEFAULT_IMAGE
from flts.kfp.pipeline import PIPELINE_NAME, compile_pipeline

#: The fleet pipeline's per-series fields (``series`` parameter), all required.
SERIES_FIELDS = ("identifier", "train_csv_uri", "test_csv_uri")

log = logging.getLogger(__name__)

#: Parameters whose value is a list of model types (given on the command line as GRU,LSTM).
_LIST_PARAMS = {"model_types"}


class SubmitError(FltsError):
    """The KFP server refused the pipeline or could not be reached."""


@dataclass(frozen=True)
class SubmitPlan:
    host: str
    image: str
    arguments: dict[str, Any] = field(default_factory=dict)
    experiment: str | None = None
    namespace: str | None = None
    run_name: str | None = None
    #: The fleet pipeline (``arguments["series"]`` lists the series) instead of one series.
    fleet: bool = False
    #: With ``fleet``: the fleet pipeline that also fits one global model across the series.
    global_model: bool = False

    @property
    def pipeline_name(self) -> str:
        from flts.kfp.fleet_pipeline import FLEET_GLOBAL_PIPELINE_NAME, FLEET_PIPELINE_NAME

        if not self.fleet:
            return PIPELINE_NAME
        return FLEET_GLOBAL_PIPELINE_NAME if self.global_model else FLEET_PIPELINE_NAME

    def describe(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pipeline_name": self.pipeline_name,
            "image": self.image,
            "experiment": self.experiment,
            "namespace": self.namespace,
            "run_name": self.run_name,
            "parameters": self.arguments,
        }


def parse_params(pairs: list[str], known: dict[str, Any]) -> dict[str, Any]:
    """``k=v`` strings -> typed pipeline arguments; types follow the parameter's default."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--param {pair!r}: expected NAME=VALUE")
        if name not in known:
            raise ConfigError(
                f"--param {name}: unknown parameter; known: {', '.join(sorted(known))}"
            )
        out[name] = _coerce(name, raw, known[name])
    return out


def _coerce(name: str, raw: str, default: Any) -> Any:
    try:
        if name in _LIST_PARAMS:
            return [ModelType.parse(item).value for item in raw.split(",") if item.strip()]
        if isinstance(default, bool):
            return raw.strip().lower() in {"1", "true", "yes"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except FltsError as exc:
        raise ConfigError(f"--param {name}={raw!r}: {exc}") from exc
    except ValueError as exc:
        kind = type(default).__name__
        raise ConfigError(f"--param {name}={raw!r}: expected a {kind}") from exc
    return raw


def pipeline_defaults(fleet: bool = False, global_model: bool = False) -> dict[str, Any]:
    """The pipeline's parameters and their defaults, read from its signature (the fleet
    pipeline's ``series`` has none: it comes from ``--series-file``)."""
    import inspect

    if fleet:
        from flts.kfp.fleet_pipeline import build_fleet_pipeline

        func = build_fleet_pipeline(global_model=global_model).pipeline_func
    else:
        from flts.kfp.pipeline import build_pipeline

        func = build_pipeline().pipeline_func
    params = inspect.signature(func).parameters.items()
    return {n: p.default for n, p in params if p.default is not inspect.Parameter.empty}


def read_series(path: Path, run_identifier: str | None) -> list[dict[str, str]]:
    """The fleet's ``series`` argument from a JSON list of objects with ``train_csv_uri``,
    ``test_csv_uri`` and either ``identifier`` or ``series`` (a raw series id, made into
    ``<run_identifier>/<sanitised id>`` by the fleet rule). ConfigError names the entry."""
    from flts.domain.series import series_identifier

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--series-file {path}: cannot read a JSON list: {exc}") from None
    if not isinstance(doc, list) or not doc:
        raise ConfigError(f"--series-file {path}: expected a non-empty JSON list of objects")
    out: list[dict[str, str]] = []
    for i, entry in enumerate(doc):
        where = f"--series-file {path}: entry {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected an object, got {type(entry).__name__}")
        if "identifier" not in entry and "series" in entry:
            if not run_identifier:
                raise ConfigError(f"{where}: 'series' needs --identifier (the run's)")
            entry = {**entry, "identifier": series_identifier(run_identifier, str(entry["series"]))}
        for name in SERIES_FIELDS:
            value = entry.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: '{name}' must be a non-empty string")
        out.append({name: str(entry[name]) for name in SERIES_FIELDS})
    seen = [e["identifier"] for e in out]
    if duplicated := sorted({x for x in seen if seen.count(x) > 1}):
        raise ConfigError(f"--series-file {path}: identifiers used twice: {duplicated}")
    return out


def submit(plan: SubmitPlan) -> str:
    """Compile for ``plan.image``, upload and start a run; returns the run id."""
    import kfp

    with tempfile.TemporaryDirectory() as tmp:
        if plan.fleet:
            from flts.kfp.fleet_pipeline import compile_fleet_pipeline

            package = compile_fleet_pipeline(
                Path(tmp) / "flts-fleet.yaml", image=plan.image, global_model=plan.global_model
            )
        else:
            package = compile_pipeline(Path(tmp) / "flts-pipeline.yaml", image=plan.image)
        try:
            client = kfp.Client(host=plan.host, namespace=plan.namespace)
            run = client.create_run_from_pipeline_package(
                str(package),
                arguments=plan.arguments,
                run_name=plan.run_name,
                experiment_name=plan.experiment,
                namespace=plan.namespace,
            )
        except Exception as exc:  # the client raises many unrelated types (HTTP, auth, ...)
            raise SubmitError(f"submitting to {plan.host} failed: {exc}") from exc
    run_id = str(run.run_id)
    log.info("submitted %s to %s as run %s", plan.pipeline_name, plan.host, run_id)
    return run_id


__all__ = [
    "DEFAULT_IMAGE",
    "SubmitError",
    "SubmitPlan",
    "parse_params",
    "pipeline_defaults",
    "read_series",
    "submit",
]
