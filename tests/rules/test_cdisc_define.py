"""exchange.cdisc.define: define.xml 2.1 of a written package agrees with its XPT files
(names, labels, types, lengths), every reference resolves, keys and order are consistent,
and the document validates against the Define-XML 2.1 schema shipped with odmlib
(requirements-dev.txt). No database."""

import datetime
import importlib.util
from decimal import Decimal
from pathlib import Path

import pyreadstat
import pytest
from lxml import etree

from exchange.cdisc import define, mapping, metadata, terminology, writers
from exchange.cdisc.mapping import AdverseEvent, Disposition, Dose, LabDraw, Medication, Study, Subject
from tests.rules.test_cdisc_lb import LIMITS
from tests.rules.test_cdisc_mapping import DESIGN, _ae, _subject

D = datetime.date
NS = {"odm": define.ODM, "def": define.DEF, "xlink": define.XLINK}
STUDY = Study(code="STUDY-1", drug="INOTUZUMAB OZOGAMICIN", lab_limits=LIMITS, design=DESIGN)
CREATED = datetime.datetime(2026, 12, 7, 4, 30, tzinfo=datetime.UTC)


def _subjects() -> list[Subject]:
    ae: AdverseEvent = _ae(
        7, D(2024, 3, 20), D(2024, 3, 25), serious=True, sae_hospitalisation=True, outcome="recovered"
    )
    labs = (
        LabDraw(3, D(2024, 3, 10), 1, platelets=Decimal("140"), anc=Decimal("1.20"), bilirubin=Decimal("12.5")),
        LabDraw(4, D(2024, 3, 24), None, platelets=Decimal("40"), alt=Decimal("130")),
    )
    first = _subject(
        adverse_events=(ae, _ae(9, D(2024, 4, 12), dlt=True, dlt_rule="G4 neutropenia > 7 days")),
        labs=labs,
        medications=(Medication(5, "ponatinib", D(2024, 2, 1)),),
        diagnosis="b_all",
        assessments=(
            mapping.ResponseAssessment(6, "mrd", D(2024, 3, 1), "ngs", "negative"),
            mapping.ResponseAssessment(8, "bone_marrow", D(2024, 6, 9), response="cri", extramedullary=False),
        ),
    )
    second = _subject(
        subject_id="UHC-002",
        sex="male",
        race="white",
        doses=(Dose(1, D(2024, 5, 2), 2, Decimal("1.1"), Decimal("0.600"), Decimal("1.83")),),
        dispositions=(Disposition("consent", 21, D(2024, 4, 20), protocol_version="2"),),
        death_date=None,
        death_cause="",
        last_contact_date=D(2024, 11, 1),
    )
    return [first, second]


