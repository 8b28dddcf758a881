"""Charts of a patches frame: the frame in, a matplotlib Axes out.

Each function takes the frame first, then keyword-only options, draws on ``ax``
(a new figure sized to the chart when None) and returns the Axes; none calls
``plt.show()``, so charts compose into subplots and display in Jupyter as usual.
States, severity levels and compliance have one colour each, the same in every
chart (see :mod:`patchframe._palette`): MISSING red, FAILED dark red, INSTALLED green.
Charts over nodes, CVEs or platforms draw the top few and fold the rest into one
"other" bar, so they read the same for 3 nodes as for 3,000.

As in seaborn, every chart also takes ``palette`` (colours by label: a state,
severity level, compliance status or series name, overriding the defaults),
``legend`` (False leaves the legend or colour bar out) and further keyword
arguments, which go to the matplotlib call that draws the data (``barh``,
``bar`` or ``imshow``), so ``alpha=0.8`` or ``edgecolor="white"`` work as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, LogNorm, to_hex, to_rgba
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ._axes import check_top, label_colors, legend_outside, new_axes, no_data, over_time
from ._fleet import TAG_PREFIX, Fleet
from ._frames import (
    TimeLike,
    patch_state,
    require_columns,
    require_frame,
    state_codes,
    state_mask,
)
from ._nodes import DEFAULT_STALE_DAYS
from ._palette import (
    COMPLIANCE_COLORS,
    UNKNOWN_COLOR,
    severity_color,
    state_color,
    text_color,
    tint,
)
from ._schema import NON_COMPLIANT_STATES, STATES
from ._sla import Clock
from ._sla import aging as _aging_table
from ._sla import time_to_fix as _fix_times
from ._text import counted
from .exceptions import ColumnsError
from .summary import (
    Freq,
    cve_exposure,
    install_activity,
    node_compliance,
    state_by_severity,
)
from .summary import compliance_by as _compliance_by_table

__all__ = [
    "aging",
    "compliance_by",
    "compliance_by_platform",
    "install_timeline",
    "severity_state_heatmap",
    "states_by_node",
    "time_to_fix",
    "top_cves",
]

_PERIOD_DAYS = {"D": 0.8, "W": 6.0, "M": 26.0}  # bar widths: a gap between periods
_PERIOD_NAMES = {"D": "day", "W": "week", "M": "month"}
# Worst first, so the bad part of every node's bar starts at zero and bars compare at a glance.
_STACK_ORDER = (
    "FAILED",
    "MISSING",
    "INSTALLED_REJECTED",
    "INSTALLED_PENDING_REBOOT",
    "AVAILABLE_SECURITY_UPDATE",
    "INSTALLED_OTHER",
    "INSTALLED",
    "NOT_APPLICABLE",
)
_INSTALLS, _INSTALLERS = "patches installed", "nodes installing"  # install_timeline's series
_TIMELINE_COLORS = {_INSTALLS: state_color("INSTALLED"), _INSTALLERS: "#333333"}
# A heatmap cell is its row's colour mixed into white, from this much (one patch) to all of
# it (the largest count), so that a cell of one patch still shows against an empty one.
_FAINTEST = 0.15
_SCALE_COLOR = "#595959"  # the colour bar's grey: the heatmap's rows each have their own hue


def _stacked_barh(
    ax: Axes,
    labels: list[str],
    table: npt.NDArray[np.float64],
    colors: Mapping[str, str],
    *,
    title: str,
    legend: bool,
    kwargs: dict[str, Any],
) -> None:
    """Horizontal bars, first label on top, one stacked segment per series (``colors``)."""
    y = np.arange(len(labels))
    left = np.zeros(len(labels))
    for column, (name, color) in enumerate(colors.items()):
        options = {"left": left.copy(), "color": color, "label": name, "height": 0.8, **kwargs}
        ax.barh(y, table[:, column], **options)
        left += table[:, column]
    _label_bars(ax, labels)
    if legend:
        legend_outside(ax, title=title)


def _label_bars(ax: Axes, labels: list[str]) -> None:
    """Horizontal bars' labels, the first on top; whole numbers along the bars."""
    ax.set_yticks(np.arange(len(labels)), labels, fontsize="small")
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def states_by_node(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    top: int = 20,
    states: list[str] | None = None,
    palette: Mapping[str, str] | None = None,
    legend: bool = True,
    **kwargs: Any,
) -> Axes:
    """Stacked horizontal bars of patch states per node, worst nodes on top.

    Nodes are ranked by their non-compliant patches (then MISSING + FAILED, then
    id); the ``top`` worst get a bar each, and the rest share one "other" bar
    showing their mean per node, so that one bar of thousands of nodes does not
    squash the others.

    Parameters
    ----------
    data
        A patches frame.
    ax
        The Axes to draw on; a new figure when None.
    top
        How many nodes get their own bar.
    states
        The states to stack, left to right, in any spelling ``by_state`` accepts.
        By default every state the frame holds, non-compliant ones first, except
        NOT_APPLICABLE, which would dwarf the rest.
    palette
        Colours by state (``{"MISSING": "black"}``), over patchframe's own.
    legend
        Whether to draw the legend of states.
    **kwargs
        Passed to ``Axes.barh`` for every segment (``edgecolor``, ``alpha``, ...).

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import patchframe as pf
    >>> from patchframe.plots import states_by_node
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> ax = states_by_node(fleet.patches, top=5)
    >>> ax.get_title()
    'Patch states by node: top 5 of 12 by non-compliant patches'
    >>> [label.get_text() for label in ax.get_yticklabels()][-2:]
    ['mi-0a1b2c3d4e5f67890', 'other 7 nodes (mean)']
    >>> plt.close(ax.figure)
    """
    shown = check_top(top)
    require_columns(
        data,
        ["instance_id", "state", "severity_level", "installed_time"],
        needed_by="states_by_node",
    )
    _, in_frame = state_codes(data["state"])
    known = [*STATES, *(s for s in in_frame if s not in STATES)]
    counts = node_compliance(data)
    if states is None:
        order = [*_STACK_ORDER[:-1], *known[len(STATES) :]]
        chosen = [s for s in order if counts[s.lower()].sum() > 0]
    else:
        chosen = list(dict.fromkeys(patch_state(s, known) for s in states))
    colors = label_colors(chosen, state_color, palette)
    ax = new_axes(ax, bars=min(len(counts), shown + 1))
    ax.set_title("Patch states by node")
    ax.set_xlabel("patches")
    ax.set_ylabel("node")
    if counts.empty or not chosen:
        return no_data(ax, "no patches")

    bad = counts[[s.lower() for s in NON_COMPLIANT_STATES]].sum(axis=1)
    ranked = counts.assign(_bad=bad, _gap=counts["missing"] + counts["failed"]).sort_values(
        ["_bad", "_gap", "instance_id"], ascending=[False, False, True], kind="stable"
    )
    table = ranked[[s.lower() for s in chosen]].to_numpy(dtype=np.float64)
    labels = ranked["instance_id"].tolist()
    if len(ranked) > shown:
        rest = len(ranked) - shown
        table = np.vstack([table[:shown], table[shown:].mean(axis=0)])
        labels = [*labels[:shown], f"other {counted(rest, 'node')} (mean)"]
        ax.set_title(
            f"Patch states by node: top {shown} of {len(ranked):,} by non-compliant patches"
        )
    _stacked_barh(ax, labels, table, colors, title="state", legend=legend, kwargs=kwargs)
    return ax


