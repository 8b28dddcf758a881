"""Per-node checkpoints, so that a long fleet load survives an interruption.

Each finished node's raw patch columns are written to one Parquet file as soon
as the node completes (to a temporary name, then renamed, so a crash never
leaves half a file). A rerun reads those files instead of asking AWS again and
builds the frame the same way an uninterrupted load does, so both give equal
frames. Files live under a folder named after the patch filters, since a node
loaded with other filters has other rows.

A checkpoint that cannot be read back as written (cut short, zeroed, other
columns) costs only its node: it is ignored with a warning naming the file, the
node is loaded again, and its new checkpoint replaces the damaged one.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .._schema import NodeKey, PatchColumns, to_utc
from ..exceptions import ValidationError

__all__ = ["NodeCache"]

_TEXT_FIELDS = ("kb_id", "title", "classification", "severity", "state", "cve_ids")
#: What :meth:`NodeCache.put` writes, and so all :meth:`NodeCache.get` accepts.
_SCHEMA = pa.schema(
    [*(pa.field(name, pa.string()) for name in _TEXT_FIELDS), ("installed_time", pa.float64())]
)


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
    >>> NodeCache(__file__, filters=[])
    Traceback (most recent call last):
    ...
    patchframe.exceptions.ValidationError: cache_dir '...': cannot keep checkpoints there: ...
    """

    def __init__(self, folder: str | os.PathLike[str], *, filters: Sequence[Any]) -> None:
        """Make the folder for ``filters`` under ``folder``, so a bad folder fails at once.

        Raises
        ------
        ValidationError
            ``folder`` is not a path, or no folder can be made there (a file is in the
            way, no permission); the OS error is ``__cause__``.
        """
        if not isinstance(folder, str | os.PathLike):
            raise ValidationError(
                f"cache_dir {folder!r}: expected a folder path, got {type(folder).__name__}"
            )
        digest = hashlib.sha256(json.dumps(list(filters), sort_keys=True).encode()).hexdigest()
        self.folder = Path(folder) / f"filters-{digest[:12]}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValidationError(
                f"cache_dir {os.fspath(folder)!r}: cannot keep checkpoints there: "
                f"{err.strerror or err}"
            ) from err

    def _path(self, key: NodeKey) -> Path:
        return (
            self.folder
            / (key.account_id or "unknown")
            / (key.region or "unknown")
            / (f"{key.instance_id}.parquet")
        )

    def get(self, key: NodeKey) -> PatchColumns | None:
        """The node's columns if a finished load of it is cached, else None.

        A checkpoint that cannot be read back as :meth:`put` wrote it is None too,
        with a warning naming the file.
        """
        path = self._path(key)
        if not path.exists():
            return None
        try:
            read = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            _warn_damaged(path, key, f"{type(err).__name__}: {err}")
            return None
        if not read.schema.equals(_SCHEMA):
            columns = ", ".join(f"{field.name} {field.type}" for field in read.schema)
            _warn_damaged(path, key, f"its columns are {columns}")
            return None
        table = read.to_pydict()
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


def _warn_damaged(path: Path, key: NodeKey, why: str) -> None:
    # A warning, not an error: the node is loaded again, so the damage costs a few calls.
    warnings.warn(
        f"checkpoint {path} is damaged ({why}): ignored; node {key.instance_id} is "
        "loaded again and its checkpoint written anew",
        UserWarning,
        stacklevel=3,
    )
