"""The workbook, read back with openpyxl, and converted by LibreOffice when it is installed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
from export_frames import NASTY, patches, record
from openpyxl.utils.escape import unescape
from openpyxl.worksheet.worksheet import Worksheet

from patchframe._fleet import Fleet
from patchframe._schema import AccountRow, build_accounts, build_errors, empty_patches
from patchframe.exceptions import ColumnsError, ValidationError
from patchframe.export import EXCEL_CELL_LIMIT, EXCEL_SHEETS, _excel, to_excel
from patchframe.summary import compliance_by, cve_exposure


@pytest.fixture(scope="module")
def book_path(sample_fleet_frames: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return to_excel(sample_fleet_frames, tmp_path_factory.mktemp("book") / "fleet.xlsx")


@pytest.fixture(scope="module")
def book(book_path: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(book_path)


def table(sheet: Worksheet, header_row: int = 1) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Header and data rows of a sheet whose table starts at ``header_row``."""
    rows = list(sheet.iter_rows(min_row=header_row, values_only=True))
    return [str(h) for h in rows[0]], rows[1:]


def expected_cells(series: pd.Series[Any]) -> list[Any]:
    """What a column should read back as: text, numbers, naive UTC datetimes, None for NA
    (and for empty text: an empty cell either way)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        naive = series.dt.tz_convert("UTC").dt.tz_localize(None).dt.round("ms")
        return [None if pd.isna(t) else t.to_pydatetime() for t in naive]
    if pd.api.types.is_bool_dtype(series.dtype):
        return [None if pd.isna(v) else bool(v) for v in series.astype(object)]
    if pd.api.types.is_timedelta64_dtype(series.dtype):  # a duration: days, as a number
        return [None if pd.isna(v) else v.total_seconds() / 86_400 for v in series]
    if pd.api.types.is_numeric_dtype(series.dtype):
        return [None if pd.isna(v) else float(v) for v in series.astype(object)]
    return [None if pd.isna(v) or v == "" else str(v) for v in series.astype(object)]


def assert_sheet_matches(sheet: Worksheet, frame: pd.DataFrame, header_row: int = 1) -> None:
    headers, rows = table(sheet, header_row)
    utc = [
        f"{c} (UTC)"
        if isinstance(frame[c].dtype, pd.DatetimeTZDtype)
        else f"{c} (days)"
        if pd.api.types.is_timedelta64_dtype(frame[c].dtype)
        else str(c)
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
    book: openpyxl.Workbook, sample_fleet_frames: Fleet
) -> None:
    assert_sheet_matches(book["Patches"], sample_fleet_frames.patches)
    times = [c.value for c in book["Patches"]["J"][1:] if c.value is not None]
    assert times and all(type(t) is dt.datetime for t in times)
    assert book["Patches"]["J2"].number_format == "yyyy-mm-dd hh:mm:ss"


def test_missing_and_failed_sheet(book: openpyxl.Workbook, sample_fleet_frames: Fleet) -> None:
    open_rows = sample_fleet_frames.patches[
        sample_fleet_frames.patches["state"].isin(["MISSING", "FAILED"])
    ]
    worst_first = open_rows.sort_values(
        ["severity_level", "instance_id", "kb_id"], ascending=[False, True, True], kind="stable"
    )
    assert len(worst_first) == 271
    assert_sheet_matches(book["Missing and Failed"], worst_first)


def test_cves_nodes_and_errors_sheets(book: openpyxl.Workbook, sample_fleet_frames: Fleet) -> None:
    assert_sheet_matches(book["CVEs"], cve_exposure(sample_fleet_frames.patches))
    # No account's name is known: no sheet has the all-NA column.
    assert_sheet_matches(book["Nodes"], sample_fleet_frames.nodes.drop(columns="account_name"))
    assert not [name for name in book.sheetnames if "account_name" in table(book[name])[0]]
    headers, rows = table(book["Errors"])
    assert headers == list(sample_fleet_frames.errors.columns) and rows == []
    assert book["Errors"].auto_filter.ref == "A1:G1"


def named_range(book: openpyxl.Workbook, name: str) -> tuple[str, str]:
    """The sheet and the A1 range a workbook-level name points at."""
    sheet, cells = book.defined_names[name].attr_text.split("!")
    return sheet.strip("'"), cells.replace("$", "")


def column_width(sheet: Worksheet, letter: str) -> float:
    """A column's width, also when the file gives one width to a run of columns."""
    index = openpyxl.utils.column_index_from_string(letter)
    for dims in sheet.column_dimensions.values():
        if dims.min is not None and dims.min <= index <= dims.max:
            return float(dims.width)
    raise AssertionError(f"column {letter} has no width")


