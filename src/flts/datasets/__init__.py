"""Data sets shipped inside the package, so the project runs offline with no download.

``barcelona_lte``: LTE base-station traffic at the PobleSec site, 2-minute step (see its DATA.md).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGE = "flts.datasets"
_FOLDER = "barcelona_lte"
TRAIN_FILE = "PobleSec.csv"
TEST_FILE = "PobleSec_test.csv"


def _bundled(name: str) -> Path:
    path = Path(str(resources.files(_PACKAGE).joinpath(_FOLDER, name)))
    if not path.is_file():
        raise FileNotFoundError(f"bundled data file {name} is missing from the installed package")
    return path


def bundled_train_csv() -> Path:
    """The bundled training CSV (15,927 rows, 2018-02-05 23:40 to 2018-02-28 02:32)."""
    return _bundled(TRAIN_FILE)


def bundled_test_csv() -> Path:
    """The bundled test CSV: the contiguous tail after the training file (3,982 rows)."""
    return _bundled(TEST_FILE)