def severity_state_heatmap(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    palette: Mapping[str, str] | None = None,
    legend: bool = True,
    **kwargs: Any,
) -> Axes:
    """Patch counts by state (rows) and severity level (columns), as a heatmap.

    Each row is drawn in its state's colour, as in every chart, from faint for
    one patch to full for the largest count. Shading is on a log scale, so a few
    MISSING Critical patches stand out next to thousands of NOT_APPLICABLE ones;
    every cell is labelled with its count, and empty cells are left blank.

    Parameters
    ----------
    data
        A patches frame.
    ax
        The Axes to draw on; a new figure when None.
    palette
        Colours by state, the rows' hues, over patchframe's own.
    legend
        Whether to draw the colour bar of the (log) scale.
    **kwargs
        Passed to ``Axes.imshow`` (``alpha``, ``interpolation``, ...).

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import patchframe as pf
    >>> from patchframe.plots import severity_state_heatmap
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> ax = severity_state_heatmap(fleet.patches)
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['Critical', 'High', 'Medium', 'Low', 'Unspecified']
    >>> plt.close(ax.figure)
    """
    require_frame(data, needed_by="severity_state_heatmap", argument="data")
    table = state_by_severity(data, totals=False)
    colors = label_colors([str(s) for s in table.index], state_color, palette)
    ax = new_axes(ax, width=7.5)
    ax.set_title("Patches by state and severity")
    ax.set_xlabel("severity level")
    ax.set_ylabel("state")
    values = table.to_numpy()
    if values.sum() == 0:
        return no_data(ax, "no patches")
    norm = LogNorm(vmin=1, vmax=max(int(values.max()), 2))
    row_colors = [to_hex(c) for c in colors.values()]  # any matplotlib colour, as #rrggbb
    image = np.zeros((*values.shape, 4))  # empty cells: transparent
    for (row, column), count in np.ndenumerate(values):
        if not count:
            continue
        shade = _FAINTEST + (1 - _FAINTEST) * float(norm(count))
        cell = tint(row_colors[row], shade)
        image[row, column] = to_rgba(cell)
        ax.text(
            column,
            row,
            f"{count:,}",
            ha="center",
            va="center",
            fontsize="small",
            color=text_color(cell),
        )
    ax.imshow(image, **{"aspect": "auto", **kwargs})
    ax.set_xticks(range(values.shape[1]), table.columns.tolist())
    ax.set_yticks(range(values.shape[0]), table.index.tolist(), fontsize="small")
    if legend:
        scale = LinearSegmentedColormap.from_list(
            "patchframe_scale", [tint(_SCALE_COLOR, _FAINTEST), _SCALE_COLOR]
        )
        mappable = ScalarMappable(norm=norm, cmap=scale)
        ax.figure.colorbar(mappable, ax=ax, label="patches (log scale)")
    return ax


