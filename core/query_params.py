"""The one place HTML pages read integer query parameters (``?site=``, ``?patient=``,
``?dose_level=``...): issue 16 item 12.

``"²".isdigit()`` is true and ``int("²")`` raises, and a 25-digit id overflows the
database's bigint: both were 500s. Here anything but ASCII digits within range is
ignored, as a filter that matches nothing would be, and the page says so in a message
naming the parameter (a filter page stays usable; nothing is written from a GET). The
API's equivalent, which refuses with a 400, is core.api.query_int.
"""

from django.contrib import messages
from django.http import HttpRequest

MAX_ID = 2_147_483_647  # the largest id a page can name (the database's integer keys start at 1)


def int_param(request: HttpRequest, name: str, *, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
    """``?name=`` as an int; None when absent or blank, and None with a warning message on
    the page when it is not a whole number from ``minimum`` to ``maximum``."""
    raw = request.GET.get(name, "").strip()
    if raw == "":
        return None
    if raw.isascii() and raw.isdigit() and minimum <= int(raw) <= maximum:
        return int(raw)
    messages.warning(
        request,
        f"The filter '{name}' was ignored: a whole number from {minimum} to {maximum} is expected, not '{raw[:30]}'.",
    )
    return None
