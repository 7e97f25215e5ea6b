"""core.recorded_times: recorded times and dates are not in the future, as worked examples."""

from datetime import UTC, date, datetime, timedelta

from core.recorded_times import future_date_problems, future_time_problems

NOW = datetime(2026, 3, 11, 11, 30, tzinfo=UTC)  # 2026-03-12 00:30 in Auckland (UTC+13)


def test_a_time_up_to_now_is_accepted_and_a_later_one_refused_in_the_trial_zone() -> None:
    assert future_time_problems("verification time", NOW, NOW, "Pacific/Auckland") == ()
    assert future_time_problems("verification time", None, NOW, "Pacific/Auckland") == ()
    assert future_time_problems("verification time", NOW - timedelta(days=400), NOW, "UTC") == ()
    assert future_time_problems("verification time", NOW + timedelta(minutes=1), NOW, "Pacific/Auckland") == (
        "The verification time 2026-03-12 00:31 is in the future: it is at most now (2026-03-12 00:30, "
        "Pacific/Auckland).",
    )


def test_a_date_is_compared_with_today_where_the_trial_runs() -> None:
    today_in_auckland = date(2026, 3, 12)  # already the 12th there while it is the 11th in UTC
    assert future_date_problems("sign-off date", date(2026, 3, 12), today_in_auckland, "Pacific/Auckland") == ()
    assert future_date_problems("sign-off date", None, today_in_auckland, "Pacific/Auckland") == ()
    assert future_date_problems("sign-off date", date(2026, 3, 13), today_in_auckland, "Pacific/Auckland") == (
        "The sign-off date 2026-03-13 is in the future: it is at most today (2026-03-12, Pacific/Auckland).",
    )
