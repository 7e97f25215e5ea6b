"""define.xml 2.1 of the datasets the package writes (issue 18). No Django; lxml.

One document describes every dataset of the folder: ``def:Standards`` (SDTMIG 3.4,
ADaMIG 1.3, CDISC CT), one ``ItemGroupDef`` per dataset (``def:Structure``,
``def:Class``, ``Purpose``, keys, ``def:leaf`` to its XPT), one ``ItemDef`` per variable
of each dataset (``DataType``, ``Length``, ``def:Origin``, ``Description``), the
``CodeList`` of each controlled variable with the terms the data use (NCI C-codes where
known), the ``ValueListDef`` of ``DSDECOD`` (NCOMPLT or PROTMLST by ``DSCAT``) and a
``MethodDef`` for each derived variable. Origins and methods are data (``METHODS``,
``ASSIGNED``) and the lengths are the XPT's: a character variable is as long as its
longest value (at least 1), a number 8 bytes.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from exchange.cdisc import terminology
from exchange.cdisc.mapping import Record
from exchange.cdisc.metadata import DatasetSpec, Variable

ODM = "http://www.cdisc.org/ns/odm/v1.3"
DEF = "http://www.cdisc.org/ns/def/v2.1"
XLINK = "http://www.w3.org/1999/xlink"
NSMAP = {None: ODM, "def": DEF, "xlink": XLINK}
CT_VERSION = terminology.CT_VERSION

STANDARDS = {
    "SDTMIG 3.4": ("STD.SDTMIG.3-4", "SDTMIG", "3.4"),
    "ADaMIG 1.3": ("STD.ADAMIG.1-3", "ADaMIG", "1.3"),
}
CT_STANDARDS = {"SDTMIG 3.4": ("STD.CT.SDTM", "SDTM"), "ADaMIG 1.3": ("STD.CT.ADAM", "ADaM")}

# NCI C-codes of the terms, where known (CDISC CT); other terms are listed without one.
TERM_CODES: dict[tuple[str, str], str] = {
    ("NY", "Y"): "C49488",
    ("NY", "N"): "C49487",
    ("SEX", "F"): "C16576",
    ("SEX", "M"): "C20197",
    ("SEX", "U"): "C17998",
    ("AGEU", "YEARS"): "C29848",
    ("PROTMLST", "INFORMED CONSENT OBTAINED"): "C16735",
    ("PROTMLST", "ENTERED INTO TRIAL"): "C161417",
    ("FREQ", "ONCE"): "C64576",
    ("STENRF", "UNKNOWN"): "C17998",
    **{("FREQ", term): code for term, code in terminology.TS_VALUE_CODES.items() if term.startswith("EVERY ")},
}
# Codelists that are an external dictionary rather than a list of terms.
EXTERNAL = {"COUNTRY": ("ISO 3166-1 alpha-3", "2020")}


@dataclass(frozen=True)
class Method:
    oid: str
    name: str
    description: str
    variables: tuple[str, ...]  # "DS.VAR", or "*.VAR" for every dataset


METHODS: tuple[Method, ...] = (
    Method(
        "MT.STUDYDAY",
        "Study day",
        "--DY = date - RFSTDTC + 1 on or after RFSTDTC (the first dose), date - RFSTDTC before it (no day 0); "
        "empty when either date is partial or missing.",
        ("AE.AESTDY", "AE.AEENDY", "EX.EXSTDY", "EX.EXENDY", "DS.DSSTDY", "LB.LBDY", "CM.CMSTDY", "CM.CMENDY")
        + ("MH.MHSTDY", "RS.RSDY"),
    ),
    Method(
        "MT.SEQ",
        "Sequence number",
        "1, 2, ... per subject in date order (AESEQ: the AE's record id, unique and stable); the source record "
        "is kept in --SPID.",
        ("AE.AESEQ", "EX.EXSEQ", "DS.DSSEQ", "LB.LBSEQ", "CM.CMSEQ", "MH.MHSEQ", "RS.RSSEQ"),
    ),
    Method(
        "MT.TS.TSSEQ",
        "Trial summary sequence",
        "1, 2, ... within each TSPARMCD (DOSE: one per dose level, in level order, TSGRPID the arm code).",
        ("TS.TSSEQ",),
    ),
    Method(
        "MT.RS.STRES",
        "Standardized response",
        "RSSTRESC = RSORRES in upper case (CRi -> CRI); RSSTRESN the number of a numeric result (MRD level as a "
        "fraction, marrow blasts in %).",
        ("RS.RSSTRESC", "RS.RSSTRESN"),
    ),
    Method(
        "MT.RS.VISIT",
        "Assessment visit",
        "The planned assessment visit of TV (PROTOCOL s7, dosing/schedule.py) whose window holds the assessment "
        "date, the nearest due date first; empty when none does (unscheduled).",
        ("RS.VISITNUM", "RS.VISIT"),
    ),
    Method(
        "MT.ADAE.TRTA",
        "Actual treatment at onset",
        "The dose level of the latest dose given on or before the AE start (the level's mg/m2, as TRT01A); TRTAN "
        "the level number; empty before the first dose.",
        ("ADAE.TRTA", "ADAE.TRTAN"),
    ),
    Method(
        "MT.ADAE.ADT",
        "Analysis dates",
        "ASTDT = AESTDTC, AENDT = AEENDTC as dates (complete dates only); ASTDY/AENDY = date - TRTSDT + 1 on or "
        "after TRTSDT, date - TRTSDT before it (no day 0).",
        ("ADAE.ASTDT", "ADAE.AENDT", "ADAE.ASTDY", "ADAE.AENDY"),
    ),
    Method(
        "MT.ADAE.TRTEMFL",
        "Treatment-emergent flag",
        "Y when ASTDT is on or after TRTSDT (the protocol sets no end to the AE reporting period), else empty.",
        ("ADAE.TRTEMFL",),
    ),
    Method(
        "MT.ADAE.ATOXGR",
        "Analysis toxicity grade",
        "ATOXGR = AETOXGR (CTCAE v5.0 grade as recorded); ATOXGRN its number.",
        ("ADAE.ATOXGR", "ADAE.ATOXGRN"),
    ),
    Method(
        "MT.ADAE.DLT",
        "DLT flag",
        "The DLT decision that counts on the AE (latest signed, not superseded; SUPPAE.AEDLT/AEDLTRUL): DLTFL Y/N, "
        "DLTRULE the rule; empty when not adjudicated.",
        ("ADAE.DLTFL", "ADAE.DLTRULE"),
    ),
    Method("MT.USUBJID", "Unique subject identifier", "STUDYID, '-', SUBJID.", ("DM.USUBJID",)),
    Method(
        "MT.EPOCH",
        "Epoch",
        "From the record's date: before the first dose (or never dosed) SCREENING; from the first dose to the "
        "end-of-treatment date TREATMENT; after it FOLLOW-UP.",
        ("*.EPOCH",),
    ),
    Method("MT.AGE", "Age", "Year of informed consent - year of birth (only the birth year is kept).", ("DM.AGE",)),
    Method(
        "MT.DM.RFDTC",
        "Reference dates",
        "RFSTDTC = RFXSTDTC the first dose, RFENDTC = RFXENDTC the last dose, RFICDTC the first consent, "
        "RFPENDTC the latest recorded date.",
        ("DM.RFSTDTC", "DM.RFENDTC", "DM.RFXSTDTC", "DM.RFXENDTC", "DM.RFPENDTC"),
    ),
    Method(
        "MT.DM.ACTARM",
        "Actual arm",
        "The dose level of the first dose; empty (with ARMNRS) when never dosed.",
        ("DM.ACTARMCD", "DM.ACTARM"),
    ),
    Method("MT.DTHFL", "Death flag", "Y when a death is recorded, else empty.", ("DM.DTHFL",)),
    Method(
        "MT.ENRF",
        "End relative to reference",
        "ONGOING when not resolved (stopped), else empty.",
        ("*.AEENRF", "*.CMENRF"),
    ),
    Method(
        "MT.LB.BLFL",
        "Baseline flag",
        "Y on the subject's last value of the test on or before the first dose.",
        ("LB.LBBLFL",),
    ),
    Method(
        "MT.LB.NRIND",
        "Reference range indicator and grade",
        "LBNRIND LOW/HIGH outside the one known limit (LLN for counts, ULN for chemistry), empty within it; "
        "LBTOXGR the CTCAE v5.0 grade of safety/lab_grading.py (increases after the first dose against an "
        "abnormal baseline), empty for grade 0.",
        ("LB.LBNRIND", "LB.LBTOXGR"),
    ),
    Method(
        "MT.LB.VISIT", "Visit", "The cycle the panel was entered with (CYCLE n DAY 1).", ("LB.VISITNUM", "LB.VISIT")
    ),
    Method(
        "MT.ADSL.TRT",
        "Treatment",
        "TRT01P: the assigned dose level (mg/m2); TRT01A: the level of the first dose; (N) the level number.",
        ("ADSL.TRT01P", "ADSL.TRT01PN", "ADSL.TRT01A", "ADSL.TRT01AN", "ADTTE.TRTP", "ADTTE.TRTPN"),
    ),
    Method(
        "MT.ADSL.TRTDT",
        "Treatment dates",
        "TRTSDT the first dose, TRTEDT the last dose (day 1 of the cycle).",
        ("ADSL.TRTSDT", "ADSL.TRTEDT"),
    ),
    Method(
        "MT.ADSL.POP",
        "Population flags",
        "ENRLFL enrolled at a dose level; SAFFL at least one dose; DLTEVLFL evaluable with or without a DLT, as "
        "the escalation engine decides (PROTOCOL s5); BFILLFL (enrolled subjects) Y when enrolled into a "
        "backfill place below the current dose level, whose DLTs count for that level.",
        ("ADSL.ENRLFL", "ADSL.SAFFL", "ADSL.DLTEVLFL", "ADSL.BFILLFL", "ADTTE.SAFFL"),
    ),
    Method(
        "MT.ADSL.EVENTS",
        "Subject events",
        "HCTDT the allogeneic HCT date; DTHDT the death date (DM.DTHDTC); DTHCAUS the recorded cause of death "
        "(RELAPSE, GVHD, INFECTION, ORGAN FAILURE, OTHER).",
        ("ADSL.HCTDT", "ADSL.DTHDT", "ADSL.DTHCAUS"),
    ),
    Method(
        "MT.ADTTE.ADT",
        "Time-to-event dates",
        "STARTDT: HCT date or first dose (STARTSRC), the trial's survival origin for OS and PFS, the first dose for "
        "NRM; ADT: the event date, else the last date known alive (analysis/endpoints.py).",
        ("ADTTE.STARTDT", "ADTTE.ADT", "ADTTE.EVNTDESC", "ADTTE.CNSDTDSC", "ADTTE.STARTSRC"),
    ),
    Method(
        "MT.ADTTE.AVAL",
        "Time to event",
        "AVAL = ADT - STARTDT in days; empty when the subject's outcome dates contradict each other "
        "(EVNTDESC DATE ERROR) or there is no first dose for a first-dose origin.",
        ("ADTTE.AVAL",),
    ),
    Method(
        "MT.ADTTE.CNSR",
        "Censoring",
        "CNSR 0 event (OS death, PFS relapse or death, NRM death without prior relapse); 1 censored at the last "
        "date known alive; 2 (NRM) relapse, the competing event.",
        ("ADTTE.CNSR",),
    ),
)

# Variables set by the sponsor rather than collected or derived.
ASSIGNED = frozenset(
    {"STUDYID", "DOMAIN", "RDOMAIN", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "QORIG", "QEVAL", "PARAMCD", "PARAM"}
    | {"AGEU", "EXTRT", "EXDOSFRM", "EXDOSU", "EXROUTE", "EXDOSFRQ", "DSCAT", "ARMCD", "ARM", "ARMNRS", "AEDECOD"}
    | {"AELLT", "AELLTCD", "AEBODSYS", "AESOC", "DSDECOD", "COUNTRY"}
    | {"RSTESTCD", "RSTEST", "RSCAT", "RSEVAL", "RSSTRESU"}
)
# ADaM predecessors searched in order, per dataset (the first that has the variable).
PREDECESSORS: dict[str, tuple[str, ...]] = {"ADAE": ("ADSL", "AE")}


# The trial design datasets: their variables come from the protocol (def:Origin "Protocol"), so
# a "*.VAR" method (EPOCH's) does not reach them.
TRIAL_DESIGN = frozenset({"TS", "TA", "TE", "TV", "TI"})


def method_of(dataset: str, variable: str) -> Method | None:
    for m in METHODS:
        if f"{dataset}.{variable}" in m.variables:
            return m
        if f"*.{variable}" in m.variables and dataset not in TRIAL_DESIGN:
            return m
    return None


def origin(spec: DatasetSpec, v: Variable, predecessors: Mapping[str, DatasetSpec]) -> tuple[str, str]:
    """(def:Origin Type, Source or predecessor text) of ``v``."""
    if method_of(spec.name, v.name) is not None:
        return "Derived", "Sponsor"
    if spec.klass == "TRIAL DESIGN":
        return "Protocol", "Sponsor"
    if v.name in ASSIGNED:
        return "Assigned", "Sponsor"
    if spec.standard.startswith("ADaM"):
        for source in PREDECESSORS.get(spec.name, ("DM", "ADSL")):
            pred = predecessors.get(source)
            if pred is not None and pred.name != spec.name and v.name in pred.names:
                return "Predecessor", f"{source}.{v.name}"
        return "Derived", "Sponsor"  # needs a METHODS entry (tests/rules/test_cdisc_define.py checks)
    return "Collected", "Investigator"


def xpt_length(v: Variable, records: Sequence[Record]) -> int:
    """The length the XPT writer stores: the longest value (at least 1); 8 for numbers."""
    if v.type == "Num":
        return 8
    values = (r[v.name] for r in records)
    return max((len(x) for x in values if isinstance(x, str)), default=0) or 1


@dataclass
class DatasetUsage:
    """What define.xml needs to know of a dataset's records, gathered one record at a time
    (the package streams its records and never holds a dataset): the longest value of
    each text variable and the terms each codelist is given. Its memory is bounded by the
    variables and the codelists' terms, not by the records."""

    spec: DatasetSpec
    longest: dict[str, int] = field(default_factory=dict)
    terms: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._text = [v.name for v in self.spec.variables if v.type == "Char"]
        value_level = [(self.spec.name, v.name) in terminology.VALUE_LEVEL for v in self.spec.variables]
        # A variable's own codelist, whatever the record; value-level ones depend on the record.
        pairs = list(zip(self.spec.variables, value_level, strict=True))
        self._fixed = [(v.name, v.codelist) for v, vl in pairs if v.codelist is not None and not vl]
        self._coded = [v for v, vl in pairs if vl]
        for name in self._text:
            self.longest.setdefault(name, 0)

    @classmethod
    def of(cls, spec: DatasetSpec, records: Iterable[Record]) -> DatasetUsage:
        usage = cls(spec)
        usage.add(records)
        return usage

    def add(self, records: Iterable[Record]) -> None:
        longest, terms, name = self.longest, self.terms, self.spec.name
        fixed = [(variable, terms.setdefault(codelist, set())) for variable, codelist in self._fixed]
        for r in records:
            for variable in self._text:
                value = r[variable]
                if isinstance(value, str) and len(value) > longest[variable]:
                    longest[variable] = len(value)
            for variable, used in fixed:
                value = r[variable]
                if isinstance(value, str):
                    if value:
                        used.add(value)
                elif isinstance(value, int):
                    used.add(str(value))
            for v in self._coded:
                value = r[v.name]
                codelist = terminology.codelist_for(name, v.name, v.codelist, r)
                if codelist is not None:
                    used = terms.setdefault(codelist, set())
                    if isinstance(value, str) and value:
                        used.add(value)
                    elif isinstance(value, int):
                        used.add(str(value))

    def length(self, v: Variable) -> int:
        """As :func:`xpt_length` over every record added."""
        return 8 if v.type == "Num" else self.longest[v.name] or 1