@pytest.fixture(scope="module")
def package(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("define")
    data = mapping.datasets(STUDY, _subjects())
    for name, records in data.items():
        writers.write_xpt(metadata.DATASETS[name], records, out / f"{name.lower()}.xpt")
    described = {name: (metadata.DATASETS[name], records) for name, records in data.items()}
    (out / "define.xml").write_bytes(define.define_xml(STUDY.code, described, created=CREATED))
    return out, data


def _doc(package):  # type: ignore[no-untyped-def]
    out, _ = package
    return etree.parse(str(out / "define.xml"))


def test_well_formed_define_21_with_standards(package):  # type: ignore[no-untyped-def]
    doc = _doc(package)
    root = doc.getroot()
    assert root.tag == f"{{{define.ODM}}}ODM"
    assert root.get("ODMVersion") == "1.3.2" and root.get(f"{{{define.DEF}}}Context") == "Submission"
    mdv = root.find("odm:Study/odm:MetaDataVersion", NS)
    assert mdv.get(f"{{{define.DEF}}}DefineVersion") == "2.1.0"
    standards = {(s.get("Name"), s.get("Type"), s.get("Version"), s.get("PublishingSet"))
                 for s in mdv.findall("def:Standards/def:Standard", NS)}  # fmt: skip
    assert standards == {
        ("SDTMIG", "IG", "3.4", None),
        ("ADaMIG", "IG", "1.3", None),
        ("CDISC/NCI", "CT", define.CT_VERSION, "SDTM"),
        ("CDISC/NCI", "CT", define.CT_VERSION, "ADaM"),
    }


def test_every_dataset_and_variable_once_as_in_the_xpt(package):  # type: ignore[no-untyped-def]
    out, data = package
    doc = _doc(package)
    groups = doc.findall(".//odm:ItemGroupDef", NS)
    assert [g.get("Name") for g in groups] == list(data)  # each dataset once, in the package order
    items = {i.get("OID"): i for i in doc.findall(".//odm:ItemDef", NS)}
    leaves = {}
    for g in groups:
        name = g.get("Name")
        spec = metadata.DATASETS[name]
        _, meta = pyreadstat.read_xport(str(out / f"{name.lower()}.xpt"), metadataonly=True)
        assert g.findtext("odm:Description/odm:TranslatedText", namespaces=NS) == meta.file_label == spec.label
        assert g.get(f"{{{define.DEF}}}Structure") == spec.structure
        assert g.find("def:Class", NS).get("Name") == spec.klass
        assert g.get("Purpose") == ("Analysis" if name.startswith("AD") else "Tabulation")
        leaf = g.find("def:leaf", NS)
        assert leaf.get(f"{{{define.XLINK}}}href") == f"{name.lower()}.xpt"
        assert g.get(f"{{{define.DEF}}}ArchiveLocationID") == leaf.get("ID")
        leaves[leaf.get("ID")] = name
        refs = g.findall("odm:ItemRef", NS)
        assert [items[r.get("ItemOID")].get("Name") for r in refs] == meta.column_names == list(spec.names)
        for r in refs:
            item = items[r.get("ItemOID")]
            v = spec.variable(item.get("Name"))
            assert (
                item.findtext("odm:Description/odm:TranslatedText", namespaces=NS)
                == meta.column_names_to_labels[v.name]
            )
            assert item.get("Length") == str(meta.variable_storage_width[v.name]), (name, v.name)
            xpt_type = "string" if item.get("DataType") == "text" else "double"
            assert meta.readstat_variable_types[v.name] == xpt_type, (name, v.name)
    assert len(leaves) == len(groups)
    n_variables = sum(len(metadata.DATASETS[n].variables) for n in data)
    value_level = sum(len(lists) for (dataset, _), (_, lists) in terminology.VALUE_LEVEL.items() if dataset in data)
    assert len(items) == n_variables + value_level  # the item OIDs are unique (dict) and none is extra


def test_lengths_follow_the_longest_value():  # type: ignore[no-untyped-def]
    spec = metadata.DM
    assert define.xpt_length(spec.variable("SUBJID"), [{"SUBJID": "UHC-001"}, {"SUBJID": "UHC-0002"}]) == 8
    assert define.xpt_length(spec.variable("SUBJID"), [{"SUBJID": None}]) == 1
    assert define.xpt_length(spec.variable("AGE"), [{"AGE": 49}]) == 8


def test_every_reference_resolves(package):  # type: ignore[no-untyped-def]
    doc = _doc(package)
    oids = {tag: {e.get("OID") for e in doc.findall(f".//{tag}", NS)}
            for tag in ("odm:ItemDef", "odm:CodeList", "odm:MethodDef", "def:ValueListDef", "def:WhereClauseDef")}  # fmt: skip
    for ref in doc.findall(".//odm:CodeListRef", NS):
        assert ref.get("CodeListOID") in oids["odm:CodeList"]
    for ref in doc.findall(".//odm:ItemRef", NS):
        assert ref.get("ItemOID") in oids["odm:ItemDef"]
        if ref.get("MethodOID"):
            assert ref.get("MethodOID") in oids["odm:MethodDef"]
    for ref in doc.findall(".//def:ValueListRef", NS):
        assert ref.get("ValueListOID") in oids["def:ValueListDef"]
    for ref in doc.findall(".//def:WhereClauseRef", NS):
        assert ref.get("WhereClauseOID") in oids["def:WhereClauseDef"]
    for check in doc.findall(".//def:WhereClauseDef/odm:RangeCheck", NS):
        assert check.get(f"{{{define.DEF}}}ItemOID") in oids["odm:ItemDef"]
    referenced = {r.get("CodeListOID") for r in doc.findall(".//odm:CodeListRef", NS)}
    assert referenced == oids["odm:CodeList"]  # no codelist that nothing uses
    assert {r.get("MethodOID") for r in doc.findall(".//odm:ItemRef[@MethodOID]", NS)} == oids["odm:MethodDef"]


def test_order_numbers_and_key_sequences(package):  # type: ignore[no-untyped-def]
    doc = _doc(package)
    for g in doc.findall(".//odm:ItemGroupDef", NS):
        refs = g.findall("odm:ItemRef", NS)
        assert [int(r.get("OrderNumber")) for r in refs] == list(range(1, len(refs) + 1))
        keys = sorted(int(r.get("KeySequence")) for r in refs if r.get("KeySequence"))
        assert keys == list(range(1, len(keys) + 1)) and len(keys) >= 2, g.get("Name")


def test_derived_variables_have_methods_and_origins(package):  # type: ignore[no-untyped-def]
    doc = _doc(package)
    items = {i.get("OID"): i for i in doc.findall(".//odm:ItemDef", NS)}
    for ref in doc.findall(".//odm:ItemGroupDef/odm:ItemRef", NS):
        origin = items[ref.get("ItemOID")].find("def:Origin", NS)
        assert origin is not None, ref.get("ItemOID")
        assert (origin.get("Type") == "Derived") == (ref.get("MethodOID") is not None), ref.get("ItemOID")
    methods = {r.get("ItemOID"): r.get("MethodOID") for r in doc.findall(".//odm:ItemRef[@MethodOID]", NS)}
    assert methods["IT.AE.AESTDY"] == methods["IT.DS.DSSTDY"] == "MT.STUDYDAY"
    assert methods["IT.ADTTE.AVAL"] == "MT.ADTTE.AVAL" and methods["IT.ADTTE.CNSR"] == "MT.ADTTE.CNSR"
    age = items["IT.ADSL.AGE"].find("def:Origin", NS)
    assert age.get("Type") == "Predecessor"
    assert age.findtext("odm:Description/odm:TranslatedText", namespaces=NS) == "DM.AGE"
    assert items["IT.AE.AETERM"].find("def:Origin", NS).get("Source") == "Investigator"


def test_codelists_hold_the_terms_used_with_c_codes(package):  # type: ignore[no-untyped-def]
    _, data = package
    doc = _doc(package)
    lists = {c.get("Name"): c for c in doc.findall(".//odm:CodeList", NS)}
    sex = lists["SEX"]
    assert [e.get("CodedValue") for e in sex.findall("odm:EnumeratedItem", NS)] == ["F", "M"]  # U is not used
    assert [e.find("odm:Alias", NS).get("Name") for e in sex.findall("odm:EnumeratedItem", NS)] == ["C16576", "C20197"]
    assert sex.find("odm:Alias", NS).get("Name") == "C66731"
    assert lists["AEREL"].find("odm:Alias", NS) is None  # sponsor-defined: no C-code
    assert lists["COUNTRY"].find("odm:ExternalCodeList", NS).get("Dictionary") == "ISO 3166-1 alpha-3"
    used = {r["DSDECOD"] for r in data["DS"] if r["DSCAT"] == "PROTOCOL MILESTONE"}
    assert {e.get("CodedValue") for e in lists["PROTMLST"].findall("odm:EnumeratedItem", NS)} == used
    for name, c in lists.items():
        values = [e.get("CodedValue") for e in c.findall("odm:EnumeratedItem", NS)]
        assert len(values) == len(set(values)), name


def _schema() -> Path | None:
    spec = importlib.util.find_spec("odmlib")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "schemas" / "define" / "2.1" / "define2-1-0.xsd"
    return path if path.exists() else None


def test_validates_against_the_define_21_schema(package):  # type: ignore[no-untyped-def]
    path = _schema()
    assert path is not None, "odmlib (requirements-dev.txt) ships the Define-XML 2.1 schema"
    schema = etree.XMLSchema(etree.parse(str(path)))
    doc = _doc(package)
    assert schema.validate(doc), "\n".join(str(e) for e in schema.error_log)


def test_value_level_codelists_hold_the_terms_used_by_test(package):  # type: ignore[no-untyped-def]
    """RSSTRESC is controlled per RSTESTCD: each value list's codelist holds what that test reported."""
    _, data = package
    lists = {c.get("Name"): c for c in _doc(package).findall(".//odm:CodeList", NS)}
    for test, codelist in terminology.VALUE_LEVEL[("RS", "RSSTRESC")][1].items():
        used = {r["RSSTRESC"] for r in data["RS"] if r["RSTESTCD"] == test}
        coded = {e.get("CodedValue") for e in lists[codelist].findall("odm:EnumeratedItem", NS)}
        assert coded == (used or set(terminology.CODELISTS[codelist].terms)), codelist
    assert {r["RSSTRESC"] for r in data["RS"] if r["RSTESTCD"] == "MRD"} == {"NEGATIVE"}
