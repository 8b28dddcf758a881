"""Parquet round trips that keep every dtype, files from elsewhere read as pandas does, and
file errors as patchframe errors naming the path."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from export_frames import patches, record

from patchframe._fleet import Fleet
from patchframe._schema import (
    AccountRow,
    UnknownStateWarning,
    build_accounts,
    empty_accounts,
    empty_patches,
)
from patchframe.exceptions import StoreError, ValidationError
from patchframe.export import read_parquet, to_parquet


def test_parquet_round_trips_the_fleet(tmp_path: Path, sample_fleet_frames: Fleet) -> None:
    for name in ("patches", "nodes", "errors", "accounts"):
        frame = getattr(sample_fleet_frames, name)
        back = read_parquet(to_parquet(frame, tmp_path / f"{name}.parquet"))
        pd.testing.assert_frame_equal(back, frame)


def test_parquet_round_trips_accounts_and_named_nodes(
    tmp_path: Path, sample_fleet_frames: Fleet
) -> None:
    nodes = sample_fleet_frames.nodes
    rows = [
        AccountRow("123456789012", "prod", "ACTIVE", ("eu-west-1",), None),
        AccountRow("444455556666", None, "RETIRED", (), "AccessDenied"),  # a state nobody knew
    ]
    named = nodes.assign(account_name=pd.Categorical(["prod"] * len(nodes)))
    for name, frame in (("accounts", build_accounts(rows, nodes)), ("nodes", named)):
        back = read_parquet(to_parquet(frame, tmp_path / f"{name}.parquet"))
        pd.testing.assert_frame_equal(back, frame)
    for empty in (empty_accounts(), build_accounts(rows, nodes).iloc[:0]):
        back = read_parquet(to_parquet(empty, tmp_path / "empty.parquet"))
        pd.testing.assert_frame_equal(back, empty)


def test_parquet_keeps_every_dtype(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStateWarning)
        frame = patches(
            {
                "i-00000001": [
                    record("KB1", "Missing", Severity="Critical", InstalledTime=1.5e9),
                    record("KB2", "BrandNewState"),  # an unknown state: an extra category
                ],
                "i-00000002": [record("KB3", "Installed", InstalledTime=1.7e9 + 0.123456)],
            },
            platform_name=["Ubuntu", None],
        )
    assert frame["classification"].isna().all()  # categories of no value at all
    for case in (frame, frame.iloc[[2, 0]], frame.iloc[:0], empty_patches()):
        back = read_parquet(to_parquet(case, tmp_path / "case.parquet"))
        pd.testing.assert_frame_equal(back, case)
        assert list(back["state"].cat.categories)[-1] == list(case["state"].cat.categories)[-1]


def test_parquet_from_elsewhere_reads_as_pandas_does(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": pd.Categorical(["x", None])})
    frame.to_parquet(tmp_path / "plain.parquet")
    pd.testing.assert_frame_equal(
        read_parquet(tmp_path / "plain.parquet"), pd.read_parquet(tmp_path / "plain.parquet")
    )
    with pytest.raises(ValidationError, match="expected a DataFrame"):
        to_parquet(np.arange(3), tmp_path / "x.parquet")  # type: ignore[arg-type]


# File errors: the path named, patchframe's own error, the original as __cause__.


@pytest.mark.parametrize("where", ["a folder", "in no folder", "under a file"])
def test_to_parquet_where_no_file_can_be_written_names_the_path(
    tmp_path: Path, where: str
) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    path = {
        "a folder": tmp_path,
        "in no folder": tmp_path / "missing" / "x.parquet",
        "under a file": tmp_path / "notes.txt" / "x.parquet",
    }[where]
    with pytest.raises(ValidationError, match=re.escape(repr(str(path)))) as info:
        to_parquet(empty_patches(), path)
    assert isinstance(info.value.__cause__, OSError)


def test_to_parquet_of_a_column_parquet_cannot_hold_is_a_validation_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValidationError, match="cannot be written as Parquet") as info:
        to_parquet(pd.DataFrame({"a": [1, "x"]}), tmp_path / "x.parquet")
    assert isinstance(info.value.__cause__, pa.ArrowException)
    with pytest.raises(ValidationError, match="path 3: expected a file path"):
        to_parquet(empty_patches(), 3)  # type: ignore[arg-type]


def test_read_parquet_of_no_file_or_a_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.parquet"
    with pytest.raises(ValidationError, match=re.escape(repr(str(missing)))) as info:
        read_parquet(missing)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    with pytest.raises(ValidationError, match=re.escape(repr(str(tmp_path)) + " is a folder")):
        read_parquet(tmp_path)


@pytest.mark.parametrize(
    "content",
    [b"Index,Instance ID\r\n", b"", b"PAR1" + bytes(64) + b"PAR1", "cut short"],
    ids=["CSV", "empty", "zeroed", "cut short"],
)
def test_read_parquet_of_a_file_that_is_not_parquet_is_a_store_error(
    tmp_path: Path, content: bytes | str
) -> None:
    path = tmp_path / "x.parquet"
    if content == "cut short":
        to_parquet(empty_patches(), path)
        content = path.read_bytes()[:-20]
    path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match=re.escape(repr(str(path)))) as info:
        read_parquet(path)
    assert isinstance(info.value.__cause__, OSError | pa.ArrowException)


@pytest.mark.parametrize("note", [b"{not json", b"[]", b'{"categoricals": {"a": 1}}'])
def test_read_parquet_of_a_damaged_note_is_a_store_error(tmp_path: Path, note: bytes) -> None:
    table = pa.table({"a": [1]}).replace_schema_metadata({b"patchframe": note})
    pq.write_table(table, tmp_path / "x.parquet")
    with pytest.raises(StoreError, match="patchframe note is damaged"):
        read_parquet(tmp_path / "x.parquet")
