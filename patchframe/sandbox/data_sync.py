"""Fleets written as Resource Data Sync writes them to S3: :func:`write_resource_data_sync`.

A Systems Manager resource data sync exports every node's inventory, patch
compliance included, into one S3 prefix for every account and region (the layout
and the sources it follows: :mod:`patchframe._sync_layout`). This writes any
:class:`~patchframe.sandbox.sample.WireFleet` (one account and region each), the
sample by default, in that layout, to a folder or an ``s3://`` prefix, so that
:func:`patchframe.read_resource_data_sync` can be tried and tested with no AWS
account. What a sync carries, it writes; what it lacks (CVE ids, ping status and
time, node names) it leaves out, and times go to the second, as a sync has them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow.fs as pafs

from .._schema import COMPLIANT_STATES, STATE_COUNT_FIELDS, normalise_state
from .._sync_layout import (
    COMPLIANCE_ITEM,
    INSTANCE_INFORMATION,
    PATCH_SUMMARY,
    TAG,
    TIME_FORMAT,
    open_location,
    partition_folder,
)
from ..exceptions import ValidationError
from .sample import YEAR_ONE, WireFleet, sample_fleet

__all__ = ["write_resource_data_sync"]

_NEVER = (0, YEAR_ONE)
# The first file of a sync is a few hundred bytes: enough threads to hide S3's latency.
_WRITERS = 16
_SEVERITY_COUNTS = (
    "CriticalNonCompliantCount",
    "SecurityNonCompliantCount",
    "OtherNonCompliantCount",
)


def _time(seconds: object) -> str:
    """An epoch time as the sync writes it; "" for none and for the "never" sentinels."""
    if seconds is None or not isinstance(seconds, int | float) or math.isnan(seconds):
        return ""
    if seconds in _NEVER:
        return ""
    return dt.datetime.fromtimestamp(math.floor(seconds), dt.UTC).strftime(TIME_FORMAT)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _lines(records: Sequence[Mapping[str, str]]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()


def _instance_information(info: Mapping[str, Any], header: dict[str, str]) -> dict[str, str]:
    return {
        **header,
        "AgentType": "amazon-ssm-agent",
        "AgentVersion": _text(info.get("AgentVersion")),
        "ComputerName": _text(info.get("ComputerName")),
        "InstanceId": info["InstanceId"],
        "IpAddress": _text(info.get("IPAddress")),
        "PlatformName": _text(info.get("PlatformName")),
        "PlatformType": _text(info.get("PlatformType")),
        "PlatformVersion": _text(info.get("PlatformVersion")),
        "ResourceType": _text(info.get("ResourceType")),
        "InstanceStatus": "Active",
    }


def _patch_summary(state: Mapping[str, Any], header: dict[str, str]) -> dict[str, str]:
    counts = {
        field: str(int(state[field]))
        for field in [*STATE_COUNT_FIELDS.values(), *_SEVERITY_COUNTS]
        if state.get(field) is not None
    }
    return {
        **header,
        "PatchGroup": _text(state.get("PatchGroup")),
        "BaselineId": _text(state.get("BaselineId")),
        "SnapshotId": _text(state.get("SnapshotId")),
        **counts,
        "OperationType": _text(state.get("Operation")),
        "OperationStartTime": _time(state.get("OperationStartTime")),
        "OperationEndTime": _time(state.get("OperationEndTime")),
        "RebootOption": _text(state.get("RebootOption")),
    }


def _compliance_items(
    rows: Sequence[Mapping[str, Any]], state: Mapping[str, Any], header: dict[str, str]
) -> list[dict[str, str]]:
    execution = {
        "ComplianceType": "Patch",
        "ExecutionId": _text(state.get("SnapshotId")),
        "ExecutionType": "Command",
        "ExecutionTime": _time(state.get("OperationEndTime")),
        "DocumentName": "AWS-RunPatchBaseline",
        "DocumentVersion": "1",
        "PatchBaselineId": _text(state.get("BaselineId")),
        "PatchGroup": _text(state.get("PatchGroup")),
    }
    items = []
    for row in rows:
        state_name = _text(row.get("State"))
        compliant = normalise_state(state_name) in COMPLIANT_STATES | {"NOT_APPLICABLE"}
        items.append(
            {
                **header,
                **execution,
                "Id": _text(row.get("KBId")),
                "Title": _text(row.get("Title")),
                "Status": "COMPLIANT" if compliant else "NON_COMPLIANT",
                "Severity": "UNSPECIFIED",
                "Classification": _text(row.get("Classification")),
                "PatchSeverity": _text(row.get("Severity")),
                "PatchState": state_name,
                "InstalledTime": _time(row.get("InstalledTime")),
            }
        )
    return items


def _documents(fleet: WireFleet, captured: str) -> Iterator[tuple[str, bytes]]:
    """Each file of one fleet's sync: its path below the sync's root, and its bytes."""
    states = {s["InstanceId"]: s for s in fleet.patch_states}
    for info in fleet.instances:
        node = info["InstanceId"]
        header = {"resourceId": node, "captureTime": captured, "schemaVersion": "1.0"}

        def path(type_name: str, node: str = node) -> str:
            return f"{partition_folder(type_name, fleet.account_id, fleet.region)}/{node}.json"

        yield path(INSTANCE_INFORMATION), _lines([_instance_information(info, header)])
        state = states.get(node)
        if state is not None:
            yield path(PATCH_SUMMARY), _lines([_patch_summary(state, header)])
        rows = fleet.patches.get(node, [])
        if rows:
            yield path(COMPLIANCE_ITEM), _lines(_compliance_items(rows, state or {}, header))
        tags = fleet.tags.get(node, {})
        if tags:
            yield path(TAG), _lines([{**header, "Key": k, "Value": v} for k, v in tags.items()])


def write_resource_data_sync(
    destination: str | os.PathLike[str],
    fleets: WireFleet | Sequence[WireFleet] | None = None,
    *,
    captured: dt.datetime | None = None,
    filesystem: object = None,
) -> int:
    """Write fleets in the layout a Systems Manager resource data sync writes to S3.

    Parameters
    ----------
    destination
        A folder (made if needed), or a URI such as ``s3://bucket/prefix``: the
        sync's prefix, under which the ``AWS:...`` folders go.
    fleets
        One :class:`WireFleet` or several, for several accounts and regions; the
        sample fleet when None.
    captured
        The ``captureTime`` of every item (aware, or naive meaning UTC); now when None.
    filesystem
        A ``pyarrow.fs.FileSystem`` or fsspec filesystem to write through;
        ``destination`` is then a path within it.

    Returns
    -------
    int
        The number of files written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as sync:
    ...     written = write_resource_data_sync(sync)
    ...     folders = sorted(p.name for p in Path(sync).iterdir())
    >>> written, folders
    (50, ['AWS:ComplianceItem', 'AWS:InstanceInformation', 'AWS:PatchSummary', 'AWS:Tag'])
    """
    chosen = [sample_fleet()] if fleets is None else fleets
    listed = [chosen] if isinstance(chosen, WireFleet) else list(chosen)
    if not listed or not all(isinstance(f, WireFleet) for f in listed):
        raise ValidationError(f"fleets {fleets!r}: expected a WireFleet or a list of them")
    when = dt.datetime.now(dt.UTC) if captured is None else captured
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    stamp = when.astimezone(dt.UTC).strftime(TIME_FORMAT)
    fs, root, _ = open_location(destination, filesystem)
    documents = [(f"{root}/{path}", body) for f in listed for path, body in _documents(f, stamp)]
    if isinstance(fs, pafs.LocalFileSystem):  # on S3 a folder is a key's prefix, no object
        for folder in sorted({path.rsplit("/", 1)[0] for path, _ in documents}):
            fs.create_dir(folder, recursive=True)

    def write(document: tuple[str, bytes]) -> None:
        with fs.open_output_stream(document[0]) as out:
            out.write(document[1])

    with ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="patchframe-sync") as pool:
        list(pool.map(write, documents))
    return len(documents)
