"""Remediation SLAs: how long each finding has been open, when it is due, and breaches.

:func:`sla` dates every finding against a policy ("Critical within 15 days, High
within 30"); :func:`sla_breaches`, :func:`time_to_fix` and :func:`aging` roll it up.
They are public as :mod:`patchframe.summary` functions, and take either

- findings, :func:`patchframe.history.findings`: one row per episode of a patch
  missing on a node, with ``first_seen``, ``resolved_at`` and ``open``; or
- a patches frame: its MISSING and FAILED rows are open findings. One scan says
  nothing about when a patch went missing, so the clock is then its
  ``release_date`` or ``approval_date``, and ``now`` must be given.

The clock
---------
``clock="first_seen"`` starts each finding's clock when a snapshot first saw it
missing; ``"release"`` and ``"approval"`` at the patch's ``release_date`` or
``approval_date`` column, where a frame has one (what ``with_release_dates`` adds).
Where the chosen date is unknown for a row (NaT, or no such column), the clock falls
back to ``first_seen``, and the row's ``clock`` column says which clock it got. All
times are UTC: aware times in other zones are converted, naive ones count as UTC.

``now=None`` is the time of the data, not the wall clock, so that the same store
gives the same answer tomorrow: for findings, the latest ``last_seen`` or
``resolved_at``, which is the latest snapshot's time whenever a finding is open
(an open finding was seen open by the latest snapshot). A patches frame does not
say when it was scanned: give ``now`` (the snapshot's time, say) when it has open rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._frames import (
    TimeLike,
    require_columns,
    require_frame,
    severity_levels,
    state_mask,
    utc_times,
    utc_timestamp,
)
from ._schema import OPEN_STATES, SEVERITY_LEVELS
from .exceptions import ColumnsError, ValidationError

__all__ = [
    "AGE_BUCKETS",
    "CLOCKS",
    "SLA_POLICY",
    "SLA_STATUSES",
    "aging",
    "check_policy",
    "sla",
    "sla_breaches",
    "time_to_fix",
]

Clock = Literal["first_seen", "release", "approval"]
Policy = Mapping[str, "int | float | dt.timedelta"]
Period = Literal["D", "W", "M"]

#: Days to fix by severity level: PCI DSS 6.3.3's month for Critical, common practice below.
SLA_POLICY: dict[str, int] = {"Critical": 15, "High": 30, "Medium": 90, "Low": 180}
#: Where a finding's clock can start, and the column each reads.
CLOCKS: dict[str, str] = {
    "first_seen": "first_seen",
    "release": "release_date",
    "approval": "approval_date",
}
_CLOCK_DTYPE = pd.CategoricalDtype(list(CLOCKS))
#: Open and within its due date; open past it; closed by then; closed after.
SLA_STATUSES = pd.CategoricalDtype(["within", "breached", "fixed in time", "fixed late"])
#: Age buckets in whole days: (label, the bucket's last day).
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("0-7", 7),
    ("8-15", 15),
    ("16-30", 30),
    ("31-90", 90),
    ("91-180", 180),
    (">180", math.inf),
)
_PERIODS = {"D": "D", "W": "W-SUN", "M": "M"}  # pandas' periods: weeks end on Sunday
_SLA_COLUMNS = ("clock", "clock_start", "due", "age", "overdue", "status")


# --- checks -----------------------------------------------------------------------


def check_policy(policy: Policy | None) -> dict[str, pd.Timedelta]:
    """The time allowed per severity level (the contract's spelling), checked.

    Keys are severity levels in any case (``"critical"``); values whole or
    fractional days, or timedeltas, zero or more. None gives :data:`SLA_POLICY`.

    Examples
    --------
    >>> check_policy({"critical": 15, "High": pd.Timedelta(hours=36)})
    {'Critical': Timedelta('15 days 00:00:00'), 'High': Timedelta('1 days 12:00:00')}
    >>> check_policy({"Important": 30})
    Traceback (most recent call last):
    ...
    patchframe.exceptions.ValidationError: policy: 'Important' is not a severity level; \
the levels are Critical, High, Medium, Low, Unspecified (vendor words such as \
'Important' are mapped onto them in severity_level)
    """
    if policy is None:
        policy = SLA_POLICY
    if not isinstance(policy, Mapping):
        raise ValidationError(
            f"policy {policy!r}: expected a mapping of severity levels to days, "
            "e.g. {'Critical': 15, 'High': 30}"
        )
    levels = {level.lower(): level for level in SEVERITY_LEVELS}
    checked: dict[str, pd.Timedelta] = {}
    for word, allowed in policy.items():
        level = levels.get(word.lower()) if isinstance(word, str) else None
        if level is None:
            raise ValidationError(
                f"policy: {word!r} is not a severity level; the levels are "
                f"{', '.join(reversed(SEVERITY_LEVELS))} (vendor words such as 'Important' "
                "are mapped onto them in severity_level)"
            )
        if level in checked:
            raise ValidationError(f"policy: {level} is given twice")
        checked[level] = _allowed_time(level, allowed)
    return checked


def _allowed_time(level: str, allowed: object) -> pd.Timedelta:
    if isinstance(allowed, dt.timedelta):
        span = pd.Timedelta(allowed)
    elif isinstance(allowed, Real) and not isinstance(allowed, bool) and math.isfinite(allowed):
        span = pd.Timedelta(days=float(allowed))
    else:
        raise ValidationError(
            f"policy: {level} {allowed!r} is not a number of days or a timedelta"
        )
    if span < pd.Timedelta(0):
        raise ValidationError(f"policy: {level} {allowed!r} is negative")
    return span


def _check_clock(clock: object) -> str:
    if clock not in CLOCKS:
        raise ValidationError(
            f"clock {clock!r} is not a clock: expected one of " + ", ".join(map(repr, CLOCKS))
        )
    return str(clock)


def _group_columns(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    columns = [by] if isinstance(by, str) else list(by)
    if not all(isinstance(c, str) for c in columns):
        raise ValidationError(f"by {by!r}: expected a column name or a list of them")
    return columns


# --- each finding -----------------------------------------------------------------


def _as_findings(data: pd.DataFrame) -> pd.DataFrame:
    """Findings as they are; a patches frame's MISSING and FAILED rows as open findings."""
    require_frame(data, needed_by="sla", argument="data")
    if {"open", "resolved_at"} <= set(data.columns):
        return data
    if "state" not in data.columns:
        raise ColumnsError(
            "expected findings (with 'open' and 'resolved_at', from "
            "patchframe.history.findings) or a patches frame (with 'state'); the frame has "
            f"neither: {', '.join(map(str, data.columns)) or 'no columns'}"
        )
    rows = data.loc[state_mask(data, OPEN_STATES)]
    return rows.assign(
        resolved_at=pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns, UTC]"),
        open=True,
    )