def data_type(v: Variable) -> str:
    if v.type == "Char":
        return "text"
    return "integer" if v.integer or v.date else "float"


def codelist_oid(name: str) -> str:
    return f"CL.{name}"


def _text(parent: etree._Element, tag: str, text: str, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, tag, attrs)
    tt = etree.SubElement(element, f"{{{ODM}}}TranslatedText", {"{http://www.w3.org/XML/1998/namespace}lang": "en"})
    tt.text = text
    return element


def _terms_used(data: Mapping[str, DatasetUsage]) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for usage in data.values():
        for name, values in usage.terms.items():
            used.setdefault(name, set()).update(values)
        for v in usage.spec.variables:
            if v.codelist is not None:
                used.setdefault(v.codelist, set())
    for dataset, variable in terminology.VALUE_LEVEL:
        if dataset in data:
            for name in terminology.VALUE_LEVEL[(dataset, variable)][1].values():
                used.setdefault(name, set())
    return used


def define_xml(
    study: str,
    data: Mapping[str, tuple[DatasetSpec, Sequence[Record]] | DatasetUsage],
    *,
    created: datetime.datetime,
    study_description: str = "",
) -> bytes:
    """define.xml 2.1 of ``data`` (dataset name -> (spec, records), or the
    :class:`DatasetUsage` gathered while the records were written), UTF-8 bytes."""
    o, d = f"{{{ODM}}}", f"{{{DEF}}}"
    usages = {
        name: value if isinstance(value, DatasetUsage) else DatasetUsage.of(*value) for name, value in data.items()
    }
    specs = {name: usage.spec for name, usage in usages.items()}
    root = etree.Element(
        o + "ODM",
        {
            "FileType": "Snapshot",
            "FileOID": f"DEFINE.{study}",
            "CreationDateTime": created.replace(microsecond=0, tzinfo=None).isoformat(),
            "ODMVersion": "1.3.2",
            "Originator": "Trialdesk",
            "SourceSystem": "Trialdesk",
            d + "Context": "Submission",
        },
        nsmap=NSMAP,  # type: ignore[arg-type]
    )
    study_el = etree.SubElement(root, o + "Study", OID=study)
    gv = etree.SubElement(study_el, o + "GlobalVariables")
    etree.SubElement(gv, o + "StudyName").text = study
    etree.SubElement(gv, o + "StudyDescription").text = study_description or study
    etree.SubElement(gv, o + "ProtocolName").text = study
    mdv = etree.SubElement(
        study_el,
        o + "MetaDataVersion",
        {"OID": f"MDV.{study}", "Name": f"{study} tabulation and analysis datasets", d + "DefineVersion": "2.1.0"},
    )
    standards = etree.SubElement(mdv, d + "Standards")
    used_standards = sorted({spec.standard for spec in specs.values()})
    for std in used_standards:
        oid, name, version = STANDARDS[std]
        etree.SubElement(standards, d + "Standard", OID=oid, Name=name, Type="IG", Version=version, Status="Final")
    for std in used_standards:
        oid, publishing_set = CT_STANDARDS[std]
        etree.SubElement(
            standards,
            d + "Standard",
            OID=oid,
            Name="CDISC/NCI",
            Type="CT",
            PublishingSet=publishing_set,
            Version=CT_VERSION,
            Status="Final",
        )
    ct_of = {spec.standard: CT_STANDARDS[spec.standard][0] for spec in specs.values()}

    # Value-level metadata: DSDECOD's codelist by DSCAT.
    value_lists: list[tuple[str, str, str, dict[str, str]]] = []
    for (dataset, variable), (by, lists) in terminology.VALUE_LEVEL.items():
        if dataset in specs:
            value_lists.append((dataset, variable, by, lists))
    for dataset, variable, by, lists in value_lists:
        vl = etree.SubElement(mdv, d + "ValueListDef", OID=f"VL.{dataset}.{variable}")
        for n, (value, _cl) in enumerate(lists.items(), start=1):
            ref = etree.SubElement(
                vl, o + "ItemRef", ItemOID=f"IT.{dataset}.{variable}.{value}", OrderNumber=str(n), Mandatory="Yes"
            )
            etree.SubElement(ref, d + "WhereClauseRef", WhereClauseOID=f"WC.{dataset}.{by}.{value}")
    for dataset, _variable, by, lists in value_lists:
        for value in lists:
            wc = etree.SubElement(mdv, d + "WhereClauseDef", OID=f"WC.{dataset}.{by}.{value}")
            rc = etree.SubElement(
                wc, o + "RangeCheck", {"SoftHard": "Soft", d + "ItemOID": f"IT.{dataset}.{by}", "Comparator": "EQ"}
            )
            etree.SubElement(rc, o + "CheckValue").text = value

    for name, spec in specs.items():
        adam = spec.standard.startswith("ADaM")
        attrs = {
            "OID": f"IG.{name}",
            "Name": name,
            "Repeating": "No" if spec.structure == "One record per subject" or spec.name == "TE" else "Yes",
            "IsReferenceData": "Yes" if spec.klass == "TRIAL DESIGN" else "No",
            "SASDatasetName": name,
            "Purpose": "Analysis" if adam else "Tabulation",
            d + "Structure": spec.structure,
            d + "StandardOID": STANDARDS[spec.standard][0],
            d + "ArchiveLocationID": f"LF.{name}",
        }
        if not adam:
            attrs["Domain"] = name[4:] if name.startswith("SUPP") else name
        ig = etree.SubElement(mdv, o + "ItemGroupDef", attrs)
        _text(ig, o + "Description", spec.label)
        for n, v in enumerate(spec.variables, start=1):
            ref_attrs = {
                "ItemOID": f"IT.{name}.{v.name}",
                "OrderNumber": str(n),
                "Mandatory": "Yes" if v.core == "Req" else "No",
            }
            if v.key is not None:
                ref_attrs["KeySequence"] = str(v.key)
            m = method_of(name, v.name)
            if m is not None:
                ref_attrs["MethodOID"] = m.oid
            etree.SubElement(ig, o + "ItemRef", ref_attrs)
        cls = spec.klass
        if cls == "BASIC DATA STRUCTURE" and "PARAMCD" in spec.names and "CNSR" in spec.names:
            class_el = etree.SubElement(ig, d + "Class", Name=cls)
            etree.SubElement(class_el, d + "SubClass", Name="TIME-TO-EVENT")
        else:
            etree.SubElement(ig, d + "Class", Name=cls)
        leaf = etree.SubElement(ig, d + "leaf", {"ID": f"LF.{name}", f"{{{XLINK}}}href": f"{name.lower()}.xpt"})
        etree.SubElement(leaf, d + "title").text = f"{name.lower()}.xpt"

    for name, usage in usages.items():
        spec = usage.spec
        for v in spec.variables:
            item_attrs = {
                "OID": f"IT.{name}.{v.name}",
                "Name": v.name,
                "SASFieldName": v.name,
                "DataType": data_type(v),
                "Length": str(usage.length(v)),
            }
            if v.date:
                item_attrs[d + "DisplayFormat"] = "DATE9."
            item = etree.SubElement(mdv, o + "ItemDef", item_attrs)
            _text(item, o + "Description", v.label)
            if v.codelist is not None:
                etree.SubElement(item, o + "CodeListRef", CodeListOID=codelist_oid(v.codelist))
            if (name, v.name) in terminology.VALUE_LEVEL:
                etree.SubElement(item, d + "ValueListRef", ValueListOID=f"VL.{name}.{v.name}")
            kind, source = origin(spec, v, specs)
            if kind == "Predecessor":
                pred = etree.SubElement(item, d + "Origin", Type=kind)
                _text(pred, o + "Description", source)
            else:
                etree.SubElement(item, d + "Origin", Type=kind, Source=source)
    for dataset, variable, _by, lists in value_lists:
        spec = usages[dataset].spec
        v = spec.variable(variable)
        for value, cl in lists.items():
            item = etree.SubElement(
                mdv,
                o + "ItemDef",
                {
                    "OID": f"IT.{dataset}.{variable}.{value}",
                    "Name": variable,
                    "SASFieldName": variable,
                    "DataType": "text",
                    "Length": str(usages[dataset].length(v)),
                },
            )
            _text(item, o + "Description", f"{v.label} ({value})")
            etree.SubElement(item, o + "CodeListRef", CodeListOID=codelist_oid(cl))
            kind, source = origin(spec, v, specs)
            etree.SubElement(item, d + "Origin", Type=kind, Source=source)

    used = _terms_used(usages)
    standard_of_list: dict[str, str] = {}
    for spec in specs.values():
        for v in spec.variables:
            if v.codelist is not None:
                standard_of_list.setdefault(v.codelist, spec.standard)
    for dataset, _variable, _by, lists in value_lists:
        for cl in lists.values():
            standard_of_list.setdefault(cl, specs[dataset].standard)
    for cl_name in sorted(used):
        codelist = terminology.CODELISTS[cl_name]
        attrs = {"OID": codelist_oid(cl_name), "Name": cl_name, "DataType": "text"}
        if codelist.c_code is not None:
            attrs[d + "StandardOID"] = ct_of[standard_of_list[cl_name]]
        cl_el = etree.SubElement(mdv, o + "CodeList", attrs)
        if cl_name in EXTERNAL:
            dictionary, version = EXTERNAL[cl_name]
            etree.SubElement(cl_el, o + "ExternalCodeList", Dictionary=dictionary, Version=version)
        else:
            terms = [t for t in codelist.terms if t in used[cl_name]] or list(codelist.terms)
            terms += sorted(used[cl_name] - set(codelist.terms))
            for n, term in enumerate(terms, start=1):
                term_attrs = {"CodedValue": term, "OrderNumber": str(n)}
                if term not in codelist.terms and codelist.c_code is not None:
                    term_attrs[d + "ExtendedValue"] = "Yes"
                item = etree.SubElement(cl_el, o + "EnumeratedItem", term_attrs)
                if (cl_name, term) in TERM_CODES:
                    etree.SubElement(item, o + "Alias", Context="nci:ExtCodeID", Name=TERM_CODES[(cl_name, term)])
        if codelist.c_code is not None:
            etree.SubElement(cl_el, o + "Alias", Context="nci:ExtCodeID", Name=codelist.c_code)

    used_methods = {method_of(spec.name, v.name) for spec in specs.values() for v in spec.variables} - {None}
    for m in METHODS:
        if m in used_methods:
            method = etree.SubElement(mdv, o + "MethodDef", OID=m.oid, Name=m.name, Type="Computation")
            _text(method, o + "Description", m.description)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