def node_table(book: openpyxl.Workbook) -> tuple[list[str], list[tuple[Any, ...]]]:
    sheet, cells = named_range(book, "NodesWorstFirst")
    header_row = int(cells.split(":")[0][1:])
    return table(book[sheet], header_row)


def test_summary_figures_and_node_table(
    book: openpyxl.Workbook, sample_fleet_frames: Fleet
) -> None:
    sheet = book["Summary"]
    assert [c.value for c in sheet[4][:2]] == ["Count", "Figure"]
    # The number in A, its label in B: the node table's ids and names share those columns.
    figures = {row[1]: row[0] for row in sheet.iter_rows(min_row=5, max_row=17, values_only=True)}
    s = sample_fleet_frames.figures()
    assert figures["Nodes"] == s["nodes"] == 13
    assert figures["Non-compliant nodes"] == s["non_compliant_nodes"]
    assert figures["Patch rows"] == s["patches"]
    assert figures["Missing patches"] == (sample_fleet_frames.patches["state"] == "MISSING").sum()
    assert figures["Errors"] == 0
    headers, rows = node_table(book)
    assert len(rows) == len(sample_fleet_frames.nodes)
    assert {r[0] for r in rows} == set(sample_fleet_frames.nodes["instance_id"])
    compliance = [r[headers.index("compliance")] for r in rows]
    assert compliance[0] == "NON_COMPLIANT" and compliance.count("NON_COMPLIANT") == 11
    by_node = sample_fleet_frames.nodes.set_index("instance_id")
    for r in rows:
        for column in ("missing", "failed", "installed_pending_reboot"):
            want = by_node.loc[r[0], column]
            assert r[headers.index(column)] == (None if pd.isna(want) else want)


def test_summary_columns_fit_their_own_content(book: openpyxl.Workbook) -> None:
    sheet = book["Summary"]
    rows = node_table(book)[1]
    ids = max(len(r[0]) for r in rows)
    labels = max(len(str(c.value)) for c in sheet["B"][4:17])
    assert column_width(sheet, "A") <= ids + 6  # numbers and ids: not the labels' width
    assert labels < column_width(sheet, "B") <= 41  # labels and names, capped
    assert all(isinstance(c.value, int) for c in sheet["A"][4:17])


def test_headers_are_aligned_like_their_data(book: openpyxl.Workbook) -> None:
    sheet, cells = named_range(book, "NodesWorstFirst")
    header_row = book[sheet][int(cells.split(":")[0][1:])]
    align = {c.value: c.alignment.horizontal for c in header_row}
    assert align["critical"] == align["missing"] == "right"  # counts
    assert align["instance_id"] == align["compliance"] == "left"  # text
    assert book["Summary"]["A4"].alignment.horizontal == "right"  # "Count"
    assert book["Patches"]["J1"].alignment.horizontal == "right"  # installed_time (UTC)


def test_never_scanned_node_reads_as_such(book: openpyxl.Workbook) -> None:
    headers, rows = node_table(book)
    (unscanned,) = [r for r in rows if r[headers.index("compliance")] == "NOT_SCANNED"]
    for column in ("critical", "high", "missing", "failed", "installed_pending_reboot"):
        assert unscanned[headers.index(column)] is None  # empty, not 0, not "<NA>"
    assert "never scanned" in unscanned[headers.index("note")]
    assert {r[headers.index("note")] for r in rows if r is not unscanned} == {None}
    notes = [c.value for c in book["Summary"]["A"] if isinstance(c.value, str)]
    assert any(n.startswith("Counts are empty for a node never scanned") for n in notes)