def install_timeline(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    freq: Freq = "W",
    palette: Mapping[str, str] | None = None,
    legend: bool = True,
    **kwargs: Any,
) -> Axes:
    """Patches installed per period as bars, and nodes that installed any as a line.

    Parameters
    ----------
    data
        A patches frame.
    ax
        The Axes to draw on; a new figure when None.
    freq
        ``"D"``, ``"W"`` (the default) or ``"M"``, as in
        :func:`patchframe.summary.install_activity`.
    palette
        Colours by series, ``"patches installed"`` (the bars) and
        ``"nodes installing"`` (the line), over patchframe's own.
    legend
        Whether to draw the legend.
    **kwargs
        Passed to ``Axes.bar``, which draws the installs (``alpha``, ``hatch``, ...).

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import patchframe as pf
    >>> from patchframe.plots import install_timeline
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> ax = install_timeline(fleet.patches, freq="M")
    >>> ax.get_title(), len(ax.patches)
    ('Patch installs per month', 14)
    >>> plt.close(ax.figure)
    """
    require_frame(data, needed_by="install_timeline", argument="data")
    activity = install_activity(data, freq=freq)
    colors = label_colors(_TIMELINE_COLORS, _TIMELINE_COLORS.__getitem__, palette)
    ax = new_axes(ax, width=9.0)
    ax.set_title(f"Patch installs per {_PERIOD_NAMES[freq]}")
    ax.set_xlabel("installed (UTC)")
    ax.set_ylabel("count")
    if activity.empty:
        return no_data(ax, "no installs")
    starts = activity["period"].dt.tz_localize(None).to_numpy()
    width = np.timedelta64(int(_PERIOD_DAYS[freq] * 24), "h")
    options = {"width": width, "align": "edge", "color": colors[_INSTALLS], "label": _INSTALLS}
    ax.bar(starts, activity["installs"], **{**options, **kwargs})
    ax.plot(
        starts + width / 2,
        activity["nodes"],
        color=colors[_INSTALLERS],
        marker=".",
        linewidth=1,
        label=_INSTALLERS,
    )
    return over_time(ax, legend=legend)


