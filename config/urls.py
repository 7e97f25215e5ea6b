from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from core import views as core_views
from patients import views as patient_views
from patients.api import PatientViewSet
from trial import views as trial_views
from trial.api import TrialViewSet

router = DefaultRouter()
router.register("trials", TrialViewSet, basename="trial")
router.register("patients", PatientViewSet, basename="patient")

api_v1 = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", trial_views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("session/keepalive/", core_views.session_keepalive, name="session_keepalive"),
    path("healthz", core_views.healthz, name="healthz"),
    path("trials/<int:trial_id>/", trial_views.trial_detail, name="trial_detail"),
    path("trials/<int:trial_id>/patients/", patient_views.patient_list, name="patient_list"),
    path("trials/<int:trial_id>/patients/new/", patient_views.patient_create, name="patient_create"),
    path("patients/<int:patient_id>/", patient_views.patient_detail, name="patient_detail"),
    path("patients/<int:patient_id>/edit/", patient_views.patient_edit, name="patient_edit"),
    path("patients/<int:patient_id>/history/", patient_views.patient_history, name="patient_history"),
    path("patients/<int:patient_id>/sign/", patient_views.patient_sign, name="patient_sign"),
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
]
