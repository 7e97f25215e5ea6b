"""My API tokens (issue 19 item 6): any signed-in user creates, lists and revokes their own
API tokens. The key is shown once, in the answer to the create request (never stored,
never put in the session or a message); the list shows the prefix only. Issue and revoke
go through core.tokens, which writes the audit history (who, when, reason)."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from core.models import ApiToken
from core.tokens import token_issue, token_revoke

MAX_ACTIVE_TOKENS = 5  # enough for a laptop, a server job and a spare; each one is a key to guard


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        label="What the token is for", max_length=100, help_text="e.g. “SAS nightly pull”. Shown in the list."
    )


class TokenRevokeForm(forms.Form):
    token = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label="Reason for revoking", max_length=200)


@never_cache
@login_required
def api_tokens(request):  # type: ignore[no-untyped-def]
    """GET: the list. POST action=create: a new token, its key shown on this answer only.
    POST action=revoke: revoke one of the user's own tokens, with a reason."""
    create_form, new_key = TokenCreateForm(), None
    if request.method == "POST" and request.POST.get("action") == "revoke":
        revoke_form = TokenRevokeForm(request.POST)
        if revoke_form.is_valid():
            token = ApiToken.objects.filter(user=request.user, pk=revoke_form.cleaned_data["token"]).first()
            if token is None:
                raise Http404("No such token of yours.")
            token_revoke(token, by=request.user, reason=f"revoked by its owner: {revoke_form.cleaned_data['reason']}")
            messages.success(request, f"Token {token.prefix}… revoked; it no longer opens the API.")
            return redirect("api_tokens")
        messages.error(request, "To revoke a token, give the reason.")
    elif request.method == "POST":
        create_form = TokenCreateForm(request.POST)
        active = ApiToken.objects.filter(
            user=request.user, revoked_at__isnull=True, expires_at__gt=timezone.now()
        ).count()
        if active >= MAX_ACTIVE_TOKENS:
            create_form.add_error(None, f"You have {active} active tokens, the most allowed: revoke one first.")
        elif create_form.is_valid():
            _, new_key = token_issue(user=request.user, name=create_form.cleaned_data["name"], created_by=request.user)
            create_form = TokenCreateForm()
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at", "-id")
    return render(
        request,
        "core/api_tokens.html",
        {
            "create_form": create_form,
            "new_key": new_key,
            "tokens": tokens,
            "now": timezone.now(),
            "lifetime_days": settings.API_TOKEN_LIFETIME.days,
            "max_active": MAX_ACTIVE_TOKENS,
        },
    )
