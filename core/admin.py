from axes.admin import AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.utils import timezone

from core.models import ApiToken, Signature
from core.tokens import token_issue, token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    fields = ["user", "name", "expires_at", "prefix", "created_at", "created_by", "revoked_at", "last_used_at"]
    readonly_fields = ["prefix", "created_at", "created_by", "revoked_at", "last_used_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # A token is never edited after issue: revoke it and issue another.
        return self.fields if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        token, key = token_issue(
            user=obj.user,
            name=obj.name,
            created_by=request.user,
            lifetime=(obj.expires_at - timezone.now()) if obj.expires_at else None,
        )
        obj.pk = token.pk
        messages.warning(
            request,
            f"Token for {obj.user}: {key}  — copy it now; it is stored only as a hash and will not be shown again.",
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):  # type: ignore[no-untyped-def]
        for token in queryset:
            token_revoke(token, by=request.user, reason="revoked by admin")
        messages.success(request, f"{queryset.count()} token(s) revoked.")

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Signature)
class SignatureAdmin(admin.ModelAdmin):
    list_display = ["printed_name", "meaning", "content_type", "object_id", "signed_at", "imported"]
    readonly_fields = [f.name for f in Signature._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


# django-axes' sign-in log and failed-password log are audit records (core.audit_guard
# makes them append-only): the admin shows them and changes or deletes nothing.
class _ReadOnlyLogAdmin:
    actions = None

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


for _model, _base in ((AccessLog, AccessLogAdmin), (AccessFailureLog, AccessFailureLogAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, type(f"ReadOnly{_base.__name__}", (_ReadOnlyLogAdmin, _base), {}))
