"""Run the whole KFP DAG on this machine with ``kfp.local`` (no cluster, no Docker).

``SubprocessRunner(use_venv=False)`` runs every task as a subprocess of this interpreter, so
the tasks import the installed ``flts``; independent tasks (the trainers) run in parallel.
Tasks inherit this process's environment: that is how S3 credentials reach them, exactly as
a Kubernetes secret does in a cluster.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flts.errors import FltsError

log = logging.getLogger(__name__)


class KfpRunError(FltsError):
    """A task of the local KFP run failed; its log is in the pipeline root."""


@dataclass(frozen=True)
class LocalRunResult:
    """What the DAG produced: the evaluate and infer artifacts, as JSON, plus where they lie."""

    selection: dict[str, Any]
    predictions: dict[str, Any]
    selection_path: Path
    predictions_path: Path
    pipeline_root: Path
    seconds: float

    @property
    def champion(self) -> dict[str, Any] | None:
        """The ModelSelected event, or None when nothing beat persistence."""
        selected = self.selection.get("selected")
        return selected if isinstance(selected, dict) else None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest for the CLI."""
        return {
            "champion": self.champion,
            "report": self.selection.get("report"),
            "promotion_record": self.selection.get("promotion_record"),
            "performance": self.predictions.get("performance"),
            "inference_logs": self.predictions.get("inference_logs"),
            "pipeline_root": str(self.pipeline_root),
            "seconds": round(self.seconds, 2),
        }


@contextlib.contextmanager
def patched_environ(env: Mapping[str, str]) -> Iterator[None]:
    """Set ``env`` for the tasks (they inherit os.environ), then restore what was there."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to fd 1 (kfp.local echoes task logs there) to fd 2.

    Used by ``--json`` so stdout carries only the JSON document.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run_pipeline_locally(
    arguments: Mapping[str, Any],
    pipeline_root: Path,
    env: Mapping[str, str] | None = None,
) -> LocalRunResult:
    """Run the pipeline with ``arguments`` (pipeline parameter -> value) and read its outputs."""
    from flts.kfp.pipeline import build_pipeline

    # No Kubernetes settings: the subprocess runner has no cluster (the env carries credentials).
    task, seconds = _run_locally(build_pipeline(secret_name=None), arguments, pipeline_root, env)
    selection = Path(task.outputs["selection"].path)
    predictions = Path(task.outputs["predictions"].path)
    return LocalRunResult(
        selection=_read(selection),
        predictions=_read(predictions),
        selection_path=selection,
        predictions_path=predictions,
        pipeline_root=pipeline_root,
        seconds=seconds,
    )


def run_fleet_pipeline_locally(
    arguments: Mapping[str, Any],
    pipeline_root: Path,
    env: Mapping[str, str] | None = None,
    global_model: bool = False,
) -> dict[str, Any]:
    """Run the fleet DAG (``arguments["series"]`` lists the series); returns its fleet artifact
    (one entry per series) with ``seconds`` added."""
    from flts.kfp.fleet_pipeline import build_fleet_pipeline

    pipeline = build_fleet_pipeline(secret_name=None, global_model=global_model)
    task, seconds = _run_locally(pipeline, arguments, pipeline_root, env)
    return {**_read(Path(task.output.path)), "seconds": round(seconds, 2)}


def _run_locally(
    pipeline: Any,
    arguments: Mapping[str, Any],
    pipeline_root: Path,
    env: Mapping[str, str] | None,
) -> tuple[Any, float]:
    from kfp import local

    pipeline_root.mkdir(parents=True, exist_ok=True)
    # kfp.local warns that the task image is not a python image; the tasks run in this venv.
    warnings.filterwarnings("ignore", message="You may be attemp", category=RuntimeWarning)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    t0 = time.monotonic()
    with patched_environ(env or {}):
        try:
            task = pipeline(**arguments)
        except RuntimeError as exc:
            raise KfpRunError(
                f"local KFP run failed: {exc} (task logs above; outputs in {pipeline_root})"
            ) from exc
    seconds = time.monotonic() - t0
    log.info("local KFP run finished in %.1f s; outputs in %s", seconds, pipeline_root)
    return task, seconds


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KfpRunError(f"cannot read pipeline output {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise KfpRunError(f"pipeline output {path} is not a JSON object")
    return data