def top_cves(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    top: int = 15,
    palette: Mapping[str, str] | None = None,
    legend: bool = True,
    **kwargs: Any,
) -> Axes:
    """The CVEs open on the most nodes, as horizontal bars coloured by severity level.

    Counts come from :func:`patchframe.summary.cve_exposure` (MISSING and FAILED
    patches); the CVE on the most nodes is on top.

    Parameters
    ----------
    data
        A patches frame.
    ax
        The Axes to draw on; a new figure when None.
    top
        How many CVEs get a bar.
    palette
        Colours by severity level (``{"Critical": "black"}``), over patchframe's own.
    legend
        Whether to draw the legend of severity levels.
    **kwargs
        Passed to ``Axes.barh`` (``edgecolor``, ``alpha``, ...).

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import patchframe as pf
    >>> from patchframe.plots import top_cves
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> ax = top_cves(fleet.patches, top=5)
    >>> [label.get_text() for label in ax.get_yticklabels()][:2]
    ['CVE-2024-1085', 'CVE-2023-6780']
    >>> plt.close(ax.figure)
    """
    shown = check_top(top)
    require_frame(data, needed_by="top_cves", argument="data")
    exposure = cve_exposure(data)
    head = exposure.head(shown)
    ax = new_axes(ax, bars=len(head))
    total = len(exposure)
    ax.set_title(
        f"Open CVEs by nodes affected: top {shown} of {total:,}"
        if total > shown
        else "Open CVEs by nodes affected"
    )
    ax.set_xlabel("nodes affected")
    ax.set_ylabel("CVE")
    if head.empty:
        return no_data(ax, "no open CVEs")
    levels = head["severity_level"].astype("str").fillna("Unspecified").tolist()
    present = [v for v in reversed(head["severity_level"].cat.categories) if v in set(levels)]
    colors = label_colors(present, severity_color, palette)
    options = {"color": [colors[v] for v in levels], "height": 0.8}
    ax.barh(np.arange(len(head)), head["nodes"], **{**options, **kwargs})
    _label_bars(ax, head["cve_id"].tolist())
    if legend:
        handles = [Patch(color=colors[v], label=v) for v in present]
        ax.legend(handles=handles, title="severity", loc="lower right", fontsize="small")
    return ax


