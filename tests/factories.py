"""factory_boy factories. The site-wall walker builds one out-of-scope object of every
scoped model from ``SCOPED_FACTORIES``: a new scoped model needs a factory here."""

import datetime
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from dosing.models import ConcomitantMedication, Cycle, Deviation, LabPanel
from patients.models import Assessment, Consent, Patient, PatientEvent, Screening, Transplant
from safety.models import AdverseEvent, CtcaeTerm, DltAdjudication, GvhdEpisode
from trial.models import DoseLevel, EscalationSignoff, ProtocolVersion, RoleGrant, Site, Trial

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


class PatientRecordFactory(AuditedFactory):
    class Meta:
        abstract = True

    patient = factory.SubFactory(PatientFactory)


class TransplantFactory(PatientRecordFactory):
    class Meta:
        model = Transplant

    date = datetime.date(2024, 1, 10)
    disease_status = Transplant.DiseaseStatus.CR1
    conditioning = Transplant.Conditioning.RIC
    regimen = Transplant.Regimen.MELPHALAN
    donor_type = Transplant.DonorType.MATCHED_UNRELATED
    graft_source = Transplant.GraftSource.PERIPHERAL_BLOOD
    gvhd_prophylaxis = Transplant.GvhdProphylaxis.CNI_MTX
    mrd_before = False
    mrd_after = False
    cr_at_day30 = True


class ConsentFactory(PatientRecordFactory):
    class Meta:
        model = Consent

    protocol_version = factory.LazyAttribute(
        lambda o: (
            o.patient.trial.protocol_versions.first() or ProtocolVersionFactory(trial=o.patient.trial, version="1")
        )
    )
    date = datetime.date(2024, 3, 20)


class ScreeningFactory(PatientRecordFactory):
    class Meta:
        model = Screening

    date = datetime.date(2024, 3, 20)
    lab_date = datetime.date(2024, 3, 19)
    platelets_10e9_l = Decimal("133")
    anc_10e9_l = Decimal("2.1")
    agvhd_grade = 0
    liver_gvhd = False
    sos_history = False
    result = Screening.Result.ELIGIBLE


class AssessmentFactory(PatientRecordFactory):
    class Meta:
        model = Assessment

    kind = Assessment.Kind.MRD
    date = datetime.date(2024, 4, 10)
    method = Assessment.Method.FLOW
    result = Assessment.Result.NEGATIVE


class PatientEventFactory(PatientRecordFactory):
    class Meta:
        model = PatientEvent

    kind = PatientEvent.Kind.LAST_CONTACT
    date = datetime.date(2025, 1, 10)


class LabPanelFactory(PatientRecordFactory):
    class Meta:
        model = LabPanel

    date = datetime.date(2024, 3, 30)
    platelets = Decimal("120")
    anc = Decimal("2.0")
    hemoglobin = Decimal("110")


class DeviationFactory(PatientRecordFactory):
    class Meta:
        model = Deviation

    kind = Deviation.Kind.OTHER
    date = datetime.date(2024, 5, 1)
    reason = "test deviation"


class CycleFactory(PatientRecordFactory):
    class Meta:
        model = Cycle

    number = 1
    due_date = datetime.date(2024, 4, 1)
    day1 = datetime.date(2024, 4, 1)
    dose_level = factory.LazyAttribute(
        lambda o: o.patient.trial.dose_levels.first() or DoseLevelFactory(trial=o.patient.trial)
    )
    height_cm = Decimal("170")
    weight_kg = Decimal("70")
    bsa_m2 = Decimal("1.82")
    dose_mg_m2 = Decimal("0.3")
    dose_mg = Decimal("0.55")


class ConcomitantMedicationFactory(PatientRecordFactory):
    class Meta:
        model = ConcomitantMedication

    agent = ConcomitantMedication.Agent.DASATINIB
    start = datetime.date(2024, 4, 1)


class AdverseEventFactory(PatientRecordFactory):
    class Meta:
        model = AdverseEvent

    term = factory.LazyFunction(lambda: CtcaeTerm.objects.get(version="5.0", meddra_code="10035528"))
    grade = 3
    onset = datetime.date(2024, 4, 20)
    attribution = AdverseEvent.Attribution.PROBABLE


class GvhdEpisodeFactory(PatientRecordFactory):
    class Meta:
        model = GvhdEpisode

    kind = GvhdEpisode.Kind.ACUTE
    onset = datetime.date(2024, 5, 1)
    acute_grade = 2


class DltAdjudicationFactory(PatientRecordFactory):
    class Meta:
        model = DltAdjudication

    rule = DltAdjudication.Rule.INVESTIGATOR
    event_date = datetime.date(2024, 5, 1)
    is_dlt = False
    rationale = "test"


def grant(user, trial, role, site=None):  # type: ignore[no-untyped-def]
    return RoleGrant.objects.create(user=user, trial=trial, role=role, site=site)


# model -> factory taking (trial, site) for the walker's out-of-scope objects.
SCOPED_FACTORIES = {
    Trial: lambda trial, site: trial,
    Site: lambda trial, site: site,
    DoseLevel: lambda trial, site: DoseLevelFactory(trial=trial, level=1, dose_mg_m2=Decimal("0.7")),
    ProtocolVersion: lambda trial, site: ProtocolVersionFactory(trial=trial, version="9"),
    Patient: lambda trial, site: PatientFactory(site=site, trial=trial),
    EscalationSignoff: lambda trial, site: EscalationSignoff.objects.create(
        trial=trial, decision="escalate", dose_level=2, signed_by_name="Walker Test", imported=True
    ),
}
# Records of one patient: built for a patient of the given site.
for _factory in (
    TransplantFactory, ConsentFactory, ScreeningFactory, AssessmentFactory, PatientEventFactory, LabPanelFactory,
    DeviationFactory, CycleFactory, ConcomitantMedicationFactory, AdverseEventFactory, GvhdEpisodeFactory,
    DltAdjudicationFactory,
):  # fmt: skip
    SCOPED_FACTORIES[_factory._meta.model] = lambda trial, site, f=_factory: f(
        patient=PatientFactory(site=site, trial=trial)
    )


