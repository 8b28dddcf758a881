"""Patch history: snapshots on disk, what changed between two, compliance over time.

Every Patch Manager scan overwrites the last answer. :func:`save_snapshot` keeps
each one: a :class:`~patchframe.Fleet` written as Parquet into a *store*, a folder
(or an ``s3://`` prefix) that grows by one snapshot per save. :func:`list_snapshots`
shows what it holds, :func:`load_snapshot` reads a snapshot back, :func:`diff` says
what changed between two fleets, :func:`trend` and :func:`plot_trend` show
compliance over time.

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
``_snapshot.json``; delete that prefix). Two saves of the same explicit ``when``
at the same moment are not told apart on an object store.

Tested: local folders, and the object-store code path on pyarrow's in-memory test
filesystem. Not tested: S3 itself, pyarrow's S3FileSystem or s3fs.

Damage
------
A file in the store that is not what patchframe wrote (a damaged Parquet file or
manifest, a stray file inside a dataset, a folder name that is not a snapshot)
raises :class:`~patchframe.StoreError` naming it, rather than an error from deep
inside pyarrow or a silently different answer from SQL.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.ticker import MaxNLocator

from ._fleet import Fleet
from ._palette import severity_color
from ._schema import NON_COMPLIANT_STATES, PATCH_DTYPES, SEVERITY_LEVELS, STATES
from .exceptions import StoreError, ValidationError
from .filters import (
    TimeLike,
    _codes,
    _level_codes,
    _require,
    _state_mask,
    _state_names,
    _utc_nanoseconds,
    _utc_timestamp,
)
from .plots import _check_top, _no_data
from .summary import _CveLists, _distinct_pairs, _texts

__all__ = [
    "FleetDiff",
    "Snapshot",
    "diff",
    "list_snapshots",
    "load_snapshot",
    "plot_trend",
    "save_snapshot",
    "trend",
]

StorePath = str | os.PathLike[str]
Codes = npt.NDArray[np.intp]

# The order of the renames: patches, which holds the manifest, goes last.
_DATASETS = ("nodes", "errors", "patches")
_PARTITIONS = ("account_id", "region")
_MANIFEST = "_snapshot.json"
_DTYPES = "_dtypes.json"
_PART = "part-0.parquet"
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_TEMPORARY = "_incomplete-"
_FORMAT = "patchframe snapshot"
_VERSION = 1
_ID = re.compile(r"(?P<time>\d{8}T\d{6}\.\d{6}Z)(?:-(?P<seq>[1-9]\d*))?")
_ID_TIME = "%Y%m%dT%H%M%S.%fZ"
_FIGURES = ("accounts", "regions", "nodes", "patches", "non_compliant_nodes", "errors")

_OPEN = frozenset({"MISSING", "FAILED"})
_INSTALLED = frozenset(
    {"INSTALLED", "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED"}
)
_LEVEL_DTYPE: pd.CategoricalDtype = PATCH_DTYPES["severity_level"]
_NAT = np.iinfo(np.int64).min
_KEY = ("account_id", "region", "instance_id")


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


def _store(store: StorePath, filesystem: object) -> _Store:
    if not isinstance(store, str | os.PathLike):
        raise ValidationError(
            f"store {store!r}: expected a folder path or a URI such as 's3://bucket/prefix'"
        )
    text = os.fspath(store)
    if filesystem is not None:
        fs, root, prefix = _arrow_filesystem(filesystem), text, ""
    elif "://" in text:
        fs, root = _from_uri(text)
        prefix = text.split("://", 1)[0] + "://"
    else:
        fs, root, prefix = pafs.LocalFileSystem(), text, ""
    local = isinstance(fs, pafs.LocalFileSystem)
    if local:
        root, prefix = Path(root).expanduser().absolute().as_posix(), ""
    return _Store(fs, root.rstrip("/") or root, prefix, local)


def _from_uri(uri: str) -> tuple[Any, str]:
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except pa.ArrowInvalid:  # a scheme pyarrow does not know: fsspec may
        try:
            core = import_module("fsspec.core")
        except ImportError:
            raise ValidationError(
                f"store {uri!r}: pyarrow does not know this scheme; install fsspec and its "
                "driver for it, or pass filesystem="
            ) from None
        fsspec_fs, path = core.url_to_fs(uri)
        fs = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec_fs))
    return fs, str(path)


def _arrow_filesystem(filesystem: object) -> Any:
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem
    if hasattr(filesystem, "protocol") and hasattr(filesystem, "open"):  # fsspec's
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
    raise ValidationError(
        f"filesystem {filesystem!r}: expected a pyarrow.fs.FileSystem or an fsspec filesystem"
    )


def _hidden(name: str) -> bool:
    """Names Hive, Spark, Athena and DuckDB skip: patchframe's own notes and temporaries."""
    return name.startswith(("_", "."))


# --- writing ---------------------------------------------------------------------


