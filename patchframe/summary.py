"""Summaries of a patches frame: per node, per patch, per CVE, per period.

Every function takes a patches frame and returns a new, small frame in tidy
form: one row per thing counted, lower snake case column names, counts as
``int64``, times as UTC datetimes, severity as the contract's ordered
``severity_level`` category, ids and titles as strings. The input is never modified.

Counting is done on category codes with ``numpy.bincount``, never row by row in
Python, and the CVE view explodes the few distinct ``cve_ids`` strings, not the
rows, so a million-row fleet summarises in a small multiple of one pandas groupby.

"Open" patches, the ones :func:`top_missing` and :func:`cve_exposure` count, are
the MISSING and FAILED ones: the fix is not on the node, and the API fills CVEIds
only for them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._frames import (
    NAT,
    Codes,
    CveLists,
    TimeLike,
    category_codes,
    distinct,
    distinct_pairs,
    first_rows,
    level_codes,
    levels_by,
    require_columns,
    run_starts,
    state_codes,
    state_mask,
    texts_at,
    utc_nanoseconds,
    utc_timestamp,
)
from ._schema import NON_COMPLIANT_STATES, OPEN_STATES, PATCH_DTYPES, SEVERITY_LEVELS, STATES
from .exceptions import ValidationError

__all__ = [
    "cve_exposure",
    "install_activity",
    "node_compliance",
    "pending_reboot",
    "state_by_severity",
    "top_missing",
]

Freq = Literal["D", "W", "M"]

_DAY_NS = 86_400 * 10**9
_LEVEL_DTYPE: pd.CategoricalDtype = PATCH_DTYPES["severity_level"]
_FREQS = {"D": "day", "W": "week, from Monday", "M": "month"}


# Building blocks: codes in, numpy arrays out.


def _state_columns(df: pd.DataFrame) -> tuple[Codes, list[str]]:
    """Each row's state as an index into the returned names: the model's 8 states
    first, in the model's order, then states nobody knew yet; -1 for NA."""
    codes, names = state_codes(df["state"])
    ordered = [*STATES, *dict.fromkeys(n for n in names if n not in STATES)]
    position = np.array([*(ordered.index(n) for n in names), -1], dtype=np.intp)
    return position[codes], ordered


def _level_column(levels: Codes) -> pd.Categorical[Any]:
    return pd.Categorical.from_codes(levels, dtype=_LEVEL_DTYPE)


