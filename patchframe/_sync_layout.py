"""Resource Data Sync's layout on S3: what the reader (:mod:`patchframe.aws._data_sync`)
and the sandbox's writer (:mod:`patchframe.sandbox.data_sync`) share.

A sync of type ``SyncToDestination`` writes one folder per inventory type under the
bucket's prefix, Hive-style partitioned by account, region and resource type, and
one file per managed node in each::

    <prefix>/AWS:ComplianceItem/accountid=<id>/region=<region>/resourcetype=ManagedInstanceInventory/<instance-id>.json

Each file holds the node's inventory items of that type, one JSON object a line,
every value a string (inventory content is a map of strings to strings), with the
node's id as ``resourceId`` and the item's attributes under their inventory names.
Times are ISO 8601 to the second in UTC (``2024-06-14T08:00:00Z``).

Sources followed: AWS Systems Manager User Guide, "Creating a resource data sync
for Inventory"
(docs.aws.amazon.com/systems-manager/latest/userguide/inventory-create-resource-data-sync.html)
and "Metadata collected by inventory" (same place, sysman-inventory-schema.html), which
names ``AWS:InstanceInformation``'s attributes: AgentType, AgentVersion, ComputerName,
InstanceId, IpAddress, PlatformName, PlatformType, PlatformVersion, ResourceType,
AgentStatus, InstanceStatus; the AWS Cloud Operations blog, "Understanding AWS Systems
Manager Inventory Metadata"
(aws.amazon.com/blogs/mt/understanding-aws-systems-manager-inventory-metadata/), which
lists the ``AWS:ComplianceItem``, ``AWS:PatchSummary``, ``AWS:InstanceInformation`` and
``AWS:Tag`` prefixes that patching fills; and the API Reference's ``PutComplianceItems``
and ``InstancePatchState`` pages for the attributes of a patch compliance item (Id,
Title, Classification, PatchSeverity, PatchState, PatchBaselineId, PatchGroup,
InstalledTime as ``yyyy-MM-dd'T'HH:mm:ss'Z'`` ...) and of a node's patch summary (the
``<State>Count`` fields, BaselineId, PatchGroup, the operation's times). The patch
summary's operation is read as ``Operation`` or ``OperationType``, whichever is there.
"""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from .exceptions import ValidationError

__all__ = [
    "COMPLIANCE_ITEM",
    "INSTANCE_INFORMATION",
    "PATCH_SUMMARY",
    "RESOURCE_TYPE",
    "TAG",
    "TIME_FORMAT",
    "open_location",
    "partition_folder",
]

COMPLIANCE_ITEM = "AWS:ComplianceItem"
INSTANCE_INFORMATION = "AWS:InstanceInformation"
PATCH_SUMMARY = "AWS:PatchSummary"
TAG = "AWS:Tag"
#: The resource type folder of managed nodes; other resource types are not nodes.
RESOURCE_TYPE = "ManagedInstanceInventory"
#: How the sync writes a time: ISO 8601, to the second, UTC.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def partition_folder(type_name: str, account_id: str, region: str) -> str:
    """The folder of one inventory type's files for one account and region.

    Examples
    --------
    >>> partition_folder("AWS:PatchSummary", "123456789012", "eu-west-1")
    'AWS:PatchSummary/accountid=123456789012/region=eu-west-1/resourcetype=ManagedInstanceInventory'
    """
    return f"{type_name}/accountid={account_id}/region={region}/resourcetype={RESOURCE_TYPE}"


def open_location(location: object, filesystem: object) -> tuple[Any, str, str]:
    """A sync's filesystem, its root path in it, and the prefix that shows a path as the
    user named it (``s3://`` ...): a local folder, a URI pyarrow knows (``s3://``; the
    AWS SDK's standard configuration applies), another scheme through fsspec, or a path
    within ``filesystem``."""
    if not isinstance(location, str | os.PathLike):
        raise ValidationError(
            f"{location!r}: expected a folder or a URI such as 's3://bucket/prefix'"
        )
    text = os.fspath(location)
    if filesystem is not None:
        if isinstance(filesystem, pafs.FileSystem):
            return filesystem, text.rstrip("/"), ""
        if hasattr(filesystem, "protocol") and hasattr(filesystem, "open"):  # fsspec's
            return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), text.rstrip("/"), ""
        raise ValidationError(
            f"filesystem {filesystem!r}: expected a pyarrow.fs.FileSystem or an fsspec filesystem"
        )
    if "://" not in text:
        return pafs.LocalFileSystem(), Path(text).expanduser().absolute().as_posix(), ""
    scheme = text.split("://", 1)[0] + "://"
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except pa.ArrowInvalid:  # a scheme pyarrow does not know: fsspec may
        try:
            core = import_module("fsspec.core")
        except ImportError:
            raise ValidationError(
                f"{text!r}: pyarrow does not know this scheme; install fsspec and its "
                "driver for it, or pass filesystem="
            ) from None
        fsspec_fs, path = core.url_to_fs(text)
        fs = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec_fs))
    return fs, str(path).rstrip("/"), scheme
