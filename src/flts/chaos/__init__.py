"""Fault injection against the real local stack: `flts chaos [SCENARIO...]`, `make chaos`.

Each scenario runs one pipeline (`flts run`'s driver, in-process) on a small slice of the
bundled data over its own local stack, injects one kind of fault for real (a SIGKILLed broker,
a stopped S3 or MLflow, a TCP connection cut, random SIGKILLs of services, an inference restart
under load) and then checks the invariants the delivery rules promise: the run completes,
exactly one promotion per (identifier, config_hash), no acknowledged input without its output,
no dead letter that was not injected, and how long the pipeline took to recover.
"""
