"""Row filters for patches frames: a frame in, its matching rows out.

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
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._load import validate_instance_id
from ._schema import NON_COMPLIANT_STATES, SEVERITY_LEVELS, STATES, normalise_state
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
]

Mask = npt.NDArray[np.bool_]
#: What the installed_* filters accept for a point in time.
TimeLike = str | dt.date | np.datetime64

_CVE_ID = re.compile(r"CVE-\d{4}-\d+", re.IGNORECASE)
_PLATFORM_COLUMNS = ("platform_name", "platform_type")
_NAT = int(np.iinfo(np.int64).min)  # NaT as an int64


# Helpers shared with patchframe.summary and patchframe.plots.


def _require(df: pd.DataFrame, columns: Iterable[str], *, needed_by: str) -> None:
    """Raise ColumnsError naming the columns ``needed_by`` wants that ``df`` lacks."""
    lacking = [c for c in columns if c not in df.columns]
    if lacking:
        raise ColumnsError(
            f"{needed_by} needs column(s) {', '.join(map(repr, lacking))}, which the frame "
            f"lacks; it has: {', '.join(map(str, df.columns)) or 'no columns'}"
        )


def _codes(
    series: pd.Series[Any], rows: npt.NDArray[np.intp] | None = None
) -> tuple[npt.NDArray[np.intp], pd.Index]:
    """Category codes (-1 for NA), of ``rows`` only if given, and the categories of a
    column, categorical or not."""
    if not isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("category")
    codes = series.cat.codes.to_numpy()
    return (codes if rows is None else codes[rows]).astype(np.intp), series.cat.categories


def _pick(series: pd.Series[Any], keep: Callable[[Any], bool]) -> Mask:
    """Rows whose category satisfies ``keep``, deciding once per category, never per row."""
    codes, categories = _codes(series)
    table = np.fromiter((keep(c) for c in categories), np.bool_, len(categories))
    return np.append(table, False)[codes]  # code -1 (NA) picks the appended False


def _state_names(
    series: pd.Series[Any], rows: npt.NDArray[np.intp] | None = None
) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Codes of the state column and the model's spelling of each of its categories."""
    codes, categories = _codes(series, rows)
    return codes, [normalise_state(str(c)) for c in categories]


def _level_codes(
    series: pd.Series[Any], rows: npt.NDArray[np.intp] | None = None
) -> npt.NDArray[np.intp]:
    """Each row's position on SEVERITY_LEVELS (0 Unspecified ... 4 Critical), -1 for NA."""
    codes, categories = _codes(series, rows)
    position = [_level_index(str(c)) for c in categories]
    return np.array([*position, -1], dtype=np.intp)[codes]


def _level_index(level: str) -> int:
    by_lower = {name.lower(): i for i, name in enumerate(SEVERITY_LEVELS)}
    return by_lower.get(level.lower(), 0)  # the contract's dtype holds only these five


def _state_mask(df: pd.DataFrame, states: Collection[str]) -> Mask:
    codes, names = _state_names(df["state"])
    table = np.array([*(n in states for n in names), False], dtype=np.bool_)
    return table[codes]


def _utc_nanoseconds(series: pd.Series[Any]) -> npt.NDArray[np.int64]:
    """Nanoseconds since the epoch, UTC, NaT as numpy's NaT integer; naive counts as UTC."""
    times = pd.DatetimeIndex(series)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    return times.as_unit("ns").to_numpy().view(np.int64)


def _utc_timestamp(value: object, *, name: str) -> pd.Timestamp:
    """A point in time as an aware UTC Timestamp; naive values count as UTC."""
    if not isinstance(value, str | dt.date | np.datetime64):
        raise ValidationError(
            f"{name} {value!r} is not a point in time: expected a datetime, a date, "
            "a pandas Timestamp, a numpy datetime64 or ISO text such as '2024-05-01'"
        )
    try:
        stamp = pd.Timestamp(value)
    except ValueError as err:
        raise ValidationError(
            f"{name} {value!r} is not a date or time: expected ISO text such as "
            "'2024-05-01' or '2024-05-01T12:00:00Z'"
        ) from err
    if pd.isna(stamp):
        raise ValidationError(f"{name} {value!r} is not a point in time: NaT is not allowed")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _nanoseconds(stamp: pd.Timestamp) -> int:
    return int(stamp.as_unit("ns").value)


