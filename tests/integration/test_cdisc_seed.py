"""CDISC datasets of the seed trial (issue 18): the XPT v5 and Dataset-JSON v1.1 files
read back equal the casebook, and a Kaplan-Meier on ADTTE alone reproduces the
survival API's 1-year OS and PFS (and the Aalen-Johansen 1-year NRM) exactly."""

import datetime
import importlib.util
import json
from pathlib import Path

import pyreadstat
import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from lxml import etree

from analysis.services import computation_run
from analysis.survival import cumulative_incidence, incidence_at, kaplan_meier, survival_at
from dosing.models import ConcomitantMedication, Cycle, LabPanel
from exchange.bundle import bundle_import
from exchange.cdisc import define, mapping, metadata
from exchange.cdisc.package import package_write
from exchange.cdisc.selectors import casebook_subjects
from patients.models import Assessment, Patient, PatientEvent, Transplant
from safety.models import AdverseEvent, CtcaeTerm
from safety.services import ctcae_dictionary_load
from trial.models import DoseLevel, TrialComputation

BUNDLE = Path(__file__).resolve().parents[2] / "exchange" / "data" / "ino_post_hct_seed.json"
AS_OF = datetime.date(2026, 12, 1)


@pytest.fixture(scope="module")
def seed(django_db_setup, django_db_blocker, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Import once, write the package once; everything rolled back at the end."""
    outdir = tmp_path_factory.mktemp("cdisc")
    with django_db_blocker.unblock(), transaction.atomic():
        if not CtcaeTerm.objects.exists():  # emptied by an earlier transactional test (conftest)
            ctcae_dictionary_load()
        trial = bundle_import(json.loads(BUNDLE.read_text(encoding="utf-8")))
        site_ids = list(trial.sites.values_list("pk", flat=True))
        counts = package_write(trial, site_ids, outdir, as_of=AS_OF)
        study, subjects = casebook_subjects(trial, site_ids, as_of=AS_OF)
        survival = computation_run(trial.pk, TrialComputation.Kind.SURVIVAL).data
        yield {
            "trial": trial,
            "outdir": outdir,
            "counts": counts,
            "records": mapping.datasets(study, subjects),
            "survival": survival,
        }
        transaction.set_rollback(True)


@pytest.fixture
def pkg(seed, db):  # type: ignore[no-untyped-def]
    return seed


def _xpt(outdir: Path, name: str):  # type: ignore[no-untyped-def]
    return pyreadstat.read_xport(str(outdir / f"{name.lower()}.xpt"), disable_datetime_conversion=True)


def _json(outdir: Path, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((outdir / f"{name.lower()}.json").read_text(encoding="ascii"))


def _sas_date(value: datetime.date | None) -> float | None:
    return None if value is None else float((value - datetime.date(1960, 1, 1)).days)


def _xpt_value(v: metadata.Variable, value: object) -> object:
    """What pyreadstat gives back for a record's value: '' for an empty text, NaN -> None."""
    if v.type == "Char":
        return value or ""
    if v.date:
        return _sas_date(value)  # type: ignore[arg-type]
    return None if value is None else float(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(metadata.DATASETS))
def test_xpt_reads_back_equal_to_the_records(pkg, name):  # type: ignore[no-untyped-def]
    spec = metadata.DATASETS[name]
    records = pkg["records"][name]
    frame, meta = _xpt(pkg["outdir"], name)
    assert meta.table_name == name
    assert meta.file_label == spec.label
    assert meta.column_names == list(spec.names)
    assert meta.column_names_to_labels == {v.name: v.label for v in spec.variables}
    assert len(frame) == len(records) == pkg["counts"][name]
    back = [
        {c: (None if isinstance(x, float) and x != x else x) for c, x in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    expected = [{v.name: _xpt_value(v, r[v.name]) for v in spec.variables} for r in records]
    assert back == expected
    for v in spec.variables:  # character variables stored at the longest value, within the length
        if v.type == "Char":
            longest = max((len(r[v.name] or "") for r in records), default=0)
            assert meta.variable_storage_width[v.name] == max(longest, 1) <= v.length


def test_xpt_files_are_version_5(pkg):  # type: ignore[no-untyped-def]
    head = (pkg["outdir"] / "dm.xpt").read_bytes()[:80]
    assert head.startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!")  # v8 says LIBV8


def test_define_xml_describes_the_seed_package(pkg):  # type: ignore[no-untyped-def]
    """Schema-valid, one ItemGroupDef per file written, lengths equal to the XPT's."""
    ns = {"odm": define.ODM, "def": define.DEF, "xlink": define.XLINK}
    doc = etree.parse(str(pkg["outdir"] / "define.xml"))
    schema = Path(importlib.util.find_spec("odmlib").origin).parent / "schemas/define/2.1/define2-1-0.xsd"
    xsd = etree.XMLSchema(etree.parse(str(schema)))
    assert xsd.validate(doc), "\n".join(str(e) for e in xsd.error_log)
    leaves = [g.find("def:leaf", ns).get(f"{{{define.XLINK}}}href") for g in doc.findall(".//odm:ItemGroupDef", ns)]
    assert sorted(leaves) == sorted(p.name for p in pkg["outdir"].glob("*.xpt"))
    items = {i.get("OID"): i for i in doc.findall(".//odm:ItemDef", ns)}
    for name in pkg["counts"]:
        _, meta = _xpt(pkg["outdir"], name)
        for v in metadata.DATASETS[name].variables:
            assert items[f"IT.{name}.{v.name}"].get("Length") == str(meta.variable_storage_width[v.name]), v.name


@pytest.mark.parametrize("name", list(metadata.DATASETS))
def test_dataset_json_reads_back_equal_to_the_records(pkg, name):  # type: ignore[no-untyped-def]
    spec = metadata.DATASETS[name]
    doc = _json(pkg["outdir"], name)
    assert doc["datasetJSONVersion"] == "1.1.0"
    assert (doc["name"], doc["label"], doc["itemGroupOID"]) == (name, spec.label, f"IG.{name}")
    assert [c["name"] for c in doc["columns"]] == list(spec.names)
    assert doc["records"] == len(doc["rows"]) == len(pkg["records"][name])
    expected = [
        [x.isoformat() if isinstance(x, datetime.date) else x for x in r.values()] for r in pkg["records"][name]
    ]
    assert doc["rows"] == expected


def test_datasets_equal_the_database(pkg):  # type: ignore[no-untyped-def]
    """The files against the casebook tables themselves, not the mapping's own output."""
    trial, outdir = pkg["trial"], pkg["outdir"]
    dm, _ = _xpt(outdir, "DM")
    patients = Patient.objects.filter(trial=trial).order_by("subject_id")
    assert list(dm["SUBJID"]) == [p.subject_id for p in patients]
    assert list(dm["BRTHDTC"]) == [str(p.birth_year) for p in patients]
    deaths = {
        e.patient.subject_id: e.date.isoformat()
        for e in PatientEvent.objects.filter(patient__trial=trial, kind="death")
    }
    assert {s: d for s, d in zip(dm["SUBJID"], dm["DTHDTC"], strict=True) if d} == deaths

    ae = _json(outdir, "AE")
    col = {c["name"]: i for i, c in enumerate(ae["columns"])}
    from_file = sorted(
        (r[col["AESPID"]], r[col["AESTDTC"]], r[col["AETOXGR"]], r[col["AEDECOD"]], r[col["USUBJID"]])
        for r in ae["rows"]
    )
    from_db = sorted(
        (f"AE-{a.pk}", a.onset.isoformat(), str(a.grade), a.term.term, f"{trial.code}-{a.patient.subject_id}")
        for a in AdverseEvent.objects.filter(patient__trial=trial).select_related("term", "patient")
    )
    assert from_file == from_db and len(from_db) > 0

    ex, _ = _xpt(outdir, "EX")
    given = Cycle.objects.filter(patient__trial=trial, given=True, day1__isnull=False).select_related("patient")
    assert sorted(zip(ex["USUBJID"], ex["VISITNUM"], ex["EXSTDTC"], ex["EXDOSE"], strict=True)) == sorted(
        (f"{trial.code}-{c.patient.subject_id}", float(c.number), c.day1.isoformat(), float(c.dose_mg)) for c in given
    )
    # --DY: the first dose is day 1 for every dosed subject
    assert set(ex.loc[ex["EXSEQ"] == 1, "EXSTDY"]) == {1.0}

    lb, _ = _xpt(outdir, "LB")
    fields = {"PLAT": "platelets", "NEUT": "anc", "HGB": "hemoglobin", "BILI": "bilirubin", "ALT": "alt", "AST": "ast"}
    from_db_lb = sorted(
        (f"LAB-{lp.pk}", code, lp.date.isoformat(), float(getattr(lp, field)))
        for lp in LabPanel.objects.filter(patient__trial=trial)
        for code, field in fields.items()
        if getattr(lp, field) is not None
    )
    assert sorted(zip(lb["LBSPID"], lb["LBTESTCD"], lb["LBDTC"], lb["LBSTRESN"], strict=True)) == from_db_lb
    assert len(from_db_lb) > 0
    cm = _json(outdir, "CM")
    col = {c["name"]: i for i, c in enumerate(cm["columns"])}
    assert sorted((r[col["CMSPID"]], r[col["CMSTDTC"]]) for r in cm["rows"]) == sorted(
        (f"CM-{m.pk}", m.start.isoformat()) for m in ConcomitantMedication.objects.filter(patient__trial=trial)
    )
    mh, _ = _xpt(outdir, "MH")
    hct = sorted(
        (f"{trial.code}-{t.patient.subject_id}", t.date.isoformat())
        for t in Transplant.objects.filter(patient__trial=trial).select_related("patient")
    )
    assert (
        sorted(
            zip(
                mh.loc[mh["MHCAT"] == "TRANSPLANT", "USUBJID"],
                mh.loc[mh["MHCAT"] == "TRANSPLANT", "MHSTDTC"],
                strict=True,
            )
        )
        == hct
    )
    assert len(hct) > 0
    # one baseline at most per subject and test, never after the first dose
    flagged = lb[lb["LBBLFL"] == "Y"]
    assert not flagged.duplicated(["USUBJID", "LBTESTCD"]).any() and (flagged["LBDY"] <= 1).all()


def test_design_response_and_adae_datasets_equal_the_database(pkg):  # type: ignore[no-untyped-def]
    """TS, TA, TE, TV, TI from the trial configuration, RS from the assessments, ADAE from
    the AEs, DM.COUNTRY from the sites: the files against the tables."""
    trial, outdir = pkg["trial"], pkg["outdir"]
    patients = list(Patient.objects.filter(trial=trial).select_related("site").order_by("subject_id"))
    dm, _ = _xpt(outdir, "DM")
    assert list(dm["COUNTRY"]) == [p.site.country for p in patients] and set(dm["COUNTRY"]) == {"USA"}

    ts = _json(outdir, "TS")
    col = {c["name"]: i for i, c in enumerate(ts["columns"])}
    values = {}
    for r in ts["rows"]:
        values.setdefault(r[col["TSPARMCD"]], []).append(r[col["TSVAL"]])
    levels = list(DoseLevel.objects.filter(trial=trial).order_by("level"))
    assert values["DOSE"] == [f"{d.dose_mg_m2.normalize():f}" for d in levels] == ["0.3", "0.4", "0.5", "0.6"]
    assert values["TITLE"] == [trial.title] and values["TPHASE"] == ["PHASE I TRIAL"]
    assert values["NARMS"] == ["4"] and values["PLANSUB"] == [str(trial.max_sample_size)]
    assert values["ACTSUB"] == [str(sum(p.enrolled_on is not None for p in patients))]
    assert values["AGEMIN"] == [f"P{trial.age_min}Y"] and values["FCNTRY"] == ["USA"]
    assert values["SSTDTC"] == [min(c.date for p in patients for c in p.consents.all()).isoformat()]

    ta, _ = _xpt(outdir, "TA")
    assert set(ta["ARMCD"]) == {f"L{d.level}" for d in levels}
    assert set(dm["ARMCD"]) - {""} <= set(ta["ARMCD"])  # every planned arm of DM is a TA arm
    assert set(zip(dm["ARMCD"], dm["ARM"], strict=True)) - {("", "")} <= set(zip(ta["ARMCD"], ta["ARM"], strict=True))
    te, _ = _xpt(outdir, "TE")
    assert set(ta["ETCD"]) == set(te["ETCD"])
    tv, _ = _xpt(outdir, "TV")
    ex, _ = _xpt(outdir, "EX")
    assert set(ex["VISITNUM"]) <= set(tv["VISITNUM"])  # every dose's visit is planned
    assert len(_json(outdir, "TI")["rows"]) == 8

    rs, _ = _xpt(outdir, "RS")
    assessments = Assessment.objects.filter(patient__trial=trial).select_related("patient")
    results = sorted((f"ASSESSMENT-{a.pk}", a.date.isoformat(), a.result.upper()) for a in assessments if a.result)
    mrd = rs[rs["RSTESTCD"] == "MRD"]
    assert sorted(zip(mrd["RSSPID"], mrd["RSDTC"], mrd["RSSTRESC"], strict=True)) == results and results
    responses = sorted((f"ASSESSMENT-{a.pk}", a.response.upper()) for a in assessments if a.response)
    overall = rs[rs["RSTESTCD"] == "OVRLRESP"]
    assert sorted(zip(overall["RSSPID"], overall["RSSTRESC"], strict=True)) == responses
    assert set(rs["RSSPID"]) == {
        f"ASSESSMENT-{a.pk}"
        for a in assessments
        if a.result or a.response or a.level is not None or a.blasts_pct is not None or a.extramedullary is not None
    }

    adae, _ = _xpt(outdir, "ADAE")
    ae, _ = _xpt(outdir, "AE")
    adsl, _ = _xpt(outdir, "ADSL")
    assert list(zip(adae["USUBJID"], adae["AESEQ"], adae["AESTDTC"], strict=True)) == list(
        zip(ae["USUBJID"], ae["AESEQ"], ae["AESTDTC"], strict=True)
    )
    assert list(adae["ATOXGRN"]) == [float(g) for g in ae["AETOXGR"]]
    saffl = dict(zip(adsl["USUBJID"], adsl["SAFFL"], strict=True))
    assert all(saffl[u] == f for u, f in zip(adae["USUBJID"], adae["SAFFL"], strict=True))
    emergent = adae[adae["TRTEMFL"] == "Y"]
    assert (emergent["ASTDT"] >= emergent["TRTSDT"]).all() and (emergent["ASTDY"] >= 1).all()
    assert emergent["TRTA"].ne("").all() and len(emergent) > 0
    supp = _json(outdir, "SUPPAE")
    col = {c["name"]: i for i, c in enumerate(supp["columns"])}
    dlt = {
        (r[col["USUBJID"]], float(r[col["IDVARVAL"]])): r[col["QVAL"]]
        for r in supp["rows"]
        if r[col["QNAM"]] == "AEDLT"
    }
    flagged = {(u, s): f for u, s, f in zip(adae["USUBJID"], adae["AESEQ"], adae["DLTFL"], strict=True) if f}
    assert flagged == dlt and "Y" in dlt.values()


def test_adtte_alone_reproduces_the_survival_api(pkg):  # type: ignore[no-untyped-def]
    """Kaplan-Meier (OS, PFS) and Aalen-Johansen (NRM) on the ADTTE file reproduce the
    1-year figures of the survival API exactly, estimate and confidence interval."""
    frame, _ = _xpt(pkg["outdir"], "ADTTE")
    survival = pkg["survival"]
    landmark = float(pkg["trial"].landmark_days)
    rows = frame[frame["AVAL"].notna()]
    for param in ("OS", "PFS"):
        p = rows[rows["PARAMCD"] == param]
        km = kaplan_meier(list(p["AVAL"]), [c == 0 for c in p["CNSR"]])
        at = survival_at(km, landmark)
        api = survival[param.lower()]
        assert km.n == api["n"] and km.n_events == api["events"]
        assert (round(at.estimate, 6), round(at.lower, 6), round(at.upper, 6)) == (
            api["at_1y"]["estimate"],
            api["at_1y"]["lower"],
            api["at_1y"]["upper"],
        )
    nrm = rows[rows["PARAMCD"] == "NRM"]
    status = [{0: 1, 1: 0, 2: 2}[int(c)] for c in nrm["CNSR"]]
    at = incidence_at(cumulative_incidence(list(nrm["AVAL"]), status, cause=1), landmark)
    assert round(at.estimate, 6) == survival["nrm"]["at_1y"]["estimate"]
    assert round(at.estimate * 100, 1) == 5.6  # the paper's 1-year NRM (docs/seed-trial.md)
    # the paper's 1-year PFS 89% and OS 94%
    assert (round(survival["pfs"]["at_1y"]["estimate"] * 100), round(survival["os"]["at_1y"]["estimate"] * 100)) == (
        89,
        94,
    )


def test_export_sdtm_command_writes_the_files(pkg, tmp_path):  # type: ignore[no-untyped-def]
    out = tmp_path / "package"
    call_command("export_sdtm", pkg["trial"].code, str(out))
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [f"{n.lower()}.{ext}" for n in metadata.DATASETS for ext in ("xpt", "json")] + ["define.xml"]
    )
    with pytest.raises(CommandError, match="No trial with code 'NOPE'"):
        call_command("export_sdtm", "NOPE", str(out))


def test_seed_values_are_filled_and_controlled(pkg):  # type: ignore[no-untyped-def]
    """On the real seed data: every SDTM Req variable has a value (DM.COUNTRY too: the
    seed's sites are in the USA) and every coded value is a term of its codelist."""
    from exchange.cdisc import terminology

    for name, records in pkg["records"].items():
        spec = metadata.DATASETS[name]
        assert records, name
        for r in records:
            for v in spec.variables:
                if v.core == "Req" and spec.standard.startswith("SDTM"):
                    assert r[v.name] is not None, (name, v.name, r["USUBJID"])
                codelist = terminology.codelist_for(name, v.name, v.codelist, r)
                if codelist is not None and v.type == "Char":
                    assert terminology.in_codelist(codelist, r[v.name]), (name, v.name, r[v.name])


def test_seed_package_passes_the_conformance_checks(pkg):  # type: ignore[no-untyped-def]
    """Issue 18 acceptance, in place of CDISC CORE (docs/exports.md, "Conformance"): no
    error over the records, nor over the XPT files read back (what a reviewer receives)."""
    from exchange.cdisc.conformance import conformance_report, errors, report_text

    findings = conformance_report(pkg["records"])
    assert errors(findings) == [], report_text(errors(findings))
    from_files = {}
    for name in pkg["counts"]:
        frame, _ = _xpt(pkg["outdir"], name)
        from_files[name] = frame.to_dict(orient="records")
    assert errors(conformance_report(from_files)) == []
    # the one warning, explained in docs/exports.md (CORE reports it too, as CORE-001078): UHC-008
    # died of GVHD, recorded as the death's cause and in the GVHD episodes, not as a fatal AE
    assert [(f.rule, f.dataset, f.variable, f.message.split()[0]) for f in findings] == [
        ("TD-DEATH-AE", "DM", "DTHFL", "INO-POST-HCT-UHC-008")
    ]


@pytest.mark.parametrize("batch_rows", [1, 40])  # a patient per batch; a few patients per batch
def test_the_streamed_package_is_every_record_written_at_once(pkg, tmp_path, monkeypatch, batch_rows):  # type: ignore[no-untyped-def]
    """package_write reads, maps and stages a batch of patients at a time (flat memory); its
    files are, byte for byte, those the writers give for every record of the trial at once
    (the XPT writer's bytes being pyreadstat's: tests/rules/test_cdisc_xpt.py)."""
    from exchange.cdisc import package, writers

    created = datetime.datetime(2026, 12, 7, 3, 0, 5, tzinfo=datetime.UTC)
    monkeypatch.setattr(package.timezone, "now", lambda: created)
    trial = pkg["trial"]
    streamed = tmp_path / "streamed"
    counts = package_write(
        trial, list(trial.sites.values_list("pk", flat=True)), streamed, AS_OF, batch_rows=batch_rows
    )
    whole = tmp_path / "whole"
    whole.mkdir()
    for name, records in pkg["records"].items():
        spec = metadata.DATASETS[name]
        writers.write_xpt(spec, records, whole / f"{name.lower()}.xpt", created=created)
        with open(whole / f"{name.lower()}.json", "w", encoding="utf-8") as out:
            writers.write_dataset_json(spec, records, out, study=trial.code, count=len(records), created=created)
    described = {name: (metadata.DATASETS[name], records) for name, records in pkg["records"].items()}
    (whole / "define.xml").write_bytes(define.define_xml(trial.code, described, created=created))
    assert counts == {name: len(records) for name, records in pkg["records"].items()}
    assert sorted(p.name for p in streamed.iterdir()) == sorted(p.name for p in whole.iterdir())
    for path in whole.iterdir():
        assert (streamed / path.name).read_bytes() == path.read_bytes(), path.name
