"""Business-time arithmetic against hand-computed expectations, and its algebra as properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.case.business_time import (
    Calendar,
    NoBusinessTime,
    add_business_minutes,
    business_minutes_between,
    calendar_from,
)

BKK = ZoneInfo("Asia/Bangkok")
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")
WEEK = ("mon", "tue", "wed", "thu", "fri")

# Thai office hours with a lunch break: 3.5 h + 4.5 h = 480 minutes a day.
THAI = calendar_from(
    "Asia/Bangkok",
    {day: [["08:30", "12:00"], ["13:00", "17:30"]] for day in WEEK},
    ["2026-12-07", "2026-12-10"],
)
BERLIN_OFFICE = calendar_from("Europe/Berlin", {day: [["09:00", "17:00"]] for day in WEEK}, [])
BERLIN_ALWAYS = calendar_from(
    "Europe/Berlin", {day: [["00:00", "24:00"]] for day in (*WEEK, "sat", "sun")}, []
)
# A night shift across midnight: Monday 22:00-24:00 and Tuesday 00:00-02:00.
HCM_NIGHT = calendar_from("Asia/Ho_Chi_Minh", {"mon": [["22:00", "24:00"]],
                                               "tue": [["00:00", "02:00"]]}, [])  # fmt: skip


def bkk(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BKK)  # type: ignore[misc]


class TestAdd:
    def test_within_one_interval(self) -> None:
        assert add_business_minutes(THAI, bkk(2026, 11, 23, 10, 0), 60) == bkk(2026, 11, 23, 11)

    def test_skips_the_lunch_break(self) -> None:
        # 30 minutes before noon, the other 30 after 13:00.
        assert add_business_minutes(THAI, bkk(2026, 11, 23, 11, 30), 60) == bkk(
            2026, 11, 23, 13, 30
        )

    def test_starting_in_the_lunch_break(self) -> None:
        assert add_business_minutes(THAI, bkk(2026, 11, 23, 12, 15), 45) == bkk(
            2026, 11, 23, 13, 45
        )

    def test_ending_exactly_at_noon_stays_before_lunch(self) -> None:
        assert add_business_minutes(THAI, bkk(2026, 11, 23, 11, 0), 60) == bkk(2026, 11, 23, 12)

    def test_over_the_weekend(self) -> None:
        # Friday 17:00: 30 minutes left that day, the other 30 from Monday 08:30.
        assert add_business_minutes(THAI, bkk(2026, 11, 27, 17, 0), 60) == bkk(2026, 11, 30, 9)

    def test_from_a_saturday(self) -> None:
        assert add_business_minutes(THAI, bkk(2026, 11, 28, 10, 0), 10) == bkk(2026, 11, 30, 8, 40)

    def test_over_a_weekend_and_a_holiday(self) -> None:
        # Friday 4 December: 30 minutes; Monday 7 December is a holiday; Tuesday 08:30 + 30.
        assert add_business_minutes(THAI, bkk(2026, 12, 4, 17, 0), 60) == bkk(2026, 12, 8, 9)

    def test_several_days(self) -> None:
        # Three full days (1440 minutes) from Tuesday 8 Dec 08:30: Tue, Wed, (Thu holiday),
        # Fri, ending Friday 17:30.
        assert add_business_minutes(THAI, bkk(2026, 12, 8, 8, 30), 1440) == bkk(
            2026, 12, 11, 17, 30
        )

    def test_across_midnight(self) -> None:
        start = datetime(2026, 11, 23, 23, 0, tzinfo=HCM)
        assert add_business_minutes(HCM_NIGHT, start, 120) == datetime(
            2026, 11, 24, 1, 0, tzinfo=HCM
        )

    def test_zero_minutes_is_the_start(self) -> None:
        saturday = bkk(2026, 11, 28, 10, 0)
        assert add_business_minutes(THAI, saturday, 0) == saturday

    def test_result_is_utc(self) -> None:
        result = add_business_minutes(THAI, bkk(2026, 11, 23, 10, 0), 60)
        assert result.tzinfo == UTC
        assert result == datetime(2026, 11, 23, 4, 0, tzinfo=UTC)

    def test_berlin_over_the_spring_switch(self) -> None:
        # Friday 27 March 16:00 CET (15:00Z) + 120: one hour on Friday, then Monday 30 March
        # 09:00 CEST (07:00Z) + 60 = 08:00Z: the offset changed over the weekend.
        start = datetime(2026, 3, 27, 16, 0, tzinfo=BERLIN)
        assert add_business_minutes(BERLIN_OFFICE, start, 120) == datetime(
            2026, 3, 30, 8, 0, tzinfo=UTC
        )

    def test_berlin_over_the_autumn_switch(self) -> None:
        # Friday 23 October 16:00 CEST (14:00Z) + 120 -> Monday 26 October 10:00 CET (09:00Z).
        start = datetime(2026, 10, 23, 16, 0, tzinfo=BERLIN)
        assert add_business_minutes(BERLIN_OFFICE, start, 120) == datetime(
            2026, 10, 26, 9, 0, tzinfo=UTC
        )

    def test_interval_containing_the_skipped_hour(self) -> None:
        # Sunday 29 March 2026 01:00 CET = 00:00Z; 90 real minutes later is 01:30Z = 03:30 CEST.
        start = datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN)
        assert add_business_minutes(BERLIN_ALWAYS, start, 90) == datetime(
            2026, 3, 29, 1, 30, tzinfo=UTC
        )

    def test_negative_minutes_are_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            add_business_minutes(THAI, bkk(2026, 11, 23, 10), -1)

    def test_naive_start_is_refused(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            add_business_minutes(THAI, datetime(2026, 11, 23, 10), 5)  # noqa: DTZ001

    def test_calendar_without_hours(self) -> None:
        empty = Calendar(time_zone="Asia/Bangkok", hours={})
        with pytest.raises(NoBusinessTime):
            add_business_minutes(empty, bkk(2026, 11, 23, 10), 5)


class TestBetween:
    def test_same_day_with_lunch(self) -> None:
        # 08:00-18:00 covers the whole working day: 480 minutes.
        assert business_minutes_between(THAI, bkk(2026, 11, 23, 8), bkk(2026, 11, 23, 18)) == 480

    def test_over_a_weekend(self) -> None:
        # Friday 17:00 -> Monday 09:00: 30 + 30.
        assert business_minutes_between(THAI, bkk(2026, 11, 27, 17), bkk(2026, 11, 30, 9)) == 60

    def test_over_a_holiday(self) -> None:
        # Monday 7 December is a holiday: Monday 08:00 -> Tuesday 10:00 is 90 minutes.
        assert business_minutes_between(THAI, bkk(2026, 12, 7, 8), bkk(2026, 12, 8, 10)) == 90

    def test_reversed_is_negative(self) -> None:
        assert business_minutes_between(THAI, bkk(2026, 11, 30, 9), bkk(2026, 11, 27, 17)) == -60

    def test_across_midnight(self) -> None:
        a = datetime(2026, 11, 23, 21, 0, tzinfo=HCM)
        b = datetime(2026, 11, 24, 3, 0, tzinfo=HCM)
        assert business_minutes_between(HCM_NIGHT, a, b) == 240

    def test_the_spring_sunday_has_23_hours(self) -> None:
        a = datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)
        b = datetime(2026, 3, 30, 0, 0, tzinfo=BERLIN)
        assert business_minutes_between(BERLIN_ALWAYS, a, b) == 23 * 60

    def test_the_autumn_sunday_has_25_hours(self) -> None:
        a = datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN)
        b = datetime(2026, 10, 26, 0, 0, tzinfo=BERLIN)
        assert business_minutes_between(BERLIN_ALWAYS, a, b) == 25 * 60

    def test_office_week_over_a_switch_is_still_40_hours(self) -> None:
        a = datetime(2026, 3, 28, 0, 0, tzinfo=BERLIN)
        b = datetime(2026, 4, 4, 0, 0, tzinfo=BERLIN)
        assert business_minutes_between(BERLIN_OFFICE, a, b) == 40 * 60

    def test_offsets_of_the_inputs_do_not_matter(self) -> None:
        a = bkk(2026, 11, 23, 10)
        assert business_minutes_between(THAI, a.astimezone(UTC), bkk(2026, 11, 23, 11)) == 60


CALENDARS = [THAI, BERLIN_OFFICE, BERLIN_ALWAYS, HCM_NIGHT]
starts = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
).map(lambda value: value.replace(microsecond=0))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CALENDARS), starts, st.integers(0, 30_000))
def test_measuring_back_gives_the_minutes_added(
    calendar: Calendar, start: datetime, minutes: int
) -> None:
    end = add_business_minutes(calendar, start, minutes)
    assert end >= start
    assert business_minutes_between(calendar, start, end) == minutes


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CALENDARS), starts, st.integers(0, 20_000), st.integers(0, 20_000))
def test_adding_is_monotonic_and_additive(
    calendar: Calendar, start: datetime, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    assert add_business_minutes(calendar, start, low) <= add_business_minutes(calendar, start, high)
    if a > 0:
        middle = add_business_minutes(calendar, start, a)
        assert add_business_minutes(calendar, middle, b) == add_business_minutes(
            calendar, start, a + b
        )


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CALENDARS), starts, st.integers(0, 40 * 24 * 60), st.integers(0, 40 * 24))
def test_between_adds_up_over_a_split(
    calendar: Calendar, start: datetime, first: int, second: int
) -> None:
    middle = start + timedelta(minutes=first)
    end = middle + timedelta(hours=second)
    total = business_minutes_between(calendar, start, end)
    parts = business_minutes_between(calendar, start, middle) + business_minutes_between(
        calendar, middle, end
    )
    assert total == pytest.approx(parts, abs=1e-9)
    assert 0 <= total <= (end - start) / timedelta(minutes=1)


def test_holidays_are_dates_in_the_calendar_zone() -> None:
    # 7 December in Bangkok starts 6 December 17:00Z: the holiday follows the local date.
    assert date(2026, 12, 7) in THAI.holidays
    assert (
        business_minutes_between(
            THAI, datetime(2026, 12, 7, 1, 0, tzinfo=UTC), datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
        )
        == 0
    )


def test_long_ranges_are_counted_in_full() -> None:
    # Ten years of Berlin office weeks: 40 hours each, whatever the daylight saving switches.
    a = datetime(2026, 1, 5, 0, 0, tzinfo=BERLIN)  # a Monday
    weeks = 522
    b = a + timedelta(weeks=weeks)
    assert business_minutes_between(BERLIN_OFFICE, a, b) == weeks * 40 * 60