def test_every_sheet_prints_one_page_wide_with_header_and_footer(
    book: openpyxl.Workbook,
) -> None:
    for sheet in book.worksheets:
        setup = sheet.page_setup
        assert setup.orientation == "landscape", sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert (setup.fitToWidth or 1) == 1 and setup.fitToHeight == 0  # 0: as long as needed
        assert sheet.oddFooter.left.text == "&A"  # the sheet's name
        assert sheet.oddFooter.right.text == "Page &P of &N"
    for name in EXCEL_SHEETS[1:]:
        assert book[name].print_title_rows == "$1:$1"
        assert book[name].print_options.gridLines
    _, cells = named_range(book, "NodesWorstFirst")
    header_row = cells.split(":")[0][1:]
    assert book["Summary"].print_title_rows == f"${header_row}:${header_row}"


def test_long_titles_wrap_in_a_capped_column(
    book: openpyxl.Workbook, sample_fleet_frames: Fleet
) -> None:
    sheet = book["Patches"]
    headers = table(sheet)[0]
    letter = openpyxl.utils.get_column_letter(headers.index("title") + 1)
    assert column_width(sheet, letter) <= 41
    assert sheet[f"{letter}2"].alignment.wrap_text
    assert sheet[f"{letter}2"].alignment.vertical == "top"
    titles = sample_fleet_frames.patches["title"].astype("str")
    longest = int(titles.str.len().fillna(0).to_numpy().argmax())
    assert len(titles.iloc[longest]) > 100
    assert sheet.row_dimensions[longest + 2].height >= 45  # three lines or more
    short = int((titles.isna()).to_numpy().argmax())
    assert sheet.row_dimensions[short + 2].height is None  # one line: the default


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


def test_tables_autofilter_frozen_header_names_and_widths(book: openpyxl.Workbook) -> None:
    names = {"Patches": "Patches", "Missing and Failed": "MissingAndFailed", "CVEs": "CVEs"}
    for sheet_name, name in {**names, "Nodes": "Nodes"}.items():
        sheet = book[sheet_name]
        assert sheet.freeze_panes == "A2"
        whole = f"A1:{sheet.cell(1, sheet.max_column).column_letter}{sheet.max_row}"
        assert sheet.auto_filter.ref == whole
        assert named_range(book, name) == (sheet_name, whole)
    assert 20 < column_width(book["Patches"], "C") <= 40  # instance ids fit, titles are capped


def test_summary_has_two_charts(book_path: Path) -> None:
    with zipfile.ZipFile(book_path) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 2
        assert "Nodes by compliance" in z.read(charts[0]).decode()


def test_bare_patches_frame(tmp_path: Path, sample_fleet_frames: Fleet) -> None:
    frame = sample_fleet_frames.patches
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


def test_empty_frame_and_errors(tmp_path: Path, sample_fleet_frames: Fleet) -> None:
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
    failed = Fleet(
        patches=sample_fleet_frames.patches, nodes=sample_fleet_frames.nodes, errors=errors
    )
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


def libreoffice(tmp_path: Path, book_path: Path, target: str) -> Path:
    """``book_path`` converted by LibreOffice, headless, to ``target`` (its filter name)."""
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
            target,
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
    (converted,) = (tmp_path / "out").iterdir()
    return converted


def test_opens_in_libreoffice(book_path: Path, tmp_path: Path, sample_fleet_frames: Fleet) -> None:
    converted = openpyxl.load_workbook(
        libreoffice(tmp_path, book_path, "xlsx:Calc MS Excel 2007 XML")
    )
    assert converted.sheetnames == list(EXCEL_SHEETS)
    assert converted["Patches"].max_row == len(sample_fleet_frames.patches) + 1
    assert converted["Patches"]["D2"].value == sample_fleet_frames.patches["kb_id"].iloc[0]


def test_prints_in_a_few_dozen_pages(book_path: Path, tmp_path: Path) -> None:
    pdf = libreoffice(tmp_path, book_path, "pdf").read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    # 508 when each sheet printed at full width: one to four columns a page.
    assert 6 <= pages <= 40


def test_rows_are_streamed(book_path: Path) -> None:
    # constant_memory: every text inline in its row, no shared-strings table
    # kept in memory to the end.
    with zipfile.ZipFile(book_path) as z:
        assert "xl/sharedStrings.xml" not in z.namelist()
        assert 't="inlineStr"' in z.read("xl/worksheets/sheet2.xml").decode()


