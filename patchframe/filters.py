"""Row filters for patches frames (and nodes frames): a frame in, its matching rows out.

Every filter returns the rows that match, index labels unchanged, and never
modifies the frame it is given, so filters chain freely. Arguments are checked
first: an unknown state or severity level, or a frame without the columns a
filter needs, raises a :class:`~patchframe.exceptions.ValidationError` (a
:class:`~patchframe.exceptions.ColumnsError` for columns) that names what was
expected.

Filters decide on the categories of the contract's categorical columns (a few
dozen strings even in a fleet of thousands of nodes) and then pick rows by their
category codes, so no string is touched per row and a million rows filter in
milliseconds. Columns that are not categorical, say from a CSV, work too, more slowly.

:func:`stale` and :func:`unreachable` decide on nodes: they filter a nodes frame
(``Fleet.nodes``), or a patches frame given the nodes frame it came with.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from ._frames import (
    NAT,
    Mask,
    TimeLike,
    level_codes,
    nanoseconds,
    patch_state,
    pick_rows,
    require_columns,
    require_frame,
    split_cves,
    state_codes,
    state_mask,
    string_arguments,
    utc_nanoseconds,
    utc_timestamp,
)
from ._nodes import DEFAULT_STALE_DAYS, node_positions, stale_mask, unreachable_mask
from ._schema import NON_COMPLIANT_STATES, SEVERITY_LEVELS, STATES, validate_instance_id
from ._schema import severity_level_of as _severity_level_of
from .exceptions import ColumnsError, ValidationError

__all__ = [
    "by_classification",
    "by_cve",
    "by_node",
    "by_platform",
    "by_state",
    "installed_after",
    "installed_before",
    "installed_between",
    "non_compliant",
    "severity_at_least",
    "stale",
    "unreachable",
]

_CVE_ID = re.compile(r"CVE-\d{4}-\d+", re.IGNORECASE)
_PLATFORM_COLUMNS = ("platform_name", "platform_type")


# The filters.


def by_state(df: pd.DataFrame, *states: str) -> pd.DataFrame:
    """Rows whose patch state is one of ``states``.

    Parameters
    ----------
    df
        A patches frame.
    *states
        States as the API model spells them (``"MISSING"``, ``"INSTALLED_OTHER"``) or
        as filters and real responses do (``"Missing"``, ``"InstalledOther"``).
        A state nobody knew yet is accepted when the frame holds it.

    Raises
    ------
    ValidationError
        A state that is not a patch state; the message lists the states allowed.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.filters import by_state
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> gaps = by_state(patches, "Missing", "FAILED")
    >>> len(gaps), sorted(gaps["state"].unique())
    (27, ['FAILED', 'MISSING'])
    """
    require_columns(df, ["state"], needed_by="by_state")
    names = string_arguments(states, what="state", example="by_state(df, 'Missing', 'Failed')")
    _, in_frame = state_codes(df["state"])
    known = [*STATES, *(s for s in in_frame if s not in STATES)]
    wanted = {patch_state(s, known) for s in names}
    return df[state_mask(df, wanted)]


def non_compliant(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that make a node non-compliant by AWS's rules.

    Those are MISSING, FAILED, INSTALLED_PENDING_REBOOT and INSTALLED_REJECTED
    patches, and AVAILABLE_SECURITY_UPDATE ones, which the baseline's default counts
    as non-compliant (see :data:`patchframe.NON_COMPLIANT_STATES`).

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
    >>> from patchframe.filters import non_compliant
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> bad = non_compliant(patches)
    >>> len(bad), set(bad["state"].unique()) <= pf.NON_COMPLIANT_STATES
    (34, True)
    """
    require_columns(df, ["state"], needed_by="non_compliant")
    return df[state_mask(df, NON_COMPLIANT_STATES)]


