"""Local infrastructure: the broker, S3, MLflow and the gateway on loopback, and the one process
supervisor that starts, checks and stops them (and the services `flts run` starts)."""
