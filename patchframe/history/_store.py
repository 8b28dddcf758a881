"""Snapshots on disk: the store that patch history is written to and read from.

Every Patch Manager scan overwrites the last answer. :func:`save_snapshot` keeps
each one: a :class:`~patchframe.Fleet` written as Parquet into a *store*, a folder
(or an ``s3://`` prefix) that grows by one snapshot per save. :func:`list_snapshots`
shows what it holds, :func:`load_snapshot` reads a snapshot back, and
:func:`~patchframe.history.trend` reads them all. These functions and
:class:`Snapshot` are public through :mod:`patchframe.history` and ``patchframe``,
which re-export them; ``import patchframe.history._store`` names this module.

The store
---------
One Hive-partitioned Parquet dataset per frame of a Fleet::

    store/patches/snapshot=20240614T080000.000000Z/account_id=123456789012/region=eu-west-1/part-0.parquet
    store/patches/snapshot=20240614T080000.000000Z/_snapshot.json   the manifest, read first
    store/patches/snapshot=20240614T080000.000000Z/_dtypes.json     every column's dtype
    store/nodes/snapshot=20240614T080000.000000Z/account_id=.../region=.../part-0.parquet
    store/errors/snapshot=.../account_id=.../region=.../part-0.parquet  (when something failed)

A snapshot's id is its time in UTC, ISO 8601 basic format to the microsecond, so
ids sort by time and are safe file names everywhere; a second snapshot of the very
same time gets ``-2`` after it (then ``-3`` ...), never overwriting the first. The
partition columns live in folder names only, as Hive, Spark, Athena and DuckDB
expect; an unknown account or region is Hive's NULL, ``__HIVE_DEFAULT_PARTITION__``.
Those engines skip names starting with ``_`` or ``.``, so they read the datasets
unchanged, e.g. in DuckDB::

    SELECT snapshot, count(*) FROM read_parquet('store/patches/**/*.parquet',
        hive_partitioning = true, hive_types_autocast = false) GROUP BY snapshot

Tell engines that partition values are text, or an account id may become a
number: ``hive_types_autocast = false`` in DuckDB, ``spark.sql.sources.
partitionColumnTypeInference.enabled = false`` in Spark, ``string`` partition
columns in Athena's table definition. Data files keep pandas' metadata too, so
``pandas.read_parquet`` reads one as it would any other.

Safe writes
-----------
On a local folder a snapshot is written whole under a hidden temporary folder in
the store (``_incomplete-<hex>``), then renamed into place: the nodes and errors
folders first, the patches folder, which holds the manifest, last. Before that last
rename no reader sees the snapshot; after it, all of it. A process killed mid-write
leaves an ``_incomplete-*`` folder (ignored by every reader; delete it at leisure)
and, if it died between the renames, a nodes or errors folder of a snapshot that
does not exist: patchframe ignores it, and SQL over ``patches`` never sees it.

Object stores (``s3://`` through pyarrow's own S3 support, other schemes through
fsspec when it is installed, or any ``filesystem=``) cannot rename a folder at
once, so there the files are written in place and the manifest last: patchframe
lists a snapshot only once its manifest exists, while SQL engines may see a
snapshot's files as they arrive, or those of an interrupted save (no
``_snapshot.json``; delete that prefix). The tables :func:`~patchframe.history.athena_ddl`
defines list only finished snapshots. A save first claims its id with a small
hidden ``_claim-<hex>`` file (see ``_claim``), so two saves of the same time, from
two processes or two machines, both land, under ``<time>`` and ``<time>-2``.

On S3, credentials, region and endpoint come from the AWS SDK's standard
configuration, as for boto3: ``AWS_PROFILE``, ``AWS_REGION``, and
``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3`` for an S3-compatible endpoint
(pyarrow reads them). A URI can carry pyarrow's options too:
``s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http``.

Tested: local folders; the object-store code path on pyarrow's in-memory test
filesystem; and S3 itself over HTTP through pyarrow's S3FileSystem, against
moto's S3 server on 127.0.0.1, a writer killed mid-save and concurrent writers
included (tests/test_history_store_s3.py). Not tested: s3fs, or AWS's own S3.

Damage
------
A file in the store that is not what patchframe wrote (a damaged Parquet file or
manifest, a stray file inside a dataset, a folder name that is not a snapshot)
raises :class:`~patchframe.StoreError` naming it, rather than an error from deep
inside pyarrow or a silently different answer from SQL. Readers of every snapshot
(:func:`~patchframe.history.trend`) take ``on_error="skip"`` to leave such a
snapshot or folder out instead, with a :class:`~patchframe.exceptions.StoreWarning`
naming it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import sleep
from typing import Any, NamedTuple
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .._fleet import Fleet
from .._frames import Codes, TimeLike, category_codes, require_columns, utc_timestamp
from .._sync_layout import open_location
from ..exceptions import StoreError, StoreWarning, ValidationError

__all__ = ["Snapshot", "StorePath", "list_snapshots", "load_snapshot", "save_snapshot"]

StorePath = str | os.PathLike[str]

# The order of the renames: patches, which holds the manifest, goes last.
_DATASETS = ("nodes", "errors", "patches")
_PARTITIONS = ("account_id", "region")
_MANIFEST = "_snapshot.json"
_DTYPES = "_dtypes.json"
_PART = "part-0.parquet"
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_TEMPORARY = "_incomplete-"
_CLAIM = "_claim-"
_FORMAT = "patchframe snapshot"
_VERSION = 1
_ID = re.compile(r"(?P<time>\d{8}T\d{6}\.\d{6}Z)(?:-(?P<seq>[1-9]\d*))?")
_ID_TIME = "%Y%m%dT%H%M%S.%fZ"
_FIGURES = ("accounts", "regions", "nodes", "patches", "non_compliant_nodes", "errors")


class Snapshot(NamedTuple):
    """A saved snapshot: its id (the ``snapshot=`` folder's value) and its time in UTC."""

    id: str
    time: pd.Timestamp


# --- where the store is -----------------------------------------------------------


@dataclass(frozen=True)
class _Store:
    fs: Any  # a pyarrow.fs.FileSystem
    root: str
    prefix: str  # put before a path to name it as the user knows it: "s3://" ...
    local: bool  # a local folder: a rename puts a whole snapshot in place at once

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts]) if self.root else "/".join(parts)

    def shown(self, path: str) -> str:
        return self.prefix + path

    def kind(self, path: str) -> Any:
        return self.fs.get_file_info(path).type

    def listing(self, path: str, *, recursive: bool = False) -> list[Any]:
        selector = pafs.FileSelector(path, allow_not_found=True, recursive=recursive)
        return list(self.fs.get_file_info(selector))


