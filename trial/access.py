"""The one scoping mechanism: who sees and does what, in which trial and site.

Every view, form choice list, API endpoint and export asks here. Deny by default: a
user with no active role grant sees nothing, and an out-of-scope object answers 404
(so its existence is not revealed). A model opts in by naming the path from itself to
its trial and, when its data belong to a site, to its site:

    class Patient(AuditedModel):
        scope_trial_path = "trial"
        scope_site_path = "site"

A model without ``scope_trial_path`` cannot be scoped, and ``scope`` refuses it.
"""

from django.db.models import Model, Q, QuerySet
from django.http import Http404

from trial.models import RoleGrant, Site, Trial

Role = RoleGrant.Role

# What each role may do (docs/api.md "Authentication and scope").
CAPABILITIES: dict[str, frozenset[str]] = {
    Role.COORDINATOR: frozenset({"view_trial", "view_clinical", "enter_data"}),
    Role.INVESTIGATOR: frozenset({"view_trial", "view_clinical", "adjudicate", "sign", "export"}),
    Role.SPONSOR: frozenset({"view_trial", "export"}),
    Role.ADMIN: frozenset({"view_trial", "configure"}),
    # Data cleaning (issue 12): both read the casebooks and raise queries; the monitor
    # verifies source data, the data manager freezes and locks casebooks and the trial.
    Role.DATA_MANAGER: frozenset({"view_trial", "view_clinical", "raise_query", "lock"}),
    Role.MONITOR: frozenset({"view_trial", "view_clinical", "raise_query", "verify"}),
}
# Investigators raise queries too (medical review).
CAPABILITIES[Role.INVESTIGATOR] = CAPABILITIES[Role.INVESTIGATOR] | {"raise_query"}
# Planning simulations of designs (issue 17, analysis.services): investigators and trial
# admins, who choose and configure the design, start and cancel them; sponsors see their
# trials' runs (a sponsor writes nothing anywhere, issue 8).
CAPABILITIES[Role.INVESTIGATOR] = CAPABILITIES[Role.INVESTIGATOR] | {"plan", "view_planning"}
CAPABILITIES[Role.ADMIN] = CAPABILITIES[Role.ADMIN] | {"plan", "view_planning"}
CAPABILITIES[Role.SPONSOR] = CAPABILITIES[Role.SPONSOR] | {"view_planning"}
# Capabilities that reach every site of the trial even when the model has a site path.
_TRIAL_WIDE = {Role.INVESTIGATOR, Role.SPONSOR, Role.ADMIN, Role.DATA_MANAGER, Role.MONITOR}


def active_grants(user) -> list[RoleGrant]:  # type: ignore[no-untyped-def]
    """The user's unrevoked grants, read once per request (cached on the user object)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    cached = getattr(user, "_trialdesk_grants", None)
    if cached is None:
        cached = list(RoleGrant.objects.filter(user=user, revoked_at__isnull=True))
        user._trialdesk_grants = cached
    return cached


def forget_grants(user) -> None:  # type: ignore[no-untyped-def]
    user.__dict__.pop("_trialdesk_grants", None)


def _grants_with(user, capability: str) -> list[RoleGrant]:  # type: ignore[no-untyped-def]
    return [g for g in active_grants(user) if capability in CAPABILITIES[g.role]]


def scope(user, queryset: QuerySet, capability: str = "view_clinical") -> QuerySet:  # type: ignore[no-untyped-def]
    """``queryset`` narrowed to what ``user`` may reach with ``capability``."""
    model = queryset.model
    trial_path = getattr(model, "scope_trial_path", None)
    if trial_path is None:
        raise TypeError(f"{model.__name__} declares no scope_trial_path; it cannot be scoped")
    site_path = getattr(model, "scope_site_path", None)
    condition = Q(pk__in=[])  # deny by default
    for grant in _grants_with(user, capability):
        allowed = Q(**{trial_path: grant.trial_id})
        if site_path is not None and grant.role not in _TRIAL_WIDE:
            allowed &= Q(**{site_path: grant.site_id})
        condition |= allowed
    # Scope paths follow foreign keys towards the trial (many-to-one), so the filter
    # cannot duplicate rows and needs no DISTINCT.
    return queryset.filter(condition)


def get_scoped_or_404(user, queryset: QuerySet, capability: str = "view_clinical", **lookup) -> Model:  # type: ignore[no-untyped-def]
    try:
        return scope(user, queryset, capability).get(**lookup)
    except queryset.model.DoesNotExist as exc:
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.") from exc


def trials_for(user, capability: str = "view_trial") -> QuerySet[Trial]:  # type: ignore[no-untyped-def]
    return scope(user, Trial.objects.all(), capability)


def sites_for(user, trial: Trial, capability: str = "enter_data") -> QuerySet[Site]:  # type: ignore[no-untyped-def]
    """Sites of ``trial`` where ``user`` may act: form choice lists come from here."""
    return scope(user, Site.objects.filter(trial=trial), capability)


def can(user, capability: str, trial: Trial | int, site: Site | int | None = None) -> bool:  # type: ignore[no-untyped-def]
    trial_id = trial if isinstance(trial, int) else trial.pk
    site_id = site if isinstance(site, int) or site is None else site.pk
    for grant in _grants_with(user, capability):
        if grant.trial_id != trial_id:
            continue
        if site_id is None or grant.role in _TRIAL_WIDE or grant.site_id == site_id:
            return True
    return False


def roles_in(user, trial: Trial) -> set[str]:  # type: ignore[no-untyped-def]
    return {g.role for g in active_grants(user) if g.trial_id == trial.pk}
