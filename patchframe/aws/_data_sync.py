"""Resource Data Sync as a source: :func:`read_resource_data_sync`.

Many organizations already export every node's inventory and patch compliance, for
every account and region, with a Systems Manager resource data sync to one S3
bucket. Reading that export gives the same frames as :func:`~patchframe.load_fleet`
with no Systems Manager call at all: only S3 reads (or a local copy of the files).

What is read, following AWS's published description of the layout and its JSON
documents (the sources are cited in :mod:`patchframe._sync_layout`)::

    <prefix>/AWS:InstanceInformation/accountid=<id>/region=<region>/resourcetype=ManagedInstanceInventory/<node>.json
    <prefix>/AWS:PatchSummary/...      the node's patch-state counts, baseline, last operation
    <prefix>/AWS:ComplianceItem/...    one item a line; those of ComplianceType Patch: patches
    <prefix>/AWS:Tag/...               one tag a line

``account_id`` and ``region`` come from the partition folders. The nodes are those
with instance information, less those the sync reports ``Terminated`` (which
DescribeInstanceInformation no longer lists); items of nodes without instance
information are left out, as load_fleet would never have listed them. The raw fields
go through the same :mod:`patchframe._schema` builders as load_fleet's, so states,
severities, times and the "never" sentinels are normalised alike. Where the sync
lacks a field load_fleet has (CVE ids, a node's name, ping status and last ping
time), the column is NA; the README's table lists them.

Files are read on a thread pool, one (account, region) partition at a time (the
next one's downloading while this one's are parsed), and each type's files of a
partition are parsed together by pyarrow's JSON reader, so memory holds two
partitions' text, not the whole sync's.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.json as pj

from .._fleet import Fleet
from .._schema import (
    STATE_COUNT_FIELDS,
    NodeKey,
    PatchColumns,
    build_errors,
    build_nodes,
    build_patches,
    build_tags,
)
from .._sync_layout import (
    COMPLIANCE_ITEM,
    INSTANCE_INFORMATION,
    PATCH_SUMMARY,
    RESOURCE_TYPE,
    TAG,
    open_location,
)
from ..exceptions import ValidationError

__all__ = ["read_resource_data_sync"]

_COUNTS = (
    *STATE_COUNT_FIELDS.values(),
    "CriticalNonCompliantCount",
    "SecurityNonCompliantCount",
    "OtherNonCompliantCount",
)
#: The fields read of each inventory type; every value in a sync is a string.
_FIELDS: dict[str, tuple[str, ...]] = {
    INSTANCE_INFORMATION: (
        "resourceId",
        "InstanceId",
        "AgentVersion",
        "ComputerName",
        "IpAddress",
        "PlatformName",
        "PlatformType",
        "PlatformVersion",
        "ResourceType",
        "InstanceStatus",
    ),
    PATCH_SUMMARY: (
        "resourceId",
        "PatchGroup",
        "BaselineId",
        "Operation",
        "OperationType",
        "OperationEndTime",
        *_COUNTS,
    ),
    COMPLIANCE_ITEM: (
        "resourceId",
        "ComplianceType",
        "Id",
        "Title",
        "Classification",
        "PatchSeverity",
        "PatchState",
        "InstalledTime",
    ),
    TAG: ("resourceId", "Key", "Value"),
}
_SCHEMAS = {
    name: pa.schema([(f, pa.string()) for f in fields]) for name, fields in _FIELDS.items()
}
#: DescribeInstanceInformation's names for the sync's instance information fields.
_INFO_FIELDS = {
    "InstanceId": "InstanceId",
    "AgentVersion": "AgentVersion",
    "ComputerName": "ComputerName",
    "IpAddress": "IPAddress",
    "PlatformName": "PlatformName",
    "PlatformType": "PlatformType",
    "PlatformVersion": "PlatformVersion",
    "ResourceType": "ResourceType",
}
_NODE_PATCH_FIELDS = {
    "computer_name": "ComputerName",
    "platform_type": "PlatformType",
    "platform_name": "PlatformName",
    "platform_version": "PlatformVersion",
}


class _Partition(NamedTuple):
    account: str
    region: str
    files: dict[str, list[str]]  # inventory type -> paths


def _partitions(fs: Any, root: str) -> list[_Partition]:
    """Every (account, region) of the sync with its node files of each type, sorted."""
    found: dict[tuple[str, str], dict[str, list[str]]] = {}
    for type_name in _FIELDS:
        top = f"{root}/{type_name}"
        selector = pafs.FileSelector(top, allow_not_found=True, recursive=True)
        for info in fs.get_file_info(selector):
            parts = info.path[len(top) + 1 :].split("/")
            if info.type != pafs.FileType.File or len(parts) != 4:
                continue
            account, region, resource, name = parts
            if (
                not account.startswith("accountid=")
                or not region.startswith("region=")
                or resource != f"resourcetype={RESOURCE_TYPE}"
                or not name.endswith(".json")
                or name.startswith(("_", "."))
            ):
                continue
            key = (unquote(account.split("=", 1)[1]), unquote(region.split("=", 1)[1]))
            found.setdefault(key, {}).setdefault(type_name, []).append(info.path)
    # Sorted: a local folder lists in no particular order, and tags keep the files' order.
    return [
        _Partition(a, r, {t: sorted(paths) for t, paths in files.items()})
        for (a, r), files in sorted(found.items())
    ]


def _read(fs: Any, path: str) -> bytes:
    with fs.open_input_stream(path) as stream:
        data: bytes = stream.read()
    return data


def _parse(type_name: str, body: bytes) -> Any:
    options = pj.ParseOptions(
        explicit_schema=_SCHEMAS[type_name], unexpected_field_behavior="ignore"
    )
    return pj.read_json(io.BytesIO(body), parse_options=options)


def _table(type_name: str, paths: Sequence[str], bodies: Sequence[bytes], shown: str) -> Any:
    """One type's files of a partition as one table, the files parsed together."""
    body = b"\n".join(b for b in bodies if b.strip())
    if not body:
        return _SCHEMAS[type_name].empty_table()
    try:
        return _parse(type_name, body)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        for path, one in zip(paths, bodies, strict=True):
            try:
                if one.strip():
                    _parse(type_name, one)
            except (pa.ArrowInvalid, UnicodeDecodeError) as err:
                raise ValidationError(
                    f"{shown}{path}: not JSON lines as a resource data sync writes them: {err}"
                ) from None
        raise


