"""Exports: the workbook read back with openpyxl, the AWS-style CSV, Parquet round trips,
and the workbook converted by LibreOffice when it is installed."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
from openpyxl.utils.escape import unescape
from openpyxl.worksheet.worksheet import Worksheet

from patchframe._fleet import Fleet
from patchframe._schema import (
    NON_COMPLIANT_STATES,
    NodeKey,
    PatchColumns,
    UnknownStateWarning,
    build_errors,
    build_patches,
    empty_patches,
)
from patchframe.aws import load_fleet
from patchframe.exceptions import ColumnsError, ValidationError
from patchframe.export import (
    CSV_DETAIL_COLUMNS,
    CSV_SUMMARY_COLUMNS,
    EXCEL_CELL_LIMIT,
    EXCEL_SHEETS,
    _excel,
    read_parquet,
    to_compliance_csv,
    to_excel,
    to_parquet,
)
from patchframe.sandbox.emulator import sample_client
from patchframe.summary import cve_exposure

NASTY = ["=1+1", "+SUM(A1:A9)", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x","y")', "\tx", "\rx"]


def patches(rows: dict[str, list[dict[str, Any]]], **node: list[str | None]) -> pd.DataFrame:
    """A patches frame from API records per node, in account 123456789012, eu-west-1."""
    parts = []
    for instance_id, records in rows.items():
        cols = PatchColumns()
        cols.extend(records)
        parts.append((NodeKey(instance_id, "123456789012", "eu-west-1"), cols))
    return build_patches(parts, node_columns=node or None)


def record(kb: str, state: str, **fields: Any) -> dict[str, Any]:
    return {"KBId": kb, "State": state, "InstalledTime": 0, **fields}


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(client=sample_client(), progress=False)


@pytest.fixture(scope="module")
def book_path(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return to_excel(fleet, tmp_path_factory.mktemp("book") / "fleet.xlsx")


@pytest.fixture(scope="module")
def book(book_path: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(book_path)


def table(sheet: Worksheet, header_row: int = 1) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Header and data rows of a sheet whose table starts at ``header_row``."""
    rows = list(sheet.iter_rows(min_row=header_row, values_only=True))
    return [str(h) for h in rows[0]], rows[1:]


