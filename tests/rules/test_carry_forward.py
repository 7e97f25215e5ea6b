"""The GVHD/SOS status carried forward to a visit (dosing.carry_forward): which record each
status field is proposed from, and which submitted values still need the coordinator's
confirmation."""

from datetime import date

import pytest

from dosing.carry_forward import CarriedStatus, GvhdEpisodeFacts, VisitStatus, carried_forward, unconfirmed

VISIT = date(2024, 5, 27)
C1 = VisitStatus(1, date(2024, 4, 29), acute_gvhd_grade=1, liver_gvhd=False, sos=False)


def acute(onset, grade, resolved=None, liver=False):  # type: ignore[no-untyped-def]
    return GvhdEpisodeFacts("acute", onset, resolved, grade, liver)


def chronic(onset, resolved=None, liver=False):  # type: ignore[no-untyped-def]
    return GvhdEpisodeFacts("chronic", onset, resolved, None, liver)


def proposal(visits=(), episodes=(), on=VISIT):  # type: ignore[no-untyped-def]
    carried = carried_forward(on, visits, episodes)
    return {v.field: (v.value, v.source) for v in carried.values}


def test_nothing_on_file_proposes_nothing() -> None:
    assert proposal() == {}
    # no GVHD episode is not "no GVHD": nothing is proposed from their absence
    assert proposal(episodes=[acute(date(2024, 6, 1), 2)]) == {}  # after the visit


def test_the_previous_visit_is_proposed_with_its_date() -> None:
    assert proposal([C1]) == {
        "acute_gvhd_grade": (1, "the cycle 1 visit of 2024-04-29"),
        "liver_gvhd": (False, "the cycle 1 visit of 2024-04-29"),
        "sos": (False, "the cycle 1 visit of 2024-04-29"),
    }


def test_only_the_latest_earlier_visit_counts_and_not_recorded_proposes_nothing() -> None:
    c2 = VisitStatus(2, date(2024, 5, 27), acute_gvhd_grade=None, liver_gvhd=True, sos=None)
    # the visit being recorded (or a later one) is not "previous"
    assert proposal([C1, c2])["liver_gvhd"] == (False, "the cycle 1 visit of 2024-04-29")
    later = proposal([C1, c2], on=date(2024, 6, 24))
    assert later == {"liver_gvhd": (True, "the cycle 2 visit of 2024-05-27")}


def test_a_gvhd_episode_newer_than_the_visit_wins_for_gvhd_but_not_for_sos() -> None:
    got = proposal([C1], [acute(date(2024, 5, 10), 3, liver=True)])
    episode = "the acute grade 3 GVHD episode of 2024-05-10"
    assert got == {
        "acute_gvhd_grade": (3, episode),
        "liver_gvhd": (True, episode),
        "sos": (False, "the cycle 1 visit of 2024-04-29"),
    }


def test_an_older_episode_loses_to_the_newer_visit() -> None:
    got = proposal([C1], [acute(date(2024, 4, 1), 3, liver=True)])
    assert got["acute_gvhd_grade"] == (1, "the cycle 1 visit of 2024-04-29")
    assert got["liver_gvhd"] == (False, "the cycle 1 visit of 2024-04-29")


def test_a_resolution_is_news_resolved_episodes_propose_none_active() -> None:
    got = proposal([C1], [acute(date(2024, 4, 1), 3, resolved=date(2024, 5, 20), liver=True)])
    source = "the acute grade 3 GVHD episode of 2024-04-01, resolved 2024-05-20"
    assert got["acute_gvhd_grade"] == (0, source)
    assert got["liver_gvhd"] == (False, source)


def test_highest_active_acute_grade_and_chronic_liver_involvement() -> None:
    episodes = [acute(date(2024, 5, 1), 2), acute(date(2024, 5, 5), 1), chronic(date(2024, 5, 12), liver=True)]
    got = proposal([], episodes)
    assert got["acute_gvhd_grade"] == (2, "the acute grade 2 GVHD episode of 2024-05-01")  # the deciding one
    assert got["liver_gvhd"] == (True, "the chronic GVHD episode of 2024-05-12")
    assert "sos" not in got


def test_an_active_acute_episode_without_a_grade_proposes_no_grade() -> None:
    got = proposal([], [acute(date(2024, 5, 1), None)])
    assert "acute_gvhd_grade" not in got and got["liver_gvhd"][0] is False


def test_only_chronic_episodes_say_nothing_of_the_acute_grade() -> None:
    assert "acute_gvhd_grade" not in proposal([], [chronic(date(2024, 5, 1))])


def test_on_the_same_date_the_episode_wins() -> None:
    same = VisitStatus(1, date(2024, 5, 1), acute_gvhd_grade=0, liver_gvhd=False, sos=False)
    got = proposal([same], [acute(date(2024, 5, 1), 2)])
    assert got["acute_gvhd_grade"] == (2, "the acute grade 2 GVHD episode of 2024-05-01")


@pytest.mark.parametrize(
    ("submitted", "expected"),
    [
        ({"acute_gvhd_grade": 1, "liver_gvhd": False, "sos": False}, ("acute_gvhd_grade", "liver_gvhd", "sos")),
        ({"acute_gvhd_grade": 2, "liver_gvhd": False, "sos": True}, ("liver_gvhd",)),  # two changed
        ({"acute_gvhd_grade": 0, "liver_gvhd": True, "sos": None}, ()),  # every one changed
    ],
)
def test_kept_values_need_confirmation_changed_ones_do_not(submitted, expected) -> None:  # type: ignore[no-untyped-def]
    carried = carried_forward(VISIT, [C1], [])
    assert unconfirmed(carried, submitted) == expected


def test_nothing_carried_nothing_to_confirm() -> None:
    assert unconfirmed(CarriedStatus(()), {"acute_gvhd_grade": 0, "liver_gvhd": False, "sos": False}) == ()