def severity_at_least(df: pd.DataFrame, level: str) -> pd.DataFrame:
    """Rows whose ``severity_level`` is ``level`` or worse.

    Parameters
    ----------
    df
        A patches frame.
    level
        One of Unspecified, Low, Medium, High, Critical, in any case. Vendor words
        map onto these by the table in :mod:`patchframe._schema` (Important is High).

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
    >>> from patchframe.filters import severity_at_least
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> serious = severity_at_least(patches, "high")
    >>> len(serious), sorted(serious["severity_level"].unique())
    (28, ['Critical', 'High'])
    """
    require_columns(df, ["severity_level"], needed_by="severity_at_least")
    levels = {name.lower(): i for i, name in enumerate(SEVERITY_LEVELS)}
    if not isinstance(level, str) or level.lower() not in levels:
        hint = ""
        if isinstance(level, str) and _severity_level_of(level) != "Unspecified":
            hint = f" ({level!r} is a vendor word; its level is {_severity_level_of(level)!r})"
        raise ValidationError(
            f"severity level {level!r} is not a level: expected one of "
            f"{', '.join(SEVERITY_LEVELS)}{hint}"
        )
    return df[level_codes(df["severity_level"]) >= levels[level.lower()]]


def by_classification(df: pd.DataFrame, *classifications: str) -> pd.DataFrame:
    """Rows whose classification is one of ``classifications``, ignoring case.

    Classifications are the vendor's (``SecurityUpdates``, ``CriticalUpdates`` on
    Windows; ``Security``, ``Bugfix`` on Linux), so a value the frame does not
    hold is not an error: it matches no row.

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
    >>> from patchframe.filters import by_classification
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> len(by_classification(patches, "security")), len(by_classification(patches, "Bugfix"))
    (64, 31)
    """
    require_columns(df, ["classification"], needed_by="by_classification")
    names = string_arguments(
        classifications,
        what="classification",
        example="by_classification(df, 'SecurityUpdates')",
    )
    wanted = {n.lower() for n in names}
    return df[pick_rows(df["classification"], lambda c: str(c).lower() in wanted)]


def by_cve(df: pd.DataFrame, cve_id: str) -> pd.DataFrame:
    """Rows whose ``cve_ids`` list holds ``cve_id`` exactly.

    ``CVE-2024-1`` does not match a row listing only ``CVE-2024-10``; case is ignored.

    Raises
    ------
    ValidationError
        ``cve_id`` is not a CVE id such as ``CVE-2024-3094``.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.filters import by_cve
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> hit = by_cve(patches, "CVE-2024-1085")
    >>> hit["kb_id"].tolist(), hit["cve_ids"].tolist()
    (['kernel-modules-4.18.0-513.14.1.el8_9.x86_64'], ['CVE-2024-1085,CVE-2023-6817'])
    >>> by_cve(patches, "CVE-2024-108").empty
    True
    """
    require_columns(df, ["cve_ids"], needed_by="by_cve")
    if not isinstance(cve_id, str) or not _CVE_ID.fullmatch(cve_id.strip()):
        raise ValidationError(
            f"cve_id {cve_id!r} is not a CVE id: expected 'CVE-', a year and a number, "
            "e.g. 'CVE-2024-3094'"
        )
    wanted = cve_id.strip().upper()
    return df[pick_rows(df["cve_ids"], lambda c: wanted in split_cves(str(c)))]


def installed_before(df: pd.DataFrame, when: TimeLike) -> pd.DataFrame:
    """Rows installed strictly before ``when``; rows never installed (NaT) never match.

    Parameters
    ----------
    df
        A patches frame.
    when
        A datetime, date, pandas Timestamp, numpy datetime64 or ISO text. One that
        carries a time zone is converted to UTC; one without is taken as UTC.

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
    >>> from patchframe.filters import installed_before
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> len(installed_before(patches, "2024-01-01"))
    62
    """
    require_columns(df, ["installed_time"], needed_by="installed_before")
    end = nanoseconds(utc_timestamp(when, name="when"))
    times = utc_nanoseconds(df["installed_time"])
    mask: Mask = (times < end) & (times != NAT)
    return df[mask]


