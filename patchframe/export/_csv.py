"""CSV as the Systems Manager console exports it: :func:`to_compliance_csv`.

It writes the columns of the console's patch compliance reports
(:data:`CSV_SUMMARY_COLUMNS`, :data:`CSV_DETAIL_COLUMNS`), so scripts built on
those keep working; text that could start a formula is neutralised (OWASP).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._fleet import Fleet
from .._schema import NON_COMPLIANT_STATES, WIRE_STATES
from ..exceptions import ValidationError
from ._report_data import _LEVEL_COUNTS, _LEVEL_DTYPE, PathLike, _data, _keys, _node_table

#: Columns of the summary CSV, as the Systems Manager console names them.
CSV_SUMMARY_COLUMNS: tuple[str, ...] = (
    "Index",
    "Instance ID",
    "Instance name",
    "Instance IP",
    "Platform name",
    "Platform version",
    "SSM Agent version",
    "Patch baseline",
    "Patch group",
    "Compliance status",
    "Compliance severity",
    "Noncompliant Critical severity patch count",
    "Noncompliant High severity patch count",
    "Noncompliant Medium severity patch count",
    "Noncompliant Low severity patch count",
    "Noncompliant Informational severity patch count",
    "Noncompliant Unspecified severity patch count",
)
#: Columns of the detail CSV, as the Systems Manager console names them.
CSV_DETAIL_COLUMNS: tuple[str, ...] = (
    "Index",
    "Instance ID",
    "Instance name",
    "Patch name",
    "KB ID/Patch ID",
    "Patch state",
    "Last report time",
    "Compliance level",
    "Patch severity",
    "Patch classification",
    "CVE ID",
    "Patch baseline",
    "Logs URL",
    "Instance IP",
    "Platform name",
    "Platform version",
    "SSM Agent version",
)

#: Cell starts a spreadsheet may run as a formula when it opens a CSV (OWASP).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _neutralise(value: object) -> object:
    """OWASP's CSV-injection defence: a quote before text that could start a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _iso(times: pd.Series[Any]) -> list[str | None]:
    utc = pd.DatetimeIndex(times)
    if utc.tz is not None:
        utc = utc.tz_convert("UTC")
    return [None if pd.isna(t) else t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in utc]


def _values(series: pd.Series[Any]) -> list[Any]:
    """Python values, None for NA: what the csv module writes as an empty cell."""
    # numpy scalars are not int or float to the csv module, which would quote them.
    return [
        None if pd.isna(v) else v.item() if isinstance(v, np.generic) else v
        for v in series.astype(object)
    ]


def _summary_rows(nodes: pd.DataFrame) -> Iterator[list[Any]]:
    severity = nodes["compliance_severity"].astype("str").str.upper()
    columns = [
        nodes["instance_id"],
        nodes["name"],
        nodes["ip_address"],
        nodes["platform_name"],
        nodes["platform_version"],
        nodes["agent_version"],
        nodes["baseline_id"],
        nodes["patch_group"],
        nodes["compliance"],
        severity,
        *(nodes[c] for c in _LEVEL_COUNTS.values()),
    ]
    for index, row in enumerate(zip(*(_values(c) for c in columns), strict=True), start=1):
        yield [index, *row]


def _detail_rows(patches: pd.DataFrame, nodes: pd.DataFrame) -> Iterator[list[Any]]:
    info = nodes.set_index(_keys(nodes))
    rows = patches.reset_index(drop=True)
    at = info.index.get_indexer(_keys(rows))
    node = info.reset_index(drop=True).reindex(at).reset_index(drop=True)
    columns = [
        rows["instance_id"],
        node["name"],
        rows["title"],
        rows["kb_id"],
        rows["state"].astype("str").replace(WIRE_STATES),
        pd.Series(_iso(node["last_report_time"])),
        rows["severity_level"].astype("str").str.upper(),
        rows["severity"],
        rows["classification"],
        rows["cve_ids"],
        node["baseline_id"],
        pd.Series([None] * len(rows), dtype=object),  # Logs URL: not in the API's data
        node["ip_address"],
        node["platform_name"],
        node["platform_version"],
        node["agent_version"],
    ]
    for index, row in enumerate(zip(*(_values(c) for c in columns), strict=True), start=1):
        yield [index, *row]


