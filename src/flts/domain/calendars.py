"""Public-holiday calendars by code ("DE", "ES-CT"): parsing and checking the code a run names
(``PreprocessConfig.holidays``), and the ``holidays`` package's calendar behind it. How the days
become model inputs is ``flts.forecasting.public_holidays``."""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from typing import Any

_CODE = re.compile(r"^([A-Za-z]{2,3})(?:-([A-Za-z0-9]{1,6}))?$")


def split_code(code: str) -> tuple[str, str | None]:
    """``"ES-CT"`` -> ``("ES", "CT")``; ValueError naming the expected form otherwise."""
    match = _CODE.match(code.strip())
    if match is None:
        raise ValueError(
            f"holiday calendar {code!r}: expected a country code, optionally with a "
            "subdivision (DE, ES-CT, US-CA)"
        )
    country, subdivision = match.groups()
    return country.upper(), None if subdivision is None else subdivision.upper()


def check_code(code: str) -> str:
    """The normalised code if the ``holidays`` package knows it; ValueError saying why not."""
    country, subdivision = split_code(code)
    calendar_for(country, subdivision)
    return country if subdivision is None else f"{country}-{subdivision}"


def calendar_for(country: str, subdivision: str | None) -> Any:
    """The package's calendar (dates fill in per year as they are asked for)."""
    import holidays

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(f"holiday calendar {country!r}: not a country the holidays package knows")
    if subdivision is not None and subdivision not in supported[country]:
        known = ", ".join(supported[country][:12]) or "none"
        raise ValueError(
            f"holiday calendar {country}-{subdivision}: {country} has no subdivision "
            f"{subdivision!r} (some it has: {known})"
        )
    return _calendar(country, subdivision)


@cache
def _calendar(country: str, subdivision: str | None) -> Any:
    import holidays

    return holidays.country_holidays(country, subdiv=subdivision)


def holidays_on(day: date) -> dict[str, str]:
    """Country code -> holiday name for every country of the ``holidays`` package (two-letter
    codes; its three-letter aliases are the same calendars) where ``day`` is a public holiday.
    Names are English where the package has them. About 0.3 s for the ~250 countries."""
    import holidays

    found: dict[str, str] = {}
    for code in holidays.list_supported_countries():
        if len(code) != 2:
            continue
        name = _calendar_of_year(code, day.year).get(day)
        if name:
            found[code] = str(name)
    return found


@cache
def _calendar_of_year(country: str, year: int) -> Any:
    import holidays

    # A country without English names keeps its own language (the package falls back itself).
    return holidays.country_holidays(country, years=year, language="en_US")
