"""Concrete I/O behind the stage ports: S3, MLflow, Kafka, and in-memory doubles for tests."""
