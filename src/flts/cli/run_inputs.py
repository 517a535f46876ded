"""`flts run` inputs: the preprocess config from flags, and the CSV check before any service.

The check runs the preprocess stage's own code (``prepare_datasets``) on the user's files, named
as the user gave them, so a bad file fails in seconds with the file's own name instead of after
the stack and six services have started, naming an internal object key.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from flts.domain.config import PreprocessConfig
from flts.errors import ConfigError, DataValidationError
from flts.forecasting.csv_text import read_csv_text
from flts.forecasting.prepare import PreparedData, prepare_datasets


def column_list(text: str) -> tuple[str, ...]:
    """``a,b , c`` -> ("a", "b", "c"); an empty list is a usage error."""
    columns = tuple(part.strip() for part in text.split(",") if part.strip())
    if not columns:
        raise argparse.ArgumentTypeError("expected one or more column names, comma-separated")
    return columns


def _header(path: Path) -> list[str]:
    try:
        return [str(c) for c in read_csv_text(path, nrows=0)[0].columns]
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: cannot be read as CSV ({exc})") from exc


def run_config(
    base: PreprocessConfig,
    *,
    train_csv: Path,
    horizon: int | None = None,
    features: tuple[str, ...] | None = None,
    drop: tuple[str, ...] = (),
) -> PreprocessConfig:
    """``base`` (from --config, --time-col, --target) with --horizon, --features and --drop."""
    update: dict[str, object] = {}
    if horizon is not None:
        update["horizon"] = horizon
    if features is not None:
        update["feature_columns"] = features
    if drop:
        if base.target in drop:
            raise ConfigError(f"--drop {base.target}: cannot drop the target column")
        columns = features or base.feature_columns
        if columns is None:
            columns = tuple(c for c in _header(train_csv) if c != base.time_col)
        unknown = [c for c in drop if c not in columns]
        if unknown:
            raise ConfigError(f"--drop {','.join(unknown)}: no such input column in {train_csv}")
        update["feature_columns"] = tuple(c for c in columns if c not in drop)
    try:
        return PreprocessConfig.model_validate({**base.model_dump(), **update})
    except ValueError as exc:
        raise ConfigError(f"invalid run configuration: {exc}") from exc


def validate_inputs(train_csv: Path, test_csv: Path, config: PreprocessConfig) -> PreparedData:
    """Everything preprocess will check, on the local files, before anything starts."""
    try:
        train_bytes, test_bytes = train_csv.read_bytes(), test_csv.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read CSV: {exc}") from exc
    return prepare_datasets(
        train_bytes,
        test_bytes,
        config,
        config_hash="pre-check",
        train_source=str(train_csv),
        test_source=str(test_csv),
    )
