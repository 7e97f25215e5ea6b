from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

import analysis.urls
import cleaning.urls
import dashboard.urls
import dosing.urls
import exchange.urls
import patients.urls
import safety.urls
import trial.urls
from core import views as core_views
from core import views_tokens

APPS = [
    trial.urls,
    patients.urls,
    dosing.urls,
    safety.urls,
    cleaning.urls,
    analysis.urls,
    exchange.urls,
    dashboard.urls,
]

router = DefaultRouter()
for app_urls in APPS:
    app_urls.register_api(router)

api_v1 = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The init script from ?script, the page style from a file: works under the strict CSP.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    *trial.urls.api_urlpatterns,
    *exchange.urls.api_urlpatterns,
    *cleaning.urls.api_urlpatterns,
    path("", include(router.urls)),
]

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("session/keepalive/", core_views.session_keepalive, name="session_keepalive"),
    path("healthz", core_views.healthz, name="healthz"),
    path("account/api-tokens/", views_tokens.api_tokens, name="api_tokens"),
    *[pattern for app_urls in APPS for pattern in app_urls.urlpatterns],
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
]

# Error pages with the reason and a way back (issue 16 item 20), not the bare defaults.
handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
