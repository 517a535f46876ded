"""Timestamps as the wire contract writes them, always taken from the stage's clock."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime) -> str:
    """``2025-11-24T12:00:00.123Z``: the spec's ISO form, to the millisecond.

    Milliseconds because stage timings (train_end - train_start) feed the phase split of a run;
    naive datetimes are taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def compact_utc(moment: datetime) -> str:
    """``20251124T121000Z``: sortable and safe inside object keys."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