def _arguments(values: tuple[object, ...], *, what: str, example: str) -> list[str]:
    if not values:
        raise ValidationError(f"no {what} given: pass at least one, e.g. {example}")
    for value in values:
        if not isinstance(value, str) or not value:
            raise ValidationError(
                f"{what} {value!r} is not a non-empty string: pass each as its own "
                f"argument, e.g. {example}"
            )
    return list(map(str, values))


def _patch_state(value: str, known: Collection[str]) -> str:
    state = normalise_state(value)
    if state not in known:
        raise ValidationError(
            f"state {value!r} is not a patch state: expected one of {', '.join(known)} "
            "(CamelCase such as 'InstalledOther' works too)"
        )
    return state


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
    _require(df, ["state"], needed_by="by_state")
    names = _arguments(states, what="state", example="by_state(df, 'Missing', 'Failed')")
    _, in_frame = _state_names(df["state"])
    known = [*STATES, *(s for s in in_frame if s not in STATES)]
    wanted = {_patch_state(s, known) for s in names}
    return df[_state_mask(df, wanted)]


def non_compliant(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that make a node non-compliant by AWS's rules.

    Those are MISSING, FAILED, INSTALLED_PENDING_REBOOT and INSTALLED_REJECTED
    patches, and AVAILABLE_SECURITY_UPDATE ones, which the baseline's default counts
    as non-compliant (see :data:`patchframe.NON_COMPLIANT_STATES`).

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.filters import non_compliant
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> bad = non_compliant(patches)
    >>> len(bad), set(bad["state"].unique()) <= pf.NON_COMPLIANT_STATES
    (34, True)
    """
    _require(df, ["state"], needed_by="non_compliant")
    return df[_state_mask(df, NON_COMPLIANT_STATES)]


def severity_at_least(df: pd.DataFrame, level: str) -> pd.DataFrame:
    """Rows whose ``severity_level`` is ``level`` or worse.

    Parameters
    ----------
    df
        A patches frame.
    level
        One of Unspecified, Low, Medium, High, Critical, in any case. Vendor words
        map onto these by the table in :mod:`patchframe._schema` (Important is High).

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.filters import severity_at_least
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> serious = severity_at_least(patches, "high")
    >>> len(serious), sorted(serious["severity_level"].unique())
    (28, ['Critical', 'High'])
    """
    _require(df, ["severity_level"], needed_by="severity_at_least")
    levels = {name.lower(): i for i, name in enumerate(SEVERITY_LEVELS)}
    if not isinstance(level, str) or level.lower() not in levels:
        hint = ""
        if isinstance(level, str) and _severity_level_of(level) != "Unspecified":
            hint = f" ({level!r} is a vendor word; its level is {_severity_level_of(level)!r})"
        raise ValidationError(
            f"severity level {level!r} is not a level: expected one of "
            f"{', '.join(SEVERITY_LEVELS)}{hint}"
        )
    return df[_level_codes(df["severity_level"]) >= levels[level.lower()]]


def by_classification(df: pd.DataFrame, *classifications: str) -> pd.DataFrame:
    """Rows whose classification is one of ``classifications``, ignoring case.

    Classifications are the vendor's (``SecurityUpdates``, ``CriticalUpdates`` on
    Windows; ``Security``, ``Bugfix`` on Linux), so a value the frame does not
    hold is not an error: it matches no row.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.filters import by_classification
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> len(by_classification(patches, "security")), len(by_classification(patches, "Bugfix"))
    (64, 31)
    """
    _require(df, ["classification"], needed_by="by_classification")
    names = _arguments(
        classifications,
        what="classification",
        example="by_classification(df, 'SecurityUpdates')",
    )
    wanted = {n.lower() for n in names}
    return df[_pick(df["classification"], lambda c: str(c).lower() in wanted)]


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
    _require(df, ["cve_ids"], needed_by="by_cve")
    if not isinstance(cve_id, str) or not _CVE_ID.fullmatch(cve_id.strip()):
        raise ValidationError(
            f"cve_id {cve_id!r} is not a CVE id: expected 'CVE-', a year and a number, "
            "e.g. 'CVE-2024-3094'"
        )
    wanted = cve_id.strip().upper()
    return df[_pick(df["cve_ids"], lambda c: wanted in _split_cves(str(c)))]


def _split_cves(text: str) -> set[str]:
    return {part.strip().upper() for part in text.split(",")}


def installed_before(df: pd.DataFrame, when: TimeLike) -> pd.DataFrame:
    """Rows installed strictly before ``when``; rows never installed (NaT) never match.

    Parameters
    ----------
    df
        A patches frame.
    when
        A datetime, date, pandas Timestamp, numpy datetime64 or ISO text. One that
        carries a time zone is converted to UTC; one without is taken as UTC.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.filters import installed_before
    >>> patches = pf.load_instance_patches("mi-0a1b2c3d4e5f67890", client=pf.sample_client())
    >>> len(installed_before(patches, "2024-01-01"))
    62
    """
    _require(df, ["installed_time"], needed_by="installed_before")
    end = _nanoseconds(_utc_timestamp(when, name="when"))
    times = _utc_nanoseconds(df["installed_time"])
    mask: Mask = (times < end) & (times != _NAT)
    return df[mask]


def installed_after(df: pd.DataFrame, when: TimeLike) -> pd.DataFrame:
    """Rows installed at or after ``when``; rows never installed (NaT) never match.

    ``installed_before(df, t)`` and ``installed_after(df, t)`` split the installed
    rows in two, with no row in both. ``when`` is read as in :func:`installed_before`.

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
    _require(df, ["installed_time"], needed_by="installed_after")
    start = _nanoseconds(_utc_timestamp(when, name="when"))
    return df[_utc_nanoseconds(df["installed_time"]) >= start]


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
    _require(df, ["installed_time"], needed_by="installed_between")
    first = _utc_timestamp(start, name="start")
    last = _utc_timestamp(end, name="end")
    if last < first:
        raise ValidationError(f"end {end!r} is earlier than start {start!r}")
    times = _utc_nanoseconds(df["installed_time"])
    return df[(times >= _nanoseconds(first)) & (times < _nanoseconds(last))]