def _times(nanoseconds: npt.NDArray[np.int64]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(nanoseconds.view("M8[ns]")).tz_localize("UTC")


def _whole_days(since: npt.NDArray[np.int64], now: pd.Timestamp) -> pd.arrays.IntegerArray:
    """Whole days from each time to ``now``, NA where the time is NaT."""
    days = (int(now.as_unit("ns").value) - since) // _DAY_NS
    return pd.arrays.IntegerArray(days.astype(np.int64), since == NAT)


def _now(now: TimeLike | None) -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC") if now is None else utc_timestamp(now, name="now")


def _check_n(n: object) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValidationError(f"n {n!r} is not a positive whole number (or None for all rows)")
    return n


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
    node, node_names = category_codes(df["instance_id"])
    state, states = _state_columns(df)
    n_nodes, n_states = len(node_names), len(states)

    counted = (node >= 0) & (state >= 0)
    counts = np.bincount(
        node[counted] * n_states + state[counted], minlength=n_nodes * n_states
    ).reshape(n_nodes, n_states)
    present = np.bincount(node[node >= 0], minlength=n_nodes) > 0

    bad = [states.index(s) for s in NON_COMPLIANT_STATES]
    open_rows = state_mask(df, OPEN_STATES) & (node >= 0)
    levels = level_codes(df["severity_level"])
    open_rows &= levels >= 0
    worst = levels_by(node[open_rows], levels[open_rows], n_nodes)

    times = utc_nanoseconds(df["installed_time"])
    last = np.full(n_nodes, NAT, dtype=np.int64)
    np.maximum.at(last, node[node >= 0], times[node >= 0])  # NaT is the smallest int64

    keep = np.flatnonzero(present)
    order = keep[np.argsort(np.asarray(node_names[keep], dtype=object), kind="stable")]
    out: dict[str, Any] = {"instance_id": texts_at(node_names, order)}
    for i, name in enumerate(states):
        out[name.lower()] = counts[order, i].astype(np.int64)
    out["compliant"] = counts[order][:, bad].sum(axis=1) == 0
    out["worst_missing_severity"] = _level_column(worst[order])
    out["last_installed_time"] = _times(last[order])
    out["days_since_install"] = _whole_days(last[order], _now(now))
    return pd.DataFrame(out)


def state_by_severity(df: pd.DataFrame, *, totals: bool = True) -> pd.DataFrame:
    """Patch counts in a state x severity_level table.

    Rows are the patch states in the model's order (states nobody knew yet last),
    columns the severity levels from Critical down to Unspecified; every state
    and level is present, zero where no patch is. With ``totals``, a ``total``
    column and a ``total`` row are added. Counts are ``int64``; the index is named
    ``state``, the columns ``severity_level``.

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
    state, states = _state_columns(df)
    levels = level_codes(df["severity_level"])
    counted = (state >= 0) & (levels >= 0)
    n_levels = len(SEVERITY_LEVELS)
    counts = np.bincount(
        state[counted] * n_levels + levels[counted], minlength=len(states) * n_levels
    ).reshape(len(states), n_levels)[:, ::-1]
    table = pd.DataFrame(
        counts.astype(np.int64),
        index=pd.Index(states, name="state", dtype="str"),
        columns=pd.Index(SEVERITY_LEVELS[::-1], name="severity_level", dtype="str"),
    )
    if totals:
        table["total"] = table.sum(axis=1)
        table.loc["total"] = table.sum(axis=0)
    return table


def top_missing(df: pd.DataFrame, n: int | None = 10) -> pd.DataFrame:
    """The patches MISSING or FAILED on the most nodes, most first.

    Parameters
    ----------
    df
        A patches frame.
    n
        How many patches to keep; None keeps them all.

    Returns
    -------
    pandas.DataFrame
        One row per ``kb_id``, sorted by ``nodes`` (descending), then
        ``severity_level`` (worst first), then ``kb_id``; columns ``kb_id``,
        ``title``, ``classification`` (str), ``severity_level``, ``nodes`` (nodes
        where the patch is MISSING or FAILED), ``missing`` and ``failed`` (nodes in
        each of those states) and ``cve_count`` (distinct CVE ids the patch lists);
        counts ``int64``.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.summary import top_missing
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> top_missing(fleet.patches, 3)[["kb_id", "severity_level", "nodes", "missing", "failed"]]
           kb_id severity_level  nodes  missing  failed
    0  KB2267602    Unspecified      3        3       0
    1  KB5037129       Critical      2        2       0
    2  KB5039129       Critical      2        2       0
    """
    columns = ["instance_id", "kb_id", "title", "classification", "severity_level"]
    require_columns(df, [*columns, "state", "cve_ids"], needed_by="top_missing")
    limit = _check_n(n)
    rows = np.flatnonzero(state_mask(df, OPEN_STATES))
    kb, kb_names = category_codes(df["kb_id"], rows)
    node, node_names = category_codes(df["instance_id"], rows)
    known = (kb >= 0) & (node >= 0)
    rows, kb, node = rows[known], kb[known], node[known]
    n_kb, n_nodes = len(kb_names), len(node_names)
    state, states = state_codes(df["state"], rows)
    failed = np.array([*(s == "FAILED" for s in states), False])[state]

    # Distinct (patch, node, failed) triples, sorted; a patch's nodes are its distinct
    # (patch, node) prefixes, which the sort has put next to each other.
    triples = distinct((kb.astype(np.int64) * n_nodes + node) * 2 + failed)
    kb_of, is_failed = triples // (2 * n_nodes), triples % 2 == 1
    missing_nodes = np.bincount(kb_of[~is_failed], minlength=n_kb)
    failed_nodes = np.bincount(kb_of[is_failed], minlength=n_kb)
    nodes = np.bincount(kb_of[run_starts(triples // 2)], minlength=n_kb)

    cve_codes, cve_categories = category_codes(df["cve_ids"], rows)
    listed = cve_codes >= 0
    kb_list, list_code = distinct_pairs(kb[listed], cve_codes[listed], len(cve_categories))
    lists = CveLists.of(cve_categories, list_code)
    pair, cve = lists.explode(list_code)
    cve_kb = distinct_pairs(kb_list[pair], cve, max(len(lists.ids), 1))[0]
    cve_count = np.bincount(cve_kb, minlength=n_kb)

    levels = level_codes(df["severity_level"], rows)
    worst = levels_by(kb[levels >= 0], levels[levels >= 0], n_kb)
    first_row = first_rows(kb, n_kb)
    kept = np.flatnonzero(first_row < len(kb))

    order = np.lexsort((np.asarray(kb_names[kept], dtype=object), -worst[kept], -nodes[kept]))
    pick, first = kept[order][:limit], rows[first_row[kept[order][:limit]]]
    title_codes, title_names = category_codes(df["title"], first)
    class_codes, class_names = category_codes(df["classification"], first)
    return pd.DataFrame(
        {
            "kb_id": texts_at(kb_names, pick),
            "title": texts_at(title_names, title_codes),
            "classification": texts_at(class_names, class_codes),
            "severity_level": _level_column(worst[pick]),
            "nodes": nodes[pick].astype(np.int64),
            "missing": missing_nodes[pick].astype(np.int64),
            "failed": failed_nodes[pick].astype(np.int64),
            "cve_count": cve_count[pick].astype(np.int64),
        }
    )


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
    cve_codes, cve_categories = category_codes(df["cve_ids"])
    rows = np.flatnonzero(state_mask(df, OPEN_STATES) & (cve_codes >= 0))
    listed = cve_codes[rows]
    lists = CveLists.of(cve_categories, listed)
    n_lists, n_cves = len(cve_categories), len(lists.ids)

    def per_cve(codes: Codes, size: int) -> Codes:
        """Distinct ``codes`` per CVE: distinct per list first, so only those explode."""
        known = codes >= 0
        list_code, code = distinct_pairs(listed[known], codes[known], size)
        pair, cve = lists.explode(list_code)
        return np.bincount(distinct_pairs(cve, code[pair], size)[0], minlength=n_cves)

    node, node_names = category_codes(df["instance_id"], rows)
    kb, kb_names = category_codes(df["kb_id"], rows)
    nodes = per_cve(node, len(node_names))
    patches = per_cve(kb, len(kb_names))
    levels = level_codes(df["severity_level"], rows)
    list_worst = levels_by(listed[levels >= 0], levels[levels >= 0], n_lists)
    pair, cve = lists.explode(np.flatnonzero(list_worst >= 0))
    worst = levels_by(cve, list_worst[list_worst >= 0][pair], n_cves)

    names = np.array(lists.ids, dtype=object)
    order = np.lexsort((names, -worst, -nodes))
    return pd.DataFrame(
        {
            "cve_id": pd.Index(names[order], dtype="str"),
            "nodes": nodes[order].astype(np.int64),
            "patches": patches[order].astype(np.int64),
            "severity_level": _level_column(worst[order]),
        }
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
    times = utc_nanoseconds(df["installed_time"])
    node, node_names = category_codes(df["instance_id"])
    installed = (times != NAT) & (node >= 0)
    days = times[installed] // _DAY_NS
    if freq == "D":
        period = days
    elif freq == "W":
        period = (days + 3) // 7  # 1970-01-01 was a Thursday; weeks start on Mondays
    else:
        period = days.astype("M8[D]").astype("M8[M]").view(np.int64)
    first = int(period.min()) if len(period) else 0
    span = int(period.max()) - first + 1 if len(period) else 0
    index = (period - first).astype(np.intp)
    installs = np.bincount(index, minlength=span)
    active = np.bincount(
        distinct_pairs(index, node[installed].astype(np.intp), len(node_names))[0],
        minlength=span,
    )
    steps = np.arange(first, first + span)
    if freq == "D":
        starts = steps.astype("M8[D]")
    elif freq == "W":
        starts = (steps * 7 - 3).astype("M8[D]")
    else:
        starts = steps.astype("M8[M]").astype("M8[D]")
    return pd.DataFrame(
        {
            "period": _times(starts.astype("M8[ns]").view(np.int64)),
            "installs": installs.astype(np.int64),
            "nodes": active.astype(np.int64),
        }
    )


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
    node, node_names = category_codes(df["instance_id"])
    rows = np.flatnonzero(state_mask(df, {"INSTALLED_PENDING_REBOOT"}) & (node >= 0))
    node = node[rows]
    n_nodes = len(node_names)
    patches = np.bincount(node, minlength=n_nodes)
    times = utc_nanoseconds(df["installed_time"])[rows]
    never = np.iinfo(np.int64).max
    since = np.full(n_nodes, never, dtype=np.int64)
    np.minimum.at(since, node, np.where(times == NAT, never, times))
    since[since == never] = NAT
    levels = level_codes(df["severity_level"], rows)
    worst = levels_by(node[levels >= 0], levels[levels >= 0], n_nodes)

    keep = np.flatnonzero(patches)
    waiting = np.where(since[keep] == NAT, never, since[keep])
    order = keep[np.lexsort((np.asarray(node_names[keep], dtype=object), waiting))]
    return pd.DataFrame(
        {
            "instance_id": texts_at(node_names, order),
            "patches": patches[order].astype(np.int64),
            "pending_since": _times(since[order]),
            "days_pending": _whole_days(since[order], _now(now)),
            "severity_level": _level_column(worst[order]),
        }
    )
