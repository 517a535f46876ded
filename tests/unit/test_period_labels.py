"""Quarter and ISO-week labels as timestamps (``flts.forecasting.period_labels``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flts.domain.config import PreprocessConfig
from flts.forecasting.csv_text import parse_timestamps
from flts.forecasting.data import read_csv_with_notes
from flts.forecasting.period_labels import parse_period_labels
from flts.forecasting.time_step import infer_step


@pytest.mark.parametrize(
    "written", ["2016Q3", "2016-Q3", "2016 Q3", "2016/q3", "Q3 2016", "Q3-2016"]
)
def test_a_quarter_label_is_the_quarters_first_day(written: str) -> None:
    parsed, how = parse_timestamps(pd.Series([written, "2016Q4"]))
    assert parsed.tolist() == [
        pd.Timestamp("2016-07-01", tz="UTC"),
        pd.Timestamp("2016-10-01", tz="UTC"),
    ]
    assert how.startswith("quarter labels")


def test_an_iso_week_is_its_monday_or_the_weekday_written() -> None:
    parsed, how = parse_timestamps(pd.Series(["2019-W01", "2019W02", "2020-W53", "2019-W02-3"]))
    assert [t.date().isoformat() for t in parsed] == [
        "2018-12-31",  # ISO week 1 of 2019 starts in 2018
        "2019-01-07",
        "2020-12-28",
        "2019-01-09",
    ]
    assert how == "ISO 8601 weeks (2019-W02: its Monday)"


def test_labels_are_read_only_when_every_value_is_one() -> None:
    assert parse_period_labels(pd.Series(["2016Q1", "2016-04-01"])) is None
    assert parse_period_labels(pd.Series(["2019-W53"])) is None  # 2019 has 52 ISO weeks
    assert parse_period_labels(pd.Series(["Q5 2016"])) is None
    parsed, _ = parse_timestamps(pd.Series(["2016Q1", "2016 Q5"]))
    assert parsed.isna().sum() == 1  # the error then names the value that is no timestamp


def test_a_quarterly_file_labelled_so_steps_by_three_calendar_months() -> None:
    quarters = pd.period_range("2000Q1", periods=40, freq="Q")
    values = 100 + 10 * np.tile([1.0, -1.0, 0.5, -0.5], 10)
    text = "quarter,load\n" + "".join(
        f"{q.year} Q{q.quarter},{v}\n" for q, v in zip(quarters, values, strict=True)
    )
    frame, notes = read_csv_with_notes(
        text.encode(), source="q.csv", config=PreprocessConfig(time_col="quarter", target="load")
    )
    assert frame["ds"].iloc[:2].tolist() == [pd.Timestamp("2000-01-01"), pd.Timestamp("2000-04-01")]
    step = infer_step(frame["ds"])
    assert step is not None
    assert step.months == 3
    assert (
        "q.csv: column 'quarter' read as quarter labels (2016 Q1: the quarter's first day)" in notes
    )