def _open_store(store: StorePath, filesystem: object) -> _Store:
    if not isinstance(store, str | os.PathLike):
        raise ValidationError(
            f"store {store!r}: expected a folder path or a URI such as 's3://bucket/prefix'"
        )
    fs, root, prefix = open_location(store, filesystem)
    return _Store(fs, root or "/", prefix, isinstance(fs, pafs.LocalFileSystem))


def _hidden(name: str) -> bool:
    """Names Hive, Spark, Athena and DuckDB skip: patchframe's own notes and temporaries."""
    return name.startswith(("_", "."))


# --- writing ---------------------------------------------------------------------


def _snapshot_time(when: TimeLike | None) -> pd.Timestamp:
    stamp = pd.Timestamp.now(tz="UTC") if when is None else utc_timestamp(when, name="when")
    # Ids hold microseconds; anything finer would not survive the round trip.
    try:
        return stamp.floor("us").as_unit("ns")
    except pd.errors.OutOfBoundsDatetime as err:
        raise ValidationError(
            f"when {when!r}: outside the times a snapshot can hold, "
            f"{pd.Timestamp.min.ceil('us')} to {pd.Timestamp.max.floor('us')}"
        ) from err


def _snapshot_id(time: pd.Timestamp, seq: int) -> str:
    text = time.strftime(_ID_TIME)
    return text if seq == 1 else f"{text}-{seq}"


def _segment(value: object) -> str:
    if value is None or value == "":
        return _HIVE_NULL
    return quote(str(value), safe="")


def _partition_path(account: object, region: object) -> str:
    return f"account_id={_segment(account)}/region={_segment(region)}"


class _Partition(NamedTuple):
    account: Any  # a JSON value, None for NA
    region: Any
    rows: Codes