def expected_cells(series: pd.Series[Any]) -> list[Any]:
    """What a column should read back as: text, numbers, naive UTC datetimes, None for NA."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        naive = series.dt.tz_convert("UTC").dt.tz_localize(None).dt.round("ms")
        return [None if pd.isna(t) else t.to_pydatetime() for t in naive]
    if pd.api.types.is_bool_dtype(series.dtype):
        return [None if pd.isna(v) else bool(v) for v in series.astype(object)]
    if pd.api.types.is_numeric_dtype(series.dtype):
        return [None if pd.isna(v) else float(v) for v in series.astype(object)]
    return [None if pd.isna(v) else str(v) for v in series.astype(object)]


def assert_sheet_matches(sheet: Worksheet, frame: pd.DataFrame, header_row: int = 1) -> None:
    headers, rows = table(sheet, header_row)
    utc = [
        f"{c} (UTC)" if isinstance(frame[c].dtype, pd.DatetimeTZDtype) else str(c)
        for c in frame.columns
    ]
    assert headers == utc
    assert len(rows) == len(frame)
    for i, column in enumerate(frame.columns):
        got = [row[i] for row in rows]
        want = expected_cells(frame[column])
        if pd.api.types.is_numeric_dtype(frame[column].dtype) and not pd.api.types.is_bool_dtype(
            frame[column].dtype
        ):
            got = [None if v is None else float(v) for v in got]
        assert got == want, column
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            assert all(isinstance(v, dt.datetime) for v in got if v is not None)


# --- the workbook -----------------------------------------------------------------


def test_sheets_in_order(book: openpyxl.Workbook) -> None:
    assert book.sheetnames == list(EXCEL_SHEETS)


def test_patches_sheet_holds_every_row_value_and_type(
    book: openpyxl.Workbook, fleet: Fleet
) -> None:
    assert_sheet_matches(book["Patches"], fleet.patches)
    times = [c.value for c in book["Patches"]["J"][1:] if c.value is not None]
    assert times and all(type(t) is dt.datetime for t in times)
    assert book["Patches"]["J2"].number_format == "yyyy-mm-dd hh:mm:ss"


def test_missing_and_failed_sheet(book: openpyxl.Workbook, fleet: Fleet) -> None:
    open_rows = fleet.patches[fleet.patches["state"].isin(["MISSING", "FAILED"])]
    worst_first = open_rows.sort_values(
        ["severity_level", "instance_id", "kb_id"], ascending=[False, True, True], kind="stable"
    )
    assert len(worst_first) == 271
    assert_sheet_matches(book["Missing and Failed"], worst_first)


def test_cves_nodes_and_errors_sheets(book: openpyxl.Workbook, fleet: Fleet) -> None:
    assert_sheet_matches(book["CVEs"], cve_exposure(fleet.patches))
    assert_sheet_matches(book["Nodes"], fleet.nodes)
    headers, rows = table(book["Errors"])
    assert headers == list(fleet.errors.columns) and rows == []
    assert book["Errors"].auto_filter.ref == "A1:G1"


def test_summary_figures_and_node_table(book: openpyxl.Workbook, fleet: Fleet) -> None:
    sheet = book["Summary"]
    figures = {row[0]: row[1] for row in sheet.iter_rows(min_row=5, max_row=17, values_only=True)}
    s = fleet.summary()
    assert figures["Nodes"] == s["nodes"] == 13
    assert figures["Non-compliant nodes"] == s["non_compliant_nodes"]
    assert figures["Patch rows"] == s["patches"]
    assert figures["Missing patches"] == (fleet.patches["state"] == "MISSING").sum()
    assert figures["Errors"] == 0
    ref = sheet.tables["NodeSummary"].ref
    header_row = int(ref.split(":")[0][1:])
    headers, rows = table(sheet, header_row)
    assert len(rows) == len(fleet.nodes)
    assert {r[0] for r in rows} == set(fleet.nodes["instance_id"])
    compliance = [r[headers.index("compliance")] for r in rows]
    assert compliance[0] == "NON_COMPLIANT" and compliance.count("NON_COMPLIANT") == 11
    by_node = fleet.nodes.set_index("instance_id")
    for r in rows:
        for column in ("missing", "failed", "installed_pending_reboot"):
            want = by_node.loc[r[0], column]
            assert r[headers.index(column)] == (None if pd.isna(want) else want)


def test_non_compliant_rows_are_highlighted(book: openpyxl.Workbook) -> None:
    rules = [
        rule.formula[0]
        for cf in book["Summary"].conditional_formatting
        for rule in cf.rules
        if rule.type == "expression"
    ]
    assert any('="NON_COMPLIANT"' in f for f in rules)
    states = [
        rule.formula[0]
        for cf in book["Patches"].conditional_formatting
        for rule in cf.rules
        if rule.type == "cellIs"
    ]
    assert '"MISSING"' in states and '"Critical"' in states


def test_tables_autofilter_frozen_header_and_widths(book: openpyxl.Workbook) -> None:
    for name in EXCEL_SHEETS[1:5]:
        sheet = book[name]
        assert sheet.freeze_panes == "A2"
        (only,) = sheet.tables.values()
        assert only.ref == f"A1:{sheet.cell(1, sheet.max_column).column_letter}{sheet.max_row}"
        assert only.autoFilter is not None
    widths = book["Patches"].column_dimensions
    assert 20 < widths["C"].width <= 60  # instance ids fit, titles are capped


def test_summary_has_two_charts(book_path: Path) -> None:
    with zipfile.ZipFile(book_path) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 2
        assert "Nodes by compliance" in z.read(charts[0]).decode()


def test_bare_patches_frame(tmp_path: Path, fleet: Fleet) -> None:
    frame = fleet.patches
    book = openpyxl.load_workbook(to_excel(frame, tmp_path / "bare.xlsx"))
    assert book.sheetnames == list(EXCEL_SHEETS)
    assert_sheet_matches(book["Patches"], frame)
    headers, rows = table(book["Nodes"])
    assert len(rows) == frame["instance_id"].nunique() == 12  # the unscanned node has no rows
    status = dict(
        zip([r[2] for r in rows], [r[headers.index("compliance")] for r in rows], strict=True)
    )
    assert status["i-0e8c6a4f2d0b13579"] == "COMPLIANT"
    assert list(status.values()).count("NON_COMPLIANT") == 11
    assert table(book["Errors"])[1] == []


def test_text_is_never_a_formula_and_na_is_empty(tmp_path: Path) -> None:
    rows = [record(f"KB{i}", "Missing", Title=t, Severity="Critical") for i, t in enumerate(NASTY)]
    rows.append(record("KB-NA", "InstalledOther", Title="", Severity=""))
    frame = patches({"i-00000001": rows})
    path = to_excel(frame, tmp_path / "nasty.xlsx")
    sheet = openpyxl.load_workbook(path)["Patches"]
    headers, values = table(sheet)
    # XML keeps no bare carriage return: XlsxWriter writes Excel's _x000D_ escape,
    # which Excel and LibreOffice read back as "\r" and openpyxl leaves as it is.
    titles = [r[headers.index("title")] for r in values]
    assert [unescape(t) if t else t for t in titles] == [*NASTY, None]
    title_col = headers.index("title") + 1
    assert all(sheet.cell(r, title_col).data_type == "s" for r in range(2, len(NASTY) + 2))
    na_row = values[-1]
    assert na_row[headers.index("severity")] is None
    assert na_row[headers.index("installed_time (UTC)")] is None
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/sheet"):
                assert "<f>" not in z.read(name).decode()  # no formula anywhere
    assert "nan" not in {str(v) for r in values for v in r}


def test_long_text_is_split_over_columns_never_cut(tmp_path: Path) -> None:
    # Past the limit twice over, with an emoji (two UTF-16 units) across the first cut.
    text = "a" * (EXCEL_CELL_LIMIT - 1) + "\U0001f600" + "b" * (EXCEL_CELL_LIMIT + 10)
    frame = patches(
        {"i-00000001": [record("KB1", "Missing", CVEIds=text), record("KB2", "Installed")]}
    )
    sheet = openpyxl.load_workbook(to_excel(frame, tmp_path / "long.xlsx"))["Patches"]
    headers, rows = table(sheet)
    parts = [h for h in headers if h.startswith("cve_ids")]
    assert parts == ["cve_ids", "cve_ids (2)", "cve_ids (3)"]
    pieces = [rows[0][headers.index(p)] for p in parts]
    assert "".join(pieces) == text
    assert all(len(p.encode("utf-16-le")) // 2 <= EXCEL_CELL_LIMIT for p in pieces)
    assert [rows[1][headers.index(p)] for p in parts] == [None, None, None]


def test_too_many_rows_raise_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = patches({"i-00000001": [record(f"KB{i}", "Missing") for i in range(30)]})
    monkeypatch.setattr(_excel, "EXCEL_ROW_LIMIT", 20)
    with pytest.raises(ValidationError, match="'Patches' would need 31 rows"):
        to_excel(frame, tmp_path / "big.xlsx")
    assert not (tmp_path / "big.xlsx").exists()


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="expected a Fleet or a patches DataFrame"):
        to_excel([1, 2], tmp_path / "x.xlsx")  # type: ignore[arg-type]
    with pytest.raises(ColumnsError, match="lacks column"):
        to_excel(pd.DataFrame({"instance_id": ["i-00000001"]}), tmp_path / "x.xlsx")
    with pytest.raises(OSError, match="cannot write"):
        to_excel(empty_patches(), tmp_path / "no" / "such" / "x.xlsx")


def test_empty_frame_and_errors(tmp_path: Path, fleet: Fleet) -> None:
    errors = build_errors(
        [
            {
                "account_id": "123456789012",
                "region": "eu-west-1",
                "instance_id": "i-0123456789abcdef0",
                "operation": "DescribeInstancePatches",
                "error_code": "AccessDeniedException",
                "message": "=not a formula",
                "attempts": 3,
            }
        ]
    )
    failed = Fleet(patches=fleet.patches, nodes=fleet.nodes, errors=errors)
    book = openpyxl.load_workbook(to_excel(failed, tmp_path / "errors.xlsx"))
    assert_sheet_matches(book["Errors"], errors)
    empty = openpyxl.load_workbook(to_excel(empty_patches(), tmp_path / "empty.xlsx"))
    for name in EXCEL_SHEETS[1:]:
        assert len(table(empty[name])[1]) == 0


@pytest.mark.parametrize(
    ("when", "cell"),
    [
        ("2024-06-13T15:40:39.779Z", dt.datetime(2024, 6, 13, 15, 40, 39, 779000)),
        ("1899-12-31T00:00:00Z", "1899-12-31T00:00:00"),  # before Excel's calendar: text
    ],
)
def test_times_are_utc_date_cells(tmp_path: Path, when: str, cell: object) -> None:
    seconds = pd.Timestamp(when).timestamp()
    frame = patches({"i-00000001": [record("KB1", "Installed", InstalledTime=seconds)]})
    sheet = openpyxl.load_workbook(to_excel(frame, tmp_path / "t.xlsx"))["Patches"]
    headers, rows = table(sheet)
    assert rows[0][headers.index("installed_time (UTC)")] == cell


def test_opens_in_libreoffice(book_path: Path, tmp_path: Path, fleet: Fleet) -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip(
            "LibreOffice is not installed (Debian: apt-get install libreoffice-calc-nogui)"
        )
    profile = (tmp_path / "profile").as_uri()  # a private profile: no clash with a running one
    done = subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            "xlsx:Calc MS Excel 2007 XML",
            "--outdir",
            str(tmp_path / "out"),
            str(book_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    converted = openpyxl.load_workbook(tmp_path / "out" / book_path.name)
    assert converted.sheetnames == list(EXCEL_SHEETS)
    assert converted["Patches"].max_row == len(fleet.patches) + 1
    assert converted["Patches"]["D2"].value == fleet.patches["kb_id"].iloc[0]


# --- CSV as the AWS console writes it --------------------------------------------


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_summary_csv(tmp_path: Path, fleet: Fleet) -> None:
    rows = read_csv(to_compliance_csv(fleet, tmp_path / "summary.csv"))
    assert tuple(rows[0]) == CSV_SUMMARY_COLUMNS
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [r["Index"] for r in body] == [str(i) for i in range(1, len(fleet.nodes) + 1)]
    assert {r["Instance ID"] for r in body} == set(fleet.nodes["instance_id"])
    assert body[0]["Compliance status"] == "NON_COMPLIANT"
    assert body[0]["Compliance severity"] == "CRITICAL"
    assert {r["Noncompliant Informational severity patch count"] for r in body} <= {"0", ""}

    bad = fleet.patches[fleet.patches["state"].isin(list(NON_COMPLIANT_STATES))]
    levels = bad["severity_level"].value_counts()
    for level in ("Critical", "High", "Medium", "Low", "Unspecified"):
        column = f"Noncompliant {level} severity patch count"
        assert sum(int(r[column] or 0) for r in body) == levels[level]
    node = fleet.nodes.set_index("instance_id").loc["i-0e1f2a3b4c5d6e7f8"]
    row = next(r for r in body if r["Instance ID"] == "i-0e1f2a3b4c5d6e7f8")
    assert row["Instance IP"] == node["ip_address"]
    assert row["Platform name"] == node["platform_name"]
    assert row["SSM Agent version"] == node["agent_version"]
    assert row["Patch baseline"] == node["baseline_id"]
    compliant = next(r for r in body if r["Compliance status"] == "COMPLIANT")
    assert compliant["Compliance severity"] == ""


def test_detail_csv_all_nodes_and_one(tmp_path: Path, fleet: Fleet) -> None:
    rows = read_csv(to_compliance_csv(fleet, tmp_path / "detail.csv", kind="detail"))
    assert tuple(rows[0]) == CSV_DETAIL_COLUMNS
    bad = fleet.patches[fleet.patches["state"].isin(list(NON_COMPLIANT_STATES))]
    assert len(rows) - 1 == len(bad)
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert {r["Logs URL"] for r in body} == {""}
    assert {r["Patch state"] for r in body} <= {
        "Missing",
        "Failed",
        "InstalledPendingReboot",
        "InstalledRejected",
        "AvailableSecurityUpdate",
    }
    assert all(r["Last report time"].endswith("Z") for r in body)

    one = "i-0e1f2a3b4c5d6e7f8"
    rows = read_csv(to_compliance_csv(fleet, tmp_path / "one.csv", kind="detail", instance_id=one))
    assert {r[1] for r in rows[1:]} == {one}
    assert len(rows) - 1 == (bad["instance_id"] == one).sum()
    rows = read_csv(to_compliance_csv(fleet, tmp_path / "one-s.csv", instance_id=one))
    assert len(rows) == 2 and rows[1][1] == one


def test_csv_neutralises_formulas_as_owasp_says(tmp_path: Path) -> None:
    rows = [record(f"KB{i}", "Missing", Title=t) for i, t in enumerate(NASTY)]
    frame = patches({"i-00000001": [*rows, record("KB9", "Missing", Title='say "hi", ok')]})
    path = to_compliance_csv(frame, tmp_path / "nasty.csv", kind="detail")
    titles = [r[3] for r in read_csv(path)[1:]]
    assert sorted(titles) == sorted([*("'" + t for t in NASTY), 'say "hi", ok'])
    raw = path.read_bytes().decode("utf-8")
    assert '"\'=1+1"' in raw and '"say ""hi"", ok"' in raw  # quoted, quotes doubled
    assert raw.startswith('"Index","Instance ID"') and "\r\n1," in raw


def test_csv_of_a_bare_frame_leaves_unknown_columns_empty(tmp_path: Path, fleet: Fleet) -> None:
    rows = read_csv(to_compliance_csv(fleet.patches, tmp_path / "bare.csv"))
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert len(body) == 12
    assert {r["Instance IP"] for r in body} == {""}
    assert {r["SSM Agent version"] for r in body} == {""}
    assert all(r["Platform name"] for r in body)


def test_csv_bad_arguments(tmp_path: Path, fleet: Fleet) -> None:
    with pytest.raises(ValidationError, match="kind 'everything'"):
        to_compliance_csv(fleet, tmp_path / "x.csv", kind="everything")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="'i-00000000' is not in the data"):
        to_compliance_csv(fleet, tmp_path / "x.csv", instance_id="i-00000000")


# --- Parquet --------------------------------------------------------------------


def test_parquet_round_trips_the_fleet(tmp_path: Path, fleet: Fleet) -> None:
    for name in ("patches", "nodes", "errors"):
        frame = getattr(fleet, name)
        back = read_parquet(to_parquet(frame, tmp_path / f"{name}.parquet"))
        pd.testing.assert_frame_equal(back, frame)


def test_parquet_keeps_every_dtype(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStateWarning)
        frame = patches(
            {
                "i-00000001": [
                    record("KB1", "Missing", Severity="Critical", InstalledTime=1.5e9),
                    record("KB2", "BrandNewState"),  # an unknown state: an extra category
                ],
                "i-00000002": [record("KB3", "Installed", InstalledTime=1.7e9 + 0.123456)],
            },
            platform_name=["Ubuntu", None],
        )
    assert frame["classification"].isna().all()  # categories of no value at all
    for case in (frame, frame.iloc[[2, 0]], frame.iloc[:0], empty_patches()):
        back = read_parquet(to_parquet(case, tmp_path / "case.parquet"))
        pd.testing.assert_frame_equal(back, case)
        assert list(back["state"].cat.categories)[-1] == list(case["state"].cat.categories)[-1]


def test_parquet_from_elsewhere_reads_as_pandas_does(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": pd.Categorical(["x", None])})
    frame.to_parquet(tmp_path / "plain.parquet")
    pd.testing.assert_frame_equal(
        read_parquet(tmp_path / "plain.parquet"), pd.read_parquet(tmp_path / "plain.parquet")
    )
    with pytest.raises(ValidationError, match="expected a DataFrame"):
        to_parquet(np.arange(3), tmp_path / "x.parquet")  # type: ignore[arg-type]


def test_extra_columns_of_any_dtype(tmp_path: Path) -> None:
    frame = patches({"i-00000001": [record("KB1", "Missing"), record("KB2", "Installed")]})
    frame["TITLE"] = ["clashes with title", None]  # Excel compares headers case-blind
    frame["reboot"] = pd.array([True, None], dtype="boolean")
    frame["score"] = [np.inf, np.nan]
    frame["count"] = pd.array([7, None], dtype="Int64")
    frame["seen"] = pd.to_datetime(["2024-01-02 03:04:05", None])  # naive: no "(UTC)"
    sheet = openpyxl.load_workbook(to_excel(frame, tmp_path / "extra.xlsx"))["Patches"]
    headers, rows = table(sheet)
    assert headers[-5:] == ["TITLE_", "reboot", "score", "count", "seen"]
    assert [r[-5:] for r in rows] == [
        ("clashes with title", True, "inf", 7, dt.datetime(2024, 1, 2, 3, 4, 5)),
        (None, None, None, None, None),
    ]
    assert sheet.tables["Patches"].ref == f"A1:{sheet.cell(1, len(headers)).column_letter}3"
