"""HTML for Jupyter: a Fleet at a glance, and tables coloured like the charts.

:func:`fleet_html` is what a :class:`~patchframe.Fleet` shows as the last line of
a cell: its figures, nodes by compliance and platform, and patches by state,
with a bar of the states. It is plain HTML with inline styles, so it needs
nothing beyond pandas and survives JupyterLab's sanitiser.

:func:`style_states` turns any frame (a summary, a slice of ``Fleet.nodes`` or
of the patches) into a pandas Styler whose patch states, severity levels and
compliance statuses wear the colours of :mod:`patchframe._palette`, the colours
every chart and the Excel workbook use. Styler needs jinja2, which is imported
on the first call, not when patchframe is imported.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Container, Hashable, Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd
from pandas.api.types import is_numeric_dtype

from ._nodes import DEFAULT_STALE_DAYS
from ._palette import (
    COMPLIANCE_COLORS,
    SEVERITY_COLORS,
    STATE_COLORS,
    UNKNOWN_COLOR,
    text_color,
)
from ._schema import NON_COMPLIANT_STATES, STATES, accounts_worth_listing, normalise_state
from ._text import counted
from .exceptions import ValidationError

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler
    from pandas.io.formats.style_render import CSSDict

    from ._fleet import Fleet

__all__ = ["fleet_html", "style_states"]

Css = Callable[[object], str]

#: Columns whose values are coloured: the colour of each value, and how to spell a
#: value as the palette does (states may come as ``InstalledOther``, levels as ``HIGH``).
_VALUE_COLORS: dict[str, tuple[dict[str, str], Callable[[str], str]]] = {
    "state": (STATE_COLORS, normalise_state),
    "severity_level": (SEVERITY_COLORS, str.capitalize),
    "worst_missing_severity": (SEVERITY_COLORS, str.capitalize),
    "compliance": (COMPLIANCE_COLORS, str.upper),
}
#: Index levels whose labels are coloured (known names only: a "total" row stays plain).
_LABEL_LEVELS = frozenset({"state", "severity_level", "compliance"})
_SEVERITY_BY_KEY = {level.upper(): colour for level, colour in SEVERITY_COLORS.items()}
_NOT_COMPLIANT_COLOR = COMPLIANCE_COLORS["NON_COMPLIANT"]
_SWATCH = (
    "display:inline-block;width:0.8em;height:0.8em;border-radius:2px;"
    "margin-right:0.4em;vertical-align:-0.1em;background:{}"
)
_MUTED = "opacity:0.45"
_CAPTION = "caption-side: top; font-weight: bold; text-align: left"
_NOTE = "font-weight:normal;font-size:0.85em;opacity:0.75"

# Fitting a notebook (JupyterLab is about 1,200 pixels wide). Every value stays on
# one line: an id must never wrap inside itself ("mi-" / "0a1b..." at the hyphen),
# and a table squeezed to fit made platform names and times three lines tall.
# Headers may break after an underscore instead, long text is capped, and what
# is still too wide scrolls.
#: Columns of long text: capped with an ellipsis, all of it on hover.
_CAPPED = frozenset({"title", "message", "cve_ids"})
_CAP = (
    "display: inline-block; max-width: 28em; overflow: hidden; text-overflow: ellipsis; "
    "white-space: nowrap; vertical-align: bottom"
)
#: A table wider than its cell scrolls inside its own box instead of being cut off.
_SCROLL = "display: block; max-width: 100%; overflow-x: auto"
_NOT_SCANNED_NOTE = (
    "Counts are empty for a node never scanned (NOT_SCANNED): it has no patch-state "
    "data to count, which is not the same as none."
)


# Colours.


def _fill(colour: str) -> str:
    return f"background-color: {colour}; color: {text_color(colour)}"


def _palette_color(label: object) -> str | None:
    """The colour of a state, severity level or compliance status named by ``label``.

    Any spelling the API uses works (``MISSING``, ``Missing``, ``missing``,
    ``InstalledOther``); anything else, ``"total"`` say, has none.

    Examples
    --------
    >>> _palette_color("installed_other"), _palette_color("Critical"), _palette_color("total")
    ('#9ad39c', '#a50f15', None)
    """
    if not isinstance(label, str) or not label:
        return None
    key = normalise_state(label)
    return STATE_COLORS.get(key) or _SEVERITY_BY_KEY.get(key) or COMPLIANCE_COLORS.get(key)


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or value != value  # NaN != NaN


# Styler callbacks: one value in, CSS out.


def _value_css(colours: dict[str, str], spelling: Callable[[str], str]) -> Css:
    """Fill a cell with its value's colour; a value the palette does not know is grey."""

    def css(value: object) -> str:
        if _is_missing(value):
            return ""
        return _fill(colours.get(spelling(str(value)), UNKNOWN_COLOR))

    return css