# safety: lab-proposal dismissals (scoped through the patient).
from safety.models import LabProposalDismissal  # noqa: E402


class LabProposalDismissalFactory(PatientRecordFactory):
    class Meta:
        model = LabProposalDismissal

    lab_panel = factory.LazyAttribute(lambda o: LabPanelFactory(patient=o.patient))
    meddra_code = "10035528"
    term = "Platelet count decreased"
    proposed_grade = 1
    reason = "test dismissal"


SCOPED_FACTORIES[LabProposalDismissal] = lambda trial, site: LabProposalDismissalFactory(
    patient=PatientFactory(site=site, trial=trial)
)


# cleaning (issue 12): data queries, their messages and source data verifications,
# each on an AE of a patient of the given site.
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.utils import timezone  # noqa: E402

from cleaning.models import DataQuery, QueryMessage, SourceVerification  # noqa: E402


class DataQueryFactory(AuditedFactory):
    class Meta:
        model = DataQuery

    class Params:
        record = factory.LazyAttribute(lambda o: AdverseEventFactory(patient=PatientFactory()))

    patient = factory.LazyAttribute(lambda o: o.record.patient)
    trial = factory.LazyAttribute(lambda o: o.patient.trial)
    site = factory.LazyAttribute(lambda o: o.patient.site)
    content_type = factory.LazyAttribute(lambda o: ContentType.objects.get_for_model(o.record))
    object_id = factory.LazyAttribute(lambda o: o.record.pk)
    field_name = "grade"
    question = "Please check the grade against the source."


class QueryMessageFactory(AuditedFactory):
    class Meta:
        model = QueryMessage

    query = factory.SubFactory(DataQueryFactory)
    kind = QueryMessage.Kind.QUESTION
    text = "Please check the grade against the source."


class SourceVerificationFactory(AuditedFactory):
    class Meta:
        model = SourceVerification

    class Params:
        record = factory.LazyAttribute(lambda o: AdverseEventFactory(patient=PatientFactory()))

    patient = factory.LazyAttribute(lambda o: o.record.patient)
    trial = factory.LazyAttribute(lambda o: o.patient.trial)
    site = factory.LazyAttribute(lambda o: o.patient.site)
    content_type = factory.LazyAttribute(lambda o: ContentType.objects.get_for_model(o.record))
    object_id = factory.LazyAttribute(lambda o: o.record.pk)
    record_version = factory.LazyAttribute(lambda o: o.record.version)
    verified_by = factory.SubFactory(UserFactory)
    verified_at = factory.LazyFunction(timezone.now)


SCOPED_FACTORIES[DataQuery] = lambda trial, site: DataQueryFactory(
    record=AdverseEventFactory(patient=PatientFactory(site=site, trial=trial))
)
SCOPED_FACTORIES[QueryMessage] = lambda trial, site: QueryMessageFactory(
    query=DataQueryFactory(record=AdverseEventFactory(patient=PatientFactory(site=site, trial=trial)))
)
SCOPED_FACTORIES[SourceVerification] = lambda trial, site: SourceVerificationFactory(
    record=AdverseEventFactory(patient=PatientFactory(site=site, trial=trial))
)


# issue 12: the lock rows of a casebook and of a trial (an open state: nothing is refused).
from patients.models import CasebookLock  # noqa: E402
from trial.models import TrialLock  # noqa: E402

SCOPED_FACTORIES[CasebookLock] = lambda trial, site: AuditedFactory._create(
    CasebookLock, patient=PatientFactory(site=site, trial=trial), state="open"
)
SCOPED_FACTORIES[TrialLock] = lambda trial, site: (
    TrialLock.objects.filter(trial=trial).first() or (AuditedFactory._create(TrialLock, trial=trial, state="open"))
)


# analysis: planning simulations (issue 17), scoped through their trial.
from analysis.models import SimulationRun  # noqa: E402


class SimulationRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SimulationRun

    trial = factory.SubFactory(TrialFactory)
    requested_by = factory.SubFactory(UserFactory)
    designs = factory.LazyFunction(lambda: [{"design": "3+3", "variant": "storer_a"}])
    true_dlt_probabilities = factory.LazyFunction(lambda: [0.1, 0.2, 0.35])
    n_trials = 200
    seed = 1
    overdose_threshold = 0.3


SCOPED_FACTORIES[SimulationRun] = lambda trial, site: SimulationRunFactory(trial=trial)
# issue 18: a CDISC package job (queued: no file), numbered after the trial's others.
from exchange.models import CdiscPackage  # noqa: E402


class CdiscPackageFactory(AuditedFactory):
    class Meta:
        model = CdiscPackage

    trial = factory.SubFactory(TrialFactory)
    number = factory.LazyAttribute(lambda o: CdiscPackage.objects.filter(trial=o.trial).count() + 1)
    requested_by = factory.SubFactory(UserFactory)
    requested_by_role = "sponsor"
    status = CdiscPackage.Status.DONE  # not open: any number of them per trial


SCOPED_FACTORIES[CdiscPackage] = lambda trial, site: CdiscPackageFactory(trial=trial)
