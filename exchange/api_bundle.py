"""``POST /api/v1/trials/import/``: the trial-bundle import for administrators.

The same ``bundle_import`` as ``manage.py import_trial``. Only staff, or a user holding
an active admin role in some trial, may import (a new trial has no grants yet, so the
trial's own admin role cannot be asked for). A refused bundle answers 400 with every
problem listed by JSON path in ``errors["bundle"]``; nothing is written.
"""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.bundle import BundleInvalid, bundle_import
from trial.models import RoleGrant


class CanImportBundles(permissions.BasePermission):
    message = "Only an administrator (staff, or the admin role in a trial) imports trial bundles."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if user.is_staff or user.is_superuser:
            return True
        return RoleGrant.objects.filter(user=user, role=RoleGrant.Role.ADMIN, revoked_at__isnull=True).exists()


class ImportedTrialOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    patients = serializers.IntegerField()


class TrialBundleImportView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanImportBundles]

    @extend_schema(
        request={"application/json": {"type": "object", "description": "A trial-bundle/1 document (docs/bundle.md)."}},
        responses={201: ImportedTrialOutput, 400: OpenApiResponse(description="Every problem, by JSON path.")},
    )
    def post(self, request: Request) -> Response:
        try:
            trial = bundle_import(request.data, user=request.user)
        except BundleInvalid as exc:
            return Response(
                {
                    "detail": f"The trial bundle was refused ({len(exc.problems)} problem(s)); nothing was written.",
                    "errors": {"bundle": exc.problems},
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(
            {"id": trial.pk, "code": trial.code, "patients": trial.patients.count()}, status=status.HTTP_201_CREATED
        )
