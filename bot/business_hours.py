"""When human agents are at work: a weekly schedule, a timezone and holidays."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class BusinessHours:
    timezone: ZoneInfo
    weekly: dict[int, tuple[dt.time, dt.time]]  # weekday (0 = Monday) -> open, close
    holidays: frozenset[dt.date]

    @classmethod
    def load(cls, path: Path) -> BusinessHours:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        weekly = {}
        for index, day in enumerate(DAYS):
            hours = (data.get("weekly") or {}).get(day)
            if hours:
                opens, closes = (dt.time.fromisoformat(h) for h in hours)
                if opens >= closes:
                    raise ValueError(f"{path}: {day} opens at {opens} but closes at {closes}")
                weekly[index] = (opens, closes)
        holidays = frozenset(
            h if isinstance(h, dt.date) else dt.date.fromisoformat(str(h)) for h in data.get("holidays") or ()
        )
        return cls(ZoneInfo(data["timezone"]), weekly, holidays)

    def _hours_on(self, day: dt.date) -> tuple[dt.time, dt.time] | None:
        return None if day in self.holidays else self.weekly.get(day.weekday())

    def is_open(self, now: dt.datetime) -> bool:
        local = now.astimezone(self.timezone)
        hours = self._hours_on(local.date())
        return bool(hours) and hours[0] <= local.time() < hours[1]

    def next_opening(self, now: dt.datetime) -> dt.datetime:
        """The next moment agents start work (now, if open now)."""
        local = now.astimezone(self.timezone)
        if self.is_open(local):
            return local
        for offset in range(0, 370):
            day = local.date() + dt.timedelta(days=offset)
            hours = self._hours_on(day)
            if not hours:
                continue
            opening = dt.datetime.combine(day, hours[0], tzinfo=self.timezone)
            if opening > local:
                return opening
        raise ValueError("no opening hours in the next year; check the business hours file")