def installed_after(df: pd.DataFrame, when: TimeLike) -> pd.DataFrame:
    """Rows installed at or after ``when``; rows never installed (NaT) never match.

    ``installed_before(df, t)`` and ``installed_after(df, t)`` split the installed
    rows in two, with no row in both. ``when`` is read as in :func:`installed_before`.

    Raises
    ------
    ValidationError
        ``df`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame lacks a column the function needs.

    Examples
    --------
    >>> import datetime as dt
    >>> import patchframe as pf
    >>> from patchframe.filters import installed_after, installed_before
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> new_year = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    >>> after = len(installed_after(patches, new_year))
    >>> before = len(installed_before(patches, new_year))
    >>> after, before, after + before == int(patches["installed_time"].count())
    (39, 62, True)
    """
    require_columns(df, ["installed_time"], needed_by="installed_after")
    start = nanoseconds(utc_timestamp(when, name="when"))
    return df[utc_nanoseconds(df["installed_time"]) >= start]


def installed_between(df: pd.DataFrame, start: TimeLike, end: TimeLike) -> pd.DataFrame:
    """Rows installed at or after ``start`` and strictly before ``end``.

    Times are read as in :func:`installed_before`.

    Raises
    ------
    ValidationError
        ``end`` is earlier than ``start``.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.filters import installed_between
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> len(installed_between(patches, "2024-03-01", "2024-05-01"))
    21
    """
    require_columns(df, ["installed_time"], needed_by="installed_between")
    first = utc_timestamp(start, name="start")
    last = utc_timestamp(end, name="end")
    if last < first:
        raise ValidationError(f"end {end!r} is earlier than start {start!r}")
    times = utc_nanoseconds(df["installed_time"])
    return df[(times >= nanoseconds(first)) & (times < nanoseconds(last))]


def by_platform(df: pd.DataFrame, *platforms: str) -> pd.DataFrame:
    """Rows of nodes whose platform name or platform type is one of ``platforms``.

    Each value is matched, ignoring case, against ``platform_name`` (``"Ubuntu"``,
    ``"Amazon Linux"``, ``"Microsoft Windows Server 2022 Datacenter"``) and
    ``platform_type`` (``"Windows"``, ``"Linux"``, ``"MacOS"``). Those are node
    columns: ``Fleet.patches`` has them, a frame from ``load_instance_patches``
    does not.

    Raises
    ------
    ValidationError
        ``df`` is not a DataFrame, or another argument is not one the
        function accepts; the message names it and what is allowed.
    ColumnsError
        The frame has neither ``platform_name`` nor ``platform_type``.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.filters import by_platform
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> by_platform(fleet.patches, "Ubuntu", "SLES")["instance_id"].nunique()
    3
    >>> by_platform(fleet.patches, "windows")["instance_id"].nunique()
    4
    """
    require_frame(df, needed_by="by_platform")
    present = [c for c in _PLATFORM_COLUMNS if c in df.columns]
    if not present:
        raise ColumnsError(
            "by_platform needs the node column 'platform_name' or 'platform_type': "
            "Fleet.patches has them; a frame from load_instance_patches does not"
        )
    names = string_arguments(platforms, what="platform", example="by_platform(df, 'Windows')")
    wanted = {n.lower() for n in names}
    mask: Mask = np.zeros(len(df), dtype=np.bool_)
    for column in present:
        mask |= pick_rows(df[column], lambda c: str(c).lower() in wanted)
    return df[mask]


