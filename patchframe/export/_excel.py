"""The Excel workbook: :func:`to_excel`, which a manager or an auditor can open as it is.

The workbook
------------
Sheets, in order (:data:`EXCEL_SHEETS`): **Summary** (fleet figures, two charts
and one row per node, non-compliant nodes highlighted), **Patches** (every row),
**Missing and Failed**, **CVEs** (one row per CVE still open), **Nodes** and
**Errors** (there even when nothing failed). Every table is an Excel table with
an autofilter, a frozen header row and column widths fitted to a sample of its
rows. It is written cell by cell with XlsxWriter, because ``DataFrame.to_excel``
would lose what matters here:

- text is always written as text, never as a formula: a title such as
  ``=HYPERLINK(...)`` shows as those characters and runs nothing (formula
  injection); the workbook also has XlsxWriter's ``strings_to_formulas``,
  ``strings_to_urls`` and ``strings_to_numbers`` off;
- NA, NaN and NaT are empty cells, not ``nan`` or ``<NA>``;
- times are real date cells, in UTC: Excel has no time zones, so the cell holds
  the UTC wall time, to the millisecond, and the header says ``(UTC)``; a time
  Excel cannot hold (before 1900-03-01) is written as ISO 8601 text instead;
- categories are plain text; patch states and severity levels are coloured as
  in every patchframe chart;
- text longer than Excel's :data:`EXCEL_CELL_LIMIT` characters is never cut: its
  column is split into ``name``, ``name (2)``, ``name (3)`` ... each holding the
  next :data:`EXCEL_CELL_LIMIT` characters (UTF-16 code units, as Excel counts
  them), so joining the parts in order gives the whole text back;
- a sheet longer than Excel's 1,048,576 rows raises :class:`ValidationError`
  before anything is written, rather than dropping rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import xlsxwriter
from xlsxwriter.exceptions import FileCreateError
from xlsxwriter.utility import xl_col_to_name

from .._fleet import Fleet
from .._palette import (
    COMPLIANCE_COLORS,
    SEVERITY_COLORS,
    UNKNOWN_COLOR,
    state_color,
    text_color,
    tint,
)
from .._schema import NON_COMPLIANT_STATES, OPEN_STATES, SEVERITY_LEVELS
from .._version import VERSION
from ..exceptions import ValidationError
from ..summary import cve_exposure
from ._report_data import PathLike, _Data, _data, _node_table

#: The most characters (UTF-16 code units) one Excel cell holds.
EXCEL_CELL_LIMIT = 32_767
#: The most rows one Excel sheet holds, header included.
EXCEL_ROW_LIMIT = 1_048_576
#: The workbook's sheets, in order.
EXCEL_SHEETS: tuple[str, ...] = (
    "Summary",
    "Patches",
    "Missing and Failed",
    "CVEs",
    "Nodes",
    "Errors",
)


# --- Excel: cells ---------------------------------------------------------------

_EXCEL_EPOCH = 25_569.0  # days from Excel's day 0 (1899-12-30) to 1970-01-01
_DAY_NS = 86_400e9
# Excel's serial 60 is 1900-02-29, a day that never was; serials after 2958465
# are past 9999-12-31. Times outside are written as text.
_FIRST_SERIAL, _END_SERIAL = 61.0, 2_958_466.0
_SAMPLE_ROWS = 200  # rows sampled to fit a column's width
_MAX_WIDTH = 60
_ROW_TINT = 0.3  # a row's colour mixed into white: light enough to read any text on


@dataclass(frozen=True)
class _Cells:
    """One column ready for XlsxWriter: Python values, and which rows have one."""

    kind: Literal["text", "number", "bool", "date"]
    values: list[Any]
    present: npt.NDArray[np.bool_]


def _is_time(series: pd.Series[Any]) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
        series.dtype
    )


def _is_text(series: pd.Series[Any]) -> bool:
    return not (
        _is_time(series)
        or pd.api.types.is_bool_dtype(series.dtype)
        or pd.api.types.is_numeric_dtype(series.dtype)
    )


def _cells(series: pd.Series[Any]) -> _Cells:
    if _is_time(series):
        return _date_cells(series)
    if pd.api.types.is_bool_dtype(series.dtype):
        present = series.notna().to_numpy()
        return _Cells("bool", series.to_numpy(dtype=object).tolist(), present)
    if pd.api.types.is_numeric_dtype(series.dtype):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        values: list[Any] = numbers.tolist()
        for i in np.flatnonzero(np.isinf(numbers)).tolist():
            values[i] = str(values[i])  # Excel has no infinity: "inf" as text
        return _Cells("number", values, ~np.isnan(numbers))
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = np.asarray(series.cat.codes)
        labels = np.array([str(c) for c in series.cat.categories] + [None], dtype=object)
        return _Cells("text", labels[codes].tolist(), codes >= 0)
    present = series.notna().to_numpy()
    texts = [v if isinstance(v, str) else str(v) for v in series.to_numpy(dtype=object)]
    return _Cells("text", texts, present)


def _date_cells(series: pd.Series[Any]) -> _Cells:
    times = pd.DatetimeIndex(series)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    present = ~np.asarray(times.isna(), dtype=bool)
    serials = times.as_unit("ns").asi8 / _DAY_NS + _EXCEL_EPOCH
    values: list[Any] = serials.tolist()
    outside = present & ((serials < _FIRST_SERIAL) | (serials >= _END_SERIAL))
    for i in np.flatnonzero(outside).tolist():
        values[i] = times[i].isoformat()
    return _Cells("date", values, present)


def _utf16_pieces(text: str, limit: int) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` UTF-16 code units each."""
    data = text.encode("utf-16-le", "surrogatepass")
    pieces: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + 2 * limit, len(data))
        if end < len(data) and 0xD8 <= data[end - 1] <= 0xDB:
            end -= 2  # never cut a surrogate pair (an emoji, say) in two
        pieces.append(data[start:end].decode("utf-16-le", "surrogatepass"))
        start = end
    return pieces


