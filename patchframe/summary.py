"""Summaries of a patches frame: per node, per patch, per CVE, per period.

Every function takes a patches frame and returns a new, small frame in tidy
form: one row per thing counted, lower snake case column names, counts as
``int64``, times as UTC datetimes, severity as the contract's ordered
``severity_level`` category, ids and titles as strings. The input is never modified.

Every summary is pandas' own groupby, merge and explode. Repeated work is done on
the few distinct values, not on every row: the CVE views explode the distinct
``cve_ids`` lists and merge them onto distinct pairs, so a million-row fleet
summarises in a small multiple of one pandas groupby.

"Open" patches, the ones :func:`top_missing` and :func:`cve_exposure` count, are
the MISSING and FAILED ones: the fix is not on the node, and the API fills CVEIds
only for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._fleet import TAG_PREFIX, Fleet, tag_values
from ._frames import (
    LEVEL_DTYPE,
    TimeLike,
    category_codes,
    cve_lists,
    level_codes,
    model_states,
    require_columns,
    severity_levels,
    state_mask,
    utc_times,
    utc_timestamp,
)
from ._nodes import DEFAULT_STALE_DAYS, node_positions, stale_mask, unreachable_mask
from ._schema import NON_COMPLIANT_STATES, OPEN_STATES, SEVERITY_LEVELS
from ._sla import aging, sla, sla_breaches, time_to_fix
from .exceptions import ColumnsError, ValidationError

__all__ = [
    "aging",
    "compliance_by",
    "cve_exposure",
    "install_activity",
    "node_compliance",
    "pending_reboot",
    "sla",
    "sla_breaches",
    "state_by_severity",
    "time_to_fix",
    "top_missing",
]

Freq = Literal["D", "W", "M"]

_FREQS = {"D": "day", "W": "week, from Monday", "M": "month"}
#: pandas' name of each period, anchored where patchframe's periods start.
_PERIODS = {"D": "D", "W": "W-MON", "M": "MS"}


# Building blocks.


def _now(now: TimeLike | None) -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC") if now is None else utc_timestamp(now, name="now")


def _whole_days(since: pd.Series[Any], now: pd.Timestamp) -> pd.Series[Any]:
    """Whole days from each time to ``now`` (Int64), NA where the time is NaT."""
    waited: pd.Series[Any] = (now - since).dt.days  # floor division: whole days
    return waited.astype("Int64")


def _check_top(top: object) -> int | None:
    if top is None:
        return None
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValidationError(f"top {top!r} is not a positive whole number (or None for all rows)")
    return top


def _texts(index: pd.Index) -> pd.Index:
    return index.astype("str")


def _ranked(frame: pd.DataFrame, by: list[str], descending: list[str]) -> pd.DataFrame:
    """Sorted by ``by``, those in ``descending`` highest first, NA last; a RangeIndex."""
    return frame.sort_values(
        by,
        ascending=[c not in descending for c in by],
        na_position="last",
        kind="stable",
        ignore_index=True,
    )


# The summaries.


def node_compliance(df: pd.DataFrame, *, now: TimeLike | None = None) -> pd.DataFrame:
    """One row per node: patch counts per state, compliance, worst gap, last install.

    Parameters
    ----------
    df
        A patches frame.
    now
        The time ``days_since_install`` counts to; the current time when None.

    Returns
    -------
    pandas.DataFrame
        One row per node in ``df``, sorted by ``instance_id``, with columns:

        - ``instance_id`` (str);
        - one ``int64`` count per state, named after it in lower case: ``installed``,
          ``installed_other``, ``installed_pending_reboot``, ``installed_rejected``,
          ``missing``, ``not_applicable``, ``failed``, ``available_security_update``,
          then any state nobody knew yet. These are the names ``Fleet.nodes`` uses,
          and they equal DescribeInstancePatchStates' counts;
        - ``compliant`` (bool): no patch in a non-compliant state, by AWS's rules;
        - ``worst_missing_severity``: the highest ``severity_level`` of the node's
          MISSING or FAILED patches, NA where there are none;
        - ``last_installed_time``: the node's latest ``installed_time``, NaT if none;
        - ``days_since_install`` (Int64): whole days from then to ``now``.

    Raises
    ------
    ValidationError
        ``df`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.summary import node_compliance
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> nodes = node_compliance(fleet.patches, now="2024-06-15")
    >>> nodes[["instance_id", "missing", "failed", "compliant", "days_since_install"]].head(3)
               instance_id  missing  failed  compliant  days_since_install
    0  i-04c9e1a7b3d5f2068       49       3      False                  33
    1  i-06d8f0a2c4e6b8d1c       11       2      False                  17
    2  i-07e9a1c3e5f7b9d2e        8       1      False                  14
    >>> int(nodes["compliant"].sum()), len(nodes)
    (1, 12)
    """
    require_columns(
        df,
        ["instance_id", "state", "severity_level", "installed_time"],
        needed_by="node_compliance",
    )
    at = _now(now)
    node = df["instance_id"]
    (state,) = model_states(df["state"])
    states = list(state.cat.categories)
    # NA groups kept, then dropped: a node whose rows all lack a state still is a node.
    counts = df.groupby([node, state], observed=True, dropna=False).size().unstack(fill_value=0)
    counts = counts[counts.index.notna()].reindex(columns=states, fill_value=0).astype("int64")
    per_node = (
        pd.DataFrame(
            {
                "worst_missing_severity": severity_levels(df["severity_level"]).where(
                    state_mask(df, OPEN_STATES)
                ),
                "last_installed_time": utc_times(df["installed_time"]),
            }
        )
        .groupby(node, observed=True)
        .max()
        .reindex(counts.index)
    )
    table = counts.set_axis([s.lower() for s in states], axis=1)
    table["compliant"] = counts[[s for s in states if s in NON_COMPLIANT_STATES]].sum(axis=1) == 0
    table = table.join(per_node)
    table["days_since_install"] = _whole_days(table["last_installed_time"], at)
    table.index = _texts(counts.index)
    return table.rename_axis("instance_id").sort_index(kind="stable").reset_index()


def state_by_severity(df: pd.DataFrame, *, totals: bool = True) -> pd.DataFrame:
    """Patch counts in a state x severity_level table.

    Rows are the patch states in the model's order (states nobody knew yet last),
    columns the severity levels from Critical down to Unspecified; every state
    and level is present, zero where no patch is. With ``totals``, a ``total``
    column and a ``total`` row are added. Counts are ``int64``; the index is named
    ``state``, the columns ``severity_level``.

    Raises
    ------
    ValidationError
        ``df`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.summary import state_by_severity
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> table = state_by_severity(fleet.patches)
    >>> table.loc[["MISSING", "FAILED", "total"]]
    severity_level  Critical  High  Medium  Low  Unspecified  total
    state
    MISSING               34    54      39   49           56    232
    FAILED                 7    10       5   14            3     39
    total                183   300     256  351          930   2020
    """
    require_columns(df, ["state", "severity_level"], needed_by="state_by_severity")
    (state,) = model_states(df["state"])
    levels = severity_levels(df["severity_level"])
    counts = df.groupby([state, levels], observed=False).size().unstack()
    table = pd.DataFrame(
        counts.iloc[:, ::-1].to_numpy(dtype="int64"),
        index=pd.Index(state.cat.categories, name="state", dtype="str"),
        columns=pd.Index(levels.cat.categories[::-1], name="severity_level", dtype="str"),
    )
    if totals:
        table["total"] = table.sum(axis=1)
        table.loc["total"] = table.sum(axis=0)
    return table


def top_missing(df: pd.DataFrame, *, top: int | None = 10) -> pd.DataFrame:
    """The patches MISSING or FAILED on the most nodes, most first.

    Parameters
    ----------
    df
        A patches frame.
    top
        How many patches to show, most first; None shows them all.

    Returns
    -------
    pandas.DataFrame
        One row per ``kb_id``, sorted by ``nodes`` (descending), then
        ``severity_level`` (worst first), then ``kb_id``; columns ``kb_id``,
        ``title``, ``classification`` (str), ``severity_level``, ``nodes`` (nodes
        where the patch is MISSING or FAILED), ``missing`` and ``failed`` (nodes in
        each of those states) and ``cve_count`` (distinct CVE ids the patch lists);
        counts ``int64``.

    Raises
    ------
    ValidationError
        ``df`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.summary import top_missing
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> top = top_missing(fleet.patches, top=3)
    >>> top[["kb_id", "severity_level", "nodes", "missing", "failed"]]
           kb_id severity_level  nodes  missing  failed
    0  KB2267602    Unspecified      3        3       0
    1  KB5037129       Critical      2        2       0
    2  KB5039129       Critical      2        2       0
    """
    columns = ["instance_id", "kb_id", "title", "classification", "severity_level"]
    require_columns(df, [*columns, "state", "cve_ids"], needed_by="top_missing")
    limit = _check_top(top)
    open_rows = state_mask(df, OPEN_STATES)
    rows = df.loc[open_rows, [*columns, "cve_ids"]].assign(
        severity_level=lambda f: severity_levels(f["severity_level"]),
        failed=state_mask(df, {"FAILED"})[open_rows],
    )
    rows = rows.dropna(subset=["kb_id", "instance_id"])
    by_kb = (
        rows.drop_duplicates(["kb_id", "instance_id", "failed"])
        .groupby("kb_id", observed=True)
        .agg(
            nodes=("instance_id", "nunique"), entries=("failed", "size"), failed=("failed", "sum")
        )
    )
    listed = rows[["kb_id", "cve_ids"]].dropna().drop_duplicates()
    cves = listed.merge(cve_lists(listed["cve_ids"]), on="cve_ids")
    table = rows.drop_duplicates("kb_id").set_index("kb_id")[["title", "classification"]]
    table["severity_level"] = rows.groupby("kb_id", observed=True)["severity_level"].max()
    table["nodes"] = by_kb["nodes"]
    table["missing"] = by_kb["entries"] - by_kb["failed"]
    table["failed"] = by_kb["failed"]
    per_kb = cves.groupby("kb_id", observed=True)["cve_id"].nunique()
    # an empty merge loses kb_id's categorical dtype, so align on the ids' text
    counts = dict(zip(per_kb.index.astype(str), per_kb.to_numpy(), strict=True))
    table["cve_count"] = [counts.get(str(kb), 0) for kb in table.index]
    table = table.astype(
        {c: "int64" for c in ("nodes", "missing", "failed", "cve_count")}
        | {"title": "str", "classification": "str"}
    )
    table.index = _texts(table.index)
    table = table.rename_axis("kb_id").reset_index()
    return _ranked(table, ["nodes", "severity_level", "kb_id"], ["nodes", "severity_level"])[
        :limit
    ]


def cve_exposure(df: pd.DataFrame) -> pd.DataFrame:
    """One row per CVE id of MISSING or FAILED patches: where it is still open.

    ``cve_ids`` lists are exploded, so a patch listing three CVEs counts towards each.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``nodes`` (descending), then ``severity_level`` (worst first),
        then ``cve_id``; columns ``cve_id`` (str), ``nodes`` (nodes with an open
        patch listing the CVE), ``patches`` (distinct ``kb_id`` listing it) and
        ``severity_level`` (the highest among those patches); counts ``int64``.

    Raises
    ------
    ValidationError
        ``df`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.summary import cve_exposure
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> cve_exposure(fleet.patches).head(3)
               cve_id  nodes  patches severity_level
    0   CVE-2024-1085      3        3           High
    1   CVE-2023-6780      2        1       Critical
    2  CVE-2023-48231      2        2           High
    """
    require_columns(
        df,
        ["instance_id", "kb_id", "severity_level", "state", "cve_ids"],
        needed_by="cve_exposure",
    )
    rows = df.loc[
        state_mask(df, OPEN_STATES) & df["cve_ids"].notna().to_numpy(),
        ["cve_ids", "instance_id", "kb_id", "severity_level"],
    ]
    rows = rows.assign(severity_level=severity_levels(rows["severity_level"]))
    lists = cve_lists(rows["cve_ids"])
    table = pd.DataFrame(index=pd.Index(lists["cve_id"].unique(), dtype="str", name="cve_id"))

    def per_cve(column: str, how: str) -> pd.Series[Any]:
        """``how`` of ``column`` per CVE, over the distinct (list, value) pairs only."""
        pairs = rows[["cve_ids", column]].dropna().drop_duplicates()
        per = pairs.merge(lists, on="cve_ids").groupby("cve_id")[column].agg(how)
        return per.reindex(table.index)

    table["nodes"] = per_cve("instance_id", "nunique").fillna(0).astype("int64")
    table["patches"] = per_cve("kb_id", "nunique").fillna(0).astype("int64")
    table["severity_level"] = per_cve("severity_level", "max").astype(LEVEL_DTYPE)
    return _ranked(
        table.reset_index(), ["nodes", "severity_level", "cve_id"], ["nodes", "severity_level"]
    )


def install_activity(df: pd.DataFrame, *, freq: Freq = "D") -> pd.DataFrame:
    """Patches installed, and nodes that installed any, per day, week or month.

    Every patch with an ``installed_time`` counts once, in the period it was
    installed in (UTC); patches never installed (NaT) do not count.

    Parameters
    ----------
    df
        A patches frame.
    freq
        ``"D"`` (days), ``"W"`` (weeks, from Monday) or ``"M"`` (calendar months).

    Returns
    -------
    pandas.DataFrame
        One row per period from the first install to the last, periods without
        installs included as zeros; columns ``period`` (the period's start, UTC),
        ``installs`` (patches) and ``nodes``, counts ``int64``.

    Raises
    ------
    ValidationError
        ``df`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.summary import install_activity
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> install_activity(fleet.patches, freq="M").tail(3)
                          period  installs  nodes
    11 2024-04-01 00:00:00+00:00       109      5
    12 2024-05-01 00:00:00+00:00       143      8
    13 2024-06-01 00:00:00+00:00        22      1
    """
    if freq not in _FREQS:
        raise ValidationError(
            f"freq {freq!r} is not a period patchframe counts by: expected "
            + ", ".join(f"{k!r} ({v})" for k, v in _FREQS.items())
        )
    require_columns(df, ["instance_id", "installed_time"], needed_by="install_activity")
    times = utc_times(df["installed_time"])
    installed = times.notna() & df["instance_id"].notna()
    # Distinct (day, node) first: the periods of a few hundred days, not of every row.
    by_day = (
        df["instance_id"][installed]
        .groupby([times[installed].dt.floor("D"), df["instance_id"][installed]], observed=True)
        .size()
        .rename_axis(["day", "node"])
        .reset_index(name="installs")
    )
    day = by_day["day"]
    if freq == "W":
        by_day["day"] = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    elif freq == "M":
        by_day["day"] = day - pd.to_timedelta(day.dt.day - 1, unit="D")
    per_period = by_day.groupby("day").agg(installs=("installs", "sum"), nodes=("node", "nunique"))
    periods = (
        pd.date_range(
            per_period.index.min(), per_period.index.max(), freq=_PERIODS[freq], unit="ns"
        )
        if len(per_period)
        else pd.DatetimeIndex([], dtype="datetime64[ns, UTC]")
    )
    table = per_period.reindex(periods, fill_value=0).astype("int64")
    return table.rename_axis("period").reset_index()


def pending_reboot(df: pd.DataFrame, *, now: TimeLike | None = None) -> pd.DataFrame:
    """Nodes with patches installed but waiting for a reboot, longest waiting first.

    Parameters
    ----------
    df
        A patches frame.
    now
        The time ``days_pending`` counts to; the current time when None.

    Returns
    -------
    pandas.DataFrame
        One row per node with INSTALLED_PENDING_REBOOT patches, sorted by
        ``pending_since`` (NaT last), then ``instance_id``; columns ``instance_id``
        (str), ``patches`` (int64, patches pending), ``pending_since`` (the
        earliest of their install times, UTC), ``days_pending`` (Int64, whole
        days to ``now``) and ``severity_level`` (the highest among them).

    Raises
    ------
    ValidationError
        ``df`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.summary import pending_reboot
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> pending = pending_reboot(fleet.patches, now="2024-06-15")
    >>> pending[["instance_id", "patches", "days_pending", "severity_level"]].head(3)
                instance_id  patches  days_pending severity_level
    0  mi-0a1b2c3d4e5f67890        1            68           High
    1   i-0f2b4d6f8a0c1e3a5        8            33       Critical
    2   i-0b7e2d4f6a8c91023        3            19       Critical
    """
    require_columns(
        df,
        ["instance_id", "state", "severity_level", "installed_time"],
        needed_by="pending_reboot",
    )
    at = _now(now)
    rows = df.loc[
        state_mask(df, {"INSTALLED_PENDING_REBOOT"}),
        ["instance_id", "installed_time", "severity_level"],
    ]
    table = (
        rows.assign(
            installed_time=utc_times(rows["installed_time"]),
            severity_level=severity_levels(rows["severity_level"]),
        )
        .groupby("instance_id", observed=True)
        .agg(
            patches=("installed_time", "size"),
            pending_since=("installed_time", "min"),
            severity_level=("severity_level", "max"),
        )
    )
    table.index = _texts(table.index)
    table.insert(2, "days_pending", _whole_days(table["pending_since"], at))
    table = table.astype({"patches": "int64"}).rename_axis("instance_id").reset_index()
    return _ranked(table, ["pending_since", "instance_id"], [])


#: How compliance_by labels the nodes without a tag, and those with no value in another column.
UNTAGGED, UNKNOWN = "(untagged)", "(unknown)"
_COMPLIANCE_COUNTS = ("compliant", "non_compliant", "not_scanned")


def compliance_by(
    fleet: Fleet,
    *,
    by: str | Sequence[str],
    stale_after_days: float = DEFAULT_STALE_DAYS,
) -> pd.DataFrame:
    """Node compliance, staleness and open patches per group of nodes, worst first.

    Parameters
    ----------
    fleet
        A :class:`~patchframe.Fleet`: its ``nodes`` are grouped and counted, its
        ``patches`` counted per group through their nodes.
    by
        A node column (``"platform_name"``, ``"account_id"``, ``"ping_status"``...),
        a tag as ``"tag:<key>"`` (``"tag:Team"``; taken from ``fleet.tags`` when
        ``nodes`` has no such column), or a list of them.
    stale_after_days
        A node never scanned, or last scanned more than this many days before the
        fleet was loaded, counts as stale (see :func:`patchframe.filters.stale`).

    Returns
    -------
    pandas.DataFrame
        One row per group, most non-compliant nodes first (then most missing
        Critical patches, lowest share compliant, the labels). Columns: the ``by``
        columns (str; nodes without the tag are one group labelled ``(untagged)``,
        nodes with no value in another column ``(unknown)``: never dropped), then
        ``nodes``, ``compliant``, ``non_compliant``, ``not_scanned`` (AWS's verdict,
        as it is), ``stale``, ``unreachable`` (beside it, never folded into it),
        ``share_compliant`` (compliant / nodes), ``missing_patches`` (MISSING or
        FAILED patch rows), ``missing_critical`` (those of severity level
        Critical) and ``open_cves`` (distinct CVE ids they list). Counts ``int64``.

    Raises
    ------
    ColumnsError
        A ``by`` column the nodes frame lacks (and that is not a tag).
    ValidationError
        ``fleet`` is not a Fleet; a tag key no node has; ``by`` empty.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.summary import compliance_by
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> table = compliance_by(fleet.as_of("2024-06-14T08:00Z"), by="tag:Team")
    >>> table[["tag:Team", "nodes", "non_compliant", "stale", "missing_critical", "open_cves"]]
       tag:Team  nodes  non_compliant  stale  missing_critical  open_cves
    0  platform      2              2      0                15          0
    1        it      2              2      1                11         15
    2      data      3              2      1                 2         11
    3       web      1              1      0                 6          0
    4  security      1              1      0                 3          0
    5   finance      1              1      0                 2         22
    6  payments      2              1      0                 2          6
    7       sap      1              1      0                 0          2
    """
    if not isinstance(fleet, Fleet):
        raise ValidationError(
            f"compliance_by: fleet is a {type(fleet).__name__}, but a patchframe Fleet was "
            "expected, as load_fleet returns it"
        )
    columns = _grouping(by)
    nodes = fleet.nodes.reset_index(drop=True)
    labels: dict[str, pd.Series[Any]] = {}
    for column in columns:
        if column in nodes.columns:
            values = nodes[column]
        elif column.startswith(TAG_PREFIX) and len(column) > len(TAG_PREFIX):
            key = column[len(TAG_PREFIX) :]
            values = tag_values(fleet, key, needed_by="compliance_by")
            values = values.reset_index(drop=True)
        else:
            raise ColumnsError(
                f"compliance_by: by {column!r} is neither a node column nor a tag "
                f"('tag:<key>'); node columns: {', '.join(map(str, nodes.columns))}"
            )
        absent = UNTAGGED if column.startswith(TAG_PREFIX) else UNKNOWN
        labels[column] = values.astype("str").fillna(absent)
    require_columns(nodes, ["compliance"], needed_by="compliance_by")
    keys = pd.DataFrame(labels)
    group = keys.groupby(columns, sort=False).ngroup().to_numpy()
    status = nodes["compliance"].astype("str")
    per_node = pd.DataFrame(
        {
            "nodes": np.ones(len(nodes), dtype=np.int64),
            **{c: (status == c.upper()).to_numpy(dtype=np.int64) for c in _COMPLIANCE_COUNTS},
            "stale": stale_mask(nodes, stale_after_days, needed_by="compliance_by"),
            "unreachable": unreachable_mask(nodes, needed_by="compliance_by"),
        }
    )
    table = per_node.groupby(group).sum().astype("int64")
    table.insert(len(table.columns), "share_compliant", table["compliant"] / table["nodes"])
    patches_per_group = _open_patches(fleet.patches, nodes, group, len(table))
    table = table.join(patches_per_group)
    first = keys.groupby(group).first()
    table = pd.concat([first.astype("str"), table], axis=1)
    return table.sort_values(
        ["non_compliant", "missing_critical", "share_compliant", *columns],
        ascending=[False, False, True, *([True] * len(columns))],
        kind="stable",
        ignore_index=True,
    )


def _grouping(by: object) -> list[str]:
    columns = [by] if isinstance(by, str) else list(by) if isinstance(by, Sequence) else None
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise ValidationError(
            f"compliance_by: by {by!r} is not a column name or a list of them, "
            "e.g. by='tag:Team' or by=['account_id', 'tag:Environment']"
        )
    return list(dict.fromkeys(columns))


def _open_patches(
    patches: pd.DataFrame, nodes: pd.DataFrame, node_group: Any, groups: int
) -> pd.DataFrame:
    """Per group: MISSING or FAILED rows, those of level Critical, distinct CVEs they list.

    Each row finds its group through its node once; then counts are ``bincount`` on
    those codes, and CVE lists are split once per distinct (group, list) pair.
    """
    require_columns(
        patches, ["instance_id", "state", "severity_level", "cve_ids"], needed_by="compliance_by"
    )
    position = node_positions(patches, nodes)
    row_group = np.append(node_group, -1)[position]
    open_rows = state_mask(patches, OPEN_STATES) & (row_group >= 0)
    critical = level_codes(patches["severity_level"]) == SEVERITY_LEVELS.index("Critical")
    missing = np.bincount(row_group[open_rows], minlength=groups)
    missing_critical = np.bincount(row_group[open_rows & critical], minlength=groups)
    codes, lists = category_codes(patches["cve_ids"])
    listed = open_rows & (codes >= 0)
    pairs = np.unique(row_group[listed].astype(np.int64) * (len(lists) + 1) + codes[listed])
    distinct = pd.DataFrame(
        {"group": pairs // (len(lists) + 1), "cve_ids": lists[pairs % (len(lists) + 1)]}
    )
    cves = distinct.merge(cve_lists(distinct["cve_ids"]), on="cve_ids")
    open_cves = cves.groupby("group")["cve_id"].nunique().reindex(range(groups), fill_value=0)
    return pd.DataFrame(
        {
            "missing_patches": missing.astype(np.int64),
            "missing_critical": missing_critical.astype(np.int64),
            "open_cves": open_cves.to_numpy(dtype=np.int64),
        }
    )
