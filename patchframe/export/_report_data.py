"""The data behind the workbook and the CSV: a Fleet's parts, and one row per node.

:func:`_data` takes what a writer was given, a :class:`~patchframe.Fleet` or a
bare patches frame, and checks it; :func:`_grouped` adds the tag columns that a
report grouped ``by`` tags needs, and the table per group (the Summary's "By Team"
block); :func:`_node_table` makes the node table, one row per node, worst first:
what the node is, its compliance, and its non-compliant patch counts. The workbook
(:mod:`patchframe.export._excel`) shows that table on its Summary sheet and the CSV
(:mod:`patchframe.export._csv`) writes it out as the console's "summary" report.
:func:`_aging` makes the workbook's Aging sheet: open findings under an SLA policy.
:func:`_with_account_names` puts the accounts' names beside their ids.
:data:`PathLike` is the path every writer of :mod:`patchframe.export` takes.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from .._fleet import TAG_PREFIX, Fleet
from .._schema import NON_COMPLIANT_STATES, PATCH_COLUMNS, PATCH_DTYPES, SEVERITY_LEVELS
from .._schema import build_errors as _build_errors
from .._schema import empty_accounts as _empty_accounts
from ..exceptions import ColumnsError, ValidationError
from ..summary import compliance_by, sla

PathLike = str | os.PathLike[str]

_KEY = ["account_id", "region", "instance_id"]
_LEVEL_DTYPE: pd.CategoricalDtype = PATCH_DTYPES["severity_level"]
#: The AWS report's severity counts, and the node table's columns holding them.
#: patchframe's scale has no Informational level (the word maps to Low), so
#: that count is always 0.
_LEVEL_COUNTS = {
    "Critical": "critical",
    "High": "high",
    "Medium": "medium",
    "Low": "low",
    "Informational": "informational",
    "Unspecified": "unspecified",
}
_STATE_COUNTS = ("missing", "failed", "installed_pending_reboot", "installed_rejected")
_COMPLIANCE_RANK = {"NON_COMPLIANT": 0, "NOT_SCANNED": 1, "COMPLIANT": 2}
#: Why a node's counts are empty, in the node table's ``note``.
NOTE_NOT_SCANNED = "never scanned: no patch-state data to count"
NOTE_NOT_LOADED = "patches failed to load: see Errors"


@dataclass(frozen=True)
class _Data:
    patches: pd.DataFrame
    nodes: pd.DataFrame | None  # None for a bare patches frame
    errors: pd.DataFrame
    accounts: pd.DataFrame


def _data(data: Fleet | pd.DataFrame) -> _Data:
    if isinstance(data, Fleet):
        parts = _Data(data.patches, data.nodes, data.errors, data.accounts)
    elif isinstance(data, pd.DataFrame):
        parts = _Data(data, None, _build_errors([]), _empty_accounts())
    else:
        raise ValidationError(
            f"data: expected a Fleet or a patches DataFrame, got {type(data).__name__}"
        )
    lacking = [c for c in PATCH_COLUMNS if c not in parts.patches.columns]
    if lacking:
        raise ColumnsError(
            f"the patches frame lacks column(s) {lacking}; "
            f"a patches frame has {list(PATCH_COLUMNS)}"
        )
    return parts


@dataclass(frozen=True)
class _Groups:
    """Compliance per group of nodes, for the Summary sheet: its title and table."""

    title: str
    table: pd.DataFrame


def _grouped(
    data: Fleet | pd.DataFrame, by: str | Sequence[str] | None
) -> tuple[Fleet | pd.DataFrame, _Groups | None]:
    """``data`` with a column per tag that ``by`` names, and the table per group.

    The tag columns go into the fleet's nodes and patches (:meth:`Fleet.with_tags`),
    so the Nodes and Patches sheets carry them; the table is
    :func:`patchframe.summary.compliance_by`.
    """
    if by is None:
        return data, None
    if not isinstance(data, Fleet):
        raise ValidationError("by= groups a fleet's nodes: pass a Fleet, not a bare patches frame")
    columns = [by] if isinstance(by, str) else list(by)
    keys = [
        c.removeprefix(TAG_PREFIX)
        for c in columns
        if isinstance(c, str) and c.startswith(TAG_PREFIX) and c not in data.nodes.columns
    ]
    fleet = data.with_tags(*dict.fromkeys(keys)) if keys else data
    table = compliance_by(fleet, by=by)
    names = ", ".join(str(c).removeprefix(TAG_PREFIX) for c in columns)
    return fleet, _Groups(f"By {names}", table)


def _account_names(parts: _Data) -> dict[str, str]:
    """Each account's name by its id, from the accounts and the nodes: {} when none is known."""
    names: dict[str, str] = {}
    for frame in (parts.nodes, parts.accounts):
        if frame is not None and {"account_id", "account_name"} <= set(frame.columns):
            named = frame[["account_id", "account_name"]].dropna().drop_duplicates()
            names.update(named.astype("str").itertuples(index=False, name=None))
    return names