def by_platform(df: pd.DataFrame, *platforms: str) -> pd.DataFrame:
    """Rows of nodes whose platform name or platform type is one of ``platforms``.

    Each value is matched, ignoring case, against ``platform_name`` (``"Ubuntu"``,
    ``"Amazon Linux"``, ``"Microsoft Windows Server 2022 Datacenter"``) and
    ``platform_type`` (``"Windows"``, ``"Linux"``, ``"MacOS"``). Those are node
    columns: ``Fleet.patches`` has them, a frame from ``load_instance_patches``
    does not.

    Raises
    ------
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
    present = [c for c in _PLATFORM_COLUMNS if c in df.columns]
    if not present:
        raise ColumnsError(
            "by_platform needs the node column 'platform_name' or 'platform_type': "
            "Fleet.patches has them; a frame from load_instance_patches does not"
        )
    names = _arguments(platforms, what="platform", example="by_platform(df, 'Windows')")
    wanted = {n.lower() for n in names}
    mask: Mask = np.zeros(len(df), dtype=np.bool_)
    for column in present:
        mask |= _pick(df[column], lambda c: str(c).lower() in wanted)
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
    _require(df, ["instance_id"], needed_by="by_node")
    ids = _arguments(
        instance_ids, what="instance_id", example="by_node(df, 'i-0123456789abcdef0')"
    )
    wanted = {validate_instance_id(i) for i in ids}
    return df[_pick(df["instance_id"], lambda c: c in wanted)]
