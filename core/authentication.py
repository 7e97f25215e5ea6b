"""DRF authentication by per-user API token: ``Authorization: Token <key>`` or ``Bearer <key>``."""

from rest_framework import authentication, exceptions

from core.tokens import ACCOUNT_LOCKED_REFUSAL, token_account_locked, token_authenticate


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Token <key>'.")
        token = token_authenticate(header[1].decode(errors="replace"))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        # django-axes locks an account after too many wrong passwords (core.signatures):
        # its tokens are refused too, here, for every API view.
        if token_account_locked(request._request, token.user):
            raise exceptions.PermissionDenied(ACCOUNT_LOCKED_REFUSAL)
        return token.user, token

    def authenticate_header(self, request):  # type: ignore[no-untyped-def]
        return 'Token realm="api"'