def _partitions(frame: pd.DataFrame) -> list[_Partition]:
    """The rows of each (account_id, region), pairs in order of first appearance."""
    account, accounts = category_codes(frame["account_id"])
    region, regions = category_codes(frame["region"])
    pair, firsts = pd.factorize((account + 1) * (len(regions) + 1) + region + 1)
    order = np.argsort(pair, kind="stable")
    bounds = np.searchsorted(pair[order], np.arange(len(firsts) + 1))
    account_values, region_values = [*accounts.tolist(), None], [*regions.tolist(), None]
    out = []
    for i, key in enumerate(firsts.tolist()):
        a, r = divmod(int(key), len(regions) + 1)
        rows = order[bounds[i] : bounds[i + 1]].astype(np.intp)
        out.append(_Partition(account_values[a - 1], region_values[r - 1], rows))
    return out


def _dtype_note(name: object, dtype: Any) -> dict[str, Any]:
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        note = {
            "name": name,
            "dtype": "category",
            "ordered": bool(dtype.ordered),
            "categories": categories.tolist(),
            "categories_dtype": str(categories.dtype),
        }
    else:
        note = {"name": name, "dtype": str(dtype)}
        try:
            kept = pd.api.types.pandas_dtype(note["dtype"]) == dtype
        except TypeError:
            kept = False
        if not kept:
            raise ValidationError(f"column {name!r}: a snapshot cannot keep its dtype {dtype}")
    try:
        json.dumps(note)
    except TypeError:
        raise ValidationError(
            f"column {name!r}: a snapshot keeps categories of text or numbers, not {dtype}"
        ) from None
    return note


