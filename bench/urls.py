"""The project's URLs plus ``/bench/bare/``: the anchor every benchmark compares with.

The bare view goes through the same middleware as every page (session, CSRF-exempt for
the write benchmark, authentication, the session-timeout middleware that saves the
session) and returns a tiny response without touching any clinical table.
"""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def bare(request):  # type: ignore[no-untyped-def]
    return HttpResponse("ok" if request.user.is_authenticated else "anonymous", content_type="text/plain")


urlpatterns = [path("bench/bare/", bare, name="bench_bare"), *project_urlpatterns]
