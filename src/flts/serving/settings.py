"""What the serving layer reads from ``flts.settings.InferenceSettings`` (or a look-alike).

Every limit has a documented default (README, "The inference API"); the service reads them
from the environment once (``API_*``, ``MAX_BATCH_*``), tests and the benchmark pass
:class:`ApiSettings` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

DEFAULT_MAX_BODY_BYTES = 1_048_576
DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_QUEUE = 1_024
DEFAULT_REQUEST_TIMEOUT_MS = 5_000.0
DEFAULT_TORCH_THREADS = 1


class ApiSettingsLike(Protocol):
    """The serving settings; ``InferenceSettings`` satisfies it."""

    @property
    def api_token(self) -> SecretStr | None: ...

    @property
    def max_batch_size(self) -> int: ...

    @property
    def max_batch_wait_ms(self) -> float: ...

    @property
    def api_max_body_bytes(self) -> int: ...

    @property
    def api_max_rows(self) -> int: ...

    @property
    def api_max_queue(self) -> int: ...

    @property
    def api_request_timeout_ms(self) -> float: ...

    @property
    def api_torch_threads(self) -> int: ...

    @property
    def api_forward_in_loop(self) -> bool: ...


@dataclass(frozen=True)
class ApiSettings:
    """Stand-alone settings for tests, the benchmark and embedding."""

    api_token: SecretStr | None = None
    max_batch_size: int = 64
    max_batch_wait_ms: float = 2.0
    api_max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    api_max_rows: int = DEFAULT_MAX_ROWS
    api_max_queue: int = DEFAULT_MAX_QUEUE
    api_request_timeout_ms: float = DEFAULT_REQUEST_TIMEOUT_MS
    api_torch_threads: int = DEFAULT_TORCH_THREADS
    api_forward_in_loop: bool = False
