"""``{{ value|label }}``: the human label of an enumeration code (dashboard/labels.py)."""

from django import template

from dashboard.labels import label as label_of

register = template.Library()


@register.filter
def label(value):  # type: ignore[no-untyped-def]
    return label_of(value)


@register.filter
def iso_minute(value):  # type: ignore[no-untyped-def]
    """A stored ISO 8601 date-time string ("2020-12-21T10:00:00+00:00") as the pages show
    every time: "2020-12-21 10:00" (UTC)."""
    import datetime

    from django.utils import timezone

    if not value:
        return ""
    try:
        moment = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return value
    if timezone.is_aware(moment):
        moment = moment.astimezone(datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


@register.filter
def labels(values):  # type: ignore[no-untyped-def]
    """Each code of a list as its label (``{{ roles|labels|join:", " }}``)."""
    return [label_of(v) for v in values]


@register.filter
def label_codes(text):  # type: ignore[no-untyped-def]
    """A stored sentence with codes in it ("diagnosis b_all") with each code as its label."""
    from dashboard.labels import label_codes_in

    return label_codes_in(str(text or ""))


def _outcome_badge(code: str, text: str):  # type: ignore[no-untyped-def]
    from django.utils.html import format_html

    from dashboard.labels import outcome_style

    css, icon = outcome_style(code)
    return format_html(
        '<span class="outcome outcome-{}" data-outcome="{}">'
        '<span class="outcome-icon" aria-hidden="true">{}</span> {}</span>',
        css,
        css,
        icon,
        text,
    )


@register.filter
def outcome(code):  # type: ignore[no-untyped-def]
    """A criterion status or a screening result as a badge: its word, an icon and a colour
    (pass / fail / missing data are never told apart by colour alone)."""
    return _outcome_badge(str(code), label_of(code))


@register.filter
def screening_outcome(screening):  # type: ignore[no-untyped-def]
    """A screening's overall result badge: "Incomplete: 2 criteria missing", never a failure."""
    from dashboard.labels import screening_outcome_text

    return _outcome_badge(screening.result, screening_outcome_text(screening.result, screening.criteria))
