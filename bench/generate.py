"""Seeded generator of realistic trials at cancer-centre scale, written with COPY (issue 11).

Usage (from the repository root, PostgreSQL server in DATABASE_URL; the database name in it
is replaced by --db):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/generate.py --reset

Defaults: 200 trials, 10,000 patients, 100,000 cycles, 500,000 adverse events, plus sites,
dose levels, protocol versions, users and role grants, transplants, consents, screenings,
lab panels (one per cycle), assessments (MRD and marrow) and outcome events. Trial sizes
follow 1/sqrt(rank) (a few large trials with expansion cohorts, many small ones), so the
largest trial has about 37x the smallest's patients. Enrolment is 3+3: cohorts of three
(six after a DLT-like cohort) climbing the dose levels, then expansion at the top level.
Cycles are 28 days apart from enrolment; AE terms come from CtcaeTerm with a grade the
term defines (grade 5 left out: it needs a death record).

Rows go in with COPY and explicit ids (sequences are moved past them afterwards);
``save()`` is bypassed, so each audited table then receives its "first entry" history
row in one INSERT ... SELECT (what record_create writes, without the user). Prints rows/s
per table. The generated users' password is in bench/common.py (BENCH_PASSWORD).
"""

import argparse
import datetime
import io
import json
import math
import random
import time
from decimal import Decimal

from common import BENCH_PASSWORD, DEFAULT_DB, database_prepare, django_setup

TODAY = datetime.date(2026, 11, 26)  # fixed, so a seed gives the same rows on any day
CYCLE_DAYS = 28


class Writer:
    """COPY rows of one model into its table, with every column not given set to the
    field's default (callable defaults called), as bulk_create would."""

    def __init__(self, cursor, model, timings: list) -> None:  # type: ignore[no-untyped-def]
        from django.utils import timezone

        self.cursor = cursor
        self.model = model
        self.timings = timings
        self.table = model._meta.db_table
        self.fields = list(model._meta.concrete_fields)
        self.columns = [f.column for f in self.fields]
        now = timezone.now()
        self.defaults = {}
        for f in self.fields:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                value = now
            elif f.has_default():
                value = f.get_default()
            elif f.null:
                value = None
            else:
                value = ""
            self.defaults[f.attname] = value
        self.names = [f.attname for f in self.fields]
        self.buffer = io.StringIO()
        self.pending = 0
        self.rows = 0
        self.seconds = 0.0  # formatting and COPY only (row generation is not counted)

    @staticmethod
    def _text(value) -> str:  # type: ignore[no-untyped-def]
        if value is None:
            return "\\N"
        if value is True:
            return "t"
        if value is False:
            return "f"
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        text = str(value)
        if "\\" in text or "\t" in text or "\n" in text:
            text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        return text

    def add(self, **values) -> None:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        defaults = self.defaults
        self.buffer.write("\t".join(self._text(values[n] if n in values else defaults[n]) for n in self.names))
        self.buffer.write("\n")
        self.pending += 1
        if self.pending >= 50_000:
            self.flush()
        self.seconds += time.perf_counter() - started

    def flush(self) -> None:
        if self.pending:
            self.buffer.seek(0)
            self.cursor.copy_expert(f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN", self.buffer)
            self.rows += self.pending
            self.buffer = io.StringIO()
            self.pending = 0

    def close(self) -> None:
        started = time.perf_counter()
        self.flush()
        self.cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{self.table}', 'id'), (SELECT max(id) FROM {self.table}))"  # noqa: S608
        )
        self.timings.append((self.table, self.rows, self.seconds + time.perf_counter() - started))


def _next_id(cursor, model) -> int:  # type: ignore[no-untyped-def]
    cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {model._meta.db_table}")  # noqa: S608
    return int(cursor.fetchone()[0])


