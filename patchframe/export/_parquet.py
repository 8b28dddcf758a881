"""Parquet that keeps every dtype of a frame: :func:`to_parquet` and :func:`read_parquet`.

The files are plain Parquet; a small note in the schema metadata (key
``patchframe``) restores what pyarrow's own pandas metadata would lose.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..exceptions import StoreError, ValidationError
from ._report_data import PathLike

_PARQUET_KEY = b"patchframe"


def _categorical_notes(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """What pyarrow's pandas metadata may lose of each categorical column.

    pyarrow restores categories from the file's dictionaries: an all-NA column's
    categories come back as ``object`` rather than ``str``, and a frame of no rows
    has no dictionaries at all. Ordered categories are kept whole so that their
    order (states nobody knew yet come last) survives whatever the data holds.
    """
    notes: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        if not isinstance(dtype, pd.CategoricalDtype):
            continue
        note: dict[str, Any] = {"ordered": bool(dtype.ordered)}
        if isinstance(dtype.categories.dtype, pd.StringDtype):
            note["categories_dtype"] = "str"
            if dtype.ordered or frame.empty:
                note["categories"] = [str(c) for c in dtype.categories]
        notes[str(name)] = note
    return notes


def to_parquet(frame: pd.DataFrame, path: PathLike) -> Path:
    """Write a frame to Parquet so that :func:`read_parquet` gives it back, dtypes and all.

    pyarrow's own pandas metadata keeps categoricals, ordered or not, UTC times,
    nullable integers and ``str`` columns. It restores categories from the data,
    though, so patchframe adds a small note (schema metadata key ``patchframe``)
    for what that loses: the ``str`` type of the categories of an all-NA column,
    and the categories of an empty frame. The categories of ordered columns are
    noted whole, so their order (states nobody knew yet last) is kept as written.
    The file is plain Parquet: pandas, DuckDB or Spark read it as usual.

    Raises
    ------
    ValidationError
        ``frame`` is not a DataFrame, or has a column Parquet cannot hold (Python
        objects of mixed types); ``path`` is not a path, or cannot be written (a
        folder, a folder that does not exist, no permission). pyarrow's or the OS's
        error is ``__cause__``.

    Examples
    --------
    >>> import tempfile, patchframe as pf
    >>> from patchframe.export import read_parquet, to_parquet
    >>> patches = pf.load_fleet(client=pf.sample_client(), progress=False).patches
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     back = read_parquet(to_parquet(patches, f"{folder}/patches.parquet"))
    >>> back.equals(patches), back.dtypes.equals(patches.dtypes)
    (True, True)
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"frame: expected a DataFrame, got {type(frame).__name__}")
    target = _path(path)
    try:
        table = pa.Table.from_pandas(frame)
    except pa.ArrowException as err:
        raise ValidationError(f"frame cannot be written as Parquet: {err}") from err
    note = json.dumps({"version": 1, "categoricals": _categorical_notes(frame)})
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _PARQUET_KEY: note})
    try:
        pq.write_table(table, target)
    except OSError as err:
        raise ValidationError(
            f"path {str(target)!r}: cannot write a Parquet file there: {_reason(err)}"
        ) from err
    return target


def _path(path: object) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise ValidationError(f"path {path!r}: expected a file path, got {type(path).__name__}")
    return Path(path)


def _reason(err: Exception) -> str:
    # pyarrow's OSErrors repeat the path in a long text; their errno says it in a few words.
    return os.strerror(err.errno) if isinstance(err, OSError) and err.errno else str(err)


def read_parquet(path: PathLike) -> pd.DataFrame:
    """Read a Parquet file, restoring the dtypes :func:`to_parquet` noted.

    A file written by any other tool is read as ``pandas.read_parquet`` would.

    Raises
    ------
    ValidationError
        ``path`` is not a path, names no file, or names a folder.
    StoreError
        The file cannot be read as Parquet (not Parquet, damaged, cut short, no
        permission); pyarrow's or the OS's error is ``__cause__``.

    Examples
    --------
    >>> import tempfile
    >>> import patchframe as pf
    >>> patches = pf.load_instance_patches("i-0e1f2a3b4c5d6e7f8", client=pf.sample_client())
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     again = pf.read_parquet(pf.to_parquet(patches, f"{folder}/node.parquet"))
    >>> again.dtypes.equals(patches.dtypes), len(again)
    (True, 320)
    """
    source = _path(path)
    if source.is_dir():
        raise ValidationError(f"path {str(source)!r} is a folder; expected a Parquet file")
    try:
        table = pq.read_table(source)
    except FileNotFoundError as err:
        raise ValidationError(f"path {str(source)!r}: no such file") from err
    except (OSError, pa.ArrowException) as err:
        raise StoreError(f"{str(source)!r} cannot be read as Parquet: {_reason(err)}") from err
    frame: pd.DataFrame = table.to_pandas()
    raw = (table.schema.metadata or {}).get(_PARQUET_KEY)
    if raw is None:
        return frame
    for name, note in _notes(raw, source).items():
        if name not in frame.columns:
            continue
        series = frame[name]
        if "categories" in note:
            categories = pd.Index(note["categories"], dtype="str")
        elif note.get("categories_dtype") == "str" and isinstance(
            series.dtype, pd.CategoricalDtype
        ):
            categories = pd.Index([str(c) for c in series.cat.categories], dtype="str")
        else:
            continue
        dtype = pd.CategoricalDtype(categories, ordered=bool(note["ordered"]))
        if series.dtype != dtype:
            frame[name] = series.astype(dtype)
    return frame


def _notes(raw: bytes, source: Path) -> dict[str, Any]:
    """The categorical notes of a file's ``patchframe`` metadata, checked."""
    try:
        notes = json.loads(raw).get("categoricals", {})
    except (ValueError, AttributeError) as err:
        raise StoreError(f"{str(source)!r}: its patchframe note is damaged: {err}") from err
    if not isinstance(notes, dict) or not all(
        isinstance(note, dict) and "ordered" in note for note in notes.values()
    ):
        raise StoreError(f"{str(source)!r}: its patchframe note is damaged")
    return notes