@pytest.mark.parametrize("progress", [None, True])
def test_progress_counts_rows_only_where_watched(
    tmp_path: Path,
    sample_fleet_frames: Fleet,
    capsys: pytest.CaptureFixture[str],
    progress: bool | None,
) -> None:
    path = to_excel(sample_fleet_frames, tmp_path / "book.xlsx", progress=progress)
    err = capsys.readouterr().err  # pytest's stderr is no terminal
    if progress is None:
        assert err == ""
    else:
        book = openpyxl.load_workbook(path)
        rows = len(node_table(book)[1]) + sum(book[s].max_row - 1 for s in EXCEL_SHEETS[1:])
        assert "workbook" in err and f"{rows}/{rows}" in err


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
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(headers)).column_letter}3"


def test_rows_past_the_first_chunk_keep_their_order_and_heights(
    tmp_path: Path, sample_patches: pd.DataFrame
) -> None:
    # Rows are turned into cells 50,000 at a time: read back across that boundary
    # (from the sheet's XML: openpyxl takes long over 50,000 rows).
    frame = pd.concat([sample_patches] * 25, ignore_index=True)
    frame["row"] = np.arange(len(frame))
    path = to_excel(frame, tmp_path / "big.xlsx")
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet2.xml").decode()
    last = openpyxl.utils.get_column_letter(frame.shape[1])
    written = dict(re.findall(rf'<c r="{last}(\d+)"[^>]*><v>(\d+)</v>', xml))
    assert len(written) == len(frame)
    assert all(written[str(r + 2)] == str(r) for r in range(49_990, len(frame)))
    long = frame.index[frame["title"].str.len().fillna(0).to_numpy() > 52]
    after = int(long[long > 50_000][0])  # two lines or more, in the second chunk
    assert re.search(rf'<row r="{after + 2}"[^>]* ht="(30|45|60|75)"', xml)


# --- by: compliance per group -----------------------------------------------------


def test_by_team_adds_a_block_to_summary_and_the_tag_to_the_nodes_sheet(
    tmp_path: Path, sample_fleet_frames: Fleet
) -> None:
    fleet = sample_fleet_frames.as_of("2024-06-14T08:00Z")
    book = openpyxl.load_workbook(to_excel(fleet, tmp_path / "by.xlsx", by="tag:Team"))
    sheet_name, cells = named_range(book, "ComplianceByGroup")
    header_row = int(cells.split(":")[0][1:])
    summary = book[sheet_name]
    assert summary.cell(header_row - 2, 1).value == "By Team"
    headers, rows = table(summary, header_row)
    expected = compliance_by(fleet, by="tag:Team")
    assert headers[: len(expected.columns)] == expected.columns.tolist()
    got = [row[: len(expected.columns)] for row in rows[: len(expected)]]
    assert [list(r) for r in got] == expected.values.tolist()
    assert summary.cell(header_row + 1, 8).number_format == "0%"  # share_compliant
    # The node table follows, whole.
    headers, rows = node_table(book)
    assert len(rows) == len(fleet.nodes) and headers[0] == "instance_id"
    nodes_headers, node_rows = table(book["Nodes"])
    team = nodes_headers.index("tag:Team")
    teams = fleet.with_tags("Team").nodes["tag:Team"].astype(str).tolist()
    assert [r[team] for r in node_rows] == teams
    assert "tag:Team" in table(book["Patches"])[0]


def test_without_by_there_is_no_block_and_a_bare_frame_cannot_be_grouped(
    book: openpyxl.Workbook, tmp_path: Path, sample_fleet_frames: Fleet
) -> None:
    assert "ComplianceByGroup" not in book.defined_names
    assert not any(h.startswith("tag:") for h in table(book["Nodes"])[0])
    with pytest.raises(ValidationError, match="pass a Fleet"):
        to_excel(sample_fleet_frames.patches, tmp_path / "x.xlsx", by="tag:Team")


