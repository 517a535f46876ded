"""Compressed CSV files, as public load data sets are published (``.csv.gz``, ``.zip``, ...).

A file is recognised by its first bytes, not its name (claim-check objects have no extension):
gzip, bzip2, xz, or a zip archive holding exactly one file. It is decompressed in memory up to
``MAX_CSV_BYTES``, so a small archive that expands without end (a decompression bomb) is refused
instead of filling the machine's memory.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from typing import IO

import pandas as pd

#: The most bytes a compressed file may expand to (1 GiB: a year of one-minute readings of a
#: hundred columns is far less).
MAX_CSV_BYTES = 1 << 30
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
)


def compression_of(data: bytes) -> str | None:
    """The compression ``data`` is written with (by its first bytes), else None."""
    return next((name for magic, name in _MAGIC if data.startswith(magic)), None)


def decompressed(data: bytes, limit: int = MAX_CSV_BYTES) -> tuple[bytes, str | None]:
    """``data`` decompressed, and its compression (None: ``data`` as it was).

    Raises ``pandas.errors.ParserError`` (what callers report as "cannot be read as CSV") for a
    corrupt archive, a zip archive not holding exactly one file, or more than ``limit`` bytes.
    """
    kind = compression_of(data)
    if kind is None:
        return data, None
    try:
        if kind == "zip":
            return _one_member(data, limit), kind
        with _reader(kind, io.BytesIO(data)) as stream:
            return _bounded(stream, limit, kind), kind
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise pd.errors.ParserError(
            f"{kind}-compressed, but cannot be decompressed: {exc}"
        ) from exc


def _reader(kind: str, buffer: io.BytesIO) -> io.BufferedIOBase:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=buffer)
    if kind == "bzip2":
        return bz2.BZ2File(buffer)
    return lzma.LZMAFile(buffer)


def _one_member(data: bytes, limit: int) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = [info for info in archive.infolist() if not info.is_dir()]
        if len(files) != 1:
            names = ", ".join(info.filename for info in files[:5]) or "nothing"
            raise pd.errors.ParserError(
                f"a zip archive holding {len(files)} files ({names}): give one CSV file"
            )
        with archive.open(files[0]) as stream:
            return _bounded(stream, limit, f"zip member {files[0].filename!r}")


def _bounded(stream: IO[bytes] | io.BufferedIOBase, limit: int, what: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise pd.errors.ParserError(
            f"{what} expands to more than {limit:,} bytes: split the file or give it uncompressed"
        )
    return bytes(data)
