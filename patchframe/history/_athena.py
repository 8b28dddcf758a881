"""Athena tables over a snapshot store on S3: :func:`athena_ddl`.

A store is Hive-partitioned Parquet (see :mod:`patchframe.history._store`), which
Athena reads as it is. :func:`athena_ddl` writes the ``CREATE EXTERNAL TABLE``
statements for its three datasets with *partition projection*: Athena works each
partition's S3 location out of the table's properties (``projection.enabled``,
one ``projection.<column>.type`` per partition column, and
``storage.location.template``), so no Glue crawler and no ``MSCK REPAIR TABLE`` is
ever needed. AWS describes the properties in "Use partition projection with Amazon
Athena" and "Supported types for partition projection" (Amazon Athena User Guide,
docs.aws.amazon.com/athena/latest/ug/partition-projection.html and
partition-projection-supported-types.html).

Why ``enum`` for every partition column: ``injected`` would make every query name its
snapshots (Athena refuses a query on an injected column without static equality
conditions on it), so a trend over all snapshots could not be written; ``date`` cannot
express ids to the microsecond with ``-2`` suffixes. So the values are listed, read
from the store's manifests: the snapshots, accounts and regions the store holds now.
Only finished snapshots are listed, so Athena never reads a save that is still being
written or was interrupted. After each save, run the statements again (``DROP TABLE``
first: dropping an external table leaves its files alone) to add the new snapshot.
AWS advises keeping a table's metadata under about 1 MB compressed: some 40,000 snapshot
ids; prune older snapshots into another prefix long before that.

A duration column (a pandas timedelta, such as a node's ``scan_age``) is nanoseconds
as a ``bigint``: Parquet has no duration type. An unknown account or region is the
folder value ``__HIVE_DEFAULT_PARTITION__``, which Athena, reading it through
projection, shows as that text rather than NULL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

from ..exceptions import ValidationError
from ._store import _PARTITIONS, _open_store, _read_dtypes, _scan, _segment

__all__ = ["athena_ddl"]

_DATABASE = re.compile(r"[a-z0-9_]{1,255}")
_PARTITION_COLUMNS = ("snapshot", *_PARTITIONS)


def _hive_type(name: str, arrow: Any) -> str:
    """The Hive/Athena type Athena reads an Arrow column of the store's files as."""
    if pa.types.is_dictionary(arrow):
        arrow = arrow.value_type
    checks = (
        (pa.types.is_string, "string"),
        (pa.types.is_large_string, "string"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_int8, "tinyint"),
        (pa.types.is_int16, "smallint"),
        (pa.types.is_int32, "int"),
        (pa.types.is_int64, "bigint"),
        (pa.types.is_float32, "float"),
        (pa.types.is_float64, "double"),
        (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_date32, "date"),
        # Parquet has no duration type: pyarrow writes its nanoseconds as plain INT64.
        (pa.types.is_duration, "bigint"),
    )
    for check, hive in checks:
        if check(arrow):
            return hive
    raise ValidationError(f"column {name!r}: no Athena type for its Parquet type {arrow}")