def to_compliance_csv(
    data: Fleet | pd.DataFrame,
    path: PathLike,
    *,
    kind: Literal["summary", "detail"] = "summary",
    instance_id: str | None = None,
) -> Path:
    """Write a patch compliance report as CSV, in the AWS console's columns.

    The Systems Manager console's patch compliance reports ("Export to S3") have
    two layouts, which the console itself calls "summary" and "detail" (hence
    ``kind``'s values, the one place patchframe says "summary" for something other
    than :mod:`patchframe.summary`); this writes the same columns, in the same
    order, so that scripts reading those files work unchanged:

    - ``kind="summary"``: one row per node, the columns of
      :data:`CSV_SUMMARY_COLUMNS` (Index, Instance ID, ..., Compliance status,
      Compliance severity, then the non-compliant patch counts for Critical,
      High, Medium, Low, Informational and Unspecified);
    - ``kind="detail"``: one row per non-compliant patch (MISSING, FAILED,
      INSTALLED_PENDING_REBOOT, INSTALLED_REJECTED, AVAILABLE_SECURITY_UPDATE),
      as in AWS's single-node report, the columns of :data:`CSV_DETAIL_COLUMNS`.

    Values: Index counts from 1, nodes worst first. Compliance status is
    COMPLIANT, NON_COMPLIANT or NOT_SCANNED. Compliance severity is the highest
    ``severity_level`` among the node's non-compliant patches, in capitals
    (CRITICAL ... UNSPECIFIED), empty when there is none. The counts come from
    ``severity_level``; patchframe's scale maps the word Informational to Low, so
    the Informational count is always 0. Counts are empty for a node never
    scanned or whose patches failed to load. Patch state is spelt as AWS's responses spell it
    (``Missing``, ``InstalledPendingReboot``); Compliance level is the patch's
    ``severity_level`` in capitals; Last report time is the end of the node's
    last patching operation, ISO 8601 in UTC. Columns patchframe has no value for
    (Logs URL always; Instance IP, SSM Agent version and Last report time for a
    bare patches frame) are there and empty.

    Text is neutralised as OWASP recommends against CSV injection: a cell that
    begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
    single quote (``'``) in front, so a spreadsheet shows it as text instead of
    running it as a formula; every text cell is wrapped in double quotes, and a
    double quote inside is doubled. Numbers are written bare; an empty cell is
    ``""``. The file is UTF-8 without a byte-order mark, with CRLF line ends
    (RFC 4180).

    Parameters
    ----------
    data
        A :class:`~patchframe.Fleet` or a patches frame.
    path
        The ``.csv`` file to write; an existing file is replaced.
    kind
        ``"summary"`` (the all-nodes report) or ``"detail"`` (per patch).
    instance_id
        With ``kind="detail"``, only this node's patches; every node's when None.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValidationError
        A bad ``kind``; ``instance_id`` given without ``kind="detail"``, or not a
        node of ``data``; ``path`` cannot be written (a folder, a folder that does not
        exist, no permission), with the OS error as ``__cause__``.

    Examples
    --------
    >>> import csv, tempfile, patchframe as pf
    >>> from patchframe.export import to_compliance_csv
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = to_compliance_csv(fleet, f"{folder}/summary.csv")
    ...     with open(path, newline="", encoding="utf-8") as f:
    ...         rows = list(csv.reader(f))
    >>> rows[0][:3], len(rows) == len(fleet.nodes) + 1
    (['Index', 'Instance ID', 'Instance name'], True)
    """
    if kind not in ("summary", "detail"):
        raise ValidationError(f"kind {kind!r}: expected 'summary' or 'detail'")
    if instance_id is not None and kind != "detail":
        # The console's summary report is the whole fleet's; a one-node summary would
        # pass for it. Ignoring the argument would hand back every node unasked.
        raise ValidationError(
            f"instance_id {instance_id!r} is for kind='detail' (one node's patches); the "
            "summary report covers every node given: pass kind='detail', or pass only "
            "that node's rows as data"
        )
    if instance_id is not None and not isinstance(instance_id, str):
        raise ValidationError(f"instance_id {instance_id!r}: expected a node id string")
    parts = _data(data)
    nodes = _node_table(parts)
    patches = parts.patches
    if instance_id is not None:
        if not (nodes["instance_id"] == instance_id).any():
            raise ValidationError(f"node {instance_id!r} is not in the data")
        nodes = nodes[nodes["instance_id"] == instance_id].reset_index(drop=True)
        patches = patches[patches["instance_id"].astype("str") == instance_id]
    if kind == "summary":
        header, rows = CSV_SUMMARY_COLUMNS, _summary_rows(nodes)
    else:
        bad = patches["state"].astype("str").isin(list(NON_COMPLIANT_STATES))
        header, rows = CSV_DETAIL_COLUMNS, _detail_rows(_node_order(patches[bad], nodes), nodes)
    if not isinstance(path, str | os.PathLike):
        raise ValidationError(f"path {path!r}: expected a file path, got {type(path).__name__}")
    target = Path(path)
    try:
        f = target.open("w", newline="", encoding="utf-8")
    except OSError as err:
        raise ValidationError(
            f"path {str(target)!r}: cannot write a CSV file there: {err.strerror or err}"
        ) from err
    with f:
        writer = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows([_neutralise(v) for v in row] for row in rows)
    return target


def _node_order(patches: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """Patch rows with their nodes in the summary's order (worst node first)."""
    rank = pd.Series(range(len(nodes)), index=_keys(nodes))
    order = rank.reindex(_keys(patches)).to_numpy()
    level = -np.asarray(pd.Categorical(patches["severity_level"], dtype=_LEVEL_DTYPE).codes)
    return patches.iloc[np.lexsort((level, order))]