def _split(total: int, weights: list[float], minimum: int = 0) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders), each >= minimum."""
    free = total - minimum * len(weights)
    raw = [free * w / sum(weights) for w in weights]
    counts = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)[: free - sum(counts)]:
        counts[i] += 1
    return [c + minimum for c in counts]


def _split_capped(total: int, weights: list[float], caps: list[int], rng: random.Random) -> list[int]:
    """Like _split, but no share above its cap (the overflow goes to those with room)."""
    counts = [min(c, cap) for c, cap in zip(_split(total, weights), caps, strict=True)]
    short = total - sum(counts)
    room = [i for i in range(len(caps)) if counts[i] < caps[i]]
    while short > 0 and room:
        i = rng.choice(room)
        counts[i] += 1
        short -= 1
        if counts[i] >= caps[i]:
            room.remove(i)
    return counts


def generate(args: argparse.Namespace) -> list[tuple[str, int, float]]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from dosing.models import Cycle, LabPanel
    from patients.models import Assessment, Consent, Patient, PatientEvent, Screening, Transplant
    from safety.models import AdverseEvent, CtcaeTerm
    from safety.services import ctcae_dictionary_load
    from trial.models import DoseLevel, ProtocolVersion, RoleGrant, Site, Trial

    rng = random.Random(args.seed)
    if not CtcaeTerm.objects.exists():
        ctcae_dictionary_load()
    if Trial.objects.filter(code__startswith="BENCH-T").exists():
        raise SystemExit("Generated trials are already there: run with --reset to start again.")
    terms = []  # (id, grades below 5) of every term with at least one such grade
    for term in CtcaeTerm.objects.all().order_by("id"):
        grades = [g for g in term.grades if g < 5]
        if grades:
            terms.append((term.pk, grades))
    # Common AEs are common: a few dozen terms take most rows (Zipf-like over a shuffle).
    rng.shuffle(terms)
    term_weights = [1 / (i + 1) for i in range(len(terms))]
    grade_weights = {1: 0.45, 2: 0.35, 3: 0.15, 4: 0.05}

    timings: list[tuple[str, int, float]] = []
    password = make_password(BENCH_PASSWORD)
    User = get_user_model()
    with transaction.atomic(), connection.cursor() as django_cursor:
        cur = django_cursor.cursor  # psycopg2's own cursor, for copy_expert
        ids = {
            m: _next_id(cur, m)
            for m in (
                User,
                Trial,
                Site,
                DoseLevel,
                ProtocolVersion,
                RoleGrant,
                Patient,
                Transplant,
                Consent,
                Screening,
                LabPanel,
                Cycle,
                AdverseEvent,
                PatientEvent,
                Assessment,
            )
        }

        def new_id(model) -> int:  # type: ignore[no-untyped-def]
            value = ids[model]
            ids[model] += 1
            return value

        w = {m: Writer(cur, m, timings) for m in ids}
        patients_per_trial = _split(args.patients, [1 / math.sqrt(r + 1) for r in range(args.trials)], minimum=6)
        # patient-level plan first: (patient id, trial index, enrol date, level id, level dose, site code)
        plan = []
        trial_rows = []
        for t, n_patients in enumerate(patients_per_trial):
            trial_id = new_id(Trial)
            code = f"BENCH-T{t + 1:03d}"
            w[Trial].add(id=trial_id, code=code, title=f"Bench trial {t + 1} (generated, seed {args.seed})")
            n_sites = max(1, min(6, n_patients // 40 + 1))
            sites = []
            for s in range(n_sites):
                site_id = new_id(Site)
                site_code = f"S{s + 1:02d}"
                w[Site].add(id=site_id, trial_id=trial_id, code=site_code, name=f"{code} site {s + 1}")
                sites.append((site_id, site_code))
            n_levels = rng.randint(4, 6)
            levels = []
            for lv in range(1, n_levels + 1):
                level_id = new_id(DoseLevel)
                dose = Decimal("0.3") + Decimal("0.1") * (lv - 1)
                w[DoseLevel].add(id=level_id, trial_id=trial_id, level=lv, dose_mg_m2=dose)
                levels.append((level_id, dose))
            protocol_id = new_id(ProtocolVersion)
            # Enrolment over up to six years ending at least a month ago, one every ~2-4 weeks.
            span = min(6 * 365, n_patients * rng.randint(14, 28))
            end = TODAY - datetime.timedelta(days=rng.randint(30, 400))
            start = end - datetime.timedelta(days=span)
            w[ProtocolVersion].add(
                id=protocol_id,
                trial_id=trial_id,
                version="1.0",
                effective=start - datetime.timedelta(days=30),
                max_cycles=args.max_cycles,
            )
            enrol_days = sorted(rng.randint(0, span) for _ in range(n_patients))
            # 3+3: three per level (six when the cohort "had a DLT"), then expansion at the top.
            assignments: list[int] = []
            for lv in range(n_levels):
                assignments += [lv] * (6 if rng.random() < 0.3 else 3)
            mtd = n_levels - 1 if rng.random() < 0.6 else n_levels - 2
            assignments += [mtd] * max(0, n_patients - len(assignments))
            numbers = dict.fromkeys((s[1] for s in sites), 0)
            for i in range(n_patients):
                site_id, site_code = sites[i % n_sites]
                numbers[site_code] += 1
                level_id, dose = levels[assignments[i]]
                enrolled = start + datetime.timedelta(days=enrol_days[i])
                plan.append(
                    (new_id(Patient), trial_id, site_id, site_code, numbers[site_code], enrolled, level_id, dose)
                )
            trial_rows.append((trial_id, code, sites, protocol_id))

        # Users and grants: an investigator, a sponsor and a coordinator per site for each trial.
        def user(username: str) -> int:
            user_id = new_id(User)
            w[User].add(
                id=user_id,
                username=username,
                password=password,
                is_active=True,
                is_staff=False,
                is_superuser=False,
                last_login=None,
                first_name="",
                last_name="",
                email="",
                date_joined=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
            )
            return user_id

        for trial_id, code, sites, _ in trial_rows:
            slug = code.lower().replace("-", "_")
            for role, username in (("investigator", f"{slug}_inv"), ("sponsor", f"{slug}_sponsor")):
                w[RoleGrant].add(
                    id=new_id(RoleGrant), user_id=user(username), trial_id=trial_id, role=role, site_id=None
                )
            for site_id, site_code in sites:
                coordinator = user(f"{slug}_{site_code.lower()}_coord")
                w[RoleGrant].add(
                    id=new_id(RoleGrant), user_id=coordinator, trial_id=trial_id, role="coordinator", site_id=site_id
                )
        protocol_of = {t[0]: t[3] for t in trial_rows}

        # Cycles per patient: as many as fit between enrolment and today (cap max_cycles),
        # the total split across patients with a spread (some stop after 1-2 cycles).
        caps = [max(1, min(args.max_cycles, (TODAY - p[5]).days // (CYCLE_DAYS + 3))) for p in plan]  # room for delays
        cycle_counts = _split_capped(args.cycles, [rng.random() ** 2 + 0.05 for _ in plan], caps, rng)
        ae_counts = _split(args.aes, [c * (0.5 + rng.random()) for c in cycle_counts])

        for (pid, trial_id, site_id, site_code, number, enrolled, level_id, dose), cap, n_cycles, n_aes in zip(
            plan, caps, cycle_counts, ae_counts, strict=True
        ):
            w[Patient].add(
                id=pid,
                trial_id=trial_id,
                site_id=site_id,
                subject_id=f"{site_code}-{number:03d}",
                sex=rng.choice(("female", "male")),
                race=rng.choice(("white", "white", "black", "asian", "other", "unreported")),
                birth_year=enrolled.year - rng.randint(18, 74),
                diagnosis="b_all" if rng.random() < 0.9 else "cml_lymphoid_blast",
                cd22_positive=True,
                ph_positive=rng.random() < 0.3,
                cytogenetic_risk=rng.choice(("standard", "adverse", "unknown")),
                prior_lines=rng.randint(1, 4),
                hct_ci=rng.randint(0, 6),
                dose_level_id=level_id,
                enrolled_on=enrolled,
            )
            hct = enrolled - datetime.timedelta(days=rng.randint(40, 100))
            w[Transplant].add(
                id=new_id(Transplant),
                patient_id=pid,
                date=hct,
                disease_status=rng.choice(("cr1", "cr1", "cr2", "cr3_plus")),
                conditioning=rng.choice(("mac", "ric", "nma")),
                donor_type=rng.choice(("matched_sibling", "matched_unrelated", "haploidentical")),
                graft_source="peripheral_blood",
            )
            w[Consent].add(
                id=new_id(Consent),
                patient_id=pid,
                protocol_version_id=protocol_of[trial_id],
                date=enrolled - datetime.timedelta(days=7),
            )
            w[Screening].add(
                id=new_id(Screening),
                patient_id=pid,
                date=enrolled - datetime.timedelta(days=3),
                lab_date=enrolled - datetime.timedelta(days=4),
                platelets_10e9_l=Decimal(rng.randint(60, 250)),
                anc_10e9_l=Decimal("1.50"),
                agvhd_grade=0,
                liver_gvhd=False,
                sos_history=False,
                result="eligible",
            )
            height = Decimal(rng.randint(150, 195))
            weight = Decimal(rng.randint(50, 110))
            bsa = Decimal(math.sqrt(float(height * weight) / 3600)).quantize(Decimal("0.01"))
            day1 = enrolled
            for c in range(1, n_cycles + 1):
                delay = rng.choice((0, 0, 0, 0, 0, 1, 2, 3)) if c > 1 else 0
                due = day1 if c == 1 else day1 + datetime.timedelta(days=CYCLE_DAYS)
                day1 = due + datetime.timedelta(days=delay)
                panel_id = new_id(LabPanel)
                w[LabPanel].add(
                    id=panel_id,
                    patient_id=pid,
                    date=day1 - datetime.timedelta(days=1),
                    platelets=Decimal(rng.randint(60, 300)),
                    anc=Decimal(rng.randint(10, 60)) / 10,
                    hemoglobin=Decimal(rng.randint(90, 150)),
                    bilirubin=Decimal(rng.randint(5, 20)),
                    alt=Decimal(rng.randint(10, 60)),
                    ast=Decimal(rng.randint(10, 60)),
                )
                w[Cycle].add(
                    id=new_id(Cycle),
                    patient_id=pid,
                    number=c,
                    due_date=due,
                    day1=day1,
                    dose_level_id=level_id,
                    height_cm=height,
                    weight_kg=weight,
                    bsa_m2=bsa,
                    dose_mg_m2=dose,
                    dose_mg=(bsa * dose).quantize(Decimal("0.01")),
                    delay_days=delay,
                    lab_panel_id=panel_id,
                )
            last_dose = day1
            treated_days = max(1, (last_dose - enrolled).days + CYCLE_DAYS)
            chosen = rng.choices(terms, weights=term_weights, k=n_aes)
            for term_id, grades in chosen:
                grade = rng.choices(grades, weights=[grade_weights[g] for g in grades])[0]
                onset = min(TODAY, enrolled + datetime.timedelta(days=rng.randrange(treated_days)))
                ongoing = rng.random() < 0.1
                serious = grade >= 3 and rng.random() < 0.3
                w[AdverseEvent].add(
                    id=new_id(AdverseEvent),
                    patient_id=pid,
                    term_id=term_id,
                    grade=grade,
                    onset=onset,
                    resolved=None if ongoing else min(TODAY, onset + datetime.timedelta(days=rng.randint(0, 30))),
                    attribution=rng.choice(("unrelated", "unlikely", "possible", "probable", "definite")),
                    serious=serious,
                    sae_hospitalisation=serious,
                    sae_reported_at=(
                        datetime.datetime.combine(onset, datetime.time(12), tzinfo=datetime.UTC) if serious else None
                    ),
                    outcome="recovering" if ongoing else "recovered",
                )
            # Assessments: MRD at day ~100 after HCT and every three cycles, a marrow with each second MRD.
            for k, when in enumerate(range(0, (last_dose - enrolled).days + 1, 3 * CYCLE_DAYS)):
                date = enrolled + datetime.timedelta(days=when + 7)
                w[Assessment].add(
                    id=new_id(Assessment),
                    patient_id=pid,
                    kind="mrd",
                    date=date,
                    method="flow",
                    result="negative" if rng.random() < 0.8 else "positive",
                )
                if k % 2 == 0:
                    w[Assessment].add(
                        id=new_id(Assessment),
                        patient_id=pid,
                        kind="bone_marrow",
                        date=date,
                        blasts_pct=Decimal(rng.randint(0, 40)) / 10,
                        response="cr",
                    )
            # Outcome events: relapse (25%), death (15%), end of treatment when dosing stopped.
            stop = last_dose + datetime.timedelta(days=CYCLE_DAYS)
            relapse = rng.random() < 0.25
            if relapse:
                relapse_date = enrolled + datetime.timedelta(days=rng.randint(30, max(31, treated_days)))
                w[PatientEvent].add(
                    id=new_id(PatientEvent),
                    patient_id=pid,
                    kind="relapse",
                    date=relapse_date,
                    blasts_pct=Decimal("12.0"),
                )
            finished = n_cycles >= cap or stop < TODAY - datetime.timedelta(days=60)
            if finished:
                w[PatientEvent].add(
                    id=new_id(PatientEvent),
                    patient_id=pid,
                    kind="end_of_treatment",
                    date=min(stop, TODAY),
                    reason="relapse" if relapse else rng.choice(("completed", "toxicity", "withdrawal", "other")),
                )
            if rng.random() < 0.15:
                w[PatientEvent].add(
                    id=new_id(PatientEvent),
                    patient_id=pid,
                    kind="death",
                    date=min(TODAY, stop + datetime.timedelta(days=rng.randint(1, 300))),
                    cause=rng.choice(("relapse", "gvhd", "infection", "organ_failure", "other")),
                )
            else:
                w[PatientEvent].add(
                    id=new_id(PatientEvent),
                    patient_id=pid,
                    kind="last_contact",
                    date=TODAY - datetime.timedelta(days=rng.randint(0, 90)),
                )
        for writer in w.values():
            writer.close()
        if not args.no_history:
            _history(cur, [m for m in w if hasattr(m, "history")], timings)
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("ANALYZE")
        timings.append(("ANALYZE", 0, time.perf_counter() - started))
    return timings


def _history(cur, models, timings: list) -> None:  # type: ignore[no-untyped-def]
    """One "first entry" history row per generated record, as record_create leaves it."""
    for model in models:
        history = model.history.model
        started = time.perf_counter()
        columns = [f.column for f in model._meta.concrete_fields]
        cols = ", ".join(columns)
        stamp = "created_at" if "created_at" in columns else ("granted_at" if "granted_at" in columns else "now()")
        cur.execute(
            f"""INSERT INTO {history._meta.db_table} ({cols}, history_date, history_change_reason, history_type)
                SELECT {cols}, {stamp}, 'first entry', '+' FROM {model._meta.db_table} AS t
                WHERE NOT EXISTS (SELECT 1 FROM {history._meta.db_table} AS h WHERE h.id = t.id)"""  # noqa: S608
        )
        timings.append((history._meta.db_table, cur.rowcount, time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=100_000)
    parser.add_argument("--aes", type=int, default=500_000)
    parser.add_argument("--max-cycles", type=int, default=24, help="protocol maximum of cycles per patient")
    parser.add_argument("--db", default=DEFAULT_DB, help="bench database name (must contain 'bench')")
    parser.add_argument("--reset", action="store_true", help="drop and re-create the bench database first")
    parser.add_argument("--no-history", action="store_true", help="skip the first-entry history rows")
    args = parser.parse_args()
    if args.patients < 6 * args.trials:
        parser.error("--patients must be at least 6 per trial")
    started = time.perf_counter()
    database_prepare(args.db, reset=args.reset)
    django_setup(args.db)
    prepared = time.perf_counter()
    timings = generate(args)
    total = time.perf_counter() - started
    print(f"database {args.db}: created and migrated in {prepared - started:.1f} s")
    print(f"{'table':40s} {'rows':>10s} {'seconds':>8s} {'rows/s':>10s}")
    for table, rows, seconds in timings:
        rate = f"{rows / seconds:10,.0f}" if rows and seconds else ""
        print(f"{table:40s} {rows:10,d} {seconds:8.1f} {rate}")
    print(f"total {total:.1f} s (seed {args.seed})")


if __name__ == "__main__":
    main()
