"""The CLI accepts ``--verbose`` wherever a user types it."""

from __future__ import annotations

import pytest

from flts.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--verbose", "stack", "status"],
        ["stack", "--verbose", "status"],
        ["stack", "status", "--verbose"],
        ["stack", "status", "-v"],
        ["run", "--verbose"],
    ],
)
def test_verbose_is_accepted_after_any_subcommand(argv: list[str]) -> None:
    args = build_parser(argv).parse_args(argv)
    assert args.verbose is True


def test_verbose_is_off_by_default() -> None:
    argv = ["stack", "status"]
    assert build_parser(argv).parse_args(argv).verbose is False