def _split_long_text(frame: pd.DataFrame, limit: int = EXCEL_CELL_LIMIT) -> pd.DataFrame:
    """Split every text column holding a text over ``limit`` into parts (see module doc)."""
    # Fast path: a column whose longest text, even if all surrogate pairs, fits.
    long = [
        i
        for i, c in enumerate(frame.columns)
        if _is_text(frame[c]) and _longest(frame[c]) * 2 > limit
    ]
    if not long:
        return frame
    labels: list[str] = []
    columns: list[pd.Series[Any]] = []
    for i, name in enumerate(frame.columns):
        series = frame.iloc[:, i]
        if i not in long:
            labels.append(str(name))
            columns.append(series)
            continue
        pieces = [
            _utf16_pieces(t, limit) if isinstance(t, str) else [] for t in series.astype("str")
        ]
        for part in range(max((len(p) for p in pieces), default=1)):
            labels.append(str(name) if part == 0 else f"{name} ({part + 1})")
            values = [p[part] if part < len(p) else None for p in pieces]
            columns.append(pd.Series(values, index=frame.index, dtype="str"))
    split = pd.concat(columns, axis=1, ignore_index=True)
    split.columns = pd.Index(labels)
    return split


def _longest(series: pd.Series[Any]) -> int:
    if isinstance(series.dtype, pd.CategoricalDtype):
        lengths = pd.Series(series.cat.categories.astype("str")).str.len()
    else:
        lengths = series.astype("str").str.len()
    longest = lengths.max()
    return 0 if pd.isna(longest) else int(longest)


def _headers(frame: pd.DataFrame) -> list[str]:
    """Unique header texts; a time column's says ``(UTC)`` when the times are."""
    headers: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(frame.columns):
        header = str(name)
        if isinstance(frame.iloc[:, i].dtype, pd.DatetimeTZDtype):
            header += " (UTC)"
        while header.lower() in seen:  # Excel compares table headers case-blind
            header += "_"
        seen.add(header.lower())
        headers.append(header)
    return headers


def _width(header: str, cells: _Cells) -> float:
    rows = np.flatnonzero(cells.present)
    if len(rows) > _SAMPLE_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, _SAMPLE_ROWS).astype(np.intp)]
    longest = 0
    for i in rows.tolist():
        value = cells.values[i]
        if cells.kind == "date" and not isinstance(value, str):
            longest = max(longest, 19)
        elif cells.kind == "number" and isinstance(value, float):
            longest = max(longest, len(f"{value:,.10g}"))
        else:
            longest = max(longest, len(str(value)))
    # Room for the autofilter's drop-down arrow beside the header text.
    return float(min(max(len(header) + 4, longest + 2, 6), _MAX_WIDTH))


# --- Excel: sheets --------------------------------------------------------------