def _columns(dtypes: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The data files' columns and their Athena types, in the files' order."""
    in_files = {c: d for c, d in dtypes.items() if c not in _PARTITIONS}
    empty = pd.DataFrame({c: pd.Series(dtype=d) for c, d in in_files.items()})
    # The writer's own conversion, so the types are those of the files it writes.
    schema = pa.Schema.from_pandas(empty, preserve_index=False)
    return [(field.name, _hive_type(field.name, field.type)) for field in schema]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _statement(
    database: str,
    table: str,
    columns: list[tuple[str, str]],
    location: str,
    values: Mapping[str, list[str]],
) -> str:
    template = location + "/".join(f"{c}=${{{c}}}" for c in _PARTITION_COLUMNS) + "/"
    properties = [("projection.enabled", "true")]
    for column in _PARTITION_COLUMNS:
        properties.append((f"projection.{column}.type", "enum"))
        properties.append((f"projection.{column}.values", ",".join(values[column])))
    properties.append(("storage.location.template", template))
    return "\n".join(
        [
            f"CREATE EXTERNAL TABLE `{database}`.`{table}` (",
            ",\n".join(f"  `{name}` {kind}" for name, kind in columns),
            ")",
            "PARTITIONED BY (" + ", ".join(f"`{c}` string" for c in _PARTITION_COLUMNS) + ")",
            "STORED AS PARQUET",
            f"LOCATION {_quoted(location)}",
            "TBLPROPERTIES (",
            ",\n".join(f"  {_quoted(k)} = {_quoted(v)}" for k, v in properties),
            ")",
        ]
    )


def athena_ddl(
    store_uri: str, *, database: str = "patchframe", filesystem: object = None
) -> dict[str, str]:
    """Athena's ``CREATE EXTERNAL TABLE`` statements for a snapshot store on S3.

    One table per dataset of the store, ``patches``, ``nodes`` and ``errors``: the
    data files' columns with their Athena types, partitioned by ``snapshot``,
    ``account_id`` and ``region`` (all ``string``), Parquet, with partition
    projection over the snapshots, accounts and regions the store holds, so no crawler
    or ``MSCK REPAIR TABLE`` is needed. Run each statement as one Athena query; after
    a new snapshot, ``DROP TABLE`` and run them again (the module's notes say why).

    Parameters
    ----------
    store_uri
        The store, ``s3://bucket/prefix``, as given to :func:`save_snapshot`.
    database
        The Athena (Glue) database the tables go in: lower-case letters, digits
        and ``_``. It must exist (``CREATE DATABASE patchframe``).
    filesystem
        A ``pyarrow.fs.FileSystem`` or fsspec filesystem to read the store's
        manifests through; ``store_uri`` without ``s3://`` is then its path in it.

    Returns
    -------
    dict of str to str
        ``{"patches": ..., "nodes": ..., "errors": ...}``, one statement each.

    Raises
    ------
    ValidationError
        ``store_uri`` is not an ``s3://`` URI, ``database`` is not a valid name, or
        the store holds no snapshot yet (the columns and partitions come from it).
    StoreError
        As for :func:`load_snapshot`.

    Examples
    --------
    >>> import pyarrow.fs as pafs, patchframe as pf
    >>> fs = pafs._MockFileSystem()  # stands in for S3 here
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> _ = pf.save_snapshot(fleet, "bucket/history", when="2024-06-14", filesystem=fs)
    >>> ddl = pf.history.athena_ddl("s3://bucket/history", filesystem=fs)
    >>> print(ddl["patches"])  # doctest: +ELLIPSIS
    CREATE EXTERNAL TABLE `patchframe`.`patches` (
      `instance_id` string,
      `kb_id` string,
      ...
      `installed_time` timestamp,
    ...
    PARTITIONED BY (`snapshot` string, `account_id` string, `region` string)
    STORED AS PARQUET
    LOCATION 's3://bucket/history/patches/'
    TBLPROPERTIES (
      'projection.enabled' = 'true',
      'projection.snapshot.type' = 'enum',
      'projection.snapshot.values' = '20240614T000000.000000Z',
      ...
      'storage.location.template' = 's3://bucket/history/patches/snapshot=${snapshot}/account_id=${account_id}/region=${region}/'
    )
    """
    if not isinstance(store_uri, str) or not store_uri.startswith("s3://"):
        raise ValidationError(
            f"store_uri {store_uri!r}: Athena reads S3 only; expected 's3://bucket/prefix'"
        )
    if not isinstance(database, str) or not _DATABASE.fullmatch(database):
        raise ValidationError(
            f"database {database!r}: expected lower-case letters, digits and '_' (Athena's names)"
        )
    root = store_uri.rstrip("/")
    where = _open_store(root if filesystem is None else root.removeprefix("s3://"), filesystem)
    entries = _scan(where)
    if not entries:
        raise ValidationError(f"store {store_uri} holds no snapshot yet: save one first")
    dtypes = _read_dtypes(where, entries[-1])
    places = {
        (account, region)
        for entry in entries
        for parts in entry.partitions.values()
        for account, region, _ in parts
    }
    values = {
        "snapshot": [entry.id for entry in entries],
        "account_id": sorted({_segment(a) for a, _ in places}) or [_segment(None)],
        "region": sorted({_segment(r) for _, r in places}) or [_segment(None)],
    }
    return {
        name: _statement(database, name, _columns(dtypes[name]), f"{root}/{name}/", values)
        for name in ("patches", "nodes", "errors")
    }