def _compliant_css(value: object) -> str:
    if _is_missing(value):
        return ""
    return _fill(COMPLIANCE_COLORS["COMPLIANT"] if value else _NOT_COMPLIANT_COLOR)


def _count_css(colour: str | None) -> Css:
    """Mute zeros; fill non-zero counts with ``colour`` when it is given."""

    def css(value: object) -> str:
        if _is_missing(value):
            return ""
        if value == 0:
            return _MUTED
        return _fill(colour) if colour else ""

    return css


def _label_css(label: object) -> str:
    colour = _palette_color(label)
    return _fill(colour) if colour else ""


def _time_text(value: object) -> str:
    """A time to the minute, with its zone: ``2024-06-13 12:58 UTC``."""
    if not isinstance(value, pd.Timestamp):
        return str(value)
    return f"{value:%Y-%m-%d %H:%M %Z}".rstrip()


def _column_css(name: Hashable, column: pd.Series) -> Css | None:
    """How to colour the cells of one column, if at all."""
    if name in _VALUE_COLORS:
        return _value_css(*_VALUE_COLORS[str(name)])
    if name == "compliant" and pd.api.types.is_bool_dtype(column.dtype):
        return _compliant_css
    colour = _palette_color(name)
    dtype = column.dtype
    if colour is None or pd.api.types.is_bool_dtype(dtype) or not is_numeric_dtype(dtype):
        return None
    # Counts: only the states that make a node non-compliant are filled, so the
    # cells that call for action are the coloured ones.
    bad = isinstance(name, str) and normalise_state(name) in NON_COMPLIANT_STATES
    return _count_css(colour if bad else None)


def style_states(data: pd.DataFrame, *, caption: str | None = None) -> Styler:
    """A frame as an HTML table with states, severities and compliance in the charts' colours.

    Works on any frame, and is made for the small ones the summaries return.
    What gets coloured, by column name:

    ================================================ ===================================
    column                                           colour
    ================================================ ===================================
    ``state``                                        each cell in its state's colour
    ``severity_level``, ``worst_missing_severity``   each cell in its level's colour
    ``compliance``; ``compliant`` (bool)             COMPLIANT green, NON_COMPLIANT red
    named after a state (``missing``, ``failed``,    the header in that colour; non-zero
    ...), a severity level (``Critical``) or a       counts of non-compliant states
    compliance status (counts)                       filled, zeros muted
    ================================================ ===================================

    Row labels of an index level named ``state``, ``severity_level`` or
    ``compliance`` are coloured too (a ``total`` row stays plain). Counts get
    thousands separators, times are shown to the minute with their zone, NA
    is an empty cell (as in the Excel workbook), text is escaped (a patch title
    such as ``<script>`` shows as those characters), and an unnamed integer index
    (row numbers) is hidden. The frame itself is not changed.

    It fits a notebook: every value (an id, a KB id, a time) stays on one
    line, long headers (``installed_pending_reboot``) may break after an
    underscore, titles, CVE lists and messages are cut with an ellipsis at about
    28 characters (the whole text shows on hover), and a table still too wide
    scrolls sideways in its own box. A frame with a ``compliance`` column whose
    NOT_SCANNED nodes have empty counts says why in a note under the caption.

    Parameters
    ----------
    data
        The frame to show. Styler renders every row: pass a summary, or ``.head()``.
    caption
        A title shown above the table, as plain text.

    Returns
    -------
    pandas.io.formats.style.Styler
        Displays as HTML in Jupyter; ``.to_html()`` gives the HTML text.

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or its row or column labels repeat.
    ImportError
        jinja2, which pandas' Styler needs, is not installed.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe._html import style_states
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> table = fleet.patches.pf.state_by_severity()
    >>> html = style_states(table, caption="Patches by state and severity").to_html()
    >>> "background-color: #e0302b" in html  # MISSING, as in every chart
    True
    >>> ">2,020<" in html  # every patch, with a thousands separator
    True
    """
    if not isinstance(data, pd.DataFrame):
        raise ValidationError(f"data: expected a DataFrame, got {type(data).__name__}")
    if not (data.index.is_unique and data.columns.is_unique):
        raise ValidationError(
            "style_states needs unique row and column labels: call .reset_index(drop=True) "
            "on a frame whose index repeats"
        )
    styler = data.style  # imports jinja2, on first use only
    for name in data.columns:
        css = _column_css(name, data[name])
        if css is not None:
            styler = styler.map(css, subset=[name])
    styler = styler.map_index(_label_css, axis="columns")
    for level, level_name in enumerate(data.index.names):
        if level_name in _LABEL_LEVELS:
            styler = styler.map_index(_label_css, axis="index", level=level)
    if (
        data.index.nlevels == 1
        and data.index.name is None
        and pd.api.types.is_integer_dtype(data.index.dtype)
    ):
        styler = styler.hide(axis="index")
    times = [c for c in data.columns if pd.api.types.is_datetime64_any_dtype(data[c].dtype)]
    capped = [c for c in data.columns if c in _CAPPED]
    formats: dict[Any, str | Callable[[object], str] | None] = {
        **dict.fromkeys(times, _time_text),
        **dict.fromkeys(capped, _capped_text),
    }
    styler = styler.format(formats, na_rep="", thousands=",", precision=2, escape="html")
    # Escaped here, not by Styler, which would escape the <wbr> too.
    styler = styler.format_index(_breakable, axis="columns")
    styler = styler.set_table_styles(_fitting_styles(data))
    note = _NOT_SCANNED_NOTE if _has_unscanned_counts(data) else None
    if caption is not None or note is not None:
        text = "" if caption is None else html.escape(caption)
        styler = styler.set_caption(text + (f'<div style="{_NOTE}">{note}</div>' if note else ""))
    return styler