def _dtype_notes(name: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    require_columns(frame, _PARTITIONS, needed_by=f"save_snapshot ({name} frame)")
    if not all(isinstance(c, str) for c in frame.columns) or frame.columns.has_duplicates:
        raise ValidationError(f"the {name} frame's column names must be distinct strings")
    return [_dtype_note(c, frame[c].dtype) for c in frame.columns]


def _part_table(frame: pd.DataFrame, rows: Codes) -> Any:
    part = frame.iloc[rows].drop(columns=list(_PARTITIONS)).reset_index(drop=True)
    for name in part.columns:
        if isinstance(part[name].dtype, pd.CategoricalDtype):
            # A file lists only the categories its rows use; _dtypes.json keeps them all.
            part[name] = part[name].cat.remove_unused_categories()
    return pa.Table.from_pandas(part, preserve_index=False)


@dataclass(frozen=True)
class _Plan:
    """Everything a save writes, worked out before the first byte is."""

    time: pd.Timestamp
    frames: dict[str, pd.DataFrame]
    partitions: dict[str, list[_Partition]]
    manifest: dict[str, Any]
    dtypes: dict[str, Any]

    def datasets(self) -> list[str]:
        """The datasets that get a folder: patches always (it holds the manifest)."""
        return [n for n in _DATASETS if n == "patches" or self.partitions[n]]


def _plan(fleet: Fleet, when: TimeLike | None) -> _Plan:
    time = _snapshot_time(when)
    frames = {"patches": fleet.patches, "nodes": fleet.nodes, "errors": fleet.errors}
    dtypes = {name: _dtype_notes(name, frame) for name, frame in frames.items()}
    partitions = {name: _partitions(frame) for name, frame in frames.items()}
    manifest = {
        "format": _FORMAT,
        "version": _VERSION,
        "time": time.isoformat(),
        "figures": fleet.figures(),
        "datasets": {
            name: [[p.account, p.region, len(p.rows)] for p in parts]
            for name, parts in partitions.items()
        },
    }
    notes = {"format": _FORMAT, "version": _VERSION, "dtypes": dtypes}
    return _Plan(time, frames, partitions, manifest, notes)


def _write_json(where: _Store, path: str, document: object) -> None:
    with where.fs.open_output_stream(path) as out:
        out.write(json.dumps(document, indent=1).encode("utf-8"))


def _write_files(where: _Store, plan: _Plan, folders: Mapping[str, str]) -> None:
    for name in plan.datasets():
        where.fs.create_dir(folders[name], recursive=True)
        for part in plan.partitions[name]:
            folder = f"{folders[name]}/{_partition_path(part.account, part.region)}"
            where.fs.create_dir(folder, recursive=True)
            table = _part_table(plan.frames[name], part.rows)
            pq.write_table(table, f"{folder}/{_PART}", filesystem=where.fs)
    _write_json(where, f"{folders['patches']}/{_DTYPES}", plan.dtypes)
    # Last: on an object store, the manifest's arrival is what completes a snapshot.
    _write_json(where, f"{folders['patches']}/{_MANIFEST}", plan.manifest)


def _taken(where: _Store, snapshot_id: str) -> bool:
    """Whether any dataset has a folder for the id (an orphan of a crash counts)."""
    folders = (where.path(n, f"snapshot={snapshot_id}") for n in _DATASETS)
    return any(where.kind(f) != pafs.FileType.NotFound for f in folders)


def _discard(where: _Store, path: str) -> None:
    with contextlib.suppress(OSError):  # best effort: a leftover is ignored by readers anyway
        if where.kind(path) == pafs.FileType.Directory:
            where.fs.delete_dir(path)


def _free_ids(where: _Store, time: pd.Timestamp) -> Iterator[str]:
    for seq in range(1, 10_000):
        snapshot_id = _snapshot_id(time, seq)
        if not _taken(where, snapshot_id):
            yield snapshot_id
    raise StoreError(f"{where.shown(where.root)}: 9,999 snapshots of {time}: pick another time")


def _save_by_rename(where: _Store, plan: _Plan) -> str:
    staging = where.path(f"{_TEMPORARY}{uuid.uuid4().hex}")
    staged = {name: f"{staging}/{name}" for name in _DATASETS}
    try:
        _write_files(where, plan, staged)
        for name in plan.datasets():
            where.fs.create_dir(where.path(name), recursive=True)
        ids = _free_ids(where, plan.time)
        return next(i for i in ids if _move_in(where, plan, staged, i))
    finally:
        _discard(where, staging)


def _move_in(where: _Store, plan: _Plan, staged: Mapping[str, str], snapshot_id: str) -> bool:
    """Rename the staged datasets into place; False, all undone, if another save took the id."""
    moved: list[tuple[str, str]] = []
    for name in plan.datasets():
        target = where.path(name, f"snapshot={snapshot_id}")
        try:
            where.fs.move(staged[name], target)  # a rename: fails onto a folder with files
        except OSError:
            if where.kind(target) == pafs.FileType.NotFound:
                raise
            for source, back in reversed(moved):
                where.fs.move(back, source)
            return False
        moved.append((staged[name], target))
    return True


def _occupied(where: _Store, snapshot_id: str) -> bool:
    """Whether an object store holds anything under the id: a claim, a snapshot, or the
    files of an interrupted save. An empty folder (what deleting a claim leaves) does not count."""
    return any(where.listing(where.path(n, f"snapshot={snapshot_id}")) for n in _DATASETS)


def _claim(where: _Store, time: pd.Timestamp) -> str:
    """Claim the first free id of ``time`` on an object store, against concurrent savers.

    An object store has no atomic rename or create-if-absent that pyarrow exposes, but
    S3 (like GCS and Azure Blob) lists a finished write at once. So a saver writes a
    claim, ``_claim-<hex>``, into the id's patches folder and lists it: alone, the id is
    its own, since a later claimer must see this claim when it lists its own. Seeing
    another claim, it withdraws its own and, after a random pause, looks again: the
    other saver has won the id, or withdrew too and one of the two goes alone next time.
    """
    token = uuid.uuid4().hex
    for seq in range(1, 10_000):
        snapshot_id = _snapshot_id(time, seq)
        folder = where.path("patches", f"snapshot={snapshot_id}")
        mine = f"{folder}/{_CLAIM}{token}"
        while not _occupied(where, snapshot_id):
            where.fs.create_dir(folder, recursive=True)
            where.fs.open_output_stream(mine).close()
            if [info.path for info in where.listing(folder)] == [mine]:
                return snapshot_id
            where.fs.delete_file(mine)
            sleep(random.uniform(0.01, 0.2))
    raise StoreError(f"{where.shown(where.root)}: 9,999 snapshots of {time}: pick another time")


def _save_in_place(where: _Store, plan: _Plan) -> str:
    snapshot_id = _claim(where, plan.time)
    folders = {name: where.path(name, f"snapshot={snapshot_id}") for name in _DATASETS}
    try:
        _write_files(where, plan, folders)
    except BaseException:
        for folder in folders.values():
            _discard(where, folder)
        raise
    return snapshot_id


def save_snapshot(
    fleet: Fleet,
    store: StorePath,
    *,
    when: TimeLike | None = None,
    filesystem: object = None,
) -> Snapshot:
    """Write a fleet into a store as a new snapshot; return its id and time.

    Parameters
    ----------
    fleet
        What :func:`~patchframe.load_fleet` returned (or any Fleet whose frames
        have ``account_id`` and ``region`` columns).
    store
        A folder (made if needed), or a URI such as ``s3://bucket/prefix``.
    when
        The snapshot's time: a datetime, a pandas Timestamp or ISO text, naive
        meaning UTC; now when None. Kept to the microsecond.
    filesystem
        A ``pyarrow.fs.FileSystem`` or an fsspec filesystem to write through, e.g.
        one with its own credentials; ``store`` is then a path within it.

    Returns
    -------
    Snapshot
        ``id``, the ``snapshot=`` folder's value, and ``time``, a UTC Timestamp.

    Raises
    ------
    ValidationError
        ``fleet`` is not a Fleet, ``when`` is not a time (or one outside 1677-2262,
        the times pandas holds to the nanosecond), or a column has a dtype
        a snapshot cannot keep.
    StoreError
        ``store`` is a file or lies under one, or holds something that is not
        patchframe's.

    Notes
    -----
    Rows are stored grouped by account and region, pairs in the order they first
    appear, so a frame whose pairs are interleaved comes back grouped; a fleet from
    ``load_fleet`` comes back as it was saved. Indexes are not kept: frames come
    back with a RangeIndex. See the module's notes for the layout and how writes
    stay atomic.

    Examples
    --------
    >>> import tempfile, patchframe as pf
    >>> from patchframe.history import save_snapshot, list_snapshots
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> with tempfile.TemporaryDirectory() as store:
    ...     first = save_snapshot(fleet, store, when="2024-06-14T08:00:00Z")
    ...     again = save_snapshot(fleet, store, when="2024-06-14T08:00:00Z")
    ...     listed = list_snapshots(store)
    >>> first.id, again.id
    ('20240614T080000.000000Z', '20240614T080000.000000Z-2')
    >>> listed[["snapshot", "nodes", "patches"]]
                        snapshot  nodes  patches
    0    20240614T080000.000000Z     13     2020
    1  20240614T080000.000000Z-2     13     2020
    """
    if not isinstance(fleet, Fleet):
        raise ValidationError(
            f"fleet: expected a Fleet (what load_fleet returns), got {type(fleet).__name__}"
        )
    plan = _plan(fleet, when)
    where = _open_store(store, filesystem)
    kind = where.kind(where.root)
    if kind not in (pafs.FileType.Directory, pafs.FileType.NotFound):
        raise StoreError(f"{where.shown(where.root)}: is a file, not a snapshot store (a folder)")
    if where.local:
        _check_parents(where)
        return Snapshot(_save_by_rename(where, plan), plan.time)
    return Snapshot(_save_in_place(where, plan), plan.time)


def _check_parents(where: _Store) -> None:
    """Refuse a local store under a file, before any write fails deep inside pyarrow."""
    for parent in Path(where.root).parents:
        if parent.is_dir():
            return
        if parent.exists():
            raise StoreError(
                f"{where.shown(where.root)}: cannot be a snapshot store: {parent} is a file, "
                "not a folder"
            )


# --- reading ---------------------------------------------------------------------


class _Entry(NamedTuple):
    """A snapshot as its manifest describes it."""

    id: str
    seq: int
    time: pd.Timestamp
    figures: dict[str, int]
    partitions: dict[str, list[tuple[Any, Any, int]]]


def _read_json(where: _Store, path: str, what: str) -> Any:
    try:
        with where.fs.open_input_stream(path) as f:
            raw = f.read()
    except FileNotFoundError:
        raise  # the caller knows what a missing file means there
    except OSError as err:
        raise StoreError(f"{where.shown(path)}: cannot read the {what}: {err}") from err
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise StoreError(f"{where.shown(path)}: damaged: the {what} is not JSON ({err})") from None


def _entry(where: _Store, folder: str, snapshot_id: str, seq: int) -> _Entry | None:
    path = f"{folder}/{_MANIFEST}"
    try:
        doc = _read_json(where, path, "snapshot manifest")
    except FileNotFoundError:
        if where.local:  # a local save renames a whole snapshot, manifest included, at once
            raise StoreError(
                f"{where.shown(folder)}: not a patchframe snapshot (it has no {_MANIFEST}); "
                "SQL engines reading the store would read it: move it out of the store"
            ) from None
        return None  # being written, or an interrupted save, on an object store
    try:
        _check_format(doc)
        time = pd.Timestamp(doc["time"]).tz_convert("UTC").as_unit("ns")
        figures = {k: int(doc["figures"][k]) for k in _FIGURES}
        partitions = {
            name: [(a, r, int(n)) for a, r, n in doc["datasets"][name]] for name in _DATASETS
        }
    except (KeyError, TypeError, ValueError) as err:
        raise StoreError(f"{where.shown(path)}: damaged snapshot manifest: {err!r}") from None
    return _Entry(snapshot_id, seq, time, figures, partitions)


def _check_format(doc: Any) -> None:
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ValueError("not a patchframe snapshot file")
    if doc.get("version") != _VERSION:
        raise ValueError(
            f"format version {doc.get('version')!r}; this patchframe reads {_VERSION}"
        )


def _scan(where: _Store, *, skip: bool = False) -> list[_Entry]:
    """Every complete snapshot, oldest first; with ``skip``, a folder that is not one
    or whose manifest is damaged is left out with a warning instead of raising."""
    kind = where.kind(where.root)
    if kind == pafs.FileType.NotFound:
        return []
    if kind != pafs.FileType.Directory:
        raise StoreError(f"{where.shown(where.root)}: is a file, not a snapshot store (a folder)")
    patches = where.path("patches")
    if where.kind(patches) not in (pafs.FileType.Directory, pafs.FileType.NotFound):
        raise StoreError(f"{where.shown(patches)}: is a file; a store keeps a folder there")
    entries = []
    for info in where.listing(patches):
        if _hidden(info.base_name):
            continue
        try:
            entry = _scanned(where, info)
        except StoreError as err:
            if not skip:
                raise
            _warn_skipped(err)
            continue
        if entry is not None:
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.time, e.seq))


