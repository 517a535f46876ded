"""The CLI accepts ``--verbose`` wherever a user types it; `flts live` shares `flts run`'s
pipeline options."""

from __future__ import annotations

from pathlib import Path

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


def test_live_takes_the_run_options_and_builds_them_the_same_way(tmp_path: Path) -> None:
    from flts.cli.run_cmd import run_options

    argv = ["live", "--interval-levels", "90", "--replicas", "inference=2", "--plot-step", "2"]
    args = build_parser(argv).parse_args(argv)
    options = run_options(
        args, "id", train_csv=tmp_path / "a.csv", test_csv=tmp_path / "b.csv", run_dir=tmp_path
    )
    assert options.interval_levels == (90,)
    assert options.replicas == {"inference": 2}
    assert options.plot_step == 2
    assert [m.value for m in options.models] == ["LINEAR"]  # live's own default