def compliance_by_platform(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    by: str = "platform_name",
    top: int = 15,
    palette: Mapping[str, str] | None = None,
    legend: bool = True,
    **kwargs: Any,
) -> Axes:
    """Nodes per platform, stacked by compliance status.

    Parameters
    ----------
    data
        Either a patches frame with node columns (``Fleet.patches``): each node's
        compliance is then worked out from its patches by AWS's rules; or a nodes
        frame (``Fleet.nodes``) with a ``compliance`` column (COMPLIANT,
        NON_COMPLIANT, NOT_SCANNED), which also counts nodes never scanned.
    ax
        The Axes to draw on; a new figure when None.
    by
        The column to group nodes by: ``"platform_name"`` or ``"platform_type"``.
    top
        How many platforms, the largest first, get their own bar; the rest share one.
    palette
        Colours by compliance status (``{"COMPLIANT": "blue"}``), over patchframe's own.
    legend
        Whether to draw the legend of compliance statuses.
    **kwargs
        Passed to ``Axes.barh`` for every segment (``edgecolor``, ``alpha``, ...).

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        ``data`` lacks the ``by`` column, or has neither ``state`` nor ``compliance``.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import patchframe as pf
    >>> from patchframe.plots import compliance_by_platform
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> ax = compliance_by_platform(fleet.nodes, by="platform_type")
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['Linux', 'Windows']
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['COMPLIANT', 'NON_COMPLIANT', 'NOT_SCANNED']
    >>> plt.close(ax.figure)
    """
    shown = check_top(top)
    table = _compliance_table(data, by)
    colors = label_colors(
        [str(c) for c in table.columns], lambda c: COMPLIANCE_COLORS.get(c, UNKNOWN_COLOR), palette
    )
    ax = new_axes(ax, bars=min(len(table), shown + 1))
    ax.set_title("Node compliance by platform")
    ax.set_xlabel("nodes")
    ax.set_ylabel(by.replace("_", " "))
    if table.empty:
        return no_data(ax, "no nodes")
    table = table.loc[table.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    labels = [str(v) for v in table.index]
    values = table.to_numpy(dtype=np.float64)
    if len(table) > shown:
        rest = len(table) - shown
        values = np.vstack([values[:shown], values[shown:].sum(axis=0)])
        labels = [*labels[:shown], f"other {counted(rest, 'platform')}"]
    _stacked_barh(ax, labels, values, colors, title="compliance", legend=legend, kwargs=kwargs)
    return ax


def _compliance_table(data: pd.DataFrame, by: str) -> pd.DataFrame:
    """Nodes per platform (rows, "unknown" for NA) and compliance status (columns)."""
    require_columns(data, [by], needed_by="compliance_by_platform")
    if "state" in data.columns:
        require_columns(data, ["instance_id"], needed_by="compliance_by_platform")
        rows = pd.DataFrame(
            {
                "node": data["instance_id"].to_numpy(),
                "platform": data[by].to_numpy(),
                "bad": state_mask(data, NON_COMPLIANT_STATES),
            }
        )
        nodes = rows.groupby("node", sort=False).agg(
            platform=("platform", "first"), bad=("bad", "any")
        )
        status = np.where(nodes["bad"], "NON_COMPLIANT", "COMPLIANT")
        names = nodes["platform"]
    elif "compliance" in data.columns:
        status = data["compliance"].astype("str").to_numpy()
        names = data[by]
    else:
        raise ColumnsError(
            "compliance_by_platform needs a patches frame (with 'state') or a nodes "
            "frame (with 'compliance'); the frame has neither"
        )
    labels = names.astype("str").fillna("unknown").to_numpy()
    table = pd.crosstab(labels, status)
    known = [c for c in COMPLIANCE_COLORS if c in table.columns]
    return table[[*known, *(c for c in table.columns if c not in known)]].astype(np.int64)


_CLOCK_NAMES = {"first_seen": "first seen", "release": "release", "approval": "approval"}


def aging(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    clock: Clock = "first_seen",
    now: TimeLike | None = None,
    palette: Mapping[str, str] | None = None,
    legend: bool = True,
    **kwargs: Any,
) -> Axes:
    """Open findings by age bucket, stacked by severity level, worst at the bottom.

    Counts come from :func:`patchframe.summary.aging`: whole days since each open
    finding's clock started, in the buckets 0-7, 8-15, 16-30, 31-90, 91-180 and
    over 180 days.

    Parameters
    ----------
    data
        Findings (:func:`patchframe.history.findings`), or a patches frame with
        release dates and ``now``, as :func:`patchframe.summary.sla` takes.
    ax
        The Axes to draw on; a new figure when None.
    clock, now
        As for :func:`patchframe.summary.sla`.
    palette
        Colours by severity level (``{"Critical": "black"}``), over patchframe's own.
    legend
        Whether to draw the legend of severity levels.
    **kwargs
        Passed to ``Axes.bar`` for every segment (``edgecolor``, ``alpha``, ...).

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import pandas as pd
    >>> from patchframe.plots import aging
    >>> found = pd.DataFrame({
    ...     "severity_level": ["Critical", "High", "High"],
    ...     "first_seen": pd.to_datetime(["2024-06-21", "2024-05-01", "2024-06-28"], utc=True),
    ...     "last_seen": pd.to_datetime(["2024-06-29"] * 3, utc=True),
    ...     "resolved_at": pd.to_datetime([None] * 3, utc=True),
    ...     "open": [True] * 3,
    ... })
    >>> ax = aging(found)
    >>> ax.get_title(), [t.get_text() for t in ax.get_legend().get_texts()]
    ('Open findings by age: 3 findings', ['Critical', 'High'])
    >>> plt.close(ax.figure)
    """
    table = _aging_table(data, clock=clock, now=now)
    present = [level for level in table.columns if table[level].sum() > 0]
    colors = label_colors(present, severity_color, palette)
    ax = new_axes(ax, width=7.5)
    total = int(table.to_numpy().sum())
    ax.set_title(f"Open findings by age: {counted(total, 'finding')}")
    ax.set_xlabel(f"days since {_CLOCK_NAMES.get(clock, clock)}")
    ax.set_ylabel("open findings")
    if not total:
        return no_data(ax, "no open findings")
    x = np.arange(len(table))
    bottom = np.zeros(len(table))
    for level, color in colors.items():
        counts = table[level].to_numpy(dtype=np.float64)
        ax.bar(x, counts, **{"bottom": bottom.copy(), "color": color, "label": level, **kwargs})
        bottom += counts
    ax.set_xticks(x, table.index.tolist())
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if legend:
        legend_outside(ax, title="severity")
    return ax


def time_to_fix(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    clock: Clock = "first_seen",
    freq: Freq = "M",
    palette: Mapping[str, str] | None = None,
    legend: bool = True,
    **kwargs: Any,
) -> Axes:
    """Median time to fix per month (or week, or day), one line per severity level.

    Medians come from :func:`patchframe.summary.time_to_fix`: findings installed
    in each period (by the snapshot that saw the fix), from their clock start.

    Parameters
    ----------
    data
        Findings (:func:`patchframe.history.findings`).
    ax
        The Axes to draw on; a new figure when None.
    clock
        As for :func:`patchframe.summary.sla`.
    freq
        ``"M"`` (months, the default), ``"W"`` (weeks, from Monday) or ``"D"``.
    palette
        Colours by severity level (``{"Critical": "black"}``), over patchframe's own.
    legend
        Whether to draw the legend of severity levels.
    **kwargs
        Passed to ``Axes.plot`` for every line (``linewidth``, ``marker``, ...).

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import pandas as pd
    >>> from patchframe.plots import time_to_fix
    >>> found = pd.DataFrame({
    ...     "severity_level": ["Critical", "Critical", "Low"],
    ...     "first_seen": pd.to_datetime(["2024-06-01", "2024-06-20", "2024-06-01"], utc=True),
    ...     "resolved_at": pd.to_datetime(["2024-06-08", "2024-07-04", "2024-07-01"], utc=True),
    ...     "resolution": ["installed"] * 3,
    ...     "open": [False] * 3,
    ... })
    >>> ax = time_to_fix(found)
    >>> [(line.get_label(), line.get_ydata().tolist()) for line in ax.get_lines()]
    [('Critical', [7.0, 14.0]), ('Low', [30.0])]
    >>> plt.close(ax.figure)
    """
    table = _fix_times(data, clock=clock, by="severity_level", freq=freq)
    levels = table["severity_level"].astype("str")
    present = list(dict.fromkeys(levels))
    colors = label_colors(present, severity_color, palette)
    ax = new_axes(ax, width=9.0)
    ax.set_title(f"Median time to fix per {_PERIOD_NAMES[freq]}")
    ax.set_xlabel("fixed (UTC)")
    ax.set_ylabel(f"days since {_CLOCK_NAMES.get(clock, clock)}")
    if table.empty:
        return no_data(ax, "no fixes")
    for level in present:
        mine = table[(levels == level).to_numpy()]
        days = mine["median"].dt.total_seconds().to_numpy(dtype=np.float64) / 86_400
        options = {"color": colors[level], "marker": "o", "label": level}
        ax.plot(mine["period"].dt.tz_localize(None).to_numpy(), days, **{**options, **kwargs})
    ax.set_ylim(bottom=0)
    return over_time(ax, legend=legend)


# Worst first, as in the nodes' bars: the non-compliant part starts at zero.
_COMPLIANCE_STACK = ("non_compliant", "not_scanned", "compliant")
_NOTE_COLOR = "#595959"
_STATUS_WORDS = {
    "non_compliant": "non-compliant",
    "not_scanned": "never scanned",
    "compliant": "compliant",
}


def compliance_by(
    fleet: Fleet,
    *,
    by: str | list[str],
    stale_after_days: float = DEFAULT_STALE_DAYS,
    ax: Axes | None = None,
    top: int = 20,
    palette: Mapping[str, str] | None = None,
    legend: bool = True,
    **kwargs: Any,
) -> Axes:
    """Nodes per group (a team, an environment, any node column), stacked by compliance.

    One horizontal bar per group, worst first, as :func:`patchframe.summary.compliance_by`
    orders them: its non-compliant nodes, then nodes never scanned, then compliant
    ones, in the compliance colours. Beside each bar, how many of its nodes are
    stale or unreachable: shown next to AWS's verdict, never folded into it.

    Parameters
    ----------
    fleet
        A :class:`~patchframe.Fleet`.
    by, stale_after_days
        As for :func:`patchframe.summary.compliance_by`: ``"tag:Team"``, a node
        column, or a list of them.
    ax
        The Axes to draw on; a new figure when None.
    top
        How many groups, worst first, get a bar of their own; the rest share one,
        so that 300 teams read as well as 3.
    palette
        Colours by compliance status (``{"COMPLIANT": "blue"}``), over patchframe's own.
    legend
        Whether to draw the legend of compliance statuses.
    **kwargs
        Passed to ``Axes.barh`` for every segment (``edgecolor``, ``alpha``, ...).

    Raises
    ------
    ValidationError
        ``fleet`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import patchframe as pf
    >>> from patchframe.plots import compliance_by
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> ax = compliance_by(fleet.as_of("2024-06-14T08:00Z"), by="tag:Team", top=3)
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['platform', 'it', 'data', 'other 5 groups']
    >>> [text.get_text() for text in ax.texts]
    ['1 stale, 1 unreachable', '1 stale', '5 non-compliant, 1 compliant']
    >>> plt.close(ax.figure)
    """
    shown = check_top(top)
    table = _compliance_by_table(fleet, by=by, stale_after_days=stale_after_days)
    columns = [by] if isinstance(by, str) else list(dict.fromkeys(by))
    names = ", ".join(c.removeprefix(TAG_PREFIX) for c in columns)
    statuses = {column.upper(): column for column in _COMPLIANCE_STACK}
    colors = label_colors(
        list(statuses), lambda s: COMPLIANCE_COLORS.get(s, UNKNOWN_COLOR), palette
    )
    ax = new_axes(ax, bars=min(len(table), shown + 1))
    ax.set_title(f"Node compliance by {names}")
    ax.set_xlabel("nodes")
    ax.set_ylabel(names)
    if table.empty:
        return no_data(ax, "no nodes")
    labels = [" / ".join(parts) for parts in table[columns].astype("str").itertuples(index=False)]
    counts = table[[*_COMPLIANCE_STACK, "stale", "unreachable"]].to_numpy(dtype=np.int64)
    rest = counts[shown:].sum(axis=0)
    if len(table) > shown:
        # The rest is summed up in words, not drawn: a bar of hundreds of groups would
        # dwarf the bars of the worst ones, the groups the chart is for.
        counts = np.vstack([counts[:shown], np.zeros_like(rest)])
        labels = [*labels[:shown], f"other {counted(len(table) - shown, 'group')}"]
    values = counts[:, : len(_COMPLIANCE_STACK)].astype(np.float64)
    _stacked_barh(ax, labels, values, colors, title="compliance", legend=legend, kwargs=kwargs)
    notes = [_stale_note(int(stale), int(unreachable)) for stale, unreachable in counts[:, 3:]]
    if len(table) > shown:
        words = [
            counted(int(n), _STATUS_WORDS[c], _STATUS_WORDS[c])
            for n, c in zip(rest, _COMPLIANCE_STACK, strict=False)
            if n
        ]
        stale_note = _stale_note(int(rest[3]), int(rest[4]))
        notes[-1] = "; ".join(part for part in (", ".join(words), stale_note) if part)
    totals = values.sum(axis=1)
    for row, (total, note) in enumerate(zip(totals, notes, strict=True)):
        if note:
            ax.annotate(
                note,
                (total, row),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize="x-small",
                color=_NOTE_COLOR,
            )
    ax.set_xlim(0, max(totals.max(), 1) * 1.3)  # room for the notes beside the longest bar
    return ax


def _stale_note(stale: int, unreachable: int) -> str:
    """``"2 stale, 1 unreachable"``, leaving out a zero; ``""`` for none."""
    parts = [(stale, "stale"), (unreachable, "unreachable")]
    return ", ".join(counted(n, word, word) for n, word in parts if n)
