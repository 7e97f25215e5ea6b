"""The GVHD/SOS status carried forward to a visit (issue 16 item 18d). Pure: no Django.

A coordinator recording a cycle re-enters the patient's GVHD/SOS status at the visit (it
feeds the pre-dose safety check, PROTOCOL s3). The screen proposes each of the three
status fields from the latest record that says something about it, and names that record,
so the coordinator confirms or changes it: a proposal is never saved as new data unless
the coordinator confirms it (``unconfirmed``).

Per field, the candidates are, on or before the visit date:

- the previous visit (the latest cycle with a day 1 before the visit): the value recorded
  there, if one was (a "Not recorded" there proposes nothing from it);
- the GVHD episodes (acute grade and liver GVHD only; an episode says nothing of SOS):
  the status they imply on the visit date (an episode is active from its onset until the
  day it resolved). Acute grade: the highest grade of the active acute episodes, 0 when
  every acute episode has resolved, nothing when an active one has no grade or there is
  no acute episode. Liver GVHD: whether an active episode (acute or chronic) involves the
  liver. Dated by the latest onset or resolution among the episodes it rests on.

The newer candidate wins; on the same date the GVHD episode (the dedicated record) wins.
No record, no proposal: the absence of an episode is not "no GVHD".
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

FIELDS = ("acute_gvhd_grade", "liver_gvhd", "sos")
LABELS = {"acute_gvhd_grade": "active acute GVHD grade", "liver_gvhd": "active liver GVHD", "sos": "SOS/VOD"}

Value = int | bool


@dataclass(frozen=True)
class VisitStatus:
    """The GVHD/SOS status recorded at a previous cycle's visit."""

    cycle_number: int
    day1: date
    acute_gvhd_grade: int | None
    liver_gvhd: bool | None
    sos: bool | None


@dataclass(frozen=True)
class GvhdEpisodeFacts:
    kind: str  # "acute" or "chronic"
    onset: date
    resolved: date | None
    acute_grade: int | None
    liver: bool  # liver involved (a liver stage above 0, or marked involved)


@dataclass(frozen=True)
class CarriedValue:
    field: str
    value: Value
    source: str  # the record it comes from, as the screen names it
    source_date: date

    @property
    def label(self) -> str:
        return LABELS[self.field]


@dataclass(frozen=True)
class CarriedStatus:
    values: tuple[CarriedValue, ...]

    def get(self, field: str) -> CarriedValue | None:
        return next((v for v in self.values if v.field == field), None)

    @property
    def sources(self) -> str:
        """Every record the proposal rests on, once each, in field order."""
        seen: list[str] = []
        for v in self.values:
            if v.source not in seen:
                seen.append(v.source)
        return "; ".join(seen)


def _active(episode: GvhdEpisodeFacts, on: date) -> bool:
    return episode.onset <= on and (episode.resolved is None or episode.resolved > on)


def _event(episode: GvhdEpisodeFacts, on: date) -> date:
    """The episode's latest news on ``on``: its resolution if already resolved, else its onset."""
    return episode.resolved if episode.resolved is not None and episode.resolved <= on else episode.onset


def _episode_text(episode: GvhdEpisodeFacts, on: date) -> str:
    grade = f" grade {episode.acute_grade}" if episode.kind == "acute" and episode.acute_grade is not None else ""
    resolved = f", resolved {episode.resolved.isoformat()}" if episode.resolved and episode.resolved <= on else ""
    return f"the {episode.kind}{grade} GVHD episode of {episode.onset.isoformat()}{resolved}"


def _from_episodes(field: str, episodes: list[GvhdEpisodeFacts], on: date) -> CarriedValue | None:
    """The status the episodes imply on ``on``, named by the episode that decides it (an
    active one, else the latest news) and dated by the latest news among them."""
    if field == "acute_gvhd_grade":
        relevant = [e for e in episodes if e.kind == "acute"]
        active = [e for e in relevant if _active(e, on)]
        if not relevant or any(e.acute_grade is None for e in active):
            return None
        deciding = [e for e in active if e.acute_grade == max(e.acute_grade or 0 for e in active)]
        value: Value = max((e.acute_grade or 0 for e in active), default=0)
    elif field == "liver_gvhd":
        relevant = episodes
        if not relevant:
            return None
        deciding = [e for e in relevant if _active(e, on) and e.liver]
        value = bool(deciding)
    else:  # SOS: not a GVHD episode's to say
        return None
    latest = max(relevant, key=lambda e: (_event(e, on), e.onset))
    named = max(deciding, key=lambda e: e.onset) if deciding else latest
    return CarriedValue(field, value, _episode_text(named, on), _event(latest, on))


def _from_visit(field: str, visit: VisitStatus | None) -> CarriedValue | None:
    if visit is None:
        return None
    value = getattr(visit, field)
    if value is None:
        return None
    source = f"the cycle {visit.cycle_number} visit of {visit.day1.isoformat()}"
    return CarriedValue(field, value, source, visit.day1)


def carried_forward(
    visit_date: date, visits: Iterable[VisitStatus], episodes: Iterable[GvhdEpisodeFacts]
) -> CarriedStatus:
    """What the screen proposes for the visit of ``visit_date`` (see the module's docstring)."""
    earlier = [v for v in visits if v.day1 < visit_date]
    previous = max(earlier, key=lambda v: (v.day1, v.cycle_number)) if earlier else None
    known = [e for e in episodes if e.onset <= visit_date]
    values: list[CarriedValue] = []
    for field in FIELDS:
        candidates = [c for c in (_from_visit(field, previous), _from_episodes(field, known, visit_date)) if c]
        if candidates:
            # max keeps the first of equals: list the episode first so it wins a tie
            values.append(max(reversed(candidates), key=lambda c: c.source_date))
    return CarriedStatus(tuple(values))


def unconfirmed(carried: CarriedStatus, submitted: Mapping[str, object]) -> tuple[str, ...]:
    """The fields whose submitted value is still the carried-forward one: saved only when
    the coordinator confirms them (a changed value is the coordinator's own entry)."""
    return tuple(
        v.field for v in carried.values if submitted.get(v.field) is not None and submitted.get(v.field) == v.value
    )
