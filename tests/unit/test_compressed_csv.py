"""Compressed CSV files (as public data sets are published) read as the plain file; archives
that are corrupt, hold several files or expand without end are refused with a reason."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from _rawcsv import csv_pair

from flts.domain.config import PreprocessConfig
from flts.errors import DataValidationError
from flts.forecasting.compressed import decompressed
from flts.forecasting.data import read_csv_with_notes


def zipped(data: bytes, *names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names or ("load.csv",):
            archive.writestr(name, data)
    return buffer.getvalue()


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zip": zipped,
}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_a_compressed_file_reads_as_the_plain_one_with_a_note(kind: str) -> None:
    plain, _ = csv_pair()
    expected, _ = read_csv_with_notes(plain, source="load.csv", config=PreprocessConfig())
    out, notes = read_csv_with_notes(
        COMPRESSORS[kind](plain), source="load.csv.x", config=PreprocessConfig()
    )
    pd.testing.assert_frame_equal(out, expected)
    assert f"load.csv.x: {kind}-compressed, read decompressed" in notes


def test_plain_bytes_pass_through_untouched() -> None:
    plain, _ = csv_pair()
    assert decompressed(plain) == (plain, None)


def test_a_zip_archive_of_several_files_names_them() -> None:
    plain, _ = csv_pair()
    with pytest.raises(DataValidationError, match=r"holding 2 files \(a.csv, b.csv\): give one"):
        read_csv_with_notes(
            zipped(plain, "a.csv", "b.csv"), source="x.zip", config=PreprocessConfig()
        )


def test_a_corrupt_archive_is_an_error_naming_the_compression() -> None:
    plain, _ = csv_pair()
    truncated = gzip.compress(plain)[:40]
    with pytest.raises(DataValidationError, match=r"x.gz: cannot be read as CSV .*gzip-compressed"):
        read_csv_with_notes(truncated, source="x.gz", config=PreprocessConfig())


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_an_archive_expanding_beyond_the_limit_is_refused(kind: str) -> None:
    bomb = COMPRESSORS[kind](b"0" * 100_000)  # compresses to a few hundred bytes
    assert len(bomb) < 2_000
    with pytest.raises(pd.errors.ParserError, match="expands to more than 10,000 bytes"):
        decompressed(bomb, limit=10_000)


def test_flts_run_checks_gzipped_files_given_by_path(tmp_path: Path) -> None:
    from flts.cli.run_inputs import validate_inputs

    train, test = csv_pair()
    paths = tmp_path / "train.csv.gz", tmp_path / "test.csv.gz"
    paths[0].write_bytes(gzip.compress(train))
    paths[1].write_bytes(gzip.compress(test))
    prepared = validate_inputs(*paths, PreprocessConfig())
    plain_paths = tmp_path / "train.csv", tmp_path / "test.csv"
    plain_paths[0].write_bytes(train)
    plain_paths[1].write_bytes(test)
    plain = validate_inputs(*plain_paths, PreprocessConfig())
    pd.testing.assert_frame_equal(prepared.train, plain.train)
    pd.testing.assert_frame_equal(prepared.test, plain.test)