class _Style:
    """The workbook's formats, made once; fills are made on first use, per colour."""

    def __init__(self, book: Any) -> None:
        self.book = book
        self.date = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.header = book.add_format({"bold": True, "bottom": 1, "bg_color": "#d9e1f2"})
        self.title = book.add_format({"bold": True, "font_size": 16})
        self.note = book.add_format({"italic": True, "font_color": "#595959"})
        self.label = book.add_format({"bold": True})
        self.fills: dict[str, Any] = {}

    def fill(self, color: str) -> Any:
        if color not in self.fills:
            font = text_color(color)
            self.fills[color] = self.book.add_format({"bg_color": color, "font_color": font})
        return self.fills[color]


def _write_table(
    sheet: Any, frame: pd.DataFrame, *, top: int, name: str, style: _Style
) -> list[float]:
    """``frame`` as an Excel table whose header is on row ``top``; returns the widths."""
    frame = _split_long_text(frame)
    headers = _headers(frame)
    widths: list[float] = []
    for col in range(frame.shape[1]):
        cells = _cells(frame.iloc[:, col])
        _write_cells(sheet, top + 1, col, cells, style)
        widths.append(_width(headers[col], cells))
        sheet.set_column(col, col, widths[-1])
    last_col = len(headers) - 1
    if len(frame):
        sheet.add_table(
            top,
            0,
            top + len(frame),
            last_col,
            {
                "name": name,
                "style": "Table Style Light 9",
                "columns": [{"header": h, "header_format": style.header} for h in headers],
            },
        )
        _paint(sheet, frame, top=top, style=style)
    else:  # Excel tables need a data row: an empty sheet keeps a plain header row
        for col, header in enumerate(headers):
            sheet.write_string(top, col, header, style.header)
        sheet.autofilter(top, 0, top, last_col)
    return widths


def _write_cells(sheet: Any, first_row: int, col: int, cells: _Cells, style: _Style) -> None:
    rows = np.flatnonzero(cells.present).tolist()
    values = cells.values
    if cells.kind == "text":
        for r in rows:
            sheet.write_string(first_row + r, col, values[r])
    elif cells.kind == "bool":
        for r in rows:
            sheet.write_boolean(first_row + r, col, bool(values[r]))
    else:
        date = style.date if cells.kind == "date" else None
        for r in rows:
            value = values[r]
            if isinstance(value, str):
                sheet.write_string(first_row + r, col, value)
            else:
                sheet.write_number(first_row + r, col, value, date)


def _paint(sheet: Any, frame: pd.DataFrame, *, top: int, style: _Style) -> None:
    """Colour states and severity levels, then tint whole rows of non-compliant nodes.

    Cell colours come first so that they win over the row tint where both apply.
    """
    first, last = top + 1, top + len(frame)
    columns = list(frame.columns)
    for col, column in enumerate(columns):
        if column == "state":
            colors = {s: state_color(s) for s in _distinct(frame.iloc[:, col])}
        elif column in ("severity_level", "compliance_severity"):
            colors = {
                s: SEVERITY_COLORS.get(s, UNKNOWN_COLOR) for s in _distinct(frame.iloc[:, col])
            }
        else:
            continue
        for value, color in colors.items():
            text = value.replace('"', '""')
            sheet.conditional_format(
                first,
                col,
                last,
                col,
                {
                    "type": "cell",
                    "criteria": "equal to",
                    "value": f'"{text}"',
                    "format": style.fill(color),
                },
            )
    if "compliance" in columns:
        letter = xl_col_to_name(columns.index("compliance"), col_abs=True)
        for status in ("NON_COMPLIANT", "NOT_SCANNED"):
            sheet.conditional_format(
                first,
                0,
                last,
                len(columns) - 1,
                {
                    "type": "formula",
                    "criteria": f'={letter}{first + 1}="{status}"',
                    "format": style.fill(tint(COMPLIANCE_COLORS[status], _ROW_TINT)),
                },
            )


def _distinct(series: pd.Series[Any]) -> list[str]:
    return [str(v) for v in pd.unique(series.dropna().astype("str"))]


_NODE_TABLE_COLUMNS = [
    "instance_id",
    "name",
    "account_id",
    "region",
    "platform_name",
    "compliance",
    "compliance_severity",
    "critical",
    "high",
    "medium",
    "low",
    "unspecified",
    "missing",
    "failed",
    "installed_pending_reboot",
    "installed_rejected",
]
_FIGURES_TOP = 3  # the row of the figures' header; title and note above it
_CHART_ROWS = 16  # rows a chart covers (its 300 px height at the default 20 px rows)


