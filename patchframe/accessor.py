"""The ``.pf`` DataFrame accessor: every filter, summary and chart, one chain away.

Importing patchframe registers it. On any patches frame, ``df.pf.<name>(...)``
calls the function of that name in :mod:`patchframe.filters`,
:mod:`patchframe.summary` or :mod:`patchframe.plots` with ``df`` first::

    fleet.patches.pf.non_compliant().pf.severity_at_least("High").pf.top_missing(top=10)
    fleet.patches.pf.missing().pf.states_by_node(top=15)

The accessor holds nothing but the frame. On a frame without the contract's
core columns (``instance_id``, ``kb_id``, ``state``) it raises AttributeError,
so ``hasattr(df, "pf")`` says whether a frame is a patches frame.

Staleness is a node's, not a patch's: ``df.pf.stale(nodes=fleet.nodes)`` and
``df.pf.unreachable(nodes=fleet.nodes)`` take the nodes frame beside the patches, and
:func:`patchframe.summary.compliance_by` and :func:`patchframe.plots.compliance_by`,
which group whole nodes, take a Fleet and are called as functions.

Two functions are not methods, and one is renamed: findings
(:func:`patchframe.history.findings`) have no ``state`` and so no ``.pf``, and a
patches frame holds no fixes, so :func:`patchframe.summary.time_to_fix` and
:func:`patchframe.plots.time_to_fix` are called as functions; the chart
:func:`patchframe.plots.aging` is ``df.pf.plot_aging()``, beside the table
``df.pf.aging()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import filters, summary
from ._frames import TimeLike
from ._nodes import DEFAULT_STALE_DAYS
from ._sla import Clock, Policy
from .summary import Freq

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from pandas.io.formats.style import Styler

__all__ = ["CORE_COLUMNS", "PatchesAccessor"]

#: Columns a frame needs for ``df.pf`` to exist.
CORE_COLUMNS: tuple[str, ...] = ("instance_id", "kb_id", "state")


@pd.api.extensions.register_dataframe_accessor("pf")
class PatchesAccessor:
    """Patchframe's functions as methods of a patches frame: ``df.pf.<function>(...)``.

    Examples
    --------
    >>> import pandas as pd
    >>> import patchframe as pf
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> gaps = fleet.patches.pf.non_compliant().pf.severity_at_least("Critical")
    >>> gaps.pf.top_missing(top=3)[["kb_id", "nodes"]]
                                       kb_id  nodes
    0                              KB5037129      2
    1                              KB5039129      2
    2  glibc-common-2.28-236.el8_9.21.x86_64      2
    >>> hasattr(fleet.nodes, "pf"), hasattr(pd.DataFrame({"x": [1]}), "pf")
    (False, False)
    """

    def __init__(self, df: pd.DataFrame) -> None:
        lacking = [c for c in CORE_COLUMNS if c not in df.columns]
        if lacking:
            raise AttributeError(
                f"'.pf' works on patchframe patches frames; this frame lacks "
                f"{', '.join(map(repr, lacking))}"
            )
        self._df = df

    # Filters: patchframe.filters.

    def by_state(self, *states: str) -> pd.DataFrame:
        """Rows in any of ``states``: :func:`patchframe.filters.by_state`."""
        return filters.by_state(self._df, *states)

    def missing(self) -> pd.DataFrame:
        """MISSING rows: ``by_state("MISSING")``."""
        return filters.by_state(self._df, "MISSING")

    def non_compliant(self) -> pd.DataFrame:
        """Non-compliant rows: :func:`patchframe.filters.non_compliant`."""
        return filters.non_compliant(self._df)

    def severity_at_least(self, level: str) -> pd.DataFrame:
        """Rows at ``level`` or worse: :func:`patchframe.filters.severity_at_least`."""
        return filters.severity_at_least(self._df, level)

    def by_classification(self, *classifications: str) -> pd.DataFrame:
        """Rows by classification: :func:`patchframe.filters.by_classification`."""
        return filters.by_classification(self._df, *classifications)

    def by_cve(self, cve_id: str) -> pd.DataFrame:
        """Rows listing ``cve_id``: :func:`patchframe.filters.by_cve`."""
        return filters.by_cve(self._df, cve_id)

    def installed_before(self, when: TimeLike) -> pd.DataFrame:
        """Rows installed before ``when``: :func:`patchframe.filters.installed_before`."""
        return filters.installed_before(self._df, when)

    def installed_after(self, when: TimeLike) -> pd.DataFrame:
        """Rows installed at or after ``when``: :func:`patchframe.filters.installed_after`."""
        return filters.installed_after(self._df, when)

    def installed_between(self, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """Rows installed in [start, end): :func:`patchframe.filters.installed_between`."""
        return filters.installed_between(self._df, start, end)

    def by_platform(self, *platforms: str) -> pd.DataFrame:
        """Rows of nodes on ``platforms``: :func:`patchframe.filters.by_platform`."""
        return filters.by_platform(self._df, *platforms)

    def by_node(self, *instance_ids: str) -> pd.DataFrame:
        """Rows of the nodes ``instance_ids``: :func:`patchframe.filters.by_node`."""
        return filters.by_node(self._df, *instance_ids)

    def stale(
        self, days: float = DEFAULT_STALE_DAYS, *, nodes: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Rows of nodes last scanned over ``days`` ago: :func:`patchframe.filters.stale`.

        A patches frame does not say when its nodes were scanned: pass ``nodes=fleet.nodes``.
        """
        return filters.stale(self._df, days, nodes=nodes)

    def unreachable(self, *, nodes: pd.DataFrame | None = None) -> pd.DataFrame:
        """Rows of nodes that no longer answer: :func:`patchframe.filters.unreachable`.

        A patches frame does not say how its nodes answer: pass ``nodes=fleet.nodes``.
        """
        return filters.unreachable(self._df, nodes=nodes)

    # Summaries: patchframe.summary.

    def node_compliance(self, *, now: TimeLike | None = None) -> pd.DataFrame:
        """One row per node: :func:`patchframe.summary.node_compliance`."""
        return summary.node_compliance(self._df, now=now)

    def state_by_severity(self, *, totals: bool = True) -> pd.DataFrame:
        """State x severity counts: :func:`patchframe.summary.state_by_severity`."""
        return summary.state_by_severity(self._df, totals=totals)

    def top_missing(self, *, top: int | None = 10) -> pd.DataFrame:
        """Patches open on the most nodes: :func:`patchframe.summary.top_missing`."""
        return summary.top_missing(self._df, top=top)

    def cve_exposure(self) -> pd.DataFrame:
        """One row per open CVE: :func:`patchframe.summary.cve_exposure`."""
        return summary.cve_exposure(self._df)

    def install_activity(self, *, freq: Freq = "D") -> pd.DataFrame:
        """Installs per period: :func:`patchframe.summary.install_activity`."""
        return summary.install_activity(self._df, freq=freq)

    def pending_reboot(self, *, now: TimeLike | None = None) -> pd.DataFrame:
        """Nodes waiting for a reboot: :func:`patchframe.summary.pending_reboot`."""
        return summary.pending_reboot(self._df, now=now)

    def sla(
        self,
        *,
        policy: Policy | None = None,
        clock: Clock = "first_seen",
        now: TimeLike | None = None,
    ) -> pd.DataFrame:
        """Each open patch's due date and SLA status: :func:`patchframe.summary.sla`.

        A patches frame says nothing about when a patch went missing: pass
        ``clock="release"`` (or ``"approval"``) for a frame with release dates, and ``now``.
        """
        return summary.sla(self._df, policy=policy, clock=clock, now=now)

    def sla_breaches(
        self,
        *,
        policy: Policy | None = None,
        clock: Clock = "first_seen",
        now: TimeLike | None = None,
        by: str | Sequence[str] | None = "severity_level",
    ) -> pd.DataFrame:
        """SLA statuses per group: :func:`patchframe.summary.sla_breaches`."""
        return summary.sla_breaches(self._df, policy=policy, clock=clock, now=now, by=by)

    def aging(self, *, clock: Clock = "first_seen", now: TimeLike | None = None) -> pd.DataFrame:
        """Open patches by age and severity: :func:`patchframe.summary.aging`."""
        return summary.aging(self._df, clock=clock, now=now)

    # Charts: patchframe.plots, imported on first use so that importing patchframe
    # does not import matplotlib. palette, legend and **kwargs go through unchanged.

    def states_by_node(
        self,
        *,
        ax: Axes | None = None,
        top: int = 20,
        states: list[str] | None = None,
        palette: Mapping[str, str] | None = None,
        legend: bool = True,
        **kwargs: Any,
    ) -> Axes:
        """Stacked state bars per node: :func:`patchframe.plots.states_by_node`."""
        from . import plots

        return plots.states_by_node(
            self._df, ax=ax, top=top, states=states, palette=palette, legend=legend, **kwargs
        )

    def severity_state_heatmap(
        self,
        *,
        ax: Axes | None = None,
        palette: Mapping[str, str] | None = None,
        legend: bool = True,
        **kwargs: Any,
    ) -> Axes:
        """State x severity heatmap: :func:`patchframe.plots.severity_state_heatmap`."""
        from . import plots

        return plots.severity_state_heatmap(
            self._df, ax=ax, palette=palette, legend=legend, **kwargs
        )

    def install_timeline(
        self,
        *,
        ax: Axes | None = None,
        freq: Freq = "W",
        palette: Mapping[str, str] | None = None,
        legend: bool = True,
        **kwargs: Any,
    ) -> Axes:
        """Installs over time: :func:`patchframe.plots.install_timeline`."""
        from . import plots

        return plots.install_timeline(
            self._df, ax=ax, freq=freq, palette=palette, legend=legend, **kwargs
        )

    def top_cves(
        self,
        *,
        ax: Axes | None = None,
        top: int = 15,
        palette: Mapping[str, str] | None = None,
        legend: bool = True,
        **kwargs: Any,
    ) -> Axes:
        """CVEs open on the most nodes: :func:`patchframe.plots.top_cves`."""
        from . import plots

        return plots.top_cves(self._df, ax=ax, top=top, palette=palette, legend=legend, **kwargs)

    def compliance_by_platform(
        self,
        *,
        ax: Axes | None = None,
        by: str = "platform_name",
        top: int = 15,
        palette: Mapping[str, str] | None = None,
        legend: bool = True,
        **kwargs: Any,
    ) -> Axes:
        """Compliance per platform: :func:`patchframe.plots.compliance_by_platform`."""
        from . import plots

        return plots.compliance_by_platform(
            self._df, ax=ax, by=by, top=top, palette=palette, legend=legend, **kwargs
        )

    def plot_aging(
        self,
        *,
        ax: Axes | None = None,
        clock: Clock = "first_seen",
        now: TimeLike | None = None,
        palette: Mapping[str, str] | None = None,
        legend: bool = True,
        **kwargs: Any,
    ) -> Axes:
        """Open patches by age, stacked by severity: :func:`patchframe.plots.aging`."""
        from . import plots

        return plots.aging(
            self._df, ax=ax, clock=clock, now=now, palette=palette, legend=legend, **kwargs
        )

    # Display: patchframe._html, imported on first use (pandas' Styler needs jinja2).

    def style_states(self, *, caption: str | None = None) -> Styler:
        """This frame as an HTML table in the charts' colours: :func:`patchframe.style_states`."""
        from ._html import style_states

        return style_states(self._df, caption=caption)
