"""``flts schema export|check``: the wire messages' JSON Schemas, committed under ``schemas/``.

Other teams read these files instead of our Python; ``check`` fails CI when a model changed and
the files were not regenerated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flts.domain.messages import ALL_MESSAGES

DEFAULT_DIR = Path("schemas")


def render_schemas() -> dict[str, str]:
    """File name -> text (sorted keys, indent 2, trailing newline) for every wire message."""
    out = {}
    for name, model in ALL_MESSAGES.items():
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"flts/{name}.json"
        out[f"{name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def export(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in render_schemas().items():
        path = out_dir / file_name
        path.write_text(text)
        written.append(path)
    return written


def drift(out_dir: Path) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    return [
        name
        for name, text in render_schemas().items()
        if not (out_dir / name).exists() or (out_dir / name).read_text() != text
    ]


def _export(args: argparse.Namespace) -> int:
    for path in export(args.out):
        print(path)
    return 0


def _check(args: argparse.Namespace) -> int:
    stale = drift(args.out)
    if stale:
        print(
            f"schemas out of date in {args.out}: {', '.join(stale)} (run: flts schema export)",
            file=sys.stderr,
        )
        return 1
    print(f"schemas in {args.out} are up to date")
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="schema_command", metavar="ACTION", required=True)
    for name, func, help_text in (
        ("export", _export, "write one JSON Schema per wire message"),
        ("check", _check, "exit 1 if the committed schemas differ from the models"),
    ):
        sp = sub.add_parser(name, help=help_text)
        sp.add_argument("--out", type=Path, default=DEFAULT_DIR, help="schema directory")
        sp.set_defaults(func=func)