def _figures(parts: _Data, nodes: pd.DataFrame) -> list[tuple[str, int]]:
    patches = parts.patches
    states = patches["state"].astype("str")
    compliance = nodes["compliance"].astype("str")
    return [
        ("Nodes", len(nodes)),
        ("Non-compliant nodes", int((compliance == "NON_COMPLIANT").sum())),
        ("Compliant nodes", int((compliance == "COMPLIANT").sum())),
        ("Nodes never scanned", int((compliance == "NOT_SCANNED").sum())),
        ("Nodes that failed to load", int(nodes["patch_rows"].isna().sum())),
        ("Patch rows", len(patches)),
        ("Missing patches", int((states == "MISSING").sum())),
        ("Failed patches", int((states == "FAILED").sum())),
        ("Installed, pending reboot", int((states == "INSTALLED_PENDING_REBOOT").sum())),
        ("Open CVEs", len(cve_exposure(patches))),
        ("Accounts", int(nodes["account_id"].nunique())),
        ("Regions", int(nodes["region"].nunique())),
        ("Errors", len(parts.errors)),
    ]


def _write_summary_sheet(
    book: Any,
    parts: _Data,
    nodes: pd.DataFrame,
    figures: list[tuple[str, int]],
    *,
    title: str,
    style: _Style,
) -> None:
    sheet = book.add_worksheet("Summary")
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)  # printed: one page wide, as many long as it takes
    sheet.write_string(0, 0, title, style.title)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sheet.write_string(1, 0, f"Generated {stamp} by patchframe {VERSION}", style.note)
    _write_block(sheet, _FIGURES_TOP, 0, ("Figure", "Value"), figures, style)
    _write_charts(book, sheet, parts, nodes, style)

    top = _node_table_top(len(figures))
    sheet.write_string(top - 1, 0, "Nodes, worst first", style.label)
    table = nodes[_NODE_TABLE_COLUMNS]
    widths = _write_table(sheet, table, top=top, name="NodesWorstFirst", style=style)
    # Columns A and D also hold the labels of the blocks above the table.
    sheet.set_column(0, 0, max(widths[0], max(len(label) for label, _ in figures) + 2))
    sheet.set_column(3, 3, max(widths[3], len("Non-compliant patches") + 2))


def _write_charts(book: Any, sheet: Any, parts: _Data, nodes: pd.DataFrame, style: _Style) -> None:
    """Nodes by compliance and non-compliant patches by severity: each a block and a chart.

    Excel charts plot cells, so each chart's numbers are on the sheet (column D:E).
    """
    status = nodes["compliance"].astype("str")
    compliance = [(s, int((status == s).sum())) for s in COMPLIANCE_COLORS]
    _write_block(sheet, _FIGURES_TOP, 3, ("Compliance", "Nodes"), compliance, style)
    bad = parts.patches["state"].astype("str").isin(list(NON_COMPLIANT_STATES))
    levels = parts.patches.loc[bad, "severity_level"].astype("str")
    severity = [(lv, int((levels == lv).sum())) for lv in reversed(SEVERITY_LEVELS)]
    severity_top = _FIGURES_TOP + len(compliance) + 2
    _write_block(sheet, severity_top, 3, ("Severity", "Non-compliant patches"), severity, style)

    colors = [COMPLIANCE_COLORS[s] for s, _ in compliance]
    chart = _column_chart(book, "Nodes by compliance", (_FIGURES_TOP, 3, len(compliance)), colors)
    sheet.insert_chart(_FIGURES_TOP, 6, chart)
    colors = [SEVERITY_COLORS[lv] for lv, _ in severity]
    block = (severity_top, 3, len(severity))
    chart = _column_chart(book, "Non-compliant patches by severity", block, colors)
    sheet.insert_chart(_FIGURES_TOP, 14, chart)


def _node_table_top(figures: int) -> int:
    """The row of the header of the Summary's node table: below figures and charts."""
    return max(_FIGURES_TOP + figures, _FIGURES_TOP + _CHART_ROWS) + 3


def _write_block(
    sheet: Any,
    top: int,
    col: int,
    header: tuple[str, str],
    rows: list[tuple[str, int]],
    style: _Style,
) -> None:
    sheet.write_string(top, col, header[0], style.header)
    sheet.write_string(top, col + 1, header[1], style.header)
    for i, (label, value) in enumerate(rows, start=top + 1):
        sheet.write_string(i, col, label)
        sheet.write_number(i, col + 1, value)


