"""Arithmetic in business time: working hours per weekday in a time zone, minus holidays.

Pure functions over a ``Calendar``; nothing here touches the database. Working intervals are
local wall-clock times in the calendar's zone (zoneinfo), turned into absolute instants day by
day, so a day on which daylight saving time starts or ends has its real length: 09:00-17:00 in
Europe/Berlin is 8 hours on every working day, and an interval spanning the switch at 02:00-03:00
is an hour shorter (or longer) that night. Local times that do not exist (the skipped hour) are
read with ``fold=0`` and normalised through UTC, so they land after the gap.

Business minutes are real minutes that fall inside working intervals; fractions of a minute
count as fractions (``business_minutes_between`` returns a float, ``add_business_minutes`` takes
one), so adding m minutes and measuring back gives m exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar without a single working minute in this many days cannot meet any target.
MAX_SEARCH_DAYS = 366 * 5


@dataclass(frozen=True)
class Interval:
    """Working time on one weekday, local wall clock; ``end`` None means midnight."""

    start: time
    end: time | None

    def minutes(self) -> int:
        end = 24 * 60 if self.end is None else self.end.hour * 60 + self.end.minute
        return end - (self.start.hour * 60 + self.start.minute)


@dataclass(frozen=True)
class Calendar:
    time_zone: str
    # Weekday index (0 = Monday) -> its intervals, sorted and disjoint.
    hours: Mapping[int, Sequence[Interval]]
    holidays: frozenset[date] = field(default_factory=frozenset)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def is_empty(self) -> bool:
        return not any(interval.minutes() > 0 for day in self.hours.values() for interval in day)


class NoBusinessTime(ValueError):
    """The calendar has no working time in the years searched."""


def _instant(day: date, at: time | None, zone: ZoneInfo) -> datetime:
    if at is None:
        local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    else:
        local = datetime.combine(day, at, tzinfo=zone)
    # Through UTC: a local time in a DST gap becomes the real instant after the gap.
    return local.astimezone(UTC)


def _day_spans(calendar: Calendar, day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    if day in calendar.holidays:
        return []
    spans = []
    for interval in calendar.hours.get(day.weekday(), ()):
        start = _instant(day, interval.start, zone)
        end = _instant(day, interval.end, zone)
        if end > start:
            spans.append((start, end))
    return spans


def _spans_from(
    calendar: Calendar, start: datetime, days: int = MAX_SEARCH_DAYS
) -> Iterator[tuple[datetime, datetime]]:
    """Working spans (UTC) that end after ``start``, in order, clipped to begin at ``start``,
    over ``days`` local days."""
    zone = calendar.zone
    day = start.astimezone(zone).date() - timedelta(days=1)
    for _ in range(days):
        for span_start, span_end in _day_spans(calendar, day, zone):
            if span_end > start:
                yield max(span_start, start), span_end
        day += timedelta(days=1)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("business time needs aware datetimes")
    return value.astimezone(UTC)


def add_business_minutes(calendar: Calendar, start: datetime, minutes: float) -> datetime:
    """The instant ``minutes`` of working time after ``start`` (UTC).

    Zero minutes from outside working hours is ``start`` itself: nothing is owed yet.

    Raises:
        ValueError: ``minutes`` is negative or ``start`` is naive.
        NoBusinessTime: the calendar has no working time at all.
    """
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    begin = _utc(start)
    if minutes == 0:
        return begin
    if calendar.is_empty():
        raise NoBusinessTime("the calendar has no working hours")
    left = timedelta(minutes=minutes)
    for span_start, span_end in _spans_from(calendar, begin):
        length = span_end - span_start
        if left <= length:
            return span_start + left
        left -= length
    raise NoBusinessTime("the calendar has no working time in the years searched")


def business_minutes_between(calendar: Calendar, a: datetime, b: datetime) -> float:
    """Working minutes from ``a`` to ``b``; negative when ``b`` is before ``a``."""
    first, last = _utc(a), _utc(b)
    if last < first:
        return -business_minutes_between(calendar, last, first)
    if last == first or calendar.is_empty():
        return 0.0
    total = timedelta()
    # Every local day the range touches, plus one on each side for zone offsets.
    days = (last - first).days + 3
    for span_start, span_end in _spans_from(calendar, first, days):
        if span_start >= last:
            break
        total += min(span_end, last) - span_start
    return total / timedelta(minutes=1)


def parse_hours(raw: Mapping[str, Sequence[Sequence[str]]]) -> dict[int, list[Interval]]:
    """``{"mon": [["08:30", "12:00"], ...]}`` as intervals (already validated input)."""
    hours: dict[int, list[Interval]] = {}
    for name, intervals in raw.items():
        day = WEEKDAYS.index(name)
        hours[day] = sorted(
            (
                Interval(
                    start=time.fromisoformat(start),
                    end=None if end == "24:00" else time.fromisoformat(end),
                )
                for start, end in intervals
            ),
            key=lambda interval: interval.start,
        )
    return hours


def calendar_from(
    time_zone: str, hours: Mapping[str, Sequence[Sequence[str]]], holidays: Sequence[str | date]
) -> Calendar:
    return Calendar(
        time_zone=time_zone,
        hours=parse_hours(hours),
        holidays=frozenset(
            day if isinstance(day, date) else date.fromisoformat(day) for day in holidays
        ),
    )
