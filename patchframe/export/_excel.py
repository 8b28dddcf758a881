"""The Excel workbook: :func:`to_excel`, which a manager or an auditor can open as it is.

The workbook
------------
Sheets, in order (:data:`EXCEL_SHEETS`): **Summary** (fleet figures, two charts, with
``by=`` a block of compliance per group such as "By Team", and one row per node,
non-compliant nodes highlighted), **Patches** (every row), **Missing and Failed**,
**CVEs** (one row per CVE still open), **Nodes** and **Errors** (there even when nothing
failed), **Aging** after Missing and Failed when findings or release dates can date the
open patches (:func:`to_excel`'s ``findings``), and **Accounts** (``Fleet.accounts``)
before Errors when there are several accounts or one did not load. When any account's
name is known, ``account_name`` stands right after ``account_id`` on every sheet that
has it. Every table has an autofilter, a frozen header row, a workbook-level name
(``Patches``, ``NodesWorstFirst``...) and column widths fitted to a sample of its rows;
headers are aligned as their data (numbers and times right). Every sheet prints
landscape, one page wide, with the header row on each page and the sheet name and page
number in the footer; long text (titles) wraps within a capped column width.

It is written row by row with XlsxWriter in ``constant_memory`` mode, so that
memory stays flat however many rows there are (a 1,000,000-row workbook: see
``benchmarks/workbook.py``). That mode cannot write Excel tables
(``add_table``), hence autofilters and names instead. ``DataFrame.to_excel``
would lose what matters here:

- text is always written as text, never as a formula: a title such as
  ``=HYPERLINK(...)`` shows as those characters and runs nothing (formula
  injection); the workbook also has XlsxWriter's ``strings_to_formulas``,
  ``strings_to_urls`` and ``strings_to_numbers`` off;
- NA, NaN and NaT are empty cells, not ``nan`` or ``<NA>``;
- times are real date cells, in UTC: Excel has no time zones, so the cell holds
  the UTC wall time, to the millisecond, and the header says ``(UTC)``; a time
  Excel cannot hold (before 1900-03-01) is written as ISO 8601 text instead;
  a duration (a node's ``scan_age``) is a number of days, and its header says ``(days)``;
- categories are plain text; patch states and severity levels are coloured as
  in every patchframe chart; rows of non-compliant nodes and of accounts that
  failed to load are tinted;
- text longer than Excel's :data:`EXCEL_CELL_LIMIT` characters is never cut: its
  column is split into ``name``, ``name (2)``, ``name (3)`` ... each holding the
  next :data:`EXCEL_CELL_LIMIT` characters (UTF-16 code units, as Excel counts
  them), so joining the parts in order gives the whole text back;
- a sheet longer than Excel's 1,048,576 rows raises :class:`ValidationError`
  before anything is written, rather than dropping rows.
"""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import xlsxwriter
from xlsxwriter.exceptions import FileCreateError
from xlsxwriter.utility import quote_sheetname, xl_col_to_name, xl_range_abs

from .._fleet import Fleet
from .._nodes import DEFAULT_STALE_DAYS
from .._palette import (
    COMPLIANCE_COLORS,
    SEVERITY_COLORS,
    UNKNOWN_COLOR,
    state_color,
    text_color,
    tint,
)
from .._progress import progress_bar
from .._schema import (
    NON_COMPLIANT_STATES,
    OPEN_STATES,
    SEVERITY_LEVELS,
    account_count,
    accounts_worth_listing,
)
from .._version import VERSION
from ..exceptions import ValidationError
from ..summary import cve_exposure
from ._report_data import (
    PathLike,
    _account_names,
    _aging,
    _Data,
    _data,
    _grouped,
    _Groups,
    _node_table,
    _with_account_names,
)

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
#: The sheet of open findings under an SLA policy, after "Missing and Failed" when
#: there are findings or release dates to date them (see :func:`to_excel`).
AGING_SHEET = "Aging"
#: The sheet of ``Fleet.accounts``, before "Errors" when there are several or one failed.
ACCOUNTS_SHEET = "Accounts"


# --- Excel: cells ---------------------------------------------------------------

