"""Fleet identifiers: one series of a fleet run is ``<run identifier>/<sanitised series id>``.

The identifier travels in every message, names the S3 prefixes (processed data, promotion
records, completion state, inference logs) and picks the series' champion in the registry, so
a series id must be safe as an object-key segment and unique after sanitising:

- characters outside ``A-Z a-z 0-9 . _ -`` become ``_`` (``"cell 7/a"`` -> ``"cell_7_a"``);
- leading dots and underscores are stripped (no ``.``/``..`` key segments, no hidden names);
- at most :data:`MAX_SERIES_ID_LENGTH` characters;
- an id that is empty after this is rejected, and so are two ids that sanitise alike.

Registry rule: a single-series identifier (no ``/``) keeps the one alias it always had
(``flts-forecaster@champion``). A fleet series gets its own alias on the same registered model,
``<alias>--<run>--<series>`` with every character MLflow refuses in an alias (anything outside
``A-Z a-z 0-9 _ -``) replaced by ``_``; when that replacement loses information (or the alias
would pass MLflow's 255-character limit) a short hash of the identifier keeps it unique.

Example::

    series_identifier("fleet-1", "cell 7")           # "fleet-1/cell_7"
    champion_alias("fleet-1/cell_7", "champion")     # "champion--fleet-1--cell_7"
    champion_alias("flts-run-1", "champion")         # "champion"
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from flts.errors import ConfigError

MAX_SERIES_ID_LENGTH = 100
MAX_ALIAS_LENGTH = 255
SERIES_SEPARATOR = "/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_ALIAS_UNSAFE = re.compile(r"[^\w-]")


def sanitise_series_id(raw: object) -> str:
    """The key-safe form of one series id; ConfigError if nothing usable is left."""
    text = str(raw).strip()
    safe = _UNSAFE.sub("_", text).lstrip("._")[:MAX_SERIES_ID_LENGTH]
    if not safe:
        raise ConfigError(
            f"series id {text!r} has no character usable in an identifier "
            "(letters, digits, '.', '_', '-')"
        )
    return safe


def sanitise_all(raw_ids: Iterable[object]) -> tuple[dict[str, str], list[str]]:
    """``{raw id: safe id}`` for every id, and a notice per id that had to change.

    Raises ConfigError naming both raw ids when two of them sanitise to the same id.
    """
    mapping: dict[str, str] = {}
    owner: dict[str, str] = {}
    notices: list[str] = []
    for raw in raw_ids:
        text = str(raw).strip()
        if text in mapping:
            continue
        safe = sanitise_series_id(text)
        if safe in owner:
            raise ConfigError(
                f"series ids {owner[safe]!r} and {text!r} both become {safe!r} once made safe "
                "for object keys; rename one of them"
            )
        if safe != text:
            notices.append(f"series id {text!r} is used as {safe!r} (unsafe characters replaced)")
        mapping[text] = safe
        owner[safe] = text
    return mapping, notices


def series_identifier(run_identifier: str, series_id: str) -> str:
    """``<run identifier>/<sanitised series id>``."""
    if SERIES_SEPARATOR in run_identifier:
        raise ConfigError(
            f"run identifier {run_identifier!r} must not contain {SERIES_SEPARATOR!r} "
            "in a fleet run (it separates the run from the series)"
        )
    return f"{run_identifier}{SERIES_SEPARATOR}{sanitise_series_id(series_id)}"


def global_identifier(run_identifier: str) -> str:
    """The identifier of a fleet's global fit: no series can take it (sanitised series ids
    never start with ``_``)."""
    return f"{run_identifier}{SERIES_SEPARATOR}_global"


def is_fleet_identifier(identifier: str) -> bool:
    return SERIES_SEPARATOR in identifier


def champion_alias(identifier: str, base_alias: str = "champion") -> str:
    """The registry alias holding ``identifier``'s champion (see the module docstring)."""
    if not is_fleet_identifier(identifier):
        return base_alias
    wanted = f"{base_alias}--{identifier.replace(SERIES_SEPARATOR, '--')}"
    alias = _ALIAS_UNSAFE.sub("_", wanted)
    if alias != wanted or len(alias) > MAX_ALIAS_LENGTH:
        digest = hashlib.sha256(identifier.encode()).hexdigest()[:10]
        alias = f"{alias[: MAX_ALIAS_LENGTH - 11]}-{digest}"
    return alias