def _column_chart(book: Any, title: str, block: tuple[int, int, int], colors: list[str]) -> Any:
    """A column chart of a two-column block (header row ``top``, ``n`` rows) on Summary."""
    top, col, n = block
    chart = book.add_chart({"type": "column"})
    chart.add_series(
        {
            "name": title,
            "categories": ["Summary", top + 1, col, top + n, col],
            "values": ["Summary", top + 1, col + 1, top + n, col + 1],
            "points": [{"fill": {"color": c}, "border": {"color": "#595959"}} for c in colors],
            "data_labels": {"value": True},
            "gap": 60,
        }
    )
    chart.set_title({"name": title, "name_font": {"size": 12}})
    chart.set_legend({"none": True})
    chart.set_y_axis(
        {"min": 0, "major_gridlines": {"visible": True, "line": {"color": "#d9d9d9"}}}
    )
    chart.set_size({"width": 470, "height": 300})
    return chart


def _sheets(parts: _Data, nodes: pd.DataFrame) -> dict[str, tuple[str, pd.DataFrame]]:
    """The table sheets after Summary: sheet name -> (Excel table name, frame)."""
    patches = parts.patches
    open_rows = patches[patches["state"].astype("str").isin(OPEN_STATES)]
    open_rows = open_rows.sort_values(
        ["severity_level", "instance_id", "kb_id"], ascending=[False, True, True], kind="stable"
    )
    return {
        "Patches": ("Patches", patches),
        "Missing and Failed": ("MissingAndFailed", open_rows),
        "CVEs": ("CVEs", cve_exposure(patches)),
        "Nodes": ("Nodes", nodes if parts.nodes is None else parts.nodes),
        "Errors": ("Errors", parts.errors),
    }


def _check_rows(rows: dict[str, int]) -> None:
    for sheet, count in rows.items():
        if count > EXCEL_ROW_LIMIT:
            raise ValidationError(
                f"sheet {sheet!r} would need {count:,} rows, more than Excel's "
                f"{EXCEL_ROW_LIMIT:,}: filter the frame first (patchframe.filters), "
                "or write it with to_parquet or to_compliance_csv"
            )


def to_excel(
    data: Fleet | pd.DataFrame,
    path: PathLike,
    *,
    title: str = "Patch compliance report",
) -> Path:
    """Write a Fleet, or a bare patches frame, as an Excel workbook.

    The sheets are those of :data:`EXCEL_SHEETS`: Summary, Patches, Missing and
    Failed, CVEs, Nodes and Errors. The module documentation says how cells are
    written (text never as formulas, NA as empty cells, UTC date cells, long text
    split over columns, never truncated).

    Parameters
    ----------
    data
        A :class:`~patchframe.Fleet`, or a patches frame. For a bare patches
        frame, the Nodes sheet and the Summary's node table are worked out from
        its rows (NON_COMPLIANT when any patch is in a non-compliant state), and
        the Errors sheet is empty.
    path
        The ``.xlsx`` file to write; an existing file is replaced.
    title
        The title on the Summary sheet.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValidationError
        ``data`` is neither a Fleet nor a DataFrame, or a sheet would exceed
        Excel's row limit (nothing is written then).
    ColumnsError
        The patches frame lacks columns of the data contract.
    OSError
        The file cannot be created (a missing folder, no permission).

    Examples
    --------
    >>> import tempfile, openpyxl, patchframe as pf
    >>> from patchframe.export import to_excel
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     book = openpyxl.load_workbook(to_excel(fleet, f"{folder}/fleet.xlsx"))
    >>> book.sheetnames
    ['Summary', 'Patches', 'Missing and Failed', 'CVEs', 'Nodes', 'Errors']
    >>> book["Patches"].max_row == len(fleet.patches) + 1
    True
    """
    parts = _data(data)
    nodes = _node_table(parts)
    sheets = _sheets(parts, nodes)
    figures = _figures(parts, nodes)
    rows = {sheet: len(frame) + 1 for sheet, (_, frame) in sheets.items()}
    rows["Summary"] = _node_table_top(len(figures)) + len(nodes) + 1
    _check_rows(rows)

    target = Path(path)
    book = xlsxwriter.Workbook(
        str(target),
        {
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    book.set_properties({"title": title, "comments": f"patchframe {VERSION}"})
    style = _Style(book)
    _write_summary_sheet(book, parts, nodes, figures, title=title, style=style)
    for sheet_name, (table_name, frame) in sheets.items():
        sheet = book.add_worksheet(sheet_name)
        _write_table(sheet, frame, top=0, name=table_name, style=style)
        sheet.freeze_panes(1, 0)
        sheet.set_landscape()
        sheet.repeat_rows(0)  # printed: the header on every page
    try:
        book.close()
    except FileCreateError as err:
        raise OSError(f"cannot write {target}: {err}") from err
    return target