def _scanned(where: _Store, info: Any) -> _Entry | None:
    match = _ID.fullmatch(info.base_name.removeprefix("snapshot="))
    if (
        not info.base_name.startswith("snapshot=")
        or match is None
        or info.type != pafs.FileType.Directory
    ):
        raise StoreError(
            f"{where.shown(info.path)}: not a patchframe snapshot: a store's patches folder "
            "holds only snapshot=<time> folders, and SQL engines reading it would read "
            "this too; move it out of the store"
        )
    return _entry(where, info.path, match.group(0), int(match.group("seq") or 1))


def _warn_skipped(err: StoreError) -> None:
    warnings.warn(f"skipped, as on_error='skip' asks: {err}", StoreWarning, stacklevel=4)


def _pick_entry(where: _Store, entries: list[_Entry], when: TimeLike | None) -> _Entry:
    if not entries:
        raise ValidationError(
            f"store {where.shown(where.root)} holds no snapshot yet: save one first"
        )
    if when is None:
        return entries[-1]
    if isinstance(when, str) and _ID.fullmatch(when):
        for entry in entries:
            if entry.id == when:
                return entry
        raise ValidationError(
            f"no snapshot {when!r} in {where.shown(where.root)}; it holds "
            f"{entries[0].id} ... {entries[-1].id}"
        )
    stamp = utc_timestamp(when, name="when")
    earlier = [e for e in entries if e.time <= stamp]
    if not earlier:
        raise ValidationError(
            f"no snapshot at or before {stamp.isoformat()} in {where.shown(where.root)}: "
            f"the first is from {entries[0].time.isoformat()}"
        )
    return earlier[-1]


