"""Charts of a patches frame: the frame in, a matplotlib Axes out.

Each function takes the frame first, then keyword-only options, draws on ``ax``
(a new figure sized to the chart when None) and returns the Axes; none calls
``plt.show()``, so charts compose into subplots and display in Jupyter as usual.
States, severity levels and compliance have one colour each, the same in every
chart (see :mod:`patchframe._palette`): MISSING red, FAILED dark red, INSTALLED green.
Charts over nodes, CVEs or platforms draw the top few and fold the rest into one
"other" bar, so they read the same for 3 nodes as for 3,000.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ._axes import check_top, new_axes, no_data, over_time
from ._frames import (
    category_codes,
    first_rows,
    patch_state,
    require_columns,
    state_codes,
    state_mask,
)
from ._palette import COMPLIANCE_COLORS, UNKNOWN_COLOR, severity_color, state_color
from ._schema import NON_COMPLIANT_STATES, STATES
from .exceptions import ColumnsError
from .summary import (
    Freq,
    cve_exposure,
    install_activity,
    node_compliance,
    state_by_severity,
)

__all__ = [
    "compliance_by_platform",
    "install_timeline",
    "severity_state_heatmap",
    "states_by_node",
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


def _stacked_barh(
    ax: Axes,
    labels: list[str],
    table: npt.NDArray[np.float64],
    series: list[tuple[str, str]],
    legend: str,
) -> None:
    """Horizontal bars, first label on top, one stacked segment per (name, colour)."""
    y = np.arange(len(labels))
    left = np.zeros(len(labels))
    for column, (name, colour) in enumerate(series):
        ax.barh(y, table[:, column], left=left, color=colour, label=name, height=0.8)
        left += table[:, column]
    ax.set_yticks(y, labels, fontsize="small")
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first label on top
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(
        title=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False
    )


def states_by_node(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    top: int = 20,
    states: list[str] | None = None,
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
        labels = [*labels[:shown], f"other {rest:,} nodes (mean)"]
        ax.set_title(
            f"Patch states by node: top {shown} of {len(ranked):,} by non-compliant patches"
        )
    _stacked_barh(ax, labels, table, [(s, state_color(s)) for s in chosen], "state")
    return ax


def severity_state_heatmap(data: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Patch counts by state (rows) and severity level (columns), as a heatmap.

    Colour is on a log scale, so a few MISSING Critical patches stand out next to
    thousands of NOT_APPLICABLE ones; every cell is labelled with its count, and
    empty cells are left blank.

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
    table = state_by_severity(data, totals=False)
    ax = new_axes(ax, width=7.5)
    ax.set_title("Patches by state and severity")
    ax.set_xlabel("severity level")
    ax.set_ylabel("state")
    values = table.to_numpy()
    if values.sum() == 0:
        return no_data(ax, "no patches")
    norm = LogNorm(vmin=1, vmax=max(int(values.max()), 2))
    image = ax.imshow(np.ma.masked_equal(values, 0), cmap="Reds", norm=norm, aspect="auto")
    for (row, column), count in np.ndenumerate(values):
        if count:
            dark = norm(count) > 0.6
            ax.text(
                column,
                row,
                f"{count:,}",
                ha="center",
                va="center",
                fontsize="small",
                color="white" if dark else "black",
            )
    ax.set_xticks(range(values.shape[1]), table.columns.tolist())
    ax.set_yticks(range(values.shape[0]), table.index.tolist(), fontsize="small")
    ax.figure.colorbar(image, ax=ax, label="patches (log scale)")
    return ax


def install_timeline(data: pd.DataFrame, *, ax: Axes | None = None, freq: Freq = "W") -> Axes:
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
    activity = install_activity(data, freq=freq)
    ax = new_axes(ax, width=9.0)
    ax.set_title(f"Patch installs per {_PERIOD_NAMES[freq]}")
    ax.set_xlabel("installed (UTC)")
    ax.set_ylabel("count")
    if activity.empty:
        return no_data(ax, "no installs")
    starts = activity["period"].dt.tz_localize(None).to_numpy()
    width = np.timedelta64(int(_PERIOD_DAYS[freq] * 24), "h")
    ax.bar(
        starts,
        activity["installs"],
        width=width,
        align="edge",
        color=state_color("INSTALLED"),
        label="patches installed",
    )
    ax.plot(
        starts + width / 2,
        activity["nodes"],
        color="#333333",
        marker=".",
        linewidth=1,
        label="nodes installing",
    )
    return over_time(ax)


def top_cves(data: pd.DataFrame, *, ax: Axes | None = None, n: int = 15) -> Axes:
    """The CVEs open on the most nodes, as horizontal bars coloured by severity level.

    Counts come from :func:`patchframe.summary.cve_exposure` (MISSING and FAILED
    patches); the CVE on the most nodes is on top.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import patchframe as pf
    >>> from patchframe.plots import top_cves
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> ax = top_cves(fleet.patches, n=5)
    >>> [label.get_text() for label in ax.get_yticklabels()][:2]
    ['CVE-2024-1085', 'CVE-2023-6780']
    >>> plt.close(ax.figure)
    """
    shown = check_top(n, "n")
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
    y = np.arange(len(head))
    ax.barh(y, head["nodes"], color=[severity_color(v) for v in levels], height=0.8)
    ax.set_yticks(y, head["cve_id"].tolist(), fontsize="small")
    ax.set_ylim(len(head) - 0.5, -0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    present = [v for v in reversed(head["severity_level"].cat.categories) if v in set(levels)]
    handles = [Patch(color=severity_color(v), label=v) for v in present]
    ax.legend(handles=handles, title="severity", loc="lower right", fontsize="small")
    return ax


def compliance_by_platform(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    by: str = "platform_name",
    top: int = 15,
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

    Raises
    ------
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
        labels = [*labels[:shown], f"other {rest:,} platforms"]
    series = [(str(c), COMPLIANCE_COLORS.get(str(c), UNKNOWN_COLOR)) for c in table.columns]
    _stacked_barh(ax, labels, values, series, "compliance")
    return ax


def _compliance_table(data: pd.DataFrame, by: str) -> pd.DataFrame:
    """Nodes per platform (rows, "unknown" for NA) and compliance status (columns)."""
    require_columns(data, [by], needed_by="compliance_by_platform")
    if "state" in data.columns:
        require_columns(data, ["instance_id"], needed_by="compliance_by_platform")
        node, node_names = category_codes(data["instance_id"])
        platform, platform_names = category_codes(data[by])
        seen = node >= 0
        first = first_rows(node[seen], len(node_names))
        nodes = np.flatnonzero(first < seen.sum())
        bad = np.bincount(
            node[state_mask(data, NON_COMPLIANT_STATES) & seen], minlength=len(node_names)
        )
        status = np.where(bad[nodes] > 0, "NON_COMPLIANT", "COMPLIANT")
        names: pd.Series[Any] = pd.Series(
            pd.Categorical.from_codes(platform[seen][first[nodes]], categories=platform_names)
        )
    elif "compliance" in data.columns:
        status = data["compliance"].astype("str").to_numpy()
        names = data[by].reset_index(drop=True)
    else:
        raise ColumnsError(
            "compliance_by_platform needs a patches frame (with 'state') or a nodes "
            "frame (with 'compliance'); the frame has neither"
        )
    labels = names.astype("str").fillna("unknown").to_numpy()
    table = pd.crosstab(labels, status)
    known = [c for c in COMPLIANCE_COLORS if c in table.columns]
    return table[[*known, *(c for c in table.columns if c not in known)]].astype(np.int64)