def _capped_text(value: object) -> str:
    """Text (Styler escaped it already) in a box that ends in an ellipsis; all of it on hover."""
    return f'<span title="{value}">{value}</span>'


def _breakable(label: object) -> str:
    """A header that may break after each underscore: ``installed_<wbr>pending_<wbr>reboot``."""
    return html.escape(str(label)).replace("_", "_<wbr>")


def _fitting_styles(data: pd.DataFrame) -> list[CSSDict]:
    """CSS rules (Styler prefixes each with the table's id) that make ``data`` fit."""
    styles: list[CSSDict] = [
        {"selector": "caption", "props": _CAPTION},
        {"selector": "", "props": _SCROLL},
        {"selector": "th.col_heading", "props": "white-space: normal; vertical-align: bottom"},
        {"selector": "td, th.row_heading", "props": "white-space: nowrap"},
    ]
    for i, name in enumerate(data.columns):
        if name in _CAPPED:
            styles.append({"selector": f"td.col{i} > span", "props": _CAP})
    return styles


def _has_unscanned_counts(data: pd.DataFrame) -> bool:
    """Whether some NOT_SCANNED node of ``data`` has an empty count to explain."""
    if "compliance" not in data.columns:
        return False
    unscanned = (data["compliance"].astype("str") == "NOT_SCANNED").to_numpy()
    counts = [
        c
        for c in data.columns
        if is_numeric_dtype(data[c].dtype) and not pd.api.types.is_bool_dtype(data[c].dtype)
    ]
    return bool(unscanned.any() and data.loc[unscanned, counts].isna().to_numpy().any())


# The Fleet at a glance.


def _swatch(colour: str) -> str:
    return f'<span style="{_SWATCH.format(colour)}"></span>'


def _figure(value: int, label: str, *, alarm: bool = False) -> str:
    colour = f"color:{_NOT_COMPLIANT_COLOR};" if alarm and value else ""
    return (
        '<td style="text-align:center;padding:0.2em 1.2em 0.2em 0">'
        f'<div style="font-size:1.5em;font-weight:600;{colour}">{value:,}</div>'
        f'<div style="font-size:0.85em;opacity:0.75">{html.escape(label)}</div></td>'
    )


