"""Serving: the model runtime behind the HTTP API (feature windows, micro-batching, the swappable
champion, request validation and limits). The ASGI apps that expose it live in ``flts.api``."""