def _time_column(frame: pd.DataFrame, column: str) -> pd.Series[Any]:
    if column not in frame.columns:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    return utc_times(frame[column])


def _clock_start(frame: pd.DataFrame, clock: str) -> tuple[pd.Series[Any], pd.Series[Any]]:
    """Each row's clock start (UTC) and which clock gave it (NA where none is known)."""
    if clock == "first_seen" and "first_seen" not in frame.columns:
        raise ColumnsError(
            "clock='first_seen' needs findings (patchframe.history.findings(store)), whose "
            "first_seen says when a patch went missing; on a patches frame use "
            "clock='release' or 'approval' with its release dates"
        )
    chosen = _time_column(frame, CLOCKS[clock])
    fallback = _time_column(frame, "first_seen")
    start = chosen.where(chosen.notna(), fallback)
    source = np.full(len(frame), None, dtype=object)
    source[fallback.notna().to_numpy()] = "first_seen"
    source[chosen.notna().to_numpy()] = clock
    return start, pd.Series(pd.Categorical(source, dtype=_CLOCK_DTYPE), index=frame.index)


def _data_time(frame: pd.DataFrame, now: TimeLike | None, *, needed: bool) -> pd.Timestamp | None:
    """What open findings count to; None when nothing is open and no ``now`` is given."""
    if now is not None:
        return utc_timestamp(now, name="now")
    if not needed:
        return None
    if "last_seen" not in frame.columns:
        raise ValidationError(
            "now: a patches frame does not say when it was scanned; pass now=, e.g. the "
            "snapshot's time"
        )
    times = [utc_times(frame[c]).max() for c in ("last_seen", "resolved_at") if c in frame]
    known = [t for t in times if pd.notna(t)]
    if not known:
        raise ValidationError("now: the findings hold no time to count to; pass now=")
    return pd.Timestamp(max(known))