_EXCEL_EPOCH = 25_569.0  # days from Excel's day 0 (1899-12-30) to 1970-01-01
_DAY_NS = 86_400e9
# Excel's serial 60 is 1900-02-29, a day that never was; serials after 2958465
# are past 9999-12-31. Times outside are written as text.
_FIRST_SERIAL, _END_SERIAL = 61.0, 2_958_466.0
_SAMPLE_ROWS = 200  # rows sampled to fit a column's width
_MAX_WIDTH = 40  # wider text wraps within this many characters
_CHUNK_ROWS = 50_000  # rows turned into cells at a time: memory stays flat
_CHARS_PER_DIGIT = 1.2
_LINE_HEIGHT = 15.0  # points: one line of the default font, Excel's default row height
_ROW_TINT = 0.3  # a row's colour mixed into white: light enough to read any text on
_FOOTER = "&L&A&RPage &P of &N"  # sheet name left, "Page 2 of 9" right

Kind = Literal["text", "number", "bool", "date"]


@dataclass(frozen=True)
class _Cells:
    """One column ready for XlsxWriter: a Python value per row, None for no value."""

    kind: Kind
    values: list[Any]


def _is_time(series: pd.Series[Any]) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
        series.dtype
    )


def _is_text(series: pd.Series[Any]) -> bool:
    return _kind(series) == "text"


def _is_duration(series: pd.Series[Any]) -> bool:
    return pd.api.types.is_timedelta64_dtype(series.dtype)


def _kind(series: pd.Series[Any]) -> Kind:
    if _is_time(series):
        return "date"
    if _is_duration(series):
        return "number"
    if pd.api.types.is_bool_dtype(series.dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "number"
    return "text"


def _cells(series: pd.Series[Any]) -> _Cells:
    kind = _kind(series)
    if kind == "date":
        return _date_cells(series)
    if kind == "number" and _is_duration(series):
        series = series.dt.total_seconds() / 86_400  # Excel has no durations: days, a number
    if kind == "number":
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        values = numbers.astype(object)
        values[np.isinf(numbers)] = [str(v) for v in numbers[np.isinf(numbers)]]  # Excel: no inf
        values[np.isnan(numbers)] = None
        return _Cells(kind, values.tolist())
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = np.asarray(series.cat.codes)
        labels = np.array([str(c) for c in series.cat.categories] + [None], dtype=object)
        return _Cells(kind, labels[codes].tolist())
    values = series.to_numpy(dtype=object)
    absent = series.isna().to_numpy()
    if kind == "text":
        values = np.array([v if isinstance(v, str) else str(v) for v in values], dtype=object)
    values[absent] = None
    return _Cells(kind, values.tolist())


def _date_cells(series: pd.Series[Any]) -> _Cells:
    times = pd.DatetimeIndex(series)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    present = ~np.asarray(times.isna(), dtype=bool)
    serials = times.as_unit("ns").asi8 / _DAY_NS + _EXCEL_EPOCH
    values = serials.astype(object)
    outside = present & ((serials < _FIRST_SERIAL) | (serials >= _END_SERIAL))
    for i in np.flatnonzero(outside).tolist():
        values[i] = times[i].isoformat()
    values[~present] = None
    return _Cells("date", values.tolist())


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
        elif _is_duration(frame.iloc[:, i]):
            header += " (days)"
        while header.lower() in seen:  # Excel compares header texts case-blind
            header += "_"
        seen.add(header.lower())
        headers.append(header)
    return headers


def _width(header: str, series: pd.Series[Any]) -> float:
    """A column's width in characters: its header's or its longest sampled value's."""
    rows = np.flatnonzero(series.notna().to_numpy())
    if len(rows) > _SAMPLE_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, _SAMPLE_ROWS).astype(np.intp)]
    cells = _cells(series.iloc[rows])
    longest = 0
    for value in cells.values:
        if cells.kind == "date" and not isinstance(value, str):
            longest = max(longest, 19)
        elif cells.kind == "number" and isinstance(value, float):
            longest = max(longest, len(f"{value:,.10g}"))
        else:
            longest = max(longest, len(str(value)))
    # Room for the autofilter's drop-down arrow beside the header text.
    return float(max(len(header) + 4, longest + 2, 6))


# --- Excel: sheets --------------------------------------------------------------