@pytest.mark.parametrize("name", ["a.csv", "fleet", "fleet.xls", "fleet.xlsx.bak"])
def test_to_excel_refuses_a_name_that_is_not_a_workbook(
    sample_fleet_frames: Fleet, tmp_path: Path, name: str
) -> None:
    with pytest.raises(ValidationError, match=r"must end in \.xlsx"):
        to_excel(sample_fleet_frames, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_to_excel_takes_an_upper_case_suffix(sample_fleet_frames: Fleet, tmp_path: Path) -> None:
    assert to_excel(sample_fleet_frames, tmp_path / "FLEET.XLSX").stat().st_size > 0


def hand_findings() -> pd.DataFrame:
    """Four findings counted to 2024-06-29: two breached, one within, one closed."""
    when = ["2024-06-29"] * 4
    return pd.DataFrame(
        {
            "account_id": ["111111111111"] * 4,
            "region": ["eu-west-1"] * 4,
            "instance_id": ["i-0a", "i-0b", "i-0c", "i-0d"],
            "kb_id": ["KB1", "KB2", "KB3", "KB4"],
            "title": ["one", "two", "three", "four"],
            "severity_level": ["Critical", "High", "Critical", "Low"],
            "first_seen": pd.to_datetime(["2024-06-01"] * 4, utc=True),
            "last_seen": pd.to_datetime(when, utc=True),
            "resolved_at": pd.to_datetime([None, None, "2024-06-08", None], utc=True),
            "open": [True, True, False, True],
            "release_date": pd.to_datetime(["2024-05-14", None, None, None], utc=True),
        }
    )


def test_aging_sheet_from_findings_most_overdue_first(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    policy = {"Critical": 15, "High": 30, "Low": 5}
    path = to_excel(
        sample_fleet_frames, tmp_path / "f.xlsx", findings=hand_findings(), sla_policy=policy
    )
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [*EXCEL_SHEETS[:3], "Aging", *EXCEL_SHEETS[3:]]
    sheet = book["Aging"]
    headers, rows = table(sheet)
    assert headers[:10] == [
        "account_id",
        "region",
        "instance_id",
        "kb_id",
        "title",
        "severity_level",
        "status",
        "overdue (days)",
        "due (UTC)",
        "age (days)",
    ]
    got = [(r[3], r[6], r[7], r[8], r[9]) for r in rows]
    # KB1: released 05-14, due 05-29, 31 days overdue on 06-29; KB4: first seen 06-01,
    # due 06-06 (Low, 5 days), 23 over; KB2: High, due 07-01, within; KB3 closed: gone.
    assert got == [
        ("KB1", "breached", 31.0, dt.datetime(2024, 5, 29), 46.0),
        ("KB4", "breached", 23.0, dt.datetime(2024, 6, 6), 28.0),
        ("KB2", "within", 0.0, dt.datetime(2024, 7, 1), 28.0),
    ]
    assert rows[0][headers.index("clock")] == "release"
    assert rows[1][headers.index("clock")] == "first_seen"
    assert sheet["I2"].number_format == "yyyy-mm-dd hh:mm:ss"
    whole = f"A1:{sheet.cell(1, sheet.max_column).column_letter}4"
    assert sheet.auto_filter.ref == whole
    assert named_range(book, "Aging") == ("Aging", whole)
    assert sheet.freeze_panes == "A2"
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.print_options.gridLines
    assert sheet.oddFooter.right.text == "Page &P of &N"


def test_aging_sheet_from_release_dates_counts_to_the_load(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    fleet = sample_fleet_frames
    patches = fleet.patches
    windows = (patches["platform_type"].astype("str") == "Windows").to_numpy()
    released = pd.Series(pd.NaT, index=patches.index, dtype="datetime64[ns, UTC]")
    assert fleet.loaded_at is not None
    # Released 60 days before the load, whenever the test runs: High (30 days) is 30 over.
    release = fleet.loaded_at.floor("D") - pd.Timedelta(days=60)
    released[windows] = release
    dated = dataclasses.replace(fleet, patches=patches.assign(release_date=released))
    book = openpyxl.load_workbook(to_excel(dated, tmp_path / "f.xlsx", sla_policy={"High": 30}))
    headers, rows = table(book["Aging"])
    is_open = patches["state"].astype("str").isin(["MISSING", "FAILED"]).to_numpy()
    assert len(rows) == int((is_open & windows).sum()) > 0
    due = (release + pd.Timedelta(days=30)).tz_localize(None).to_pydatetime()
    over = (fleet.loaded_at.tz_localize(None) - pd.Timestamp(due)).total_seconds() / 86_400
    level, status, overdue, when = (
        headers.index(c) for c in ("severity_level", "status", "overdue (days)", "due (UTC)")
    )
    high = [r for r in rows if r[level] == "High"]
    assert high and all(r[status] == "breached" for r in high)
    assert all(r[when] == due and r[overdue] == pytest.approx(over) for r in high)
    others = [r for r in rows if r[level] != "High"]
    assert all(r[status] is None and r[when] is None for r in others)  # no policy: no due
    assert rows[: len(high)] == high  # most overdue first


def test_no_aging_sheet_without_findings_or_release_dates(
    book: openpyxl.Workbook, sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    assert "Aging" not in book.sheetnames and "Aging" not in book.defined_names
    with pytest.raises(ValidationError, match="needs findings="):
        to_excel(sample_fleet_frames, tmp_path / "a.xlsx", sla_policy={"Critical": 15})
    with pytest.raises(ValidationError, match="findings: expected a findings frame"):
        to_excel(sample_fleet_frames, tmp_path / "b.xlsx", findings=[1])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="'Important' is not a severity level"):
        to_excel(
            sample_fleet_frames,
            tmp_path / "c.xlsx",
            findings=hand_findings(),
            sla_policy={"Important": 15},
        )
    assert list(tmp_path.iterdir()) == []


# --- accounts ---------------------------------------------------------------------

ACCOUNT, FAILED = "123456789012", "444455556666"  # the sample's account, and one that failed


@pytest.fixture(scope="module")
def named_book(
    sample_fleet_frames: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Fleet, openpyxl.Workbook]:
    """The sample as one account of a load across an organization, and its workbook."""
    rows = [
        AccountRow(ACCOUNT, "prod-payments", "ACTIVE", ("eu-west-1",), None),
        AccountRow(FAILED, "dev", "SUSPENDED", (), "AccessDenied"),
    ]
    error = {
        "account_id": FAILED,
        "region": "eu-west-1",
        "operation": "AssumeRole",
        "error_code": "AccessDenied",
        "message": "not authorized to perform: sts:AssumeRole",
        "attempts": 1,
    }
    fleet = dataclasses.replace(
        sample_fleet_frames,
        errors=build_errors([error]),
        accounts=build_accounts(rows, sample_fleet_frames.nodes),
    )
    path = to_excel(fleet, tmp_path_factory.mktemp("named") / "fleet.xlsx")
    return fleet, openpyxl.load_workbook(path)


def test_accounts_sheet_before_errors(named_book: tuple[Fleet, openpyxl.Workbook]) -> None:
    fleet, book = named_book
    assert book.sheetnames == [*EXCEL_SHEETS[:-1], _excel.ACCOUNTS_SHEET, "Errors"]
    sheet = book["Accounts"]
    assert_sheet_matches(sheet, fleet.accounts)
    assert sheet.freeze_panes == "A2"
    assert named_range(book, "Accounts") == ("Accounts", "A1:H3")
    assert sheet.page_setup.orientation == "landscape"
    rules = [rule for cf in sheet.conditional_formatting for rule in cf.rules]
    # The failed account's row is tinted; ACTIVE is no patch state, so no cell is coloured.
    assert [r.formula[0] for r in rules] == ["$D2=FALSE"]
    figures = {row[1]: row[0] for row in book["Summary"].iter_rows(values_only=True)}
    assert figures["Accounts"] == 2


def test_account_names_stand_beside_account_ids_on_every_sheet(
    named_book: tuple[Fleet, openpyxl.Workbook],
) -> None:
    fleet, book = named_book
    names = {ACCOUNT: "prod-payments", FAILED: "dev"}
    tables = {name: table(book[name]) for name in ("Patches", "Missing and Failed", "Nodes")}
    tables["Errors"] = table(book["Errors"])
    tables["Summary"] = node_table(book)
    for sheet, (headers, rows) in tables.items():
        at = headers.index("account_id")
        assert headers[at + 1] == "account_name", sheet
        assert rows and all(r[at + 1] == names[r[at]] for r in rows), sheet
    assert len(tables["Patches"][1]) == len(fleet.patches)