def sla(
    data: pd.DataFrame,
    *,
    policy: Policy | None = None,
    clock: Clock = "first_seen",
    now: TimeLike | None = None,
) -> pd.DataFrame:
    """Each finding's clock start, due date, age, time overdue and SLA status.

    Parameters
    ----------
    data
        Findings (:func:`patchframe.history.findings`) or a patches frame, whose
        MISSING and FAILED rows are then open findings.
    policy
        Time allowed per severity level: days (or timedeltas) by level,
        ``{"Critical": 15, "High": 30, "Medium": 90, "Low": 180}`` when None.
        Levels are the contract's ``severity_level`` scale, in any case; a level
        the policy leaves out has no due date.
    clock
        When a finding's clock starts: ``"first_seen"`` (when a snapshot first saw
        it missing), ``"release"`` or ``"approval"`` (the patch's ``release_date``
        or ``approval_date``, falling back to ``first_seen`` where unknown).
    now
        What open findings' ages count to; the time of the data when None (see
        the module's notes): the latest snapshot's time for findings, required for
        a patches frame.

    Returns
    -------
    pandas.DataFrame
        The findings, every column kept, index and order too, and:

        - ``clock``: the clock the row's start came from, ``"release"``,
          ``"approval"`` or ``"first_seen"``, NA where none is known (a category);
        - ``clock_start``, ``due`` (``clock_start`` plus the policy's time for the
          severity level; NaT without one): UTC;
        - ``age``: from ``clock_start`` to ``resolved_at`` for a closed finding,
          to ``now`` for an open one (Timedelta);
        - ``overdue``: how long past ``due`` then; zero when within (Timedelta);
        - ``status``: ``"within"``, ``"breached"`` (open, past due), ``"fixed in
          time"`` or ``"fixed late"`` (closed by or after ``due``; an episode
          closed because its node or patch went away counts as fixed: its exposure
          ended; ``resolution`` tells them apart). NA where there is no due date.

        A finding is within on its due date to the nanosecond, late after it.

    Raises
    ------
    ValidationError
        A policy level that is not a severity level (the message names them), a
        negative time, an unknown clock, or no ``now`` for a patches frame.
    ColumnsError
        ``clock="first_seen"`` on a frame without ``first_seen``.

    Examples
    --------
    >>> import pandas as pd
    >>> from patchframe.summary import sla
    >>> found = pd.DataFrame({
    ...     "kb_id": ["KB1", "KB2", "KB3"],
    ...     "severity_level": ["Critical", "High", "Critical"],
    ...     "first_seen": pd.to_datetime(["2024-06-01", "2024-06-01", "2024-06-01"], utc=True),
    ...     "last_seen": pd.to_datetime(["2024-06-29", "2024-06-08", "2024-06-29"], utc=True),
    ...     "resolved_at": pd.to_datetime([None, "2024-06-15", None], utc=True),
    ...     "open": [True, False, True],
    ...     "release_date": pd.to_datetime(["2024-05-14", None, None], utc=True),
    ... })
    >>> sla(found, clock="release")[["kb_id", "clock", "due", "age", "status"]]
      kb_id       clock                       due     age         status
    0   KB1     release 2024-05-29 00:00:00+00:00 46 days       breached
    1   KB2  first_seen 2024-07-01 00:00:00+00:00 14 days  fixed in time
    2   KB3  first_seen 2024-06-16 00:00:00+00:00 28 days       breached
    """
    allowed = check_policy(policy)
    chosen = _check_clock(clock)
    frame = _as_findings(data)
    require_columns(frame, ["severity_level", "open", "resolved_at"], needed_by="sla")
    start, source = _clock_start(frame, chosen)
    levels = severity_levels(frame["severity_level"]).astype("str")
    span = pd.to_timedelta(levels.map(allowed).astype(object), errors="coerce")
    due = start + span
    is_open = frame["open"].to_numpy(dtype=bool)
    at = _data_time(frame, now, needed=bool(is_open.any()))
    resolved = utc_times(frame["resolved_at"])
    end = resolved if at is None else resolved.where(~is_open, at)
    late = (end > due).to_numpy()
    status = np.where(is_open, np.where(late, "breached", "within"), "fixed in time").astype(
        object
    )
    status[~is_open & late] = "fixed late"
    status[(due.isna() | end.isna()).to_numpy()] = None
    overdue = end - due
    return frame.assign(
        clock=source,
        clock_start=start,
        due=due,
        age=end - start,
        overdue=overdue.mask(overdue < pd.Timedelta(0), pd.Timedelta(0)),
        status=pd.Categorical(status, dtype=SLA_STATUSES),
    )


