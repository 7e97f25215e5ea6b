"""When can a recorded time be? The "not in the future" rule for the times a trial bundle
carries in as recorded (sign-offs, locks, query threads, SDV marks).

Pure module: no Django import. The services that store such a time ask it, so every
caller (the bundle import today) gets the same message. Clinical dates of a patient
have their own rule (``patients.clinical_dates``), which also bounds them below.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def future_date_problems(label: str, value: date | None, today: date, zone: str) -> tuple[str, ...]:
    """A date of something that happened: not after ``today`` (in the trial's ``zone``)."""
    if value is None or value <= today:
        return ()
    return (f"The {label} {value.isoformat()} is in the future: it is at most today ({today.isoformat()}, {zone}).",)


def future_time_problems(label: str, value: datetime | None, now: datetime, zone: str) -> tuple[str, ...]:
    """A time something happened (timezone-aware): not after ``now``. The message shows
    both in the trial's ``zone``."""
    if value is None or value <= now:
        return ()
    tz = ZoneInfo(zone)
    shown, limit = value.astimezone(tz), now.astimezone(tz)
    return (
        f"The {label} {shown:%Y-%m-%d %H:%M} is in the future: it is at most now ({limit:%Y-%m-%d %H:%M}, {zone}).",
    )
