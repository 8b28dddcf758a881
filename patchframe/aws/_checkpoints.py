"""Per-node checkpoints, so that a long fleet load survives an interruption.

Each finished node's raw patch columns are written to one Parquet file as soon
as the node completes (to a temporary name, then renamed, so a crash never
leaves half a file). A rerun reads those files instead of asking AWS again and
builds the frame the same way an uninterrupted load does, so both give equal
frames. Files live under a folder named after the patch filters, since a node
loaded with other filters has other rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .._schema import NodeKey, PatchColumns, to_utc

__all__ = ["NodeCache"]

_TEXT_FIELDS = ("kb_id", "title", "classification", "severity", "state", "cve_ids")


class NodeCache:
    """A folder of finished nodes' patch columns.

    Examples
    --------
    >>> import tempfile
    >>> cache = NodeCache(tempfile.mkdtemp(), filters=[])
    >>> key = NodeKey("i-0123456789abcdef0", "123456789012", "eu-west-1")
    >>> cols = PatchColumns()
    >>> cols.extend([{"KBId": "KB1", "State": "Missing", "InstalledTime": 0}])
    >>> cache.put(key, cols)
    >>> len(cache.get(key))
    1
    """

    def __init__(self, folder: str | os.PathLike[str], *, filters: Sequence[Any]) -> None:
        digest = hashlib.sha256(json.dumps(list(filters), sort_keys=True).encode()).hexdigest()
        self.folder = Path(folder) / f"filters-{digest[:12]}"

    def _path(self, key: NodeKey) -> Path:
        return (
            self.folder
            / (key.account_id or "unknown")
            / (key.region or "unknown")
            / (f"{key.instance_id}.parquet")
        )

    def get(self, key: NodeKey) -> PatchColumns | None:
        """The node's columns if a finished load of it is cached, else None."""
        path = self._path(key)
        if not path.exists():
            return None
        table = pq.read_table(path).to_pydict()
        return PatchColumns(
            **{name: table[name] for name in _TEXT_FIELDS},
            installed_time=table["installed_time"],
        )

    def put(self, key: NodeKey, columns: PatchColumns) -> None:
        """Write a finished node's columns atomically."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {
                **{name: pa.array(getattr(columns, name), pa.string()) for name in _TEXT_FIELDS},
                # Seconds since the epoch, NaN for never: the same values the
                # frame builder makes of the raw ones.
                "installed_time": pa.array(
                    [to_utc(v) for v in columns.installed_time], pa.float64()
                ),
            }
        )
        partial = path.with_suffix(f".{os.getpid()}.partial")
        pq.write_table(table, partial)
        partial.replace(path)
