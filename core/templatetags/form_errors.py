"""``{{ form|error_count }}``: every message of a form (the summary counts problems, not fields)."""

from django import template

register = template.Library()


@register.filter
def error_count(form):  # type: ignore[no-untyped-def]
    return sum(len(messages) for messages in form.errors.values())
