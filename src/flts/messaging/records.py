"""What a worker and its handlers exchange: consumed records, outputs to send, retry policy.

Kept apart from the worker loop so handlers (the services) and their unit tests depend on these
plain types only, never on a consumer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from flts.domain.messages import WireMessage

# Re-exported: its home is flts.errors, since the KFP glue classifies failures too.
from flts.errors import is_transient as is_transient


@dataclass(frozen=True)
class Record:
    """A consumed Kafka record, decoupled from confluent-kafka so handlers test without a broker."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None

    @property
    def body(self) -> bytes:
        """The value, with a tombstone (None) as empty bytes: it then fails JSON decoding."""
        return self.value or b""

    @classmethod
    def from_message(cls, msg: Message) -> Record:
        raw_key = msg.key()
        key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else raw_key
        return cls(
            str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0), key, msg.value()
        )


@dataclass(frozen=True)
class Output:
    """One event the worker must get confirmed before it commits the consumed offset."""

    topic: str
    value: WireMessage | dict[str, Any]
    key: str | None = None
    #: Runs after the broker confirmed this output and before the input offset is committed:
    #: where a service records durable state that depends on the send (a promotion published,
    #: a claim run). A crash before it redelivers the input, so the output is sent again.
    on_confirmed: Callable[[], None] | None = None


Handler = Callable[[Record], Sequence[Output]]
#: (consumed topic, error) -> dead-letter topic.
DlqRouter = Callable[[str, BaseException], str]
#: (record, error, its dead-letter topic) -> events telling downstream services that this
#: record's work will not come (sent after the DLQ record, before the commit).
FailureOutputs = Callable[[Record, BaseException, str], Sequence[Output]]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff for infrastructure failures.

    The default waits 1, 2, 4, 8 and 15 s between six tries: 30 s, enough to ride out an S3 or
    MLflow restart (the chaos suite stops each for 20 s) before a message is dead-lettered.
    """

    attempts: int = 6
    initial_delay_s: float = 1.0
    max_delay_s: float = 15.0

    def delay(self, attempt: int) -> float:
        """Wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        return float(min(self.max_delay_s, self.initial_delay_s * 2 ** (attempt - 1)))


def dlq_of(topic: str) -> str:
    """The spec's dead-letter naming: ``DLQ-<base-topic>``."""
    return f"DLQ-{topic}"
