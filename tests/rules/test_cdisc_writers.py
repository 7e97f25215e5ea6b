"""exchange.cdisc.writers: XPT v5 and Dataset-JSON v1.1 read back, and refusals that
name the dataset, variable, record and rule (issue 18). No database."""

import datetime
import io
import json

import pyreadstat
import pytest

from exchange.cdisc import metadata, writers
from exchange.cdisc.metadata import DatasetSpec, Variable

SPEC = DatasetSpec(
    "XX",
    "Test Dataset",
    "One record per thing",
    "EVENTS",
    "SDTMIG 3.4",
    (
        Variable("USUBJID", "Unique Subject Identifier", "Char", 20, "Req", key=1),
        Variable("XXSEQ", "Sequence Number", "Num", 8, "Req", key=2, integer=True),
        Variable("XXTERM", "Reported Term", "Char", 30, "Req"),
        Variable("XXVAL", "A Value", "Num", 8, "Perm"),
        Variable("XXDT", "A Date", "Num", 8, "Perm", date=True),
    ),
)
ROWS = [
    {"USUBJID": "S-001", "XXSEQ": 1, "XXTERM": "Nausea, grade 2", "XXVAL": 0.85, "XXDT": datetime.date(2024, 3, 10)},
    {"USUBJID": "S-001", "XXSEQ": 2, "XXTERM": None, "XXVAL": None, "XXDT": None},
    {"USUBJID": "S-0002", "XXSEQ": 1, "XXTERM": 'quote " and, comma', "XXVAL": -3, "XXDT": datetime.date(1959, 12, 31)},
]


def test_xpt_v5_reads_back_with_labels_lengths_and_dates(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "xx.xpt"
    writers.write_xpt(SPEC, ROWS, path)
    assert path.read_bytes().startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!")
    frame, meta = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
    assert (meta.table_name, meta.file_label) == ("XX", "Test Dataset")
    assert meta.column_names_to_labels == {v.name: v.label for v in SPEC.variables}
    assert meta.variable_storage_width["USUBJID"] == 6  # the longest value, not the maximum 20
    assert meta.variable_storage_width["XXTERM"] == len('quote " and, comma')
    assert meta.original_variable_types["XXDT"] == "DATE9."
    assert list(frame["USUBJID"]) == ["S-001", "S-001", "S-0002"]
    assert list(frame["XXTERM"]) == ["Nausea, grade 2", "", 'quote " and, comma']
    assert list(frame["XXSEQ"]) == [1.0, 2.0, 1.0]
    assert frame["XXVAL"].isna().tolist() == [False, True, False] and frame["XXVAL"][2] == -3.0
    assert frame["XXDT"][0] == (datetime.date(2024, 3, 10) - datetime.date(1960, 1, 1)).days and frame["XXDT"][2] == -1
    dates, _ = pyreadstat.read_xport(str(path))  # a SAS reader sees real dates
    assert dates["XXDT"][0] == datetime.date(2024, 3, 10)


def test_dataset_json_is_streamed_and_reads_back():  # type: ignore[no-untyped-def]
    out = io.StringIO()
    created = datetime.datetime(2026, 12, 7, 3, 0, 5, 123, tzinfo=datetime.UTC)
    n = writers.write_dataset_json(SPEC, iter(ROWS), out, study="STUDY-1", count=3, created=created)
    doc = json.loads(out.getvalue())
    assert n == 3 and doc["records"] == 3
    assert doc["datasetJSONVersion"] == "1.1.0"
    assert doc["datasetJSONCreationDateTime"] == "2026-12-07T03:00:05+00:00"
    assert (doc["itemGroupOID"], doc["name"], doc["label"], doc["studyOID"]) == (
        "IG.XX",
        "XX",
        "Test Dataset",
        "STUDY-1",
    )
    assert doc["columns"] == [
        {"itemOID": "IT.XX.USUBJID", "name": "USUBJID", "label": "Unique Subject Identifier", "dataType": "string",
         "length": 20, "keySequence": 1},
        {"itemOID": "IT.XX.XXSEQ", "name": "XXSEQ", "label": "Sequence Number", "dataType": "integer", "keySequence": 2},
        {"itemOID": "IT.XX.XXTERM", "name": "XXTERM", "label": "Reported Term", "dataType": "string", "length": 30},
        {"itemOID": "IT.XX.XXVAL", "name": "XXVAL", "label": "A Value", "dataType": "double"},
        {"itemOID": "IT.XX.XXDT", "name": "XXDT", "label": "A Date", "dataType": "date", "targetDataType": "integer",
         "displayFormat": "DATE9."},
    ]  # fmt: skip
    assert doc["rows"] == [
        ["S-001", 1, "Nausea, grade 2", 0.85, "2024-03-10"],
        ["S-001", 2, None, None, None],
        ["S-0002", 1, 'quote " and, comma', -3, "1959-12-31"],
    ]


def test_dataset_json_refuses_a_wrong_record_count():  # type: ignore[no-untyped-def]
    with pytest.raises(writers.DatasetError, match="XX: header says 2 records, 3 written"):
        writers.write_dataset_json(
            SPEC, ROWS, io.StringIO(), study="S", count=2, created=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"XXTERM": "x" * 31}, r"XX\.XXTERM \(record 2\): 31 characters, longer than its length 30"),
        ({"XXTERM": "Übelkeit"}, r"XX\.XXTERM \(record 2\): non-ASCII text"),
        ({"XXVAL": "1.5"}, r"XX\.XXVAL \(record 2\): numeric variable given str"),
        ({"XXSEQ": 1.5}, r"XX\.XXSEQ \(record 2\): integer variable given 1.5"),
        ({"XXVAL": float("nan")}, r"XX\.XXVAL \(record 2\): nan is not a finite number"),
        ({"XXDT": "2024-03-10"}, r"XX\.XXDT \(record 2\): date variable given str"),
        ({"XXTERM": 5}, r"XX\.XXTERM \(record 2\): character variable given int"),
        ({"EXTRA": "x"}, r"XX \(record 2\): variables .* are not"),
    ],
)
def test_both_writers_refuse_what_the_dataset_cannot_hold(tmp_path, change, message):  # type: ignore[no-untyped-def]
    rows = [ROWS[0], ROWS[1] | change, ROWS[2]]
    path = tmp_path / "xx.xpt"
    with pytest.raises(writers.DatasetError, match=message):
        writers.write_xpt(SPEC, rows, path)
    assert not path.exists()  # refused before anything is written
    with pytest.raises(writers.DatasetError, match=message):
        writers.write_dataset_json(
            SPEC, rows, io.StringIO(), study="S", count=3, created=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        )


def test_every_dataset_spec_has_dataset_json_columns():  # type: ignore[no-untyped-def]
    for spec in metadata.DATASETS.values():
        columns = writers.dataset_json_columns(spec)
        assert [c["name"] for c in columns] == list(spec.names)
        assert all(c["dataType"] in {"string", "integer", "double", "date"} for c in columns)
