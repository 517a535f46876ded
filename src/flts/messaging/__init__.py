"""The messaging runtime: the generic Kafka worker (poll, run, send, commit, DLQ) and the event
sinks. It knows topics, never business rules."""
