"""Compliance over time, drawn: :func:`plot_trend` charts what :func:`trend` returns.

The only part of :mod:`patchframe.history` that needs matplotlib, loaded on first use.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .._axes import check_top, no_data, over_time
from .._frames import require_columns
from .._palette import severity_color
from .._schema import SEVERITY_LEVELS
from ..exceptions import ValidationError
from ._trend import LEVEL_COLUMNS, METRIC_LABELS, SCOPES, TREND_METRICS

__all__ = ["plot_trend"]


def plot_trend(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    metric: str = "missing",
    scope: str = "fleet",
    top: int = 8,
) -> Axes:
    """Chart a trend frame over time.

    The fleet's ``"missing"`` is drawn as areas stacked by severity level, worst at
    the bottom, in patchframe's severity colours; any other metric or scope as one
    line per group: the ``top`` groups with the highest latest value.

    Parameters
    ----------
    data
        What :func:`trend` returns.
    ax
        The Axes to draw on; a new figure when None.
    metric
        A count column of the trend frame: ``"missing"``, ``"non_compliant_nodes"``,
        ``"open_cves"``, ``"nodes"`` or ``"missing_critical"`` ... ``"missing_unspecified"``.
    scope
        ``"fleet"``, ``"platform"`` or ``"node"``.
    top
        How many groups get a line.

    Examples
    --------
    >>> import tempfile, matplotlib.pyplot as plt, patchframe as pf
    >>> from patchframe.history import plot_trend, save_snapshot, trend
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> with tempfile.TemporaryDirectory() as store:
    ...     _ = save_snapshot(fleet, store, when="2024-06-14")
    ...     _ = save_snapshot(fleet, store, when="2024-06-21")
    ...     figures = trend(store)
    >>> ax = plot_trend(figures)
    >>> ax.get_title(), [t.get_text() for t in ax.get_legend().get_texts()][:2]
    ('Missing and failed patches by severity', ['Critical', 'High'])
    >>> plt.close(ax.figure)
    """
    shown = check_top(top)
    if metric not in TREND_METRICS:
        raise ValidationError(f"metric {metric!r}: expected one of {', '.join(TREND_METRICS)}")
    if scope not in SCOPES.categories:
        raise ValidationError(f"scope {scope!r}: expected 'fleet', 'platform' or 'node'")
    require_columns(data, ["time", "scope", "group", metric], needed_by="plot_trend")
    rows = data[(data["scope"] == scope).to_numpy(dtype=bool, na_value=False)]
    if ax is None:
        _, ax = plt.subplots(figsize=(9.0, 4.5), layout="constrained")
    label = METRIC_LABELS[metric]
    ax.set_xlabel("snapshot (UTC)")
    ax.set_ylabel(label)
    if rows.empty:
        ax.set_title(f"{label.capitalize()} by {scope}")
        return no_data(ax, "no snapshots")
    times = pd.DatetimeIndex(rows["time"]).tz_convert("UTC").tz_localize(None)
    if metric == "missing" and scope == "fleet":
        _stacked_levels(ax, rows.set_index(times).sort_index())
    else:
        _lines(ax, rows.assign(time=times), metric, scope, shown)
    return over_time(ax)


def _stacked_levels(ax: Axes, rows: pd.DataFrame) -> None:
    levels = list(reversed(SEVERITY_LEVELS))  # worst first, at the bottom of the stack
    ax.stackplot(
        rows.index.to_numpy(),
        *(rows[c].to_numpy(dtype=np.float64) for c in LEVEL_COLUMNS),
        labels=levels,
        colors=[severity_color(level) for level in levels],
    )
    ax.set_title("Missing and failed patches by severity")


def _lines(ax: Axes, rows: pd.DataFrame, metric: str, scope: str, shown: int) -> None:
    table = rows.pivot_table(index="time", columns="group", values=metric, aggfunc="sum")
    latest = table.ffill().iloc[-1].fillna(0)
    ranked = sorted(table.columns, key=lambda g: (-latest[g], str(g)))
    for group in ranked[:shown]:
        # A gap where the group was absent: a node that left, a platform not yet there.
        ax.plot(table.index.to_numpy(), table[group].to_numpy(), marker=".", label=str(group))
    title = f"{METRIC_LABELS[metric].capitalize()} by {scope}"
    if len(ranked) > shown:
        title += f": top {shown} of {len(ranked):,}"
    ax.set_title(title)