def _epoch_seconds(column: Any) -> Any:
    """ISO 8601 text as epoch seconds (float64), NaN where empty; the builders take it."""
    text = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    stamps = text.cast(pa.timestamp("us", "UTC"))
    return stamps.cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e6


def _texts(column: Any) -> Any:
    return column.to_numpy(zero_copy_only=False)


class _Collected:
    """The builders' inputs, gathered partition by partition."""

    def __init__(self) -> None:
        self.keys: list[NodeKey] = []
        self.infos: dict[NodeKey, dict[str, Any]] = {}
        self.states: dict[NodeKey, dict[str, Any]] = {}
        self.patches: dict[NodeKey, PatchColumns] = {}
        self.tags: list[tuple[NodeKey, str, str]] = []

    def add(self, account: str, region: str, tables: Mapping[str, Any]) -> None:
        infos = tables[INSTANCE_INFORMATION].to_pylist()
        nodes = {}
        for info in infos:
            node = info["InstanceId"] or info["resourceId"]
            if node and info["InstanceStatus"] != "Terminated":
                nodes[node] = {wire: info[field] for field, wire in _INFO_FIELDS.items()}
                nodes[node]["InstanceId"] = node
        keys = {node: NodeKey(node, account, region) for node in sorted(nodes)}
        self.keys.extend(keys.values())
        self.infos.update((key, nodes[node]) for node, key in keys.items())
        self._add_states(keys, tables[PATCH_SUMMARY])
        self._add_patches(keys, tables[COMPLIANCE_ITEM])
        for row in tables[TAG].to_pylist():
            key = keys.get(row["resourceId"])
            if key is not None and row["Key"] is not None:
                self.tags.append((key, row["Key"], row["Value"] or ""))

    def _add_states(self, keys: Mapping[str, NodeKey], table: Any) -> None:
        ends = _epoch_seconds(table.column("OperationEndTime"))
        for row, end in zip(table.to_pylist(), ends, strict=True):
            key = keys.get(row["resourceId"])
            if key is None:
                continue
            state: dict[str, Any] = {
                "PatchGroup": row["PatchGroup"],
                "BaselineId": row["BaselineId"],
                "Operation": row["Operation"] or row["OperationType"],
                "OperationEndTime": float(end),
            }
            state.update((f, int(row[f])) for f in _COUNTS if row[f] not in (None, ""))
            self.states[key] = state

    def _add_patches(self, keys: Mapping[str, NodeKey], table: Any) -> None:
        patch = pc.equal(table.column("ComplianceType"), "Patch")
        table = table.filter(pc.and_(patch, pc.is_valid(table.column("resourceId"))))
        table = table.take(pc.sort_indices(table, [("resourceId", "ascending")]))
        nodes = _texts(table.column("resourceId"))
        columns = {
            "kb_id": _texts(table.column("Id")),
            "title": _texts(table.column("Title")),
            "classification": _texts(table.column("Classification")),
            "severity": _texts(table.column("PatchSeverity")),
            "state": _texts(table.column("PatchState")),
            "installed_time": _epoch_seconds(table.column("InstalledTime")),
        }
        if not len(nodes):
            return
        names, starts = np.unique(nodes, return_index=True)
        ends = np.append(starts[1:], len(nodes))
        for node, start, end in zip(names.tolist(), starts.tolist(), ends.tolist(), strict=True):
            key = keys.get(node)
            if key is None:
                continue
            rows = {name: list(values[start:end]) for name, values in columns.items()}
            self.patches[key] = PatchColumns(
                kb_id=rows["kb_id"],
                title=rows["title"],
                classification=rows["classification"],
                severity=rows["severity"],
                state=rows["state"],
                installed_time=rows["installed_time"],
                cve_ids=[""] * (end - start),  # a sync carries no CVE ids: NA
            )

    def fleet(self, loaded_at: pd.Timestamp) -> Fleet:
        loaded = [k for k in self.keys if k in self.patches]
        node_columns: dict[str, list[str | None]] = {
            name: [self.infos[k].get(field) or None for k in loaded]
            for name, field in _NODE_PATCH_FIELDS.items()
        }
        node_columns["patch_group"] = [self.states.get(k, {}).get("PatchGroup") for k in loaded]
        node_columns["baseline_id"] = [self.states.get(k, {}).get("BaselineId") for k in loaded]
        patches = build_patches([(k, self.patches[k]) for k in loaded], node_columns=node_columns)
        rows = {k: len(self.patches[k]) if k in self.patches else 0 for k in self.keys}
        nodes = build_nodes(self.keys, self.infos, self.states, rows, loaded_at=loaded_at)
        return Fleet(
            patches=patches,
            nodes=nodes,
            errors=build_errors([]),
            tags=build_tags(self.tags),
            loaded_at=loaded_at,
        )


