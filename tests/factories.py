"""factory_boy factories. The site-wall walker builds one out-of-scope object of every
scoped model from ``SCOPED_FACTORIES``: a new scoped model needs a factory here."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from patients.models import Patient
from trial.models import DoseLevel, ProtocolVersion, RoleGrant, Site, Trial

PASSWORD = "correct horse battery staple"


class AuditedFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):  # type: ignore[no-untyped-def]
        obj = model_class(*args, **kwargs)
        obj._change_reason = "test fixture"
        obj.save()
        return obj


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = "Tester"
    password = factory.django.Password(PASSWORD)


class TrialFactory(AuditedFactory):
    class Meta:
        model = Trial

    code = factory.Sequence(lambda n: f"TRIAL-{n}")
    title = factory.Sequence(lambda n: f"Test trial {n}")


class SiteFactory(AuditedFactory):
    class Meta:
        model = Site

    trial = factory.SubFactory(TrialFactory)
    code = factory.Sequence(lambda n: f"S{n}")
    name = factory.Sequence(lambda n: f"Site number {n}")


class DoseLevelFactory(AuditedFactory):
    class Meta:
        model = DoseLevel

    trial = factory.SubFactory(TrialFactory)
    level = 1
    dose_mg_m2 = Decimal("0.3")


class ProtocolVersionFactory(AuditedFactory):
    class Meta:
        model = ProtocolVersion

    trial = factory.SubFactory(TrialFactory)
    version = "1"
    effective = factory.Faker("date_between", start_date="-5y", end_date="-1y")
    max_cycles = 4


class PatientFactory(AuditedFactory):
    class Meta:
        model = Patient

    site = factory.SubFactory(SiteFactory)
    trial = factory.SelfAttribute("site.trial")
    subject_id = factory.Sequence(lambda n: f"{{site}}-{900 + n}")
    sex = Patient.Sex.FEMALE
    birth_year = 1975

    @classmethod
    def _create(cls, model_class, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["subject_id"] = kwargs["subject_id"].replace("{site}", kwargs["site"].code)
        return super()._create(model_class, *args, **kwargs)


def grant(user, trial, role, site=None):  # type: ignore[no-untyped-def]
    return RoleGrant.objects.create(user=user, trial=trial, role=role, site=site)


# model -> factory taking (trial, site) for the walker's out-of-scope objects.
SCOPED_FACTORIES = {
    Trial: lambda trial, site: trial,
    Site: lambda trial, site: site,
    DoseLevel: lambda trial, site: DoseLevelFactory(trial=trial, level=1, dose_mg_m2=Decimal("0.7")),
    ProtocolVersion: lambda trial, site: ProtocolVersionFactory(trial=trial, version="9"),
    Patient: lambda trial, site: PatientFactory(site=site, trial=trial),
}