class _Style:
    """The workbook's formats, made once; fills are made on first use, per colour.

    Every cell of a table is aligned to the top of its row, so that a row made
    tall by a wrapped title still reads across; text is indented a little, so
    that it never touches a right-aligned number in the column before it.
    """

    def __init__(self, book: Any) -> None:
        self.book = book
        cell = {"valign": "top"}
        text = {**cell, "align": "left", "indent": 1}
        self.text = book.add_format(text)
        self.wrapped = book.add_format({**text, "text_wrap": True})
        self.plain = book.add_format(cell)
        self.count = book.add_format({**cell, "num_format": "#,##0"})
        self.share = book.add_format({**cell, "num_format": "0%"})
        self.date = book.add_format({**cell, "num_format": "yyyy-mm-dd hh:mm:ss"})
        header = {"bold": True, "bottom": 1, "bg_color": "#d9e1f2", "valign": "top"}
        self.header = book.add_format({**header, "align": "left", "indent": 1})
        self.header_right = book.add_format({**header, "align": "right"})
        self.title = book.add_format({"bold": True, "font_size": 16})
        self.note = book.add_format({"italic": True, "font_color": "#595959"})
        self.label = book.add_format({"bold": True})
        self.fills: dict[str, Any] = {}

    def column(self, series: pd.Series[Any], *, wrap: bool) -> Any:
        """The format of a table column's cells, by what they hold."""
        kind = _kind(series)
        if kind == "text":
            return self.wrapped if wrap else self.text
        if kind == "date":
            return self.date
        if pd.api.types.is_integer_dtype(series.dtype):
            return self.count
        return self.plain

    def header_for(self, kind: Kind) -> Any:
        """Numbers and times are right-aligned: so are their headers."""
        return self.header_right if kind in ("number", "date") else self.header

    def fill(self, color: str) -> Any:
        if color not in self.fills:
            font = text_color(color)
            self.fills[color] = self.book.add_format({"bg_color": color, "font_color": font})
        return self.fills[color]


def _print_setup(sheet: Any, *, header_row: int) -> None:
    """Printed: landscape, one page wide, the header row on every page, a footer."""
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)  # one page wide, as many long as it takes
    sheet.repeat_rows(header_row)
    sheet.set_footer(_FOOTER)


def _write_table(
    sheet: Any,
    frame: pd.DataFrame,
    *,
    top: int,
    name: str,
    style: _Style,
    bar: Any,
    patch_states: bool = True,
) -> None:
    """``frame`` as a filtered table whose header is on row ``top``, named ``name``.

    Rows are written in order, ``_CHUNK_ROWS`` at a time, as ``constant_memory``
    needs; ``bar`` counts them. A ``state`` column is coloured as patch states
    unless ``patch_states`` is False (an account's state is not one).
    """
    frame = _split_long_text(frame)
    headers = _headers(frame)
    wrapped: list[int] = []  # columns of text that wraps
    for col, header in enumerate(headers):
        series = frame.iloc[:, col]
        kind = _kind(series)
        width = _width(header, series)
        wrap = kind == "text" and width > _MAX_WIDTH
        if wrap:
            wrapped.append(col)
        # The column's format, not each cell's: XlsxWriter applies it to every
        # cell written without one, at no cost per cell.
        sheet.set_column(col, col, min(width, _MAX_WIDTH), style.column(series, wrap=wrap))
        sheet.write_string(top, col, header, style.header_for(kind))
    for start in range(0, len(frame), _CHUNK_ROWS):
        chunk = frame.iloc[start : start + _CHUNK_ROWS]
        first = top + 1 + start
        columns = [_cells(chunk.iloc[:, col]).values for col in range(chunk.shape[1])]
        heights = _heights(chunk, wrapped, first)
        for row, values in enumerate(zip(*columns, strict=True), start=first):
            if row in heights:  # before the row's cells: constant_memory writes it out next
                sheet.set_row(row, heights[row])
            sheet.write_row(row, 0, values)
        bar.update(len(chunk))
    last_row, last_col = top + len(frame), len(headers) - 1
    sheet.autofilter(top, 0, last_row, last_col)
    cells = xl_range_abs(top, 0, last_row, last_col)
    style.book.define_name(name, f"={quote_sheetname(sheet.name)}!{cells}")
    if len(frame):
        _paint(sheet, frame, top=top, style=style, patch_states=patch_states)