def read_resource_data_sync(
    uri: str | os.PathLike[str],
    *,
    snapshot: str | os.PathLike[str] | None = None,
    filesystem: object = None,
    max_workers: int = 32,
) -> Fleet:
    """Read what a Systems Manager resource data sync exported into a :class:`Fleet`.

    Parameters
    ----------
    uri
        The sync's destination: ``s3://bucket/prefix`` (credentials, region and
        ``AWS_ENDPOINT_URL`` from the AWS SDK's standard configuration), or a folder
        holding a copy of it; the ``AWS:...`` folders are right under it.
    snapshot
        A snapshot store (as for :func:`~patchframe.save_snapshot`) to also save the
        fleet into, as a snapshot of the time of reading: a scheduled read then
        keeps the history that :func:`~patchframe.trend` charts.
    filesystem
        A ``pyarrow.fs.FileSystem`` or fsspec filesystem to read through; ``uri`` is
        then a path within it.
    max_workers
        Files read at once (threads): S3 answers each small file in tens of
        milliseconds, so many at once is what makes a large sync quick.

    Returns
    -------
    Fleet
        The frames load_fleet gives, with the same columns and dtypes, for every
        account and region of the sync, nodes sorted by account, region and id;
        ``errors`` is empty and ``loaded_at`` is the time of reading. Columns the
        sync lacks are NA (``cve_ids``; ``name``, ``ping_status`` and
        ``last_ping_time`` of nodes), and times are to the second.

    Raises
    ------
    ValidationError
        A bad argument, or a file that is not JSON lines (the message names it).

    Examples
    --------
    >>> import tempfile, patchframe as pf
    >>> from patchframe.sandbox.data_sync import write_resource_data_sync
    >>> with tempfile.TemporaryDirectory() as sync:
    ...     _ = write_resource_data_sync(sync)  # the sample fleet, as a sync has it
    ...     fleet = pf.read_resource_data_sync(sync)
    >>> fleet
    <Fleet: 13 nodes in 1 account and 1 region, 2,020 patches, 11 non-compliant nodes, 0 errors>
    >>> fleet.patches["state"].value_counts().head(3).to_dict()
    {'INSTALLED': 939, 'NOT_APPLICABLE': 545, 'MISSING': 232}
    """
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValidationError(f"max_workers {max_workers!r}: expected a whole number >= 1")
    fs, root, shown = open_location(uri, filesystem)
    loaded_at = pd.Timestamp.now(tz="UTC")
    collected = _Collected()
    with ThreadPoolExecutor(max_workers, thread_name_prefix="patchframe-sync") as pool:

        def fetch(partition: _Partition) -> dict[str, list[Future[bytes]]]:
            return {
                t: [pool.submit(_read, fs, path) for path in partition.files.get(t, [])]
                for t in _FIELDS
            }

        partitions = _partitions(fs, root)
        # The next partition's files download while this one's are parsed.
        coming = fetch(partitions[0]) if partitions else {}
        for i, partition in enumerate(partitions):
            reads, coming = coming, fetch(partitions[i + 1]) if i + 1 < len(partitions) else {}
            tables = {
                t: _table(t, partition.files.get(t, []), [r.result() for r in reads[t]], shown)
                for t in _FIELDS
            }
            collected.add(partition.account, partition.region, tables)
    fleet = collected.fleet(loaded_at)
    if snapshot is not None:
        from ..history import save_snapshot  # the store only when asked: import stays light

        save_snapshot(fleet, snapshot, when=loaded_at)
    return fleet