def _table(
    header: Iterable[str], rows: Iterable[Iterable[str]], *, text: Container[int] = (0,)
) -> str:
    """An HTML table from cells that are already HTML; the columns at the positions in
    ``text`` are text, aligned left (a notebook right-aligns every cell), the others numbers."""

    def cells(tag: str, row: Iterable[str]) -> str:
        return "".join(
            f'<{tag} style="text-align:left">{c}</{tag}>' if i in text else f"<{tag}>{c}</{tag}>"
            for i, c in enumerate(row)
        )

    head = cells("th", header)
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f'<table style="margin:0"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _compliance_table(nodes: pd.DataFrame) -> str:
    """Nodes per compliance status (rows) and platform type (columns)."""
    if nodes.empty:
        return "<p>no nodes</p>"
    status = nodes["compliance"].astype("str").fillna("unknown")
    platform = (
        nodes["platform_type"].astype("str").fillna("unknown")
        if "platform_type" in nodes.columns
        else pd.Series("nodes", index=nodes.index)
    )
    table = pd.crosstab(status, platform)
    known = [s for s in COMPLIANCE_COLORS if s in table.index]
    table = table.loc[[*known, *(s for s in table.index if s not in COMPLIANCE_COLORS)]]
    columns = [str(c) for c in table.columns]
    rows = [
        [
            _swatch(COMPLIANCE_COLORS.get(str(name), UNKNOWN_COLOR)) + html.escape(str(name)),
            *(f"{int(n):,}" for n in counts),
            f"<b>{int(counts.sum()):,}</b>",
        ]
        for name, counts in table.iterrows()
    ]
    return _table(["compliance", *map(html.escape, columns), "all"], rows)


def _state_counts(patches: pd.DataFrame) -> list[tuple[str, int]]:
    """Patches per state, in the model's order, states nobody knew yet last; no zeros."""
    counts = patches["state"].value_counts(sort=False)  # on the codes: fast on millions of rows
    named: dict[str, int] = {}
    for state, n in counts.items():
        key = normalise_state(str(state))
        named[key] = named.get(key, 0) + int(n)
    order = [*STATES, *sorted(s for s in named if s not in STATES)]
    return [(s, named[s]) for s in order if named.get(s)]


def _state_bar(counts: list[tuple[str, int]]) -> str:
    """One bar, a segment per state as wide as its share of the patches."""
    segments = "".join(
        f'<div title="{html.escape(s)}: {n:,}" '
        f'style="flex:{n} 1 0;background:{STATE_COLORS.get(s, UNKNOWN_COLOR)}"></div>'
        for s, n in counts
    )
    return (
        '<div style="display:flex;max-width:40em;height:0.9em;margin:0.4em 0 0.6em 0;'
        f'border-radius:3px;overflow:hidden">{segments}</div>'
    )


def _state_table(counts: list[tuple[str, int]]) -> str:
    total = sum(n for _, n in counts)
    rows = [
        [
            _swatch(STATE_COLORS.get(s, UNKNOWN_COLOR)) + html.escape(s),
            f"{n:,}",
            f"{n / total:.1%}",
        ]
        for s, n in counts
    ]
    return _table(["state", "patches", "share"], rows)


def _error_table(errors: pd.DataFrame, *, top: int = 5) -> str:
    """Failures by operation and error code, most first."""
    counts = (
        errors.astype({"operation": "str", "error_code": "str"})
        .fillna({"operation": "", "error_code": ""})
        .groupby(["operation", "error_code"])
        .size()
        .sort_values(ascending=False, kind="stable")
    )
    rows = [
        [*(html.escape(str(part)) for part in pair), f"{int(n):,}"]
        for pair, n in zip(counts.index[:top], counts.iloc[:top], strict=True)
    ]
    more = f"<p>and {len(counts) - top:,} more kinds of error</p>" if len(counts) > top else ""
    return _table(["operation", "error code", "errors"], rows, text=(0, 1)) + more


