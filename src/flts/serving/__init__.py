"""Serving: everything behind the HTTP inference API except HTTP itself.

- ``model_state``: the answering model, swappable from the Kafka consumer's thread;
- ``runtime``: per-model preparation (window via the one feature builder, batched forward,
  load-time check), built off the event loop;
- ``batcher``: micro-batching with a bounded queue and per-request deadlines;
- ``validation``: the one strict request decoder (4xx with ``loc``);
- ``service``: /predict as bytes in, status and bytes out, with limits and error mapping;
- ``settings`` and ``metrics``: serving settings and Prometheus collectors.

The ASGI apps live in ``flts.api``, which imports this package; this package never imports
``flts.api`` or the Kafka services.
"""