def _heights(chunk: pd.DataFrame, wrapped: list[int], first: int) -> dict[int, float]:
    """Row -> height in points, for the rows whose wrapped text takes more than a line.

    Excel sizes such rows itself, LibreOffice does not: without a height, a
    wrapped title would print over the rows below it.
    """
    lines = np.ones(len(chunk), dtype=np.int64)
    for col in wrapped:
        lines = np.maximum(lines, _line_counts(chunk.iloc[:, col], _MAX_WIDTH))
    return {first + i: _LINE_HEIGHT * int(lines[i]) for i in np.flatnonzero(lines > 1).tolist()}


def _line_counts(series: pd.Series[Any], width: int) -> npt.NDArray[np.int64]:
    """Lines each text takes when wrapped at ``width`` characters; 1 for NA.

    Counted once per distinct text (the categories, for a categorical column).
    Excel counts widths in digits "0"; text in the default font (Calibri, or
    LibreOffice's Carlito) averages about 1.2 characters per digit.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        texts, codes = series.cat.categories.astype("str"), np.asarray(series.cat.codes)
    else:
        codes, texts = pd.factorize(series.astype("str"))
    per_line = int(width * _CHARS_PER_DIGIT)
    per_text = [len(textwrap.wrap(t, per_line)) or 1 for t in texts]
    counts = np.array([*per_text, 1], dtype=np.int64)  # code -1 (NA): one line
    return np.asarray(counts[codes], dtype=np.int64)


def _paint(
    sheet: Any, frame: pd.DataFrame, *, top: int, style: _Style, patch_states: bool
) -> None:
    """Colour states and severity levels, then tint whole rows of non-compliant nodes
    and of accounts that failed to load.

    Cell colours come first so that they win over the row tint where both apply.
    """
    first, last = top + 1, top + len(frame)
    columns = list(frame.columns)
    for col, column in enumerate(columns):
        if column == "state" and patch_states:
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
    tinted: list[tuple[str, str, str]] = []  # (column, its value in a formula, colour)
    if "compliance" in columns:
        tinted += [("compliance", f'"{s}"', s) for s in ("NON_COMPLIANT", "NOT_SCANNED")]
    if "loaded" in columns and pd.api.types.is_bool_dtype(frame["loaded"].dtype):
        tinted.append(("loaded", "FALSE", "NON_COMPLIANT"))
    for column, value, status in tinted:
        letter = xl_col_to_name(columns.index(column), col_abs=True)
        sheet.conditional_format(
            first,
            0,
            last,
            len(columns) - 1,
            {
                "type": "formula",
                "criteria": f"={letter}{first + 1}={value}",
                "format": style.fill(tint(COMPLIANCE_COLORS[status], _ROW_TINT)),
            },
        )


def _distinct(series: pd.Series[Any]) -> list[str]:
    return [str(v) for v in pd.unique(series.dropna().astype("str"))]


#: The Summary's node table: these columns, those the node table has (account_name
#: when any account's name is known).
_NODE_TABLE_COLUMNS = [
    "instance_id",
    "name",
    "account_id",
    "account_name",
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
    "note",
]
_FIGURES_TOP = 3  # the row of the figures' header; title and note above it
_CHART_ROWS = 16  # rows a chart covers (its 300 px height at the default 20 px rows)
_CHART_WIDTH = 470  # pixels
_NOT_COUNTED = (
    "Counts are empty for a node never scanned (NOT_SCANNED) or whose patches failed "
    "to load: there is nothing to count, which is not the same as none (see note)."
)

Block = list[tuple[str, int]]


def _figures(parts: _Data, nodes: pd.DataFrame) -> Block:
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
        ("Accounts", account_count(parts.accounts, nodes)),
        ("Regions", int(nodes["region"].nunique())),
        ("Errors", len(parts.errors)),
    ]


def _chart_blocks(parts: _Data, nodes: pd.DataFrame) -> tuple[Block, Block]:
    """Nodes per compliance status, and non-compliant patches per severity level."""
    status = nodes["compliance"].astype("str")
    compliance = [(s, int((status == s).sum())) for s in COMPLIANCE_COLORS]
    bad = parts.patches["state"].astype("str").isin(list(NON_COMPLIANT_STATES))
    levels = parts.patches.loc[bad, "severity_level"].astype("str")
    severity = [(lv, int((levels == lv).sum())) for lv in reversed(SEVERITY_LEVELS)]
    return compliance, severity


def _block_tops(figures: int) -> tuple[int, int, int]:
    """Header rows of the three blocks, one below the other in columns A:B."""
    compliance = _FIGURES_TOP + figures + 2
    severity = compliance + len(COMPLIANCE_COLORS) + 2
    return _FIGURES_TOP, compliance, severity


def _node_table_top(figures: int) -> int:
    """The row of the header of the Summary's node table: below the blocks and charts."""
    severity = _block_tops(figures)[2]
    return max(severity + len(SEVERITY_LEVELS), _FIGURES_TOP + _CHART_ROWS) + 4