def _accounts_table(accounts: pd.DataFrame, *, top: int = 20) -> str:
    """The accounts, those that failed first, then those with most non-compliant nodes."""
    worst = accounts.assign(
        failed=~accounts["loaded"], bad=accounts["non_compliant_nodes"].fillna(0)
    ).sort_values(["failed", "bad"], ascending=False, kind="stable")

    def text(value: object) -> str:
        return "" if _is_missing(value) else html.escape(str(value))

    def count(value: Any) -> str:
        return "" if _is_missing(value) else f"{int(value):,}"

    loaded = {True: "yes", False: f'<span style="color:{_NOT_COMPLIANT_COLOR}">no</span>'}
    rows = [
        [
            text(row.account_name),
            text(row.account_id),
            text(row.state),
            loaded[bool(row.loaded)],
            count(row.nodes),
            count(row.non_compliant_nodes),
            text(row.error_code),
        ]
        for row in worst.head(top).itertuples(index=False)
    ]
    header = ["account", "id", "state", "loaded", "nodes", "non-compliant", "error"]
    more = f"<p>and {len(worst) - top:,} more accounts</p>" if len(worst) > top else ""
    return _table(header, rows, text=(0, 1, 2, 3, 6)) + more


def fleet_html(fleet: Fleet) -> str:
    """A Fleet at a glance, as HTML: figures, compliance, patch states, accounts, errors.

    The accounts (``Fleet.accounts``) are listed, by name and id, when there are
    more than one or one failed to load: those that failed first, then those
    with the most non-compliant nodes, 20 at most.

    The figures include the stale nodes (never scanned, or last scanned more than
    7 days before the load: ``Fleet.figures()``) and the unreachable ones, beside
    the non-compliant nodes rather than folded into them.

    Examples
    --------
    >>> import patchframe as pf
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> page = fleet_html(fleet)
    >>> "2,020" in page, "NON_COMPLIANT" in page, "#e0302b" in page
    (True, True, True)
    >>> "stale nodes (7+ days)" in page, "unreachable nodes" in page
    (True, True)
    """
    figures = fleet.figures()
    where = f"{counted(figures['accounts'], 'account')}, {counted(figures['regions'], 'region')}"
    # Beside AWS's verdict, never in it: how old the scans are and whether nodes answer.
    # A nodes frame saved before these columns existed shows neither.
    freshness = [
        _figure(figures["stale_nodes"], f"stale nodes ({DEFAULT_STALE_DAYS}+ days)", alarm=True)
        if "scan_age" in fleet.nodes.columns
        else "",
        _figure(figures["unreachable_nodes"], "unreachable nodes", alarm=True)
        if "reachable" in fleet.nodes.columns
        else "",
    ]
    strip = "".join(
        [
            _figure(figures["nodes"], "nodes"),
            _figure(figures["patches"], "patches"),
            _figure(figures["non_compliant_nodes"], "non-compliant nodes", alarm=True),
            *freshness,
            _figure(figures["failed_nodes"], "nodes not loaded", alarm=True),
            _figure(figures["errors"], "errors", alarm=True),
        ]
    )
    counts = _state_counts(fleet.patches)
    side_by_side = (
        '<div style="display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start">'
        f"<div>{_compliance_table(fleet.nodes)}</div>"
        + (f"<div>{_state_table(counts)}</div>" if counts else "")
        + "</div>"
    )
    accounts = (
        '<div style="margin-top:0.6em"><b>Accounts</b> (see <code>.accounts</code>)'
        f"{_accounts_table(fleet.accounts)}</div>"
        if accounts_worth_listing(fleet.accounts)
        else ""
    )
    errors = (
        '<div style="margin-top:0.6em"><b>What failed</b> (see <code>.errors</code>)'
        f"{_error_table(fleet.errors)}</div>"
        if len(fleet.errors)
        else ""
    )
    unscanned = int((fleet.nodes["compliance"].astype("str") == "NOT_SCANNED").sum())
    note = (
        f'<p style="{_NOTE};margin:0.4em 0 0 0">{counted(unscanned, "node")} never scanned '
        "(NOT_SCANNED): no patch-state data, so <code>.nodes</code> leaves "
        f"{'its' if unscanned == 1 else 'their'} counts empty, not zero.</p>"
        if unscanned
        else ""
    )
    return (
        '<div class="patchframe-fleet" style="max-width:100%;overflow-x:auto">'
        f"<div><b>patchframe Fleet</b> &middot; {html.escape(where)}</div>"
        f'<table style="margin:0.3em 0"><tr>{strip}</tr></table>'
        + (_state_bar(counts) if counts else "")
        + side_by_side
        + note
        + accounts
        + errors
        + "</div>"
    )