def _with_account_names(frame: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with ``account_name`` (a category) right after ``account_id``, from ``names``.

    Without any name to show (a load that knew none), a frame gets
    no such column and loses an all-NA one: the workbook shows the names on every
    sheet with account ids, or on none.
    """
    out = frame.drop(columns="account_name", errors="ignore")
    if not names or "account_id" not in out.columns:
        return out
    ids = out["account_id"].astype("category")
    # Looked up once per account, not per row: the Patches sheet may have a million.
    per_account = pd.Categorical(ids.cat.categories.astype("str").map(names))
    column = per_account.take(ids.cat.codes.to_numpy(), allow_fill=True)
    at = list(out.columns).index("account_id") + 1
    out.insert(at, "account_name", pd.Series(column, index=out.index))
    return out


def _text(series: pd.Series[Any]) -> pd.Series[Any]:
    """A column as str, NA kept, on a fresh 0..n-1 index."""
    return series.astype("str").reset_index(drop=True)


def _keys(frame: pd.DataFrame) -> pd.MultiIndex:
    # NA as "" so that nodes of unknown account or region still match their rows.
    return pd.MultiIndex.from_arrays([_text(frame[c]).fillna("") for c in _KEY])


def _nodes_of_patches(patches: pd.DataFrame) -> pd.DataFrame:
    """One row per node of a bare patches frame: its first row's node columns."""
    return patches.drop_duplicates(subset=_KEY).reset_index(drop=True)


def _per_node(
    node: npt.NDArray[np.intp], code: npt.NDArray[np.intp], n_nodes: int, n_codes: int
) -> npt.NDArray[np.int64]:
    """Rows per node (matrix rows) and code (matrix columns); -1 is left out."""
    ok = (node >= 0) & (code >= 0)
    flat = np.bincount(node[ok] * n_codes + code[ok], minlength=n_nodes * n_codes)
    return flat.reshape(n_nodes, n_codes).astype(np.int64)


def _node_column(nodes: pd.DataFrame, column: str) -> pd.Series[Any]:
    if column not in nodes.columns:
        return pd.Series(np.nan, index=range(len(nodes)), dtype="str")
    return _text(nodes[column])


def _node_table(parts: _Data) -> pd.DataFrame:
    """One row per node, worst first: what it is, compliance, non-compliant counts.

    For a Fleet, every node of ``Fleet.nodes`` with AWS's ``compliance``. For a
    bare patches frame, the nodes in its rows, NON_COMPLIANT when any row is in a
    non-compliant state. Counts are NA for a node never scanned or whose patches
    failed to load: there is nothing to count, which is not the same as none;
    ``note`` says which (NA for every other node).
    """
    patches = parts.patches
    nodes = (
        _nodes_of_patches(patches) if parts.nodes is None else parts.nodes.reset_index(drop=True)
    )
    index = _keys(nodes)
    if not index.is_unique:
        raise ValidationError("the nodes frame lists one node (account, region, id) twice")
    node = np.asarray(index.get_indexer(_keys(patches)), dtype=np.intp)
    by_level, by_state = _tally(patches, node, len(nodes))

    out = _node_info(nodes)
    if parts.nodes is not None:
        compliance = nodes["compliance"].astype("str").to_numpy()
        loaded = nodes["patch_rows"].notna().to_numpy()
    else:
        compliance = np.where(by_level.sum(axis=1) > 0, "NON_COMPLIANT", "COMPLIANT")
        loaded = np.ones(len(nodes), dtype=bool)
    counted = loaded & (compliance != "NOT_SCANNED")
    out["compliance"] = pd.Categorical(compliance)
    out["compliance_severity"] = _worst_level(by_level)
    for level, column in _LEVEL_COUNTS.items():
        known = level in SEVERITY_LEVELS
        values = by_level[level] if known else np.zeros(len(nodes), dtype=np.int64)
        out[column] = pd.Series(values, dtype="Int64").where(counted)
    for column in _STATE_COUNTS:
        state = column.upper()
        values = by_state[state] if state in by_state else np.zeros(len(nodes), dtype=np.int64)
        out[column] = pd.Series(values, dtype="Int64").where(counted)
    rows = np.bincount(node[node >= 0], minlength=len(nodes))
    out["patch_rows"] = pd.Series(rows, dtype="Int64").where(loaded)
    out["last_report_time"] = (
        nodes["operation_end_time"].reset_index(drop=True)
        if "operation_end_time" in nodes.columns
        else pd.Series(pd.NaT, index=out.index, dtype=PATCH_DTYPES["installed_time"])
    )
    notes = np.full(len(nodes), None, dtype=object)
    notes[compliance == "NOT_SCANNED"] = NOTE_NOT_SCANNED
    notes[~loaded] = NOTE_NOT_LOADED
    out["note"] = pd.Series(notes, dtype="str")
    return _worst_first(out)


def _tally(
    patches: pd.DataFrame, node: npt.NDArray[np.intp], n_nodes: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per node: non-compliant patches per severity level, and patches per state."""
    states = pd.Categorical(patches["state"])
    names = [str(s) for s in states.categories]
    state = np.asarray(states.codes, dtype=np.intp)
    bad = np.isin(state, [i for i, s in enumerate(names) if s in NON_COMPLIANT_STATES])
    level = np.asarray(pd.Categorical(patches["severity_level"], dtype=_LEVEL_DTYPE).codes)
    bad_level = np.where(bad, level, -1).astype(np.intp)
    by_level = _per_node(node, bad_level, n_nodes, len(SEVERITY_LEVELS))
    by_state = _per_node(node, state, n_nodes, len(names))
    return (
        pd.DataFrame(by_level, columns=list(SEVERITY_LEVELS)),
        pd.DataFrame(by_state, columns=names),
    )


def _worst_level(by_level: pd.DataFrame) -> pd.Categorical:
    """The highest level with a count, NA for none (columns are lowest first)."""
    counts = by_level.to_numpy()
    highest = counts.shape[1] - 1 - np.argmax(counts[:, ::-1] > 0, axis=1)
    return pd.Categorical.from_codes(
        np.where(counts.sum(axis=1) > 0, highest, -1), dtype=_LEVEL_DTYPE
    )


def _node_info(nodes: pd.DataFrame) -> pd.DataFrame:
    """The node columns of the node table: NA where the frame lacks them."""
    out = pd.DataFrame({c: _text(nodes[c]) for c in _KEY})
    out["name"] = _node_column(nodes, "name").fillna(_node_column(nodes, "computer_name"))
    for column in (
        "computer_name",
        "ip_address",
        "platform_name",
        "platform_version",
        "agent_version",
        "baseline_id",
        "patch_group",
    ):
        out[column] = _node_column(nodes, column)
    return out


def _worst_first(table: pd.DataFrame) -> pd.DataFrame:
    keys = pd.DataFrame(
        {
            "rank": table["compliance"].astype("str").map(_COMPLIANCE_RANK).fillna(3),
            "severity": -table["compliance_severity"].cat.codes,
            "critical": -table["critical"].fillna(0),
            "high": -table["high"].fillna(0),
            "open": -(table["missing"].fillna(0) + table["failed"].fillna(0)),
            "instance_id": table["instance_id"].fillna(""),
        }
    )
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return table.loc[order].reset_index(drop=True)


#: The Aging sheet's columns, those the frame has, in this order.
_AGING_COLUMNS = (
    "account_id",
    "region",
    "instance_id",
    "kb_id",
    "title",
    "severity_level",
    "status",
    "overdue",
    "due",
    "age",
    "clock",
    "clock_start",
    "first_seen",
    "last_seen",
    "release_date",
    "approval_date",
    "state",
    "cve_ids",
)


def _aging(
    data: Fleet | pd.DataFrame,
    *,
    findings: pd.DataFrame | None,
    policy: Mapping[str, int | float | dt.timedelta] | None,
) -> pd.DataFrame | None:
    """The open findings under the SLA policy, most overdue first; None without dates.

    From ``findings`` (:func:`patchframe.history.findings`) when given, their clock
    the patches' release date where they carry one, else when first seen; otherwise
    from the patches, when they carry ``release_date``
    (:func:`patchframe.with_release_dates`), counted to the fleet's load time. Only
    open findings whose clock start is known: without it there is no age.
    """
    if findings is not None:
        if not isinstance(findings, pd.DataFrame):
            raise ValidationError(
                f"findings: expected a findings frame (patchframe.history.findings), "
                f"got {type(findings).__name__}"
            )
        frame = findings
        clock: Literal["first_seen", "release"] = (
            "release" if "release_date" in findings.columns else "first_seen"
        )
        now = None
    else:
        patches = data.patches if isinstance(data, Fleet) else data
        if "release_date" not in patches.columns:
            if policy is not None:
                raise ValidationError(
                    "sla_policy: the Aging sheet needs findings= (patchframe.history.findings) "
                    "or patches with release dates (patchframe.with_release_dates)"
                )
            return None
        frame, clock = patches, "release"
        loaded = data.loaded_at if isinstance(data, Fleet) else None
        now = pd.Timestamp.now(tz="UTC") if loaded is None else loaded
    table = sla(frame, policy=policy, clock=clock, now=now)
    table = table.loc[table["open"].to_numpy(dtype=bool) & table["clock_start"].notna()]
    table = table.sort_values(
        ["overdue", "age"], ascending=False, na_position="last", kind="stable"
    )
    return table[[c for c in _AGING_COLUMNS if c in table.columns]].reset_index(drop=True)