def _dtype_of(note: Any) -> tuple[str, Any]:
    if note["dtype"] == "category":
        categories = pd.Index(note["categories"], dtype=note["categories_dtype"])
        return note["name"], pd.CategoricalDtype(categories, ordered=bool(note["ordered"]))
    return note["name"], pd.api.types.pandas_dtype(note["dtype"])


def _read_dtypes(where: _Store, entry: _Entry) -> dict[str, dict[str, Any]]:
    path = where.path("patches", f"snapshot={entry.id}", _DTYPES)
    try:
        doc = _read_json(where, path, "dtype notes")
        _check_format(doc)
        return {name: dict(map(_dtype_of, doc["dtypes"][name])) for name in _DATASETS}
    except FileNotFoundError:
        raise StoreError(f"{where.shown(path)}: missing; snapshot {entry.id} needs it") from None
    except (KeyError, TypeError, ValueError) as err:
        raise StoreError(f"{where.shown(path)}: damaged dtype notes: {err!r}") from None


def _check_files(where: _Store, folder: str, expected: set[str], snapshot_id: str) -> None:
    for info in where.listing(folder, recursive=True):
        inside = info.path[len(folder) + 1 :].split("/")
        if (
            info.type == pafs.FileType.File
            and info.path not in expected
            and not any(map(_hidden, inside))
        ):
            raise StoreError(
                f"{where.shown(info.path)}: not part of snapshot {snapshot_id}: patchframe did "
                "not write it, yet SQL engines reading the store would read it; move it out "
                "of the store"
            )