# --- roll-ups ---------------------------------------------------------------------


def _sorted_groups(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Sorted by the ``by`` columns, severity_level worst first; a RangeIndex."""
    if not by:
        return table.reset_index(drop=True)
    return table.sort_values(
        by, ascending=[c != "severity_level" for c in by], kind="stable", ignore_index=True
    )


def sla_breaches(
    data: pd.DataFrame,
    *,
    policy: Policy | None = None,
    clock: Clock = "first_seen",
    now: TimeLike | None = None,
    by: str | Sequence[str] | None = "severity_level",
) -> pd.DataFrame:
    """Findings under the policy per group: within, breached, fixed in time, fixed late.

    Parameters
    ----------
    data, policy, clock, now
        As for :func:`sla`.
    by
        The column(s) to group by: ``"severity_level"`` (the default), any node
        column the frame has (``"platform_name"``, a tag column), a list of them,
        or None for one row.

    Returns
    -------
    pandas.DataFrame
        One row per group with a finding that has a due date, sorted by the
        ``by`` columns (severity worst first): the ``by`` columns, then
        ``findings``, ``within``, ``breached``, ``fixed_in_time``, ``fixed_late``
        (``int64``) and ``max_overdue``, the longest time past due among the
        group's open findings (Timedelta; zero when none is).

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import pandas as pd
    >>> from patchframe.summary import sla_breaches
    >>> found = pd.DataFrame({
    ...     "severity_level": ["Critical", "Critical", "High", "Low"],
    ...     "first_seen": pd.to_datetime(["2024-06-01"] * 4, utc=True),
    ...     "last_seen": pd.to_datetime(["2024-06-29", "2024-06-08", "2024-06-29",
    ...                                  "2024-06-29"], utc=True),
    ...     "resolved_at": pd.to_datetime([None, "2024-06-22", None, None], utc=True),
    ...     "open": [True, False, True, True],
    ... })
    >>> breaches = sla_breaches(found, policy={"Critical": 15, "High": 30})
    >>> breaches[["severity_level", "findings", "within", "breached", "fixed_late"]]
      severity_level  findings  within  breached  fixed_late
    0       Critical         2       0         1           1
    1           High         1       1         0           0
    >>> breaches["max_overdue"].tolist()
    [Timedelta('13 days 00:00:00'), Timedelta('0 days 00:00:00')]
    """
    require_frame(data, needed_by="sla_breaches", argument="data")
    columns = _group_columns(by)
    dated = sla(data, policy=policy, clock=clock, now=now)
    require_columns(dated, columns, needed_by="sla_breaches")
    dated = dated[dated["status"].notna()]
    if "severity_level" in columns:
        dated = dated.assign(severity_level=severity_levels(dated["severity_level"]))
    counts = pd.get_dummies(dated["status"]).astype("int64")
    counts.columns = [str(c).replace(" ", "_") for c in counts.columns]
    table = counts.assign(
        findings=1,
        max_overdue=dated["overdue"].where(dated["open"].astype(bool), pd.Timedelta(0)),
    )
    sums = {c: "sum" for c in ["findings", *counts.columns]}
    if columns:
        keys = [dated[c] for c in columns]
        grouped = table.groupby(keys, observed=True, dropna=False)
        rolled = grouped.agg({**sums, "max_overdue": "max"}).reset_index()
    else:
        rolled = table.agg({**sums, "max_overdue": "max"}).to_frame().T
    rolled = rolled.astype({c: "int64" for c in sums})
    rolled["max_overdue"] = pd.to_timedelta(rolled["max_overdue"]).fillna(pd.Timedelta(0))
    order = ["findings", "within", "breached", "fixed_in_time", "fixed_late", "max_overdue"]
    return _sorted_groups(rolled[[*columns, *order]], columns)


def _period_starts(times: pd.Series[Any], freq: str) -> pd.Series[Any]:
    """The start of each time's day, week (from Monday) or month, UTC."""
    if freq not in _PERIODS:
        raise ValidationError(
            f"freq {freq!r} is not a period: expected 'D' (day), 'W' (week, from Monday) "
            "or 'M' (month)"
        )
    periods = times.dt.tz_localize(None).dt.to_period(_PERIODS[freq])
    starts: pd.Series[Any] = periods.dt.start_time.dt.tz_localize("UTC").dt.as_unit("ns")
    return starts


def time_to_fix(
    data: pd.DataFrame,
    *,
    clock: Clock = "first_seen",
    by: str | Sequence[str] | None = "severity_level",
    freq: Period | None = None,
) -> pd.DataFrame:
    """How long fixes took: count, median and 90th percentile, per group.

    A fix is a finding whose ``resolution`` is ``"installed"``; its time to fix
    runs from its clock start (as in :func:`sla`) to ``resolved_at``, the first
    snapshot that saw it installed. Findings closed because their node or patch
    went away are not fixes and are not counted.

    Parameters
    ----------
    data
        Findings (:func:`patchframe.history.findings`).
    clock
        As for :func:`sla`.
    by
        The column(s) to group by, as for :func:`sla_breaches`.
    freq
        None, or ``"D"``, ``"W"`` (from Monday) or ``"M"`` to group also by the
        period each fix was seen in: a ``period`` column (its start, UTC) comes first.

    Returns
    -------
    pandas.DataFrame
        One row per group with a fix, sorted by period then the ``by`` columns
        (severity worst first): ``fixed`` (``int64``), ``median`` and ``p90``
        (Timedelta, to the second; the 90th percentile interpolates linearly, as
        pandas' ``quantile`` does).

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import pandas as pd
    >>> from patchframe.summary import time_to_fix
    >>> found = pd.DataFrame({
    ...     "severity_level": ["High", "High", "High", "Low"],
    ...     "first_seen": pd.to_datetime(["2024-06-01"] * 4, utc=True),
    ...     "resolved_at": pd.to_datetime(["2024-06-08", "2024-06-15", "2024-07-01", None],
    ...                                   utc=True),
    ...     "resolution": ["installed", "installed", "installed", "open"],
    ...     "open": [False, False, False, True],
    ... })
    >>> time_to_fix(found)
      severity_level  fixed  median              p90
    0           High      3 14 days 26 days 19:12:00
    """
    require_frame(data, needed_by="time_to_fix", argument="data")
    columns = _group_columns(by)
    chosen = _check_clock(clock)
    require_columns(data, ["resolution", "resolved_at", *columns], needed_by="time_to_fix")
    fixed = data[(data["resolution"] == "installed").to_numpy(dtype=bool, na_value=False)]
    start, _ = _clock_start(fixed, chosen)
    resolved = utc_times(fixed["resolved_at"])
    table = pd.DataFrame({"took": resolved - start}, index=fixed.index)
    keys = [fixed[c] for c in columns]
    if "severity_level" in columns:
        keys[columns.index("severity_level")] = severity_levels(fixed["severity_level"])
    if freq is not None:
        keys.insert(0, _period_starts(resolved, freq).rename("period"))
    table = table[table["took"].notna().to_numpy()]
    keys = [k[table.index] for k in keys]
    names = [str(k.name) for k in keys]
    if keys:
        grouped = table.groupby(keys, observed=True)["took"]
        rolled = pd.DataFrame(
            {"fixed": grouped.size(), "median": grouped.median(), "p90": grouped.quantile(0.9)}
        ).reset_index()
    else:
        took = table["took"]
        rolled = pd.DataFrame(
            {"fixed": [len(took)], "median": [took.median()], "p90": [took.quantile(0.9)]}
        )[: 1 if len(took) else 0]
    rolled = rolled.astype({"fixed": "int64"})
    # Interpolation is done in floating point: nanoseconds of noise, rounded away.
    rolled[["median", "p90"]] = rolled[["median", "p90"]].apply(lambda c: c.dt.round("s"))
    return _sorted_groups(rolled[[*names, "fixed", "median", "p90"]], names)


def aging(
    data: pd.DataFrame, *, clock: Clock = "first_seen", now: TimeLike | None = None
) -> pd.DataFrame:
    """Open findings by age (whole days since their clock started) and severity level.

    Parameters
    ----------
    data, clock, now
        As for :func:`sla`; no policy is needed.

    Returns
    -------
    pandas.DataFrame
        Rows the age buckets ``0-7``, ``8-15``, ``16-30``, ``31-90``, ``91-180``
        and ``>180`` days (index ``age_days``; an age is counted in whole days,
        rounded down), columns the severity levels from Critical to Unspecified
        (``severity_level``); ``int64`` counts, every bucket and level present.
        Findings whose clock start is unknown are left out (:func:`sla` lists them).

    Raises
    ------
    ValidationError
        ``data`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import pandas as pd
    >>> from patchframe.summary import aging
    >>> found = pd.DataFrame({
    ...     "severity_level": ["Critical", "Critical", "Low"],
    ...     "first_seen": pd.to_datetime(["2024-06-21", "2024-05-01", "2023-01-01"], utc=True),
    ...     "last_seen": pd.to_datetime(["2024-06-29"] * 3, utc=True),
    ...     "resolved_at": pd.to_datetime([None] * 3, utc=True),
    ...     "open": [True] * 3,
    ... })
    >>> aging(found)
    severity_level  Critical  High  Medium  Low  Unspecified
    age_days
    0-7                    0     0       0    0            0
    8-15                   1     0       0    0            0
    16-30                  0     0       0    0            0
    31-90                  1     0       0    0            0
    91-180                 0     0       0    0            0
    >180                   0     0       0    1            0
    """
    require_frame(data, needed_by="aging", argument="data")
    dated = sla(data, policy={}, clock=clock, now=now)
    dated = dated[dated["open"].to_numpy(dtype=bool) & dated["age"].notna().to_numpy()]
    days = dated["age"].dt.days  # whole days, rounded down
    labels = [label for label, _ in AGE_BUCKETS]
    edges = [-math.inf, *(last for _, last in AGE_BUCKETS)]
    buckets = pd.cut(days, edges, labels=labels, right=True)
    levels = severity_levels(dated["severity_level"])
    table = pd.crosstab(buckets, levels, dropna=False).reindex(
        index=labels, columns=list(reversed(SEVERITY_LEVELS)), fill_value=0
    )
    table.index = pd.Index(labels, dtype="str", name="age_days")
    table.columns = pd.Index(list(reversed(SEVERITY_LEVELS)), dtype="str", name="severity_level")
    return table.astype("int64")