def _snapshot_time(when: TimeLike | None) -> pd.Timestamp:
    stamp = pd.Timestamp.now(tz="UTC") if when is None else _utc_timestamp(when, name="when")
    # Ids hold microseconds; anything finer would not survive the round trip.
    stamp = stamp.floor("us").as_unit("ns")
    if not 1000 <= stamp.year <= 9999:
        raise ValidationError(f"when {when!r}: a snapshot time needs a four-digit year")
    return stamp


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
    account, accounts = _codes(frame["account_id"])
    region, regions = _codes(frame["region"])
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
    _require(frame, _PARTITIONS, needed_by=f"save_snapshot ({name} frame)")
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
        "figures": fleet.summary(),
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


def _save_in_place(where: _Store, plan: _Plan) -> str:
    snapshot_id = next(_free_ids(where, plan.time))
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
        ``fleet`` is not a Fleet, ``when`` is not a time, or a column has a dtype
        a snapshot cannot keep.
    StoreError
        ``store`` is a file, or holds something that is not patchframe's.

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
    where = _store(store, filesystem)
    kind = where.kind(where.root)
    if kind not in (pafs.FileType.Directory, pafs.FileType.NotFound):
        raise StoreError(f"{where.shown(where.root)}: is a file, not a snapshot store (a folder)")
    if where.local:
        return Snapshot(_save_by_rename(where, plan), plan.time)
    return Snapshot(_save_in_place(where, plan), plan.time)


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


def _scan(where: _Store) -> list[_Entry]:
    """Every complete snapshot, oldest first."""
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
        entry = _entry(where, info.path, match.group(0), int(match.group("seq") or 1))
        if entry is not None:
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.time, e.seq))


def _pick(where: _Store, entries: list[_Entry], when: TimeLike | None) -> _Entry:
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
    stamp = _utc_timestamp(when, name="when")
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


def _read_part(where: _Store, path: str, dtypes: Mapping[str, Any], rows: int) -> pd.DataFrame:
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
) -> pd.DataFrame:
    folder = where.path(name, f"snapshot={entry.id}")
    wanted = {c: d for c, d in dtypes.items() if columns is None or c in columns}
    in_files = {c: d for c, d in wanted.items() if c not in _PARTITIONS}
    parts = entry.partitions[name]
    paths = [f"{folder}/{_partition_path(a, r)}/{_PART}" for a, r, _ in parts]
    _check_files(where, folder, set(paths), entry.id)
    pieces = []
    for (account, region, rows), path in zip(parts, paths, strict=True):
        piece = _read_part(where, path, in_files, rows)
        for column, value in zip(_PARTITIONS, (account, region), strict=True):
            if column in wanted:
                piece[column] = _constant(value, rows, wanted[column], where.shown(path))
        pieces.append(piece)
    if not pieces:
        empty = pd.RangeIndex(0)
        return pd.DataFrame({c: pd.Series(dtype=d, index=empty) for c, d in wanted.items()})
    return pd.concat(pieces, ignore_index=True)[list(wanted)]


def _read_snapshot(
    where: _Store, entry: _Entry, columns: Mapping[str, Sequence[str]] | None = None
) -> dict[str, pd.DataFrame]:
    """The snapshot's datasets; with ``columns``, only those datasets and columns."""
    dtypes = _read_dtypes(where, entry)
    if columns is None:
        return {name: _read_dataset(where, entry, name, dtypes[name], None) for name in _DATASETS}
    return {
        name: _read_dataset(where, entry, name, dtypes[name], wanted)
        for name, wanted in columns.items()
    }


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
        figures of :meth:`Fleet.summary <patchframe.Fleet.summary>` at that time,
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
    entries = _scan(_store(store, filesystem))
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
    where = _store(store, filesystem)
    entry = _pick(where, _scan(where), when)
    frames = _read_snapshot(where, entry)
    return Fleet(frames["patches"], frames["nodes"], frames["errors"])