def _write_summary_sheet(
    book: Any,
    parts: _Data,
    nodes: pd.DataFrame,
    figures: Block,
    *,
    groups: _Groups | None,
    title: str,
    style: _Style,
    bar: Any,
) -> None:
    """Title, the figures and the charts' numbers in columns A:B, the charts beside
    them, then the node table below.

    Each block puts its number in column A and its label in column B: A holds the
    node table's instance ids and B its names, so every column's width fits what
    is in it, and each number reads next to its label. Rows go top to bottom, as
    ``constant_memory`` needs.
    """
    sheet = book.add_worksheet("Summary")
    sheet.write_string(0, 0, title, style.title)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sheet.write_string(1, 0, f"Generated {stamp} by patchframe {VERSION}", style.note)
    compliance, severity = _chart_blocks(parts, nodes)
    tops = _block_tops(len(figures))
    _write_block(sheet, tops[0], ("Count", "Figure"), figures, style)
    _write_block(sheet, tops[1], ("Nodes", "Compliance"), compliance, style)
    _write_block(sheet, tops[2], ("Patches", "Non-compliant, by severity"), severity, style)

    colors = [COMPLIANCE_COLORS[s] for s, _ in compliance]
    chart = _column_chart(book, "Nodes by compliance", (tops[1], len(compliance)), colors)
    sheet.insert_chart(_FIGURES_TOP, 3, chart)
    colors = [SEVERITY_COLORS[lv] for lv, _ in severity]
    chart = _column_chart(
        book, "Non-compliant patches by severity", (tops[2], len(severity)), colors
    )
    sheet.insert_chart(_FIGURES_TOP, 3, chart, {"x_offset": _CHART_WIDTH + 20})

    top = _node_table_top(len(figures))
    if groups is not None:
        _write_groups(sheet, top, groups, style)
        top += _group_rows(groups)
    sheet.write_string(top - 2, 0, "Nodes, worst first", style.label)
    if nodes["note"].notna().any():
        sheet.write_string(top - 1, 0, _NOT_COUNTED, style.note)
    table = nodes[[c for c in _NODE_TABLE_COLUMNS if c in nodes.columns]]
    _write_table(sheet, table, top=top, name="NodesWorstFirst", style=style, bar=bar)
    _print_setup(sheet, header_row=top)


def _group_rows(groups: _Groups) -> int:
    """Rows the block per group takes on Summary: its header, a row per group, a gap."""
    return len(groups.table) + 4


def _write_groups(sheet: Any, top: int, groups: _Groups, style: _Style) -> None:
    """The table per group (``compliance_by``) with its header on row ``top``, named."""
    table = groups.table
    sheet.write_string(top - 2, 0, groups.title, style.label)
    sheet.write_string(
        top - 1,
        0,
        f"Stale: never scanned or last scanned over {DEFAULT_STALE_DAYS} days before the load; "
        "unreachable: ping status ConnectionLost or Inactive. Beside AWS's compliance, "
        "not in it.",
        style.note,
    )
    for col, column in enumerate(table.columns):
        kind = _kind(table[column])
        sheet.write_string(top, col, str(column), style.header_for(kind))
    for row, values in enumerate(table.itertuples(index=False), start=top + 1):
        for col, (column, value) in enumerate(zip(table.columns, values, strict=True)):
            if column == "share_compliant":
                sheet.write_number(row, col, float(value), style.share)
            elif isinstance(value, str):
                sheet.write_string(row, col, value, style.text)
            else:
                sheet.write_number(row, col, int(value), style.count)
    cells = xl_range_abs(top, 0, top + len(table), len(table.columns) - 1)
    style.book.define_name("ComplianceByGroup", f"={quote_sheetname(sheet.name)}!{cells}")