def _read_part(
    where: _Store, path: str, dtypes: Mapping[str, Any], rows: int, keep: Any = None
) -> pd.DataFrame:
    """One data file's ``dtypes`` columns; with ``keep`` (a pyarrow expression over
    them), only the rows it keeps, dropped before they become pandas objects."""
    try:
        table = pq.read_table(path, columns=list(dtypes), filesystem=where.fs)
    except FileNotFoundError:
        raise StoreError(f"{where.shown(path)}: missing; its snapshot lists it") from None
    except (pa.ArrowException, OSError) as err:
        raise StoreError(
            f"{where.shown(path)}: damaged: not a Parquet file of this snapshot ({err})"
        ) from None
    if table.num_rows != rows:
        raise StoreError(
            f"{where.shown(path)}: holds {table.num_rows:,} rows where its snapshot says "
            f"{rows:,}: the file was replaced or damaged"
        )
    if keep is not None:
        table = table.filter(keep)
    frame: pd.DataFrame = table.to_pandas()
    # Each file holds only the categories its rows use: back to the frame's own dtypes.
    return frame.astype(dict(dtypes)) if len(dtypes) else pd.DataFrame(index=range(rows))


def _constant(value: Any, rows: int, dtype: Any, path: str) -> Any:
    """A partition column: ``value`` on every row of a part, in the column's dtype."""
    if isinstance(dtype, pd.CategoricalDtype):
        code = -1 if value is None else int(dtype.categories.get_indexer(pd.Index([value]))[0])
        if value is not None and code < 0:
            raise StoreError(f"{path}: partition value {value!r} is not among its categories")
        return pd.Categorical.from_codes(np.full(rows, code, dtype=np.int32), dtype=dtype)
    return pd.array(np.full(rows, value, dtype=object), dtype=dtype)


def _read_dataset(
    where: _Store,
    entry: _Entry,
    name: str,
    dtypes: Mapping[str, Any],
    columns: Sequence[str] | None,
    keep: Any = None,
) -> pd.DataFrame:
    folder = where.path(name, f"snapshot={entry.id}")
    wanted = {c: d for c, d in dtypes.items() if columns is None or c in columns}
    in_files = {c: d for c, d in wanted.items() if c not in _PARTITIONS}
    parts = entry.partitions[name]
    paths = [f"{folder}/{_partition_path(a, r)}/{_PART}" for a, r, _ in parts]
    _check_files(where, folder, set(paths), entry.id)
    pieces = []
    for (account, region, rows), path in zip(parts, paths, strict=True):
        piece = _read_part(where, path, in_files, rows, keep)
        for column, value in zip(_PARTITIONS, (account, region), strict=True):
            if column in wanted:
                piece[column] = _constant(value, len(piece), wanted[column], where.shown(path))
        pieces.append(piece)
    if not pieces:
        empty = pd.RangeIndex(0)
        return pd.DataFrame({c: pd.Series(dtype=d, index=empty) for c, d in wanted.items()})
    return pd.concat(pieces, ignore_index=True)[list(wanted)]


def _read_snapshot(
    where: _Store,
    entry: _Entry,
    columns: Mapping[str, Sequence[str]] | None = None,
    rows: Mapping[str, Any] | None = None,
) -> dict[str, pd.DataFrame]:
    """The snapshot's datasets; with ``columns``, only those datasets and columns; with
    ``rows``, a pyarrow expression per dataset name, only the rows it keeps."""
    dtypes = _read_dtypes(where, entry)
    keep = rows or {}
    if columns is None:
        return {
            name: _read_dataset(where, entry, name, dtypes[name], None, keep.get(name))
            for name in _DATASETS
        }
    return {
        name: _read_dataset(where, entry, name, dtypes[name], wanted, keep.get(name))
        for name, wanted in columns.items()
    }