# --- what changed: diff -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FleetDiff:
    """What changed between two fleets, as tidy frames.

    Node frames (``added_nodes``, ``removed_nodes``) have one row per node:
    ``account_id``, ``region``, ``instance_id``, ``platform_name`` (str),
    ``patches`` (its patch rows) and ``missing`` (of those, MISSING or FAILED),
    counts ``int64``, sorted by account, region and node.

    Patch frames (``newly_missing``, ``fixed``, ``changed``) have one row per node
    and patch, on nodes in both fleets: ``account_id``, ``region``,
    ``instance_id``, ``kb_id``, ``title``, ``cve_ids`` (str), ``severity_level``,
    ``old_state`` and ``new_state`` (the contract's ordered state category, NA
    where the patch was not listed on that side) and ``installed_time`` (the new
    side's, UTC), sorted worst severity first, then by account, region, node, patch.

    CVE frames (``cves_opened``, ``cves_closed``) have one row per node and CVE id
    listed by its MISSING or FAILED patches, on nodes in both fleets:
    ``account_id``, ``region``, ``instance_id``, ``cve_id``, ``kb_ids`` (the open
    patches listing it, comma-separated; str), ``severity_level`` (the highest of
    theirs), sorted worst first, then by CVE, account, region, node.

    Attributes
    ----------
    added_nodes, removed_nodes
        Nodes only in the new fleet, only in the old one.
    newly_missing
        Patches MISSING or FAILED now that were not before: released since, or
        broken by a failed install.
    fixed
        Patches MISSING or FAILED before and installed now (INSTALLED,
        INSTALLED_OTHER, INSTALLED_PENDING_REBOOT or INSTALLED_REJECTED).
    changed
        Any other change of state, a patch newly listed or no longer listed included.
    cves_opened, cves_closed
        CVEs open on a node now and not before, and the other way round.
    """

    added_nodes: pd.DataFrame
    removed_nodes: pd.DataFrame
    newly_missing: pd.DataFrame
    fixed: pd.DataFrame
    changed: pd.DataFrame
    cves_opened: pd.DataFrame
    cves_closed: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """Rows of each frame; for CVEs, distinct CVE ids.

        Examples
        --------
        See :func:`diff`.
        """
        return {
            "added_nodes": len(self.added_nodes),
            "removed_nodes": len(self.removed_nodes),
            "newly_missing": len(self.newly_missing),
            "fixed": len(self.fixed),
            "changed": len(self.changed),
            "cves_opened": int(self.cves_opened["cve_id"].nunique()),
            "cves_closed": int(self.cves_closed["cve_id"].nunique()),
        }

    def summary(self) -> str:
        """What changed, in one line.

        Examples
        --------
        See :func:`diff`.
        """
        c = self.counts()
        return (
            f"{_count(c['added_nodes'], 'node')} added, {c['removed_nodes']:,} removed; "
            f"{_count(c['newly_missing'], 'patch', 'patches')} newly missing, "
            f"{c['fixed']:,} fixed, {c['changed']:,} other changes; "
            f"{_count(c['cves_opened'], 'CVE')} opened, {c['cves_closed']:,} closed"
        )

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<FleetDiff: {self.summary()}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(name.replace('_', ' '))}</th>"
            f"<td style='text-align:right'>{count:,}</td></tr>"
            for name, count in self.counts().items()
        )
        return f"<div><p>{html.escape(self.summary())}</p><table>{rows}</table></div>"


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


@dataclass(frozen=True)
class _Side:
    patches: pd.DataFrame
    nodes: pd.DataFrame | None


_DIFF_COLUMNS = (*_KEY, "kb_id", "title", "severity_level", "state", "installed_time", "cve_ids")


def _side(data: Fleet | pd.DataFrame, name: str) -> _Side:
    if isinstance(data, Fleet):
        side = _Side(data.patches, data.nodes)
        _require(data.nodes, _KEY, needed_by=f"diff ({name} nodes)")
    elif isinstance(data, pd.DataFrame):
        side = _Side(data, None)
    else:
        raise ValidationError(
            f"{name}: expected a Fleet or a patches DataFrame, got {type(data).__name__}"
        )
    _require(side.patches, _DIFF_COLUMNS, needed_by=f"diff ({name})")
    return side


def _union_codes(columns: Sequence[pd.Series[Any]]) -> tuple[list[Codes], pd.Index]:
    """Codes of several columns over the union of their values (-1 for NA), and that union."""
    coded = [_codes(c) for c in columns]
    union = pd.Index(np.concatenate([np.asarray(cats, dtype=object) for _, cats in coded]))
    union = union.unique()
    return [
        np.append(union.get_indexer(cats), -1).astype(np.intp)[codes] for codes, cats in coded
    ], union


def _ids(columns: Sequence[tuple[Codes, int]]) -> tuple[Codes, int]:
    """One id (0, 1, ... in order of first appearance) per distinct tuple of codes."""
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    bound = 1
    for codes, size in columns:
        if bound * (size + 1) >= 2**62:  # renumber before the next column could overflow
            key, firsts = pd.factorize(key)
            bound = len(firsts)
        key = key * (size + 1) + (codes + 1)
        bound *= size + 1
    ids, firsts = pd.factorize(key)
    return ids.astype(np.intp), len(firsts)


def _positions(ids: Codes, n: int) -> Codes:
    """The first row of each id, -1 where it has none."""
    where = np.full(n, -1, dtype=np.intp)
    distinct, first = np.unique(ids, return_index=True)
    where[distinct] = first
    return where


def _at(values: npt.NDArray[Any], pos: Codes, fill: Any) -> npt.NDArray[Any]:
    """``values[pos]``, ``fill`` where ``pos`` is -1."""
    out = np.full(len(pos), fill, dtype=values.dtype)
    found = pos >= 0
    out[found] = values[pos[found]]
    return out


def _text_at(series: pd.Series[Any], pos: Codes) -> npt.NDArray[np.object_]:
    """The values of ``series`` at ``pos`` as objects, None where ``pos`` is -1 (NA as NA)."""
    out = np.full(len(pos), None, dtype=object)
    found = pos >= 0
    out[found] = series.iloc[pos[found]].to_numpy(dtype=object)
    return out


def _either(old: pd.Series[Any], po: Codes, new: pd.Series[Any], pn: Codes) -> Any:
    """Text from the new side where the row is there, else from the old side."""
    values = _text_at(old, po)
    from_new = pn >= 0
    values[from_new] = _text_at(new, pn[from_new])
    return pd.array(values, dtype="str")


