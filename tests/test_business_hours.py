from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot.business_hours import BusinessHours
from bot.settings import Settings

UTC = dt.timezone.utc


def hours() -> BusinessHours:
    return BusinessHours.load(Settings().business_hours_file)


def test_open_on_a_weekday_afternoon_in_warsaw() -> None:
    # Tuesday 2026-11-24 13:00 UTC is 14:00 in Warsaw
    assert hours().is_open(dt.datetime(2026, 11, 24, 13, 0, tzinfo=UTC))


def test_closed_at_night_and_on_sunday() -> None:
    assert not hours().is_open(dt.datetime(2026, 11, 24, 19, 30, tzinfo=UTC))  # 20:30 Warsaw
    assert not hours().is_open(dt.datetime(2026, 11, 22, 12, 0, tzinfo=UTC))  # Sunday


def test_next_opening_skips_sunday_and_uses_local_time() -> None:
    saturday_evening = dt.datetime(2026, 11, 28, 16, 0, tzinfo=UTC)  # 17:00 Warsaw, after closing
    opening = hours().next_opening(saturday_evening)
    assert opening.isoformat() == "2026-11-30T08:00:00+01:00"  # Monday


def test_holidays_are_closed_all_day() -> None:
    christmas_noon = dt.datetime(2026, 12, 25, 11, 0, tzinfo=UTC)  # a Friday
    assert not hours().is_open(christmas_noon)
    assert hours().next_opening(christmas_noon).date() == dt.date(2026, 12, 28)


def test_summer_time_is_respected(tmp_path: Path) -> None:
    # 06:30 UTC in July is 08:30 in Warsaw (UTC+2): open
    assert hours().is_open(dt.datetime(2027, 7, 6, 6, 30, tzinfo=UTC))
    assert not hours().is_open(dt.datetime(2027, 1, 5, 6, 30, tzinfo=UTC))  # 07:30 in winter