def _each_snapshot(
    store: StorePath,
    filesystem: object,
    columns: Mapping[str, Sequence[str]],
    rows: Mapping[str, Any] | None = None,
    *,
    on_error: str = "raise",
) -> Iterator[tuple[Snapshot, dict[str, pd.DataFrame]]]:
    """Every snapshot in the store, oldest first, with ``columns`` of its datasets.

    ``rows`` maps a dataset's name to a pyarrow expression (``pyarrow.compute.field(
    "state").isin([...])``) that keeps only some of its rows. It is applied to each
    data file as read, before the rows become pandas objects, so a reader that needs
    a tenth of a million-row snapshot holds a tenth of it. The expression may name
    only columns that are in ``columns`` and inside the files: the partition columns
    ``account_id`` and ``region`` live in folder names, not in the files.
    """
    if on_error not in ("raise", "skip"):
        raise ValidationError(f"on_error {on_error!r}: expected 'raise' or 'skip'")
    skip = on_error == "skip"
    where = _open_store(store, filesystem)
    for entry in _scan(where, skip=skip):
        try:
            frames = _read_snapshot(where, entry, columns, rows)
        except StoreError as err:
            if not skip:
                raise
            _warn_skipped(StoreError(f"snapshot {entry.id}: {err}"))
            continue
        yield Snapshot(entry.id, entry.time), frames


def list_snapshots(store: StorePath, *, filesystem: object = None) -> pd.DataFrame:
    """The snapshots in a store, oldest first, with their figures at a glance.

    Reads the small manifest of each snapshot only, not its data.

    Parameters
    ----------
    store
        A folder or a URI such as ``s3://bucket/prefix``; a folder that does not
        exist holds no snapshot.
    filesystem
        As for :func:`save_snapshot`.

    Returns
    -------
    pandas.DataFrame
        One row per snapshot: ``snapshot`` (the id, str), ``time`` (UTC), and the
        figures of :meth:`Fleet.figures <patchframe.Fleet.figures>` at that time,
        ``int64``: ``accounts``, ``regions``, ``nodes``, ``patches``,
        ``non_compliant_nodes``, ``errors``.

    Raises
    ------
    StoreError
        The store holds something that is not a patchframe snapshot.

    Examples
    --------
    >>> import tempfile
    >>> import patchframe as pf
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> with tempfile.TemporaryDirectory() as store:
    ...     _ = pf.save_snapshot(fleet, store, when="2024-06-14T08:00Z")
    ...     pf.list_snapshots(store)[["snapshot", "nodes", "patches"]]
                      snapshot  nodes  patches
    0  20240614T080000.000000Z     13     2020
    """
    entries = _scan(_open_store(store, filesystem))
    times = pd.DatetimeIndex([e.time for e in entries], dtype="datetime64[ns, UTC]")
    columns: dict[str, Any] = {
        "snapshot": pd.array([e.id for e in entries], dtype="str"),
        "time": times,
    }
    for figure in _FIGURES:
        columns[figure] = np.array([e.figures[figure] for e in entries], dtype=np.int64)
    return pd.DataFrame(columns)


def load_snapshot(
    store: StorePath, when: TimeLike | None = None, *, filesystem: object = None
) -> Fleet:
    """Read a snapshot back as the Fleet that was saved.

    Parameters
    ----------
    store
        A folder or a URI such as ``s3://bucket/prefix``.
    when
        None for the latest snapshot; a snapshot id (``"20240614T080000.000000Z"``)
        for that one; otherwise a time (a datetime, a Timestamp or ISO text; naive
        means UTC) for the latest snapshot at or before it, so an exact time gives
        the snapshot of that time (the last saved, if several share it).
    filesystem
        As for :func:`save_snapshot`.

    Returns
    -------
    Fleet
        Its patches, nodes and errors frames equal the ones saved, dtypes included
        (``account_id`` and ``region`` are the categoricals they were), each on a
        RangeIndex.

    Raises
    ------
    ValidationError
        The store holds no snapshot, none with that id, or none at or before ``when``.
    StoreError
        A file of the snapshot is damaged or missing, or a file that is not the
        snapshot's sits among its files; the message names it.

    Examples
    --------
    >>> import tempfile, patchframe as pf
    >>> from patchframe.history import load_snapshot, save_snapshot
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> with tempfile.TemporaryDirectory() as store:
    ...     _ = save_snapshot(fleet, store, when="2024-06-14")
    ...     back = load_snapshot(store, when="2024-06-20")
    >>> back.patches.equals(fleet.patches), back.nodes.dtypes.equals(fleet.nodes.dtypes)
    (True, True)
    """
    where = _open_store(store, filesystem)
    entry = _pick_entry(where, _scan(where), when)
    frames = _read_snapshot(where, entry)
    return Fleet(frames["patches"], frames["nodes"], frames["errors"])