def by_node(df: pd.DataFrame, *instance_ids: str) -> pd.DataFrame:
    """Rows of the nodes ``instance_ids`` (``i-...`` or hybrid ``mi-...``).

    Raises
    ------
    ValidationError
        An id that is not a managed node id.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.filters import by_node
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> two = by_node(fleet.patches, "i-0e1f2a3b4c5d6e7f8", "mi-0a1b2c3d4e5f67890")
    >>> sorted(two["instance_id"].unique())
    ['i-0e1f2a3b4c5d6e7f8', 'mi-0a1b2c3d4e5f67890']
    """
    require_columns(df, ["instance_id"], needed_by="by_node")
    ids = string_arguments(
        instance_ids, what="instance_id", example="by_node(df, 'i-0123456789abcdef0')"
    )
    wanted = {validate_instance_id(i) for i in ids}
    return df[pick_rows(df["instance_id"], lambda c: c in wanted)]


def stale(
    df: pd.DataFrame, days: float = DEFAULT_STALE_DAYS, *, nodes: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Nodes whose last patch scan is older than ``days``, never-scanned nodes included.

    Age is ``scan_age``: from the node's last patch operation to the fleet's load
    time (``Fleet.loaded_at``), never to the wall clock, so the answer does not
    change as time passes. AWS's ``compliance`` is left as it is: a stale node
    keeps its verdict, it is just an old one.

    Parameters
    ----------
    df
        A nodes frame (``Fleet.nodes``), or a patches frame (then give ``nodes``):
        the rows of the stale nodes are kept.
    days
        Days since the last scan beyond which a node is stale (7 by default).
    nodes
        For a patches frame: the nodes frame that says how old each node's scan is.

    Raises
    ------
    ColumnsError
        The frame (or ``nodes``) lacks ``scan_age`` or ``operation_end_time``.
    ValidationError
        ``days`` is not a number of days of 0 or more.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.filters import stale
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> fleet = fleet.as_of("2024-06-14T08:00Z")  # the sample's clock
    >>> stale(fleet.nodes, days=7)[["instance_id", "ping_status", "scan_age"]]
                instance_id     ping_status                scan_age
    3  mi-0c2a5e7f9b1d3486a  ConnectionLost 14 days 00:47:28.832000
    6   i-05a7c9e1b3d5f7092          Online                     NaT
    >>> stale(fleet.patches, nodes=fleet.nodes)["instance_id"].unique().tolist()
    ['mi-0c2a5e7f9b1d3486a']
    """
    return _by_node(df, nodes, "stale", lambda n: stale_mask(n, days, needed_by="stale"))


def unreachable(df: pd.DataFrame, *, nodes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Nodes whose agent no longer answers: ping status ConnectionLost or Inactive.

    Such a node's ``compliance`` is what it last reported; it may have changed since.

    Parameters
    ----------
    df
        A nodes frame (``Fleet.nodes``), or a patches frame (then give ``nodes``).
    nodes
        For a patches frame: the nodes frame that says which nodes are reachable.

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
    >>> from patchframe.filters import unreachable
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> unreachable(fleet.nodes)[["instance_id", "ping_status", "compliance"]]
                instance_id     ping_status     compliance
    3  mi-0c2a5e7f9b1d3486a  ConnectionLost  NON_COMPLIANT
    >>> len(unreachable(fleet.patches, nodes=fleet.nodes))
    140
    """
    return _by_node(
        df, nodes, "unreachable", lambda n: unreachable_mask(n, needed_by="unreachable")
    )


def _by_node(
    df: pd.DataFrame,
    nodes: pd.DataFrame | None,
    name: str,
    decide: Callable[[pd.DataFrame], Mask],
) -> pd.DataFrame:
    """The rows of ``df`` whose node ``decide`` picks: ``df`` itself, or ``nodes``."""
    require_frame(df, needed_by=name)
    if nodes is not None:
        require_frame(nodes, needed_by=name, argument="nodes")
    if nodes is None:
        if "state" in df.columns and "kb_id" in df.columns:
            raise ColumnsError(
                f"{name} decides on nodes: for a patches frame pass its nodes frame too, "
                f"e.g. {name}(fleet.patches, nodes=fleet.nodes)"
            )
        return df[decide(df)]
    picked = np.append(decide(nodes), False)  # position -1 (a node not in nodes) picks False
    return df[picked[node_positions(df, nodes)]]
