"""The data contract: raw API records in, typed patches frames out.

This is the only module that knows the shapes the API sends. Everything after it
sees frames with the columns and dtypes of :data:`PATCH_DTYPES`.

Severity levels
---------------
Each vendor grades patches in its own words. ``severity`` keeps the word as sent;
``severity_level`` puts it on one ordered scale, Critical > High > Medium > Low >
Unspecified, by this table (matched without regard to case):

==========================  ===============================================
severity_level              vendor words
==========================  ===============================================
Critical                    Critical; Required (Ubuntu/Debian priority)
High                        Important; High
Medium                      Moderate; Medium; Standard (Ubuntu/Debian)
Low                         Low; Optional, Extra (Ubuntu/Debian); Informational
Unspecified                 Unspecified, an empty value, any other word
==========================  ===============================================
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .exceptions import ColumnsError, ValidationError

__all__ = [
    "ACCOUNT_COLUMNS",
    "ACCOUNT_DTYPES",
    "ACCOUNT_STATES",
    "COMPLIANT_STATES",
    "COUNT_COLUMNS",
    "ERROR_DTYPES",
    "NODE_COLUMNS",
    "NODE_PATCH_COLUMNS",
    "NON_COMPLIANT_STATES",
    "OPEN_STATES",
    "PATCH_COLUMNS",
    "PATCH_DTYPES",
    "SEVERITY_LEVELS",
    "STATES",
    "STATE_COUNT_FIELDS",
    "TAG_DTYPES",
    "UNREACHABLE_PINGS",
    "WIRE_STATES",
    "AccountRow",
    "NodeKey",
    "PatchColumns",
    "UnknownStateWarning",
    "account_count",
    "accounts_worth_listing",
    "build_accounts",
    "build_errors",
    "build_nodes",
    "build_patches",
    "build_tags",
    "concat_patches",
    "empty_accounts",
    "empty_patches",
    "empty_tags",
    "normalise_state",
    "scan_ages",
    "severity_level_of",
    "to_utc",
    "validate_instance_id",
]

#: Patch states of the API model, in the model's order.
STATES: tuple[str, ...] = (
    "INSTALLED",
    "INSTALLED_OTHER",
    "INSTALLED_PENDING_REBOOT",
    "INSTALLED_REJECTED",
    "MISSING",
    "NOT_APPLICABLE",
    "FAILED",
    "AVAILABLE_SECURITY_UPDATE",
)

#: How real responses spell each state (the model says INSTALLED_OTHER, the wire
#: InstalledOther); filters want this spelling too.
WIRE_STATES: dict[str, str] = {
    state: "".join(word.capitalize() for word in state.split("_")) for state in STATES
}

#: States AWS counts as compliant.
COMPLIANT_STATES: frozenset[str] = frozenset({"INSTALLED", "INSTALLED_OTHER"})

#: States AWS counts as non-compliant. AVAILABLE_SECURITY_UPDATE is set per
#: baseline; it is counted here as the baseline default, NON_COMPLIANT.
NON_COMPLIANT_STATES: frozenset[str] = frozenset(
    {
        "MISSING",
        "FAILED",
        "INSTALLED_PENDING_REBOOT",
        "INSTALLED_REJECTED",
        "AVAILABLE_SECURITY_UPDATE",
    }
)

#: The states of a patch that is still to be installed: what "missing" means in
#: summaries, the workbook and history.
OPEN_STATES: frozenset[str] = frozenset({"MISSING", "FAILED"})

#: The one severity scale, lowest first (the order of the ordered category).
SEVERITY_LEVELS: tuple[str, ...] = ("Unspecified", "Low", "Medium", "High", "Critical")

_LEVEL_OF_WORD: dict[str, str] = {
    "critical": "Critical",
    "required": "Critical",
    "important": "High",
    "high": "High",
    "moderate": "Medium",
    "medium": "Medium",
    "standard": "Medium",
    "low": "Low",
    "optional": "Low",
    "extra": "Low",
    "informational": "Low",
}

#: Columns of the patches frame and their dtypes, in order.
PATCH_DTYPES: dict[str, Any] = {
    "account_id": "category",
    "region": "category",
    "instance_id": "category",
    "kb_id": "category",
    "title": "category",
    "classification": "category",
    "severity": "category",
    "severity_level": pd.CategoricalDtype(list(SEVERITY_LEVELS), ordered=True),
    "state": pd.CategoricalDtype(list(STATES), ordered=True),
    "installed_time": pd.DatetimeTZDtype("ns", "UTC"),
    "cve_ids": "category",
}
PATCH_COLUMNS: tuple[str, ...] = tuple(PATCH_DTYPES)

# InstalledTime values that mean "never": the Unix epoch and .NET's DateTime.MinValue.
# AWS's own pattern; ASCII, as AWS matches it, so no other script's digits pass.
_INSTANCE_ID = re.compile(r"i-(\w{8}|\w{17})|mi-\w{17}", re.ASCII)
_SENTINEL_SECONDS = (0.0, -62135596800.0)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class UnknownStateWarning(UserWarning):
    """A patch state that patchframe does not know yet; it is kept as its own category."""


def normalise_state(value: str) -> str:
    """Spell a patch state the way the API model does.

    Real responses say ``InstalledOther``; the model says ``INSTALLED_OTHER``.
    Both, and any mix of case, give the model's spelling.

    Examples
    --------
    >>> normalise_state("InstalledPendingReboot")
    'INSTALLED_PENDING_REBOOT'
    >>> normalise_state("NOT_APPLICABLE")
    'NOT_APPLICABLE'
    """
    if "_" in value or value.isupper():
        return value.upper()
    snake = "".join("_" + c if c.isupper() and i else c for i, c in enumerate(value))
    return snake.upper()


def severity_level_of(severity: str | None) -> str:
    """Put a vendor's severity word on patchframe's one scale.

    Examples
    --------
    >>> severity_level_of("Important")
    'High'
    >>> severity_level_of("")
    'Unspecified'
    """
    if not severity:
        return "Unspecified"
    return _LEVEL_OF_WORD.get(severity.lower(), "Unspecified")


def validate_instance_id(instance_id: object) -> str:
    """Check a node id against the API's pattern.

    Examples
    --------
    >>> validate_instance_id("i-0123456789abcdef0")
    'i-0123456789abcdef0'
    >>> validate_instance_id("web-1")
    Traceback (most recent call last):
    ...
    patchframe.exceptions.ValidationError: instance_id 'web-1' is not a managed node id: ...
    """
    if not isinstance(instance_id, str) or not _INSTANCE_ID.fullmatch(instance_id):
        raise ValidationError(
            f"instance_id {instance_id!r} is not a managed node id: expected 'i-' and 8 "
            "or 17 letters or digits (EC2), or 'mi-' and 17 (hybrid)"
        )
    return instance_id


def to_utc(value: object) -> float:
    """Seconds since the epoch of an API timestamp, NaN for the "never" sentinels.

    Accepts what the wire sends (epoch seconds as int or float), what botocore's
    parser makes of it (an aware datetime in any zone), and ISO text.

    Examples
    --------
    >>> to_utc(1706745600)
    1706745600.0
    >>> import datetime as dt
    >>> to_utc(dt.datetime(2024, 2, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    1706745600.0
    >>> to_utc(-62135596800)
    nan
    """
    if value is None:
        return float("nan")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, dt.datetime):
        if value.year == 1:  # DateTime.MinValue; .timestamp() may overflow near it
            return float("nan")
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        seconds = (aware - _EPOCH).total_seconds()
    elif isinstance(value, str):
        return to_utc(pd.Timestamp(value).to_pydatetime()) if value else float("nan")
    else:
        raise TypeError(f"InstalledTime {value!r}: expected epoch seconds or a datetime")
    return float("nan") if seconds in _SENTINEL_SECONDS else seconds


@dataclass(frozen=True, slots=True)
class NodeKey:
    """Where a node's patches came from."""

    instance_id: str
    account_id: str | None = None
    region: str | None = None


@dataclass(slots=True)
class PatchColumns:
    """One node's raw patch fields, column by column, as pages arrive.

    Examples
    --------
    >>> cols = PatchColumns()
    >>> cols.extend([{"KBId": "KB1", "State": "Missing", "InstalledTime": 0}])
    >>> len(cols)
    1
    """

    kb_id: list[str] = field(default_factory=list)
    title: list[str] = field(default_factory=list)
    classification: list[str] = field(default_factory=list)
    severity: list[str] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
    installed_time: list[object] = field(default_factory=list)
    cve_ids: list[str] = field(default_factory=list)
    #: The load's texts, shared by its nodes so that each is held once (:func:`_shared`).
    #: None keeps values as the pages hold them, as a load of one node does: its columns
    #: become its frame at once, and the frame builds in the same 13 ms either way.
    texts: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.kb_id)

    def extend(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append API patch records (wire JSON or botocore-parsed dicts)."""
        # One pass per field: list comprehensions beat per-row appends several fold.
        rows = records if isinstance(records, list) else list(records)
        texts = self.texts
        self.kb_id.extend(_shared(texts, [r.get("KBId", "") for r in rows]))
        self.title.extend(_shared(texts, [r.get("Title", "") for r in rows]))
        self.classification.extend(_shared(texts, [r.get("Classification", "") for r in rows]))
        self.severity.extend(_shared(texts, [r.get("Severity", "") for r in rows]))
        self.state.extend(_shared(texts, [r.get("State", "") for r in rows]))
        self.installed_time.extend([r.get("InstalledTime") for r in rows])
        self.cve_ids.extend(_shared(texts, [r.get("CVEIds", "") for r in rows]))


def _shared(texts: dict[str, str] | None, values: list[Any]) -> list[Any]:
    """The same values, each text the one object ``texts`` holds for it (if any).

    A fleet repeats a few thousand KB ids, titles and CVE lists over its rows.
    Measured on a 20-account load of 132,000 rows sharing one table: its raw
    columns hold 11 MB instead of 45 MB, and building its frame takes 0.2 s
    instead of 0.5 s once the last page is in (factorizing shared objects is
    faster). The table costs about 0.16 ms of CPU a 100-row page in a load (6.5 ms
    of the 138 ms a 4,000-row node takes; 0.03 ms a page timed alone, with the
    table in the CPU's cache), and goes with the load (``sys.intern`` would keep
    every text for the life of the process on Python 3.12). A value that is not
    text is kept as it is, for the frame builder to judge.
    """
    if texts is None:
        return values
    return [texts.setdefault(v, v) if type(v) is str else v for v in values]


def _text_category(values: Sequence[object]) -> pd.Categorical[Any]:
    """Categorical of strings with ``""`` and None as NA."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    keep = np.array([bool(u) for u in uniques], dtype=bool)
    if keep.all():
        return pd.Categorical.from_codes(codes, dtype=_str_dtype(uniques))
    remap = np.where(keep, np.cumsum(keep) - 1, -1).astype(codes.dtype)
    remap = np.append(remap, -1)  # factorize's NA code -1 indexes the last slot
    return pd.Categorical.from_codes(remap[codes], dtype=_str_dtype(uniques[keep]))


def _str_dtype(categories: Iterable[object]) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(pd.Index(list(categories), dtype="str"))


def _state_category(values: Sequence[str]) -> pd.Categorical[Any]:
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    names = [normalise_state(str(u)) for u in uniques]
    unknown = sorted({n for n in names if n not in STATES})
    if unknown:
        warnings.warn(
            f"unknown patch state(s) {unknown}: kept as their own categories; "
            f"known states are {list(STATES)}",
            UnknownStateWarning,
            stacklevel=3,
        )
    categories = [*STATES, *unknown]
    position = {name: i for i, name in enumerate(categories)}
    remap = np.array([position[n] for n in names] + [-1], dtype=np.int16)
    return pd.Categorical.from_codes(
        remap[codes], dtype=pd.CategoricalDtype(categories, ordered=True)
    )


def _severity_level_category(severity: pd.Categorical) -> pd.Categorical[Any]:
    levels = [SEVERITY_LEVELS.index(severity_level_of(str(c))) for c in severity.categories]
    remap = np.array([*levels, 0], dtype=np.int8)  # NA severity -> Unspecified
    return pd.Categorical.from_codes(remap[severity.codes], dtype=PATCH_DTYPES["severity_level"])


def _times(values: Sequence[object]) -> pd.DatetimeIndex:
    try:
        seconds = np.asarray(values, dtype=np.float64)
        seconds[np.isin(seconds, _SENTINEL_SECONDS)] = np.nan
    except (TypeError, ValueError):  # datetimes or text, as botocore's parser gives them
        seconds = np.fromiter((to_utc(v) for v in values), np.float64, len(values))
    # Whole microseconds: float seconds carry binary noise below that.
    micros = np.round(seconds * 1e6)
    return pd.DatetimeIndex(pd.to_datetime(micros, unit="us", utc=True)).as_unit("ns")


def _repeated(labels: Sequence[str | None], counts: Sequence[int]) -> pd.Categorical[Any]:
    """A categorical column holding ``labels[i]`` ``counts[i]`` times, built from codes."""
    codes, uniques = pd.factorize(np.asarray(labels, dtype=object), use_na_sentinel=True)
    return pd.Categorical.from_codes(np.repeat(codes, counts), dtype=_str_dtype(uniques))


def build_patches(
    parts: Sequence[tuple[NodeKey, PatchColumns]],
    *,
    node_columns: Mapping[str, Sequence[str | None]] | None = None,
) -> pd.DataFrame:
    """Build one typed patches frame from the raw columns of one or more nodes.

    ``node_columns`` adds per-node categorical columns after the contract's:
    each maps a column name to one value per part.

    Examples
    --------
    >>> cols = PatchColumns()
    >>> cols.extend([{"KBId": "KB5034439", "Title": "", "Classification": "",
    ...               "Severity": "", "State": "InstalledOther", "InstalledTime": 0}])
    >>> frame = build_patches([(NodeKey("i-0123456789abcdef0"), cols)])
    >>> frame.loc[0, "state"], frame.loc[0, "title"], frame.loc[0, "installed_time"]
    ('INSTALLED_OTHER', nan, NaT)
    """
    counts = [len(cols) for _, cols in parts]

    def joined(name: str) -> list[Any]:
        if len(parts) == 1:
            return list(getattr(parts[0][1], name))
        out: list[Any] = []
        for _, cols in parts:
            out.extend(getattr(cols, name))
        return out

    severity = _text_category(joined("severity"))
    data: dict[str, Any] = {
        "account_id": _repeated([k.account_id for k, _ in parts], counts),
        "region": _repeated([k.region for k, _ in parts], counts),
        "instance_id": _repeated([k.instance_id for k, _ in parts], counts),
        "kb_id": _text_category(joined("kb_id")),
        "title": _text_category(joined("title")),
        "classification": _text_category(joined("classification")),
        "severity": severity,
        "severity_level": _severity_level_category(severity),
        "state": _state_category(joined("state")),
        "installed_time": _times(joined("installed_time")),
        "cve_ids": _text_category(joined("cve_ids")),
    }
    for name, labels in (node_columns or {}).items():
        data[name] = _repeated(labels, counts)
    return pd.DataFrame(data)


def empty_patches() -> pd.DataFrame:
    """A patches frame with every column and dtype and no rows.

    Examples
    --------
    >>> empty = empty_patches()
    >>> len(empty), empty["installed_time"].dtype
    (0, datetime64[ns, UTC])
    """
    return build_patches([])


def concat_patches(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack patches frames, keeping every categorical column categorical.

    ``pandas.concat`` turns categoricals whose categories differ into plain
    text; this unions the categories instead.

    Raises
    ------
    ValidationError
        An item of ``frames`` is not a DataFrame (its position is named).
    ColumnsError
        A frame lacks a column the first one has.

    Examples
    --------
    >>> a, b = PatchColumns(), PatchColumns()
    >>> a.extend([{"KBId": "KB1", "State": "Missing"}])
    >>> b.extend([{"KBId": "KB2", "State": "Installed"}])
    >>> both = concat_patches([build_patches([(NodeKey("i-00000001"), a)]),
    ...                        build_patches([(NodeKey("i-00000002"), b)])])
    >>> list(both["kb_id"].cat.categories), str(both["kb_id"].dtype)
    (['KB1', 'KB2'], 'category')
    """
    if not frames:
        return empty_patches()
    _check_alike(frames)
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    columns: dict[str, Any] = {}
    for name in frames[0].columns:
        pieces = [f[name] for f in frames]
        if isinstance(pieces[0].dtype, pd.CategoricalDtype):
            categories: list[Any] = []
            seen: set[Any] = set()
            for p in pieces:
                for c in p.cat.categories:
                    if c not in seen:
                        seen.add(c)
                        categories.append(c)
            first = pieces[0].dtype
            if first.ordered:
                # Keep the scale's order; states nobody knew yet go last.
                base = list(first.categories)
                categories = base + [c for c in categories if c not in set(base)]
                dtype = pd.CategoricalDtype(categories, ordered=True)
            else:
                dtype = _str_dtype(categories)
            pieces = [p.cat.set_categories(dtype.categories).astype(dtype) for p in pieces]
        columns[name] = pd.concat(pieces, ignore_index=True)
    return pd.DataFrame(columns)


def _check_alike(frames: Sequence[pd.DataFrame]) -> None:
    """Raise naming the position of the first frame that is not a frame like frames[0]."""
    for position, frame in enumerate(frames):
        if not isinstance(frame, pd.DataFrame):
            raise ValidationError(
                f"concat_patches: frames[{position}] is a {type(frame).__name__}, but a "
                "pandas DataFrame was expected"
            )
        lacking = [c for c in frames[0].columns if c not in frame.columns]
        if lacking:
            raise ColumnsError(
                f"concat_patches: frames[{position}] lacks column(s) "
                f"{', '.join(map(repr, lacking))} that frames[0] has: stack patches frames "
                "only"
            )


# --- nodes: one row per managed node ---------------------------------------

#: Instance information fields, as named in the nodes frame.
_NODE_FIELDS: dict[str, str] = {
    "InstanceId": "instance_id",
    "ComputerName": "computer_name",
    "Name": "name",
    "IPAddress": "ip_address",
    "PlatformType": "platform_type",
    "PlatformName": "platform_name",
    "PlatformVersion": "platform_version",
    "ResourceType": "resource_type",
    "PingStatus": "ping_status",
    "AgentVersion": "agent_version",
}
_STATE_FIELDS: dict[str, str] = {"PatchGroup": "patch_group", "BaselineId": "baseline_id"}
#: The DescribeInstancePatchStates count of each state: INSTALLED_OTHER -> InstalledOtherCount.
STATE_COUNT_FIELDS: dict[str, str] = {state: f"{wire}Count" for state, wire in WIRE_STATES.items()}
#: Patch-state counts, as named in the nodes frame (the states in lower case).
_COUNT_FIELDS: dict[str, str] = {
    **{field: state.lower() for state, field in STATE_COUNT_FIELDS.items()},
    "CriticalNonCompliantCount": "critical_non_compliant",
    "SecurityNonCompliantCount": "security_non_compliant",
    "OtherNonCompliantCount": "other_non_compliant",
}
COUNT_COLUMNS: tuple[str, ...] = tuple(_COUNT_FIELDS.values())

#: Node columns that the fleet's patches frame carries beside the contract's.
NODE_PATCH_COLUMNS: tuple[str, ...] = (
    "computer_name",
    "platform_type",
    "platform_name",
    "platform_version",
    "patch_group",
    "baseline_id",
)
NODE_COLUMNS: tuple[str, ...] = (
    "account_id",
    "account_name",
    "region",
    *_NODE_FIELDS.values(),
    "reachable",
    "last_ping_time",
    *_STATE_FIELDS.values(),
    "operation",
    "operation_end_time",
    "scan_age",
    *COUNT_COLUMNS,
    "compliance",
    "patch_rows",
)
_COMPLIANCE = pd.CategoricalDtype(["NON_COMPLIANT", "COMPLIANT", "NOT_SCANNED"])
#: Ping statuses of a node the agent no longer answers from: ``reachable`` is False.
UNREACHABLE_PINGS: frozenset[str] = frozenset({"ConnectionLost", "Inactive"})
_NON_COMPLIANT_COUNTS = [state.lower() for state in STATES if state in NON_COMPLIANT_STATES]


def build_nodes(
    keys: Sequence[NodeKey],
    infos: Mapping[NodeKey, Mapping[str, Any]],
    states: Mapping[NodeKey, Mapping[str, Any]],
    patch_rows: Mapping[NodeKey, int],
    *,
    loaded_at: pd.Timestamp | None = None,
    account_names: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """One row per node: instance information, patch-state counts, compliance.

    ``account_name`` is the name ``account_names`` gives the node's account, NA
    where it gives none (or is None: a load without AWS Organizations).

    ``compliance`` follows AWS's rules: NON_COMPLIANT when any patch is missing,
    failed, installed pending reboot, installed rejected or an available security
    update; COMPLIANT otherwise; NOT_SCANNED when the node has no patch state.
    ``patch_rows`` is the number of patch rows loaded, NA for a node that failed.

    Staleness sits beside AWS's verdict, never folded into it: ``scan_age`` is the
    time from the node's last patch operation (``operation_end_time``) to
    ``loaded_at``, the load's time (NaT for a node never scanned, or without
    ``loaded_at``); ``reachable`` is False where the ping status is ConnectionLost
    or Inactive (:data:`UNREACHABLE_PINGS`).

    Examples
    --------
    >>> key = NodeKey("i-0123456789abcdef0", "123456789012", "eu-west-1")
    >>> nodes = build_nodes([key], {key: {"PlatformName": "Ubuntu", "PingStatus": "Inactive"}},
    ...                     {key: {"MissingCount": 2, "InstalledCount": 5,
    ...                            "OperationEndTime": 1718352000}}, {key: 7},
    ...                     loaded_at=pd.Timestamp("2024-06-24T08:00Z"))
    >>> nodes.loc[0, ["platform_name", "missing", "compliance", "patch_rows"]].astype(str).tolist()
    ['Ubuntu', '2', 'NON_COMPLIANT', '7']
    >>> nodes.loc[0, "scan_age"], nodes.loc[0, "reachable"]
    (Timedelta('10 days 00:00:00'), np.False_)
    >>> named = build_nodes([key], {}, {}, {}, account_names={"123456789012": "prod-payments"})
    >>> named.loc[0, ["account_id", "account_name"]].tolist()
    ['123456789012', 'prod-payments']
    """
    names = account_names or {}
    data: dict[str, Any] = {
        "account_id": [k.account_id for k in keys],
        "account_name": [names.get(k.account_id) if k.account_id else None for k in keys],
        "region": [k.region for k in keys],
    }
    for field_name, column in _NODE_FIELDS.items():
        data[column] = [infos.get(k, {}).get(field_name) or None for k in keys]
    data["instance_id"] = [k.instance_id for k in keys]
    data["last_ping_time"] = [infos.get(k, {}).get("LastPingDateTime") for k in keys]
    for field_name, column in _STATE_FIELDS.items():
        data[column] = [states.get(k, {}).get(field_name) or None for k in keys]
    data["operation"] = [states.get(k, {}).get("Operation") for k in keys]
    data["operation_end_time"] = [states.get(k, {}).get("OperationEndTime") for k in keys]
    for field_name, column in _COUNT_FIELDS.items():
        data[column] = pd.array(
            [states[k].get(field_name, 0) if k in states else None for k in keys],
            dtype="Int64",
        )
    # Each column typed from its raw values, before the frame is made: through an
    # untyped frame, botocore's datetimes would become tz-aware Timestamps first.
    text = (
        "account_id",
        "account_name",
        "region",
        *_NODE_FIELDS.values(),
        *_STATE_FIELDS.values(),
        "operation",
    )
    for column in text:
        if column in ("name", "ip_address"):
            data[column] = pd.array(data[column], dtype="str")
        else:
            data[column] = _text_category(data[column])
    for column in ("last_ping_time", "operation_end_time"):
        data[column] = _times(data[column])
    frame = pd.DataFrame(data, columns=[c for c in NODE_COLUMNS if c in data])
    scanned = np.array([k in states for k in keys], dtype=bool)
    non_compliant = frame[_NON_COMPLIANT_COUNTS].fillna(0).sum(axis=1).to_numpy() > 0
    frame["compliance"] = pd.Categorical(
        np.where(~scanned, "NOT_SCANNED", np.where(non_compliant, "NON_COMPLIANT", "COMPLIANT")),
        dtype=_COMPLIANCE,
    )
    frame["patch_rows"] = pd.array([patch_rows.get(k) for k in keys], dtype="Int64")
    frame["scan_age"] = scan_ages(frame["operation_end_time"], loaded_at)
    pings = frame["ping_status"].astype("str")
    frame["reachable"] = ~pings.isin(list(UNREACHABLE_PINGS)).to_numpy()
    return frame[list(NODE_COLUMNS)]


def scan_ages(end_times: pd.Series[Any], loaded_at: pd.Timestamp | None) -> pd.Series[Any]:
    """Each node's scan age: ``loaded_at`` minus its last operation's end; NaT when unknown.

    Examples
    --------
    >>> ends = pd.Series(pd.to_datetime(["2024-06-13T08:00Z", None], utc=True))
    >>> scan_ages(ends, pd.Timestamp("2024-06-14T08:00Z")).tolist()
    [Timedelta('1 days 00:00:00'), NaT]
    >>> scan_ages(ends, None).isna().all()
    np.True_
    """
    if loaded_at is None:
        return pd.Series(pd.NaT, index=end_times.index, dtype="timedelta64[ns]")
    ages: pd.Series[Any] = (loaded_at - end_times).astype("timedelta64[ns]")
    return ages


# --- errors: one row per failed node or call --------------------------------

ERROR_DTYPES: dict[str, Any] = {
    "account_id": "str",
    "region": "str",
    "instance_id": "str",
    "operation": "str",
    "error_code": "str",
    "message": "str",
    "attempts": "Int64",
}


def build_errors(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The errors frame: account, region, node, operation, code, message, attempts.

    Examples
    --------
    >>> build_errors([]).columns.tolist()
    ['account_id', 'region', 'instance_id', 'operation', 'error_code', 'message', 'attempts']
    """
    frame = pd.DataFrame(list(rows), columns=list(ERROR_DTYPES))
    return frame.astype(ERROR_DTYPES)


# --- tags: one row per node and tag key ----------------------------------------

#: Columns of the tags frame (``Fleet.tags``), all categories.
TAG_DTYPES: dict[str, str] = dict.fromkeys(
    ("account_id", "region", "instance_id", "key", "value"), "category"
)


def build_tags(rows: Iterable[tuple[NodeKey, str, str]]) -> pd.DataFrame:
    """The long tags frame: one row per node and tag key, in the order given.

    Keys and values are kept exactly as AWS sends them: case, spaces, any Unicode,
    and an empty value (a tag may have one), which stays ``""``, not NA.

    Examples
    --------
    >>> key = NodeKey("mi-0123456789abcdef0", "123456789012", "eu-west-1")
    >>> tags = build_tags([(key, "Team", "Zahlungsverkehr"), (key, "Backup", "")])
    >>> tags[["instance_id", "key", "value"]].values.tolist()
    [['mi-0123456789abcdef0', 'Team', 'Zahlungsverkehr'], ['mi-0123456789abcdef0', 'Backup', '']]
    >>> empty_tags().dtypes.unique().tolist()
    [CategoricalDtype(categories=[], ordered=False, categories_dtype=str)]
    """
    listed = list(rows)
    data: dict[str, list[str | None]] = {
        "account_id": [k.account_id for k, _, _ in listed],
        "region": [k.region for k, _, _ in listed],
        "instance_id": [k.instance_id for k, _, _ in listed],
        "key": [key for _, key, _ in listed],
        "value": [value for _, _, value in listed],
    }
    frame = pd.DataFrame(
        {name: _exact_category(values) for name, values in data.items()}, columns=list(TAG_DTYPES)
    )
    return frame


def _exact_category(values: Sequence[str | None]) -> pd.Categorical[Any]:
    """Categorical of strings as they are: only None is NA, ``""`` is a value."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    return pd.Categorical.from_codes(codes, dtype=_str_dtype(uniques))


def empty_tags() -> pd.DataFrame:
    """A tags frame with every column and dtype and no rows.

    Examples
    --------
    >>> empty_tags().columns.tolist()
    ['account_id', 'region', 'instance_id', 'key', 'value']
    """
    return build_tags([])


# --- accounts: one row per account of the load ------------------------------------

#: Account states of AWS Organizations, in its model's order (``State``; the older
#: ``Status`` says ACTIVE, SUSPENDED or PENDING_CLOSURE, words of the same list).
ACCOUNT_STATES: tuple[str, ...] = (
    "PENDING_ACTIVATION",
    "ACTIVE",
    "SUSPENDED",
    "PENDING_CLOSURE",
    "CLOSED",
)

#: Columns of the accounts frame (``Fleet.accounts``) and their dtypes, in order.
ACCOUNT_DTYPES: dict[str, Any] = {
    "account_id": "category",
    "account_name": "category",
    "state": pd.CategoricalDtype(list(ACCOUNT_STATES)),
    "loaded": "bool",
    "regions": "str",
    "nodes": "Int64",
    "non_compliant_nodes": "Int64",
    "error_code": "str",
}
ACCOUNT_COLUMNS: tuple[str, ...] = tuple(ACCOUNT_DTYPES)


class AccountRow(NamedTuple):
    """One account of a load: who it is, where it was loaded, and whether it failed.

    ``error_code`` is None for an account that loaded (its role assumed, its
    regions read), else the code of what stopped it (``AccessDenied``...).
    ``loaded`` says so outright where the code alone does not: an account listed
    but never tried (False, no code). None, the default, means ``error_code is None``.

    Examples
    --------
    >>> AccountRow("111122223333", "prod", "ACTIVE", ("eu-west-1",), None).is_loaded
    True
    >>> AccountRow("444455556666", "old", "SUSPENDED", (), None, loaded=False).is_loaded
    False
    """

    account_id: str
    account_name: str | None
    state: str | None
    regions: tuple[str, ...]
    error_code: str | None
    loaded: bool | None = None

    @property
    def is_loaded(self) -> bool:
        """Whether the account loaded: ``loaded`` when given, else whether no error stopped it."""
        return self.error_code is None if self.loaded is None else self.loaded


def build_accounts(rows: Sequence[AccountRow], nodes: pd.DataFrame) -> pd.DataFrame:
    """The accounts frame: one row per account, in the order given.

    ``state`` is a category of :data:`ACCOUNT_STATES` (every one of them, whether
    present or not, so frames of two loads compare and stack); a state AWS adds
    later is kept after them, never NA; NA where the state is unknown. ``loaded``
    is :attr:`AccountRow.is_loaded`. ``regions`` lists the regions loaded,
    sorted, joined with ``", "`` (``""`` for none). ``nodes`` and
    ``non_compliant_nodes`` count the account's rows of ``nodes`` (compliance
    NON_COMPLIANT): 0 for an account that loaded without nodes, NA for one that
    did not load.

    Raises
    ------
    ValidationError
        An item of ``rows`` is not an :class:`AccountRow`, or an account is listed twice.
    ColumnsError
        ``nodes`` lacks ``account_id`` or ``compliance``.

    Examples
    --------
    >>> key = NodeKey("i-0123456789abcdef0", "111122223333", "eu-west-1")
    >>> nodes = build_nodes([key], {}, {key: {"MissingCount": 1}}, {key: 4})
    >>> accounts = build_accounts(
    ...     [AccountRow("111122223333", "prod", "ACTIVE", ("eu-west-1",), None),
    ...      AccountRow("444455556666", "dev", "SUSPENDED", (), "AccessDenied")], nodes)
    >>> accounts[["account_name", "loaded", "nodes", "non_compliant_nodes", "error_code"]]
      account_name  loaded  nodes  non_compliant_nodes    error_code
    0         prod    True      1                    1           NaN
    1          dev   False   <NA>                 <NA>  AccessDenied
    """
    listed = list(rows)
    for position, row in enumerate(listed):
        if not isinstance(row, AccountRow):
            raise ValidationError(
                f"build_accounts: rows[{position}] is a {type(row).__name__}, but an "
                "AccountRow was expected"
            )
    ids = [row.account_id for row in listed]
    index = pd.Index(ids, dtype="str")
    twice = sorted(set(index[index.duplicated()]))
    if twice:
        raise ValidationError(f"build_accounts: account(s) {twice} listed twice; list each once")
    lacking = [c for c in ("account_id", "compliance") if c not in nodes.columns]
    if lacking:
        raise ColumnsError(f"build_accounts: the nodes frame lacks column(s) {lacking}")
    owner = nodes["account_id"].astype("str")
    per_account = owner.value_counts()
    non_compliant = owner[(nodes["compliance"] == "NON_COMPLIANT").to_numpy()].value_counts()
    loaded = pd.Series([row.is_loaded for row in listed], dtype="bool")

    def counts(found: pd.Series[Any]) -> pd.Series[Any]:
        return (
            found.reindex(index, fill_value=0).reset_index(drop=True).astype("Int64").where(loaded)
        )

    states = [row.state for row in listed]
    new = sorted({s for s in states if s and s not in ACCOUNT_STATES})
    return pd.DataFrame(
        {
            "account_id": _text_category(ids),
            "account_name": _text_category([row.account_name for row in listed]),
            "state": pd.Categorical(states, categories=[*ACCOUNT_STATES, *new]),
            "loaded": loaded,
            "regions": pd.Series([", ".join(sorted(set(r.regions))) for r in listed], dtype="str"),
            "nodes": counts(per_account),
            "non_compliant_nodes": counts(non_compliant),
            "error_code": pd.Series([row.error_code for row in listed], dtype="str"),
        },
        columns=list(ACCOUNT_COLUMNS),
    )


def empty_accounts() -> pd.DataFrame:
    """An accounts frame with every column and dtype and no rows.

    Examples
    --------
    >>> empty_accounts().dtypes.astype(str).to_dict()["nodes"]
    'Int64'
    """
    # The nodes frame only lends its two columns the counts read: an empty one of
    # them costs 6 ms, a whole empty nodes frame 30 ms, and every Fleet makes one.
    return build_accounts([], pd.DataFrame(columns=["account_id", "compliance"]))


def accounts_worth_listing(accounts: pd.DataFrame) -> bool:
    """Whether an accounts frame tells more than a count: several accounts, or one not loaded.

    The rule the Fleet's HTML view and the workbook share to list ``Fleet.accounts``.

    Examples
    --------
    >>> one = AccountRow("111122223333", "prod", "ACTIVE", ("eu-west-1",), None)
    >>> nodes = build_nodes([], {}, {}, {})
    >>> accounts_worth_listing(build_accounts([one], nodes))
    False
    >>> accounts_worth_listing(build_accounts([one._replace(error_code="AccessDenied")], nodes))
    True
    """
    return len(accounts) > 1 or not accounts["loaded"].all()


def account_count(accounts: pd.DataFrame, nodes: pd.DataFrame) -> int:
    """How many accounts a fleet spans: its accounts frame's rows, else its nodes' ids.

    A fleet read back from a snapshot, or made from frames, may have no accounts frame.

    Examples
    --------
    >>> nodes = build_nodes([NodeKey("i-0abc", "111122223333", "eu-west-1")], {}, {}, {})
    >>> account_count(empty_accounts(), nodes)
    1
    """
    return len(accounts) or int(nodes["account_id"].nunique())