def _write_block(
    sheet: Any, top: int, header: tuple[str, str], rows: Block, style: _Style
) -> None:
    """A header and (label, number) rows: the number in column A, its label in B."""
    sheet.write_string(top, 0, header[0], style.header_right)
    sheet.write_string(top, 1, header[1], style.header)
    for i, (label, value) in enumerate(rows, start=top + 1):
        sheet.write_number(i, 0, value, style.count)
        sheet.write_string(i, 1, label, style.text)


def _column_chart(book: Any, title: str, block: tuple[int, int], colors: list[str]) -> Any:
    """A column chart of a block on Summary (header row ``top``, ``n`` rows)."""
    top, n = block
    chart = book.add_chart({"type": "column"})
    chart.add_series(
        {
            "name": title,
            "categories": ["Summary", top + 1, 1, top + n, 1],
            "values": ["Summary", top + 1, 0, top + n, 0],
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
    chart.set_size({"width": _CHART_WIDTH, "height": 300})
    return chart


def _sheets(
    parts: _Data, nodes: pd.DataFrame, aging: pd.DataFrame | None, names: Mapping[str, str]
) -> dict[str, tuple[str, pd.DataFrame]]:
    """The table sheets after Summary: sheet name -> (the table's name, frame), each
    frame with its accounts' names beside their ids."""
    patches = parts.patches
    open_rows = patches[patches["state"].astype("str").isin(OPEN_STATES)]
    open_rows = open_rows.sort_values(
        ["severity_level", "instance_id", "kb_id"], ascending=[False, True, True], kind="stable"
    )
    aged = {} if aging is None else {AGING_SHEET: ("Aging", aging)}
    listed = accounts_worth_listing(parts.accounts)
    accounts = {ACCOUNTS_SHEET: ("Accounts", parts.accounts)} if listed else {}
    sheets = {
        "Patches": ("Patches", patches),
        "Missing and Failed": ("MissingAndFailed", open_rows),
        **aged,
        "CVEs": ("CVEs", cve_exposure(patches)),
        "Nodes": ("Nodes", nodes.drop(columns="note") if parts.nodes is None else parts.nodes),
        **accounts,
        "Errors": ("Errors", parts.errors),
    }
    return {
        sheet: (table, _with_account_names(frame, names))
        for sheet, (table, frame) in sheets.items()
    }


def _check_rows(rows: dict[str, int]) -> None:
    for sheet, count in rows.items():
        if count > EXCEL_ROW_LIMIT:
            raise ValidationError(
                f"sheet {sheet!r} would need {count:,} rows, more than Excel's "
                f"{EXCEL_ROW_LIMIT:,}: filter the frame first (patchframe.filters), "
                "or write it with to_parquet or to_compliance_csv"
            )


def _workbook_path(path: object) -> Path:
    """``path`` as a Path, refused unless it names an .xlsx file: Excel will not open a
    workbook called ``a.csv``, and a tool expecting CSV there would read bytes."""
    if not isinstance(path, str | os.PathLike):
        raise ValidationError(f"path {path!r}: expected a file name ending in .xlsx")
    target = Path(path)
    if target.suffix.lower() != ".xlsx":
        raise ValidationError(
            f"path {str(target)!r}: a workbook's name must end in .xlsx; for CSV use "
            "to_compliance_csv, for Parquet to_parquet"
        )
    return target


def to_excel(
    data: Fleet | pd.DataFrame,
    path: PathLike,
    *,
    title: str = "Patch compliance report",
    progress: bool | None = None,
    by: str | Sequence[str] | None = None,
    findings: pd.DataFrame | None = None,
    sla_policy: Mapping[str, int | float | dt.timedelta] | None = None,
) -> Path:
    """Write a Fleet, or a bare patches frame, as an Excel workbook.

    The sheets are those of :data:`EXCEL_SHEETS`: Summary, Patches, Missing and
    Failed, CVEs, Nodes and Errors; and Accounts (``Fleet.accounts``, before
    Errors) when the fleet has several accounts or one did not load. When the
    fleet knows any account's name (``Fleet.accounts`` or the nodes'
    ``account_name``), every sheet with an ``account_id`` column has
    ``account_name`` right after it, the Summary's node table included; when it
    knows none, no sheet has that column. The module documentation says how
    cells are written (text never as formulas, NA as empty cells, UTC date cells,
    long text split over columns, never truncated) and how the sheets print.

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
    progress
        A bar counting the rows written: None shows it in a notebook or on an
        interactive terminal only, True and False force it on or off.
    by
        For a Fleet: a node column or tag (``"tag:Team"``), or a list of them, to
        add a block of compliance per group to Summary (titled "By Team"; the table
        of :func:`patchframe.summary.compliance_by`). The tags named become columns
        of the Nodes and Patches sheets.
    findings
        Findings from :func:`patchframe.history.findings`: adds the **Aging** sheet,
        the open findings under ``sla_policy`` (:func:`patchframe.summary.sla`, the
        clock starting at ``release_date`` where the findings carry it, else at
        ``first_seen``), most overdue first, with their due dates, ages and time
        overdue (days). Without findings, the sheet is there when the patches carry
        ``release_date`` (:func:`patchframe.with_release_dates`): their open rows
        with a known release date, aged to the fleet's ``loaded_at``.
    sla_policy
        Days to fix per severity level for the Aging sheet, as for
        :func:`patchframe.summary.sla`: ``{"Critical": 15, "High": 30, "Medium": 90,
        "Low": 180}`` when None.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValidationError
        ``data`` is neither a Fleet nor a DataFrame, ``path`` does not end in
        ``.xlsx``, ``sla_policy`` is not a policy (or is given with nothing to
        date: no findings, no release dates), or a sheet would exceed Excel's row
        limit (nothing is written then).
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
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     book = openpyxl.load_workbook(to_excel(fleet, f"{folder}/f.xlsx", by="tag:Team"))
    >>> book.defined_names["ComplianceByGroup"].attr_text
    'Summary!$A$33:$K$41'
    >>> [c.value for c in book["Nodes"][1] if str(c.value).startswith("tag:")]
    ['tag:Team']
    """
    target = _workbook_path(path)
    data, groups = _grouped(data, by)
    parts = _data(data)
    names = _account_names(parts)
    nodes = _with_account_names(_node_table(parts), names)
    sheets = _sheets(parts, nodes, _aging(data, findings=findings, policy=sla_policy), names)
    figures = _figures(parts, nodes)
    rows = {sheet: len(frame) + 1 for sheet, (_, frame) in sheets.items()}
    extra = 0 if groups is None else _group_rows(groups)
    rows["Summary"] = _node_table_top(len(figures)) + extra + len(nodes) + 1
    _check_rows(rows)

    book = xlsxwriter.Workbook(
        str(target),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    book.set_properties({"title": title, "comments": f"patchframe {VERSION}"})
    style = _Style(book)
    total = len(nodes) + sum(len(frame) for _, frame in sheets.values())
    with progress_bar(total, description="workbook", unit="row", progress=progress) as bar:
        _write_summary_sheet(
            book, parts, nodes, figures, groups=groups, title=title, style=style, bar=bar
        )
        for sheet_name, (table_name, frame) in sheets.items():
            sheet = book.add_worksheet(sheet_name)
            _write_table(
                sheet,
                frame,
                top=0,
                name=table_name,
                style=style,
                bar=bar,
                patch_states=sheet_name != ACCOUNTS_SHEET,
            )
            sheet.freeze_panes(1, 0)
            _print_setup(sheet, header_row=0)
            sheet.hide_gridlines(0)  # printed gridlines: a wide row stays readable
        try:
            book.close()
        except FileCreateError as err:
            raise OSError(f"cannot write {target}: {err}") from err
    return target