class _Diff:
    """Both fleets on one numbering of nodes and (node, patch) rows."""

    def __init__(self, old: _Side, new: _Side) -> None:
        self.old, self.new = old, new
        self._number_nodes()
        self._number_rows()
        self._align_states()

    def _number_nodes(self) -> None:
        """One id per node (account, region, instance) named by any frame of either side."""
        frames, owners = [self.old.patches, self.new.patches], [0, 1]
        for side, fleet in enumerate((self.old, self.new)):
            if fleet.nodes is not None:
                frames.append(fleet.nodes)
                owners.append(side)
        self.key_names: dict[str, pd.Index] = {}
        flat: dict[str, Codes] = {}
        for column in _KEY:
            codes, self.key_names[column] = _union_codes([f[column] for f in frames])
            flat[column] = np.concatenate(codes)
        node, self.n_nodes = _ids([(flat[c], len(self.key_names[c])) for c in _KEY])
        self.node_codes = {c: _at_ids(node, flat[c], self.n_nodes) for c in _KEY}
        per_frame = np.split(node, np.cumsum([len(f) for f in frames])[:-1])
        self.present = np.zeros((2, self.n_nodes), dtype=bool)
        for owner, ids in zip(owners, per_frame, strict=True):
            self.present[owner, ids] = True
        self.node_old, self.node_new = per_frame[0], per_frame[1]
        self.node_frames = [
            [(f, ids) for f, ids, o in zip(frames, per_frame, owners, strict=True) if o == side]
            for side in (0, 1)
        ]

    def _number_rows(self) -> None:
        """One id per (node, patch) key, and the first row of each key on either side."""
        kb, self.kb_names = _union_codes([self.old.patches["kb_id"], self.new.patches["kb_id"]])
        nodes, kbs = np.concatenate([self.node_old, self.node_new]), np.concatenate(kb)
        rows, self.n_keys = _ids([(nodes, self.n_nodes), (kbs, len(self.kb_names))])
        n_old = len(self.old.patches)
        self.pos_old = _positions(rows[:n_old], self.n_keys)
        self.pos_new = _positions(rows[n_old:], self.n_keys)
        self.key_node = _at_ids(rows, nodes, self.n_keys)
        self.key_kb = _at_ids(rows, kbs, self.n_keys)

    def _align_states(self) -> None:
        """Each key's state on either side, on one list of states; -1 where not listed."""
        old_codes, old_names = _state_names(self.old.patches["state"])
        new_codes, new_names = _state_names(self.new.patches["state"])
        unknown = dict.fromkeys(n for n in [*old_names, *new_names] if n not in STATES)
        self.states = [*STATES, *unknown]
        self.state_old = _at(_recode(old_codes, old_names, self.states), self.pos_old, -1)
        self.state_new = _at(_recode(new_codes, new_names, self.states), self.pos_new, -1)

    def in_states(self, states: frozenset[str], codes: Codes) -> npt.NDArray[np.bool_]:
        table = np.array([*(s in states for s in self.states), False], dtype=bool)
        return table[codes]

    def node_text(self, column: str, nodes: Codes) -> pd.Index:
        return _texts(self.key_names[column], self.node_codes[column][nodes])

    def patch_rows(self, mask: npt.NDArray[np.bool_]) -> pd.DataFrame:
        keys = np.flatnonzero(mask)
        po, pn = self.pos_old[keys], self.pos_new[keys]
        old, new = self.old.patches, self.new.patches
        times = _at(_utc_nanoseconds(new["installed_time"]), pn, _NAT)
        state_dtype = pd.CategoricalDtype(self.states, ordered=True)
        nodes = self.key_node[keys]
        frame = pd.DataFrame(
            {
                "account_id": self.node_text("account_id", nodes),
                "region": self.node_text("region", nodes),
                "instance_id": self.node_text("instance_id", nodes),
                "kb_id": _texts(self.kb_names, self.key_kb[keys]),
                "title": _either(old["title"], po, new["title"], pn),
                "cve_ids": _either(old["cve_ids"], po, new["cve_ids"], pn),
                "severity_level": pd.Categorical(
                    _either(old["severity_level"], po, new["severity_level"], pn),
                    dtype=_LEVEL_DTYPE,
                ),
                "old_state": pd.Categorical.from_codes(self.state_old[keys], dtype=state_dtype),
                "new_state": pd.Categorical.from_codes(self.state_new[keys], dtype=state_dtype),
                "installed_time": pd.DatetimeIndex(times.view("M8[ns]")).tz_localize("UTC"),
            }
        )
        return _worst_first(frame, [*_KEY, "kb_id"])

    def node_rows(self, side: int, nodes: npt.NDArray[np.bool_]) -> pd.DataFrame:
        ids = np.flatnonzero(nodes)
        patches = (self.old, self.new)[side].patches
        node = (self.node_old, self.node_new)[side]
        open_rows = _state_mask(patches, _OPEN)
        platform = np.full(len(ids), None, dtype=object)
        # Each frame that names the node may know its platform; the nodes frame, last, wins.
        for frame, frame_ids in self.node_frames[side]:
            if "platform_name" in frame.columns:
                pos = _positions(frame_ids, self.n_nodes)[ids]
                known = _text_at(frame["platform_name"], pos)
                platform = np.where(pd.isna(known), platform, known)
        frame = pd.DataFrame(
            {
                "account_id": self.node_text("account_id", ids),
                "region": self.node_text("region", ids),
                "instance_id": self.node_text("instance_id", ids),
                "platform_name": pd.array(platform, dtype="str"),
                "patches": np.bincount(node, minlength=self.n_nodes)[ids].astype(np.int64),
                "missing": np.bincount(node[open_rows], minlength=self.n_nodes)[ids].astype(
                    np.int64
                ),
            }
        )
        return frame.sort_values(list(_KEY), kind="stable", ignore_index=True)

    def open_cves(self, side: int, common: npt.NDArray[np.bool_]) -> _OpenCves:
        patches = (self.old, self.new)[side].patches
        node = (self.node_old, self.node_new)[side]
        cve, lists_of = _codes(patches["cve_ids"])
        rows = np.flatnonzero(_state_mask(patches, _OPEN) & (cve >= 0) & common[node])
        lists = _CveLists.of(lists_of, cve[rows])
        at, which = lists.explode(cve[rows])
        kb, kb_names = _codes(patches["kb_id"], rows[at])
        return _OpenCves(
            node[rows[at]],
            np.array(lists.ids, dtype=object)[which],
            _level_codes(patches["severity_level"], rows[at]),
            kb,
            kb_names,
        )

    def cve_rows(self, now: _OpenCves, before: _OpenCves) -> pd.DataFrame:
        """The (node, CVE) pairs open in ``now`` and not in ``before``."""
        names = pd.Index(np.concatenate([now.cve, before.cve])).unique()
        width = len(names) + 1
        now_pairs = now.node.astype(np.int64) * width + names.get_indexer(now.cve)
        before_pairs = before.node.astype(np.int64) * width + names.get_indexer(before.cve)
        keep = np.flatnonzero(~np.isin(now_pairs, before_pairs))
        pairs, pair_of = np.unique(now_pairs[keep], return_inverse=True)
        worst = np.full(len(pairs), -1, dtype=np.intp)
        np.maximum.at(worst, pair_of, now.level[keep])
        node = (pairs // width).astype(np.intp)
        frame = pd.DataFrame(
            {
                "account_id": self.node_text("account_id", node),
                "region": self.node_text("region", node),
                "instance_id": self.node_text("instance_id", node),
                "cve_id": pd.array(names[pairs % width].to_numpy(), dtype="str"),
                "kb_ids": _joined(pair_of, now.kb[keep], now.kb_names, len(pairs)),
                "severity_level": pd.Categorical.from_codes(worst, dtype=_LEVEL_DTYPE),
            }
        )
        return _worst_first(frame, ["cve_id", *_KEY])


class _OpenCves(NamedTuple):
    """One entry per open patch row and CVE it lists."""

    node: Codes
    cve: npt.NDArray[np.object_]
    level: Codes
    kb: Codes
    kb_names: pd.Index


def _joined(group: Codes, codes: Codes, names: pd.Index, n_groups: int) -> Any:
    """Per group, the distinct names its codes pick, sorted and comma-separated."""
    order = np.argsort(np.asarray(names, dtype=object), kind="stable")
    alphabetical = np.asarray(names, dtype=object)[order]
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    width = max(len(names), 1)
    known = codes >= 0
    # Sorted (group, name) keys: each group's names are a run, in alphabetical order.
    keys = np.unique(group[known].astype(np.int64) * width + rank[codes[known]])
    bounds = np.searchsorted(keys // width, np.arange(n_groups + 1))
    texts = alphabetical[keys % width]
    return pd.array(
        [",".join(texts[bounds[i] : bounds[i + 1]]) for i in range(n_groups)], dtype="str"
    )


def _at_ids(ids: Codes, values: Codes, n: int) -> Codes:
    """Per id, the value of (any of) its rows."""
    out = np.full(n, -1, dtype=np.intp)
    out[ids] = values
    return out


def _recode(codes: Codes, names: list[str], onto: list[str]) -> Codes:
    table = np.array([*(onto.index(n) for n in names), -1], dtype=np.intp)
    return table[codes]


def _worst_first(frame: pd.DataFrame, then: list[str]) -> pd.DataFrame:
    return frame.sort_values(
        ["severity_level", *then],
        ascending=[False, *([True] * len(then))],
        kind="stable",
        na_position="last",
        ignore_index=True,
    )


def diff(old: Fleet | pd.DataFrame, new: Fleet | pd.DataFrame) -> FleetDiff:
    """What changed between two fleets: nodes, patch states and open CVEs.

    Rows are matched on (account_id, region, instance_id, kb_id), all at once on
    category codes: two fleets of a million rows each compare in about half a second
    when a few thousand rows changed, in a few seconds when most did.
    Nodes are those with patch rows, and with a Fleet also those in its nodes frame
    (nodes never scanned, or whose patches failed to load). Patch and CVE changes
    are reported for nodes in both fleets only; a node that came or went is in
    ``added_nodes`` or ``removed_nodes`` instead. Should a (node, patch) pair be
    listed twice in one frame, its first row counts.

    Parameters
    ----------
    old, new
        Two fleets (e.g. from :func:`load_snapshot`) or two patches frames.

    Returns
    -------
    FleetDiff
        Tidy frames ``added_nodes``, ``removed_nodes``, ``newly_missing``,
        ``fixed``, ``changed``, ``cves_opened``, ``cves_closed``, and a one-line
        :meth:`~FleetDiff.summary`.

    Raises
    ------
    ValidationError
        ``old`` or ``new`` is neither a Fleet nor a DataFrame.
    ColumnsError
        A patches frame lacks a column of the contract that ``diff`` uses.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.history import diff
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> patches = fleet.patches
    >>> later = patches[patches["instance_id"] != "i-0e8c6a4f2d0b13579"].copy()
    >>> first = (later["state"] == "MISSING").idxmax()
    >>> later.loc[first, "state"] = "INSTALLED"
    >>> changes = diff(patches, later)
    >>> print(changes)  # doctest: +NORMALIZE_WHITESPACE
    0 nodes added, 1 removed; 0 patches newly missing, 1 fixed, 0 other changes;
    0 CVEs opened, 0 closed
    >>> changes.fixed[["instance_id", "kb_id", "old_state", "new_state"]]
               instance_id      kb_id old_state  new_state
    0  i-0e1f2a3b4c5d6e7f8  KB5035530   MISSING  INSTALLED
    """
    pair = _Diff(_side(old, "old"), _side(new, "new"))
    common = pair.present[0] & pair.present[1]
    on_common = common[pair.key_node]
    was_open = pair.in_states(_OPEN, pair.state_old)
    now_open = pair.in_states(_OPEN, pair.state_new)
    newly_missing = on_common & now_open & ~was_open
    fixed = on_common & was_open & pair.in_states(_INSTALLED, pair.state_new)
    listed_differently = (pair.pos_old >= 0) != (pair.pos_new >= 0)
    changed = (
        on_common
        & ~newly_missing
        & ~fixed
        & (listed_differently | (pair.state_old != pair.state_new))
    )
    before, after = pair.open_cves(0, common), pair.open_cves(1, common)
    return FleetDiff(
        added_nodes=pair.node_rows(1, pair.present[1] & ~pair.present[0]),
        removed_nodes=pair.node_rows(0, pair.present[0] & ~pair.present[1]),
        newly_missing=pair.patch_rows(newly_missing),
        fixed=pair.patch_rows(fixed),
        changed=pair.patch_rows(changed),
        cves_opened=pair.cve_rows(after, before),
        cves_closed=pair.cve_rows(before, after),
    )


# --- compliance over time: trend -----------------------------------------------------

#: Scopes of a trend frame, broadest first.
_SCOPES = pd.CategoricalDtype(["fleet", "platform", "node"])
_LEVEL_COLUMNS = [f"missing_{level.lower()}" for level in reversed(SEVERITY_LEVELS)]
_TREND_METRICS = ("nodes", "non_compliant_nodes", "missing", *_LEVEL_COLUMNS, "open_cves")
_METRIC_LABELS = {
    "nodes": "nodes",
    "non_compliant_nodes": "non-compliant nodes",
    "missing": "missing and failed patches",
    **{c: f"missing and failed {c.split('_')[1]} patches" for c in _LEVEL_COLUMNS},
    "open_cves": "open CVEs",
}
_TREND_PATCH_COLUMNS = (*_KEY, "state", "severity_level", "cve_ids", "platform_name")
_TREND_NODE_COLUMNS = (*_KEY, "platform_name", "compliance")


def _figures(patches: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """One snapshot's figures per scope: the fleet, each platform, each node."""
    _require(patches, _TREND_PATCH_COLUMNS, needed_by="trend (patches)")
    _require(nodes, _TREND_NODE_COLUMNS, needed_by="trend (nodes)")
    keys = {c: _union_codes([nodes[c], patches[c]]) for c in _KEY}
    flat = {c: np.concatenate(codes) for c, (codes, _) in keys.items()}
    node, n_nodes = _ids([(flat[c], len(keys[c][1])) for c in _KEY])
    of_nodes, of_patches = node[: len(nodes)], node[len(nodes) :]
    names = pd.DataFrame({c: _texts(keys[c][1], _at_ids(node, flat[c], n_nodes)) for c in _KEY})

    # Per node: itself, AWS's verdict, open patches, and those by level, worst first.
    open_rows = np.flatnonzero(_state_mask(patches, _OPEN))
    levels = _level_codes(patches["severity_level"], open_rows)
    graded = levels >= 0
    by_level = np.bincount(
        of_patches[open_rows[graded]] * len(SEVERITY_LEVELS) + levels[graded],
        minlength=n_nodes * len(SEVERITY_LEVELS),
    ).reshape(n_nodes, len(SEVERITY_LEVELS))[:, ::-1]
    per_node = [
        np.ones(n_nodes),
        _non_compliant(patches, nodes, of_patches, of_nodes, n_nodes),
        np.bincount(of_patches[open_rows], minlength=n_nodes),
        *by_level.T,
    ]
    cve_node, cve = _open_cves_by_node(patches, of_patches, open_rows)

    platform, platforms = _platforms(patches, nodes, of_patches, of_nodes, n_nodes)
    platform_order = np.argsort(np.array(platforms, dtype=object), kind="stable")
    node_order = names.sort_values(list(_KEY), kind="stable").index.to_numpy()
    scopes = {
        "fleet": (np.zeros(n_nodes, dtype=np.intp), ["fleet"], np.array([0])),
        "platform": (platform, platforms, platform_order),
        "node": (np.arange(n_nodes), names["instance_id"].tolist(), node_order),
    }
    tables = []
    for scope, (group, labels, order) in scopes.items():
        counts = [np.bincount(group, weights=v, minlength=len(labels)) for v in per_node]
        cves = _distinct_pairs(group[cve_node], cve, max(int(cve.max(initial=0)) + 1, 1))[0]
        counts.append(np.bincount(cves, minlength=len(labels)))
        # A platform only the patches named, with no node left, is none; the fleet always is.
        shown = order[counts[0][order] > 0] if scope == "platform" else order
        tables.append(_scope_table(scope, [labels[i] for i in shown], [c[shown] for c in counts]))
    return pd.concat(tables, ignore_index=True)


def _non_compliant(
    patches: pd.DataFrame, nodes: pd.DataFrame, of_patches: Codes, of_nodes: Codes, n_nodes: int
) -> npt.NDArray[np.float64]:
    """1.0 per non-compliant node: AWS's verdict where the nodes frame has one, else its states."""
    bad = np.zeros(n_nodes)
    bad[of_patches[_state_mask(patches, NON_COMPLIANT_STATES)]] = 1.0
    bad[of_nodes] = (nodes["compliance"] == "NON_COMPLIANT").to_numpy(dtype=bool, na_value=False)
    return bad


def _open_cves_by_node(
    patches: pd.DataFrame, of_patches: Codes, open_rows: Codes
) -> tuple[Codes, Codes]:
    """One (node, CVE index) entry per CVE listed by each open patch row."""
    cve, lists_of = _codes(patches["cve_ids"], open_rows)
    listed = cve >= 0
    at, which = _CveLists.of(lists_of, cve[listed]).explode(cve[listed])
    return of_patches[open_rows[listed][at]], which


def _platforms(
    patches: pd.DataFrame, nodes: pd.DataFrame, of_patches: Codes, of_nodes: Codes, n_nodes: int
) -> tuple[Codes, list[str]]:
    """Each node's platform, as an index into the names returned ("unknown" last)."""
    (from_nodes, from_patches), names = _union_codes(
        [nodes["platform_name"], patches["platform_name"]]
    )
    platform = np.full(n_nodes, len(names), dtype=np.intp)
    for ids, codes in ((of_patches, from_patches), (of_nodes, from_nodes)):
        platform[ids] = np.where(codes >= 0, codes, len(names))  # the nodes frame, last, wins
    return platform, [*(str(n) for n in names), "unknown"]


def _scope_table(scope: str, groups: list[str], values: list[npt.NDArray[Any]]) -> pd.DataFrame:
    columns: dict[str, Any] = {
        "scope": pd.Categorical([scope] * len(groups), dtype=_SCOPES),
        "group": pd.array(groups, dtype="str"),
    }
    for name, column in zip(_TREND_METRICS, values, strict=True):
        columns[name] = np.asarray(column).astype(np.int64)
    return pd.DataFrame(columns)


def trend(store: StorePath, *, filesystem: object = None) -> pd.DataFrame:
    """Compliance over time: figures per snapshot for the fleet, each platform and each node.

    Parameters
    ----------
    store
        A folder or a URI such as ``s3://bucket/prefix``.
    filesystem
        As for :func:`save_snapshot`.

    Returns
    -------
    pandas.DataFrame
        Tidy: one row per snapshot and scope, oldest snapshot first, then the
        fleet row, platforms by name, nodes by account, region and id. Columns:

        - ``snapshot`` (the id, str) and ``time`` (UTC);
        - ``scope``: ``"fleet"``, ``"platform"`` or ``"node"`` (a category);
        - ``group``: ``"fleet"``, the platform name (``"unknown"`` where none is
          known) or the node's instance id (str);
        - ``nodes`` and ``non_compliant_nodes``: by AWS's verdict, the
          ``compliance`` column of the nodes frame, as in ``Fleet.summary()``;
        - ``missing``: MISSING or FAILED patches (node x patch rows), and
          ``missing_critical`` ... ``missing_unspecified``, the same by severity_level;
        - ``open_cves``: distinct CVE ids those patches list.

        All counts are ``int64``.

    Examples
    --------
    >>> import tempfile, patchframe as pf
    >>> from patchframe.history import save_snapshot, trend
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> with tempfile.TemporaryDirectory() as store:
    ...     _ = save_snapshot(fleet, store, when="2024-06-14")
    ...     figures = trend(store)
    >>> fleet_rows = figures[figures["scope"] == "fleet"]
    >>> fleet_rows[["nodes", "non_compliant_nodes", "missing", "missing_critical", "open_cves"]]
       nodes  non_compliant_nodes  missing  missing_critical  open_cves
    0     13                   11      271                41         44
    >>> figures["scope"].value_counts().to_dict()
    {'node': 13, 'platform': 6, 'fleet': 1}
    """
    where = _store(store, filesystem)
    wanted = {"patches": _TREND_PATCH_COLUMNS, "nodes": _TREND_NODE_COLUMNS}
    tables = []
    for entry in _scan(where):
        frames = _read_snapshot(where, entry, wanted)
        table = _figures(frames["patches"], frames["nodes"])
        table.insert(0, "snapshot", pd.Series(entry.id, index=table.index, dtype="str"))
        times = pd.DatetimeIndex([entry.time] * len(table), dtype="datetime64[ns, UTC]")
        table.insert(1, "time", times)
        tables.append(table)
    if not tables:
        empty = _scope_table("fleet", [], [np.array([])] * len(_TREND_METRICS))
        empty.insert(0, "snapshot", pd.Series(dtype="str", index=empty.index))
        empty.insert(1, "time", pd.DatetimeIndex([], dtype="datetime64[ns, UTC]"))
        return empty
    return pd.concat(tables, ignore_index=True)


def plot_trend(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    metric: str = "missing",
    scope: str = "fleet",
    top: int = 8,
) -> Axes:
    """Chart a trend frame over time.

    The fleet's ``"missing"`` is drawn as areas stacked by severity level, worst at
    the bottom, in patchframe's severity colours; any other metric or scope as one
    line per group: the ``top`` groups with the highest latest value.

    Parameters
    ----------
    data
        What :func:`trend` returns.
    ax
        The Axes to draw on; a new figure when None.
    metric
        A count column of the trend frame: ``"missing"``, ``"non_compliant_nodes"``,
        ``"open_cves"``, ``"nodes"`` or ``"missing_critical"`` ... ``"missing_unspecified"``.
    scope
        ``"fleet"``, ``"platform"`` or ``"node"``.
    top
        How many groups get a line.

    Examples
    --------
    >>> import tempfile, matplotlib.pyplot as plt, patchframe as pf
    >>> from patchframe.history import plot_trend, save_snapshot, trend
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> with tempfile.TemporaryDirectory() as store:
    ...     _ = save_snapshot(fleet, store, when="2024-06-14")
    ...     _ = save_snapshot(fleet, store, when="2024-06-21")
    ...     figures = trend(store)
    >>> ax = plot_trend(figures)
    >>> ax.get_title(), [t.get_text() for t in ax.get_legend().get_texts()][:2]
    ('Missing and failed patches by severity', ['Critical', 'High'])
    >>> plt.close(ax.figure)
    """
    shown = _check_top(top)
    if metric not in _TREND_METRICS:
        raise ValidationError(f"metric {metric!r}: expected one of {', '.join(_TREND_METRICS)}")
    if scope not in _SCOPES.categories:
        raise ValidationError(f"scope {scope!r}: expected 'fleet', 'platform' or 'node'")
    _require(data, ["time", "scope", "group", metric], needed_by="plot_trend")
    rows = data[(data["scope"] == scope).to_numpy(dtype=bool, na_value=False)]
    if ax is None:
        _, ax = plt.subplots(figsize=(9.0, 4.5), layout="constrained")
    label = _METRIC_LABELS[metric]
    ax.set_xlabel("snapshot (UTC)")
    ax.set_ylabel(label)
    if rows.empty:
        ax.set_title(f"{label.capitalize()} by {scope}")
        return _no_data(ax, "no snapshots")
    times = pd.DatetimeIndex(rows["time"]).tz_convert("UTC").tz_localize(None)
    if metric == "missing" and scope == "fleet":
        _stacked_levels(ax, rows.set_index(times).sort_index())
    else:
        _lines(ax, rows.assign(time=times), metric, scope, shown)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib's stubs lack it
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return ax


def _stacked_levels(ax: Axes, rows: pd.DataFrame) -> None:
    levels = list(reversed(SEVERITY_LEVELS))  # worst first, at the bottom of the stack
    ax.stackplot(
        rows.index.to_numpy(),
        *(rows[c].to_numpy(dtype=np.float64) for c in _LEVEL_COLUMNS),
        labels=levels,
        colors=[severity_color(level) for level in levels],
    )
    ax.set_title("Missing and failed patches by severity")


def _lines(ax: Axes, rows: pd.DataFrame, metric: str, scope: str, shown: int) -> None:
    table = rows.pivot_table(index="time", columns="group", values=metric, aggfunc="sum")
    latest = table.ffill().iloc[-1].fillna(0)
    ranked = sorted(table.columns, key=lambda g: (-latest[g], str(g)))
    for group in ranked[:shown]:
        # A gap where the group was absent: a node that left, a platform not yet there.
        ax.plot(table.index.to_numpy(), table[group].to_numpy(), marker=".", label=str(group))
    title = f"{_METRIC_LABELS[metric].capitalize()} by {scope}"
    if len(ranked) > shown:
        title += f": top {shown} of {len(ranked):,}"
    ax.set_title(title)
