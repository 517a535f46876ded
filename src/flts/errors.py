"""The project's error hierarchy. Adapters translate library errors into these at the boundary.

::

    FltsError
    ├── ConfigError            a setting or stage config is missing or malformed
    ├── DataValidationError    input data is unusable (bad CSV, too few rows, ...)
    ├── MessageError           a wire message cannot be decoded or fails validation
    ├── ModelError             a model cannot be fitted, saved, loaded or used
    │   └── UnknownModelTypeError
    ├── StorageError           the object store failed or an object is missing
    │   └── ObjectNotFoundError
    ├── MessagingError         the Kafka broker refused or lost a message
    ├── TrackingError          MLflow failed
    ├── NoChampionError        no candidate beat the persistence baseline
    └── StackError             a local infrastructure component failed to start or stop
"""

from __future__ import annotations


class FltsError(Exception):
    """Root of every error FLTS raises on purpose."""


class ConfigError(FltsError):
    """A setting or stage configuration is missing or malformed."""


class DataValidationError(FltsError):
    """Input data cannot be used; the message says what is wrong and where."""


class MessageError(FltsError):
    """A wire message cannot be decoded or does not match its contract."""


class ModelError(FltsError):
    """A model cannot be fitted, saved, loaded or used for prediction."""


class UnknownModelTypeError(ModelError):
    """A message or config names a model type FLTS does not have."""


class StorageError(FltsError):
    """The object store failed."""


class ObjectNotFoundError(StorageError):
    """A claim check points at an object that does not exist."""


class MessagingError(FltsError):
    """The Kafka broker refused, timed out or lost a message."""


class TrackingError(FltsError):
    """The MLflow tracking server or model registry failed."""


class NoChampionError(FltsError):
    """No candidate model beat the persistence baseline, so nothing is promoted."""


class StackError(FltsError):
    """A component of the local stack failed to start, answer or stop."""


def is_transient(exc: BaseException) -> bool:
    """True for failures of the infrastructure (worth a retry), not of the message or model."""
    if isinstance(exc, ObjectNotFoundError):
        return False
    return isinstance(exc, StorageError | TrackingError | MessagingError)
