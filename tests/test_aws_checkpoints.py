"""Per-node checkpoints: what a rerun reads back is what the first run loaded, and a
damaged checkpoint costs only its own node."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import patchframe as pf
from patchframe._schema import NodeKey, PatchColumns
from patchframe.aws._checkpoints import NodeCache
from patchframe.exceptions import ValidationError
from patchframe.sandbox.emulator import Emulator

KEY = NodeKey("i-0123456789abcdef0", "123456789012", "eu-west-1")


def columns() -> PatchColumns:
    cols = PatchColumns()
    cols.extend(
        [
            {"KBId": "KB1", "State": "Missing", "InstalledTime": 0, "CVEIds": "CVE-1,CVE-2"},
            {"KBId": "KB2", "State": "Installed", "InstalledTime": 1704067200.5, "Title": "T"},
        ]
    )
    return cols


def test_a_node_round_trips(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path, filters=[])
    assert cache.get(KEY) is None
    cache.put(KEY, columns())
    back = cache.get(KEY)
    assert back is not None
    for name in ("kb_id", "title", "classification", "severity", "state", "cve_ids"):
        assert getattr(back, name) == getattr(columns(), name), name
    assert math.isnan(back.installed_time[0])  # the epoch sentinel: never installed
    assert back.installed_time[1] == 1704067200.5
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{KEY.instance_id}.parquet"]


def test_other_filters_or_places_are_other_checkpoints(tmp_path: Path) -> None:
    NodeCache(tmp_path, filters=[]).put(KEY, columns())
    missing = [{"Key": "State", "Values": ["Missing"]}]
    assert NodeCache(tmp_path, filters=missing).get(KEY) is None
    elsewhere = NodeKey(KEY.instance_id, KEY.account_id, "us-east-1")
    assert NodeCache(tmp_path, filters=[]).get(elsewhere) is None
    assert NodeCache(tmp_path, filters=[]).get(KEY) is not None


# A damaged checkpoint costs only its own node.


def _damage_by_truncating(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _damage_by_zeroing(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def _damage_by_emptying(path: Path) -> None:
    path.write_bytes(b"")


def _damage_with_other_columns(path: Path) -> None:
    pq.write_table(pa.table({"kb_id": ["KB1"], "state": ["Missing"]}), path)


def _damage_with_other_types(path: Path) -> None:
    table = pq.read_table(path)
    pq.write_table(table.set_column(6, "installed_time", pa.array(["soon", "later"])), path)


DAMAGES = {
    "truncated": _damage_by_truncating,
    "zeroed": _damage_by_zeroing,
    "empty": _damage_by_emptying,
    "other columns": _damage_with_other_columns,
    "other types": _damage_with_other_types,
}


def checkpoint_of(folder: Path) -> Path:
    (path,) = folder.rglob("*.parquet")
    return path


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_checkpoint_is_named_ignored_and_replaced(tmp_path: Path, damage: str) -> None:
    cache = NodeCache(tmp_path, filters=[])
    cache.put(KEY, columns())
    path = checkpoint_of(tmp_path)
    DAMAGES[damage](path)
    with pytest.warns(UserWarning, match=re.escape(str(path))) as caught:
        assert cache.get(KEY) is None
    assert KEY.instance_id in str(caught[0].message)
    cache.put(KEY, columns())  # what a load does next: the node again, written anew
    back = cache.get(KEY)
    assert back is not None and back.kb_id == ["KB1", "KB2"]


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_a_cache_dir_that_cannot_be_a_folder_is_a_validation_error(
    tmp_path: Path, where: str
) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("not a folder")
    folder = file if where == "a file" else file / "sub"
    with pytest.raises(ValidationError, match=re.escape(repr(str(folder)))) as info:
        NodeCache(folder, filters=[])
    assert isinstance(info.value.__cause__, OSError)


def test_a_cache_dir_that_is_not_a_path_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="cache_dir 3: expected a folder path"):
        NodeCache(3, filters=[])  # type: ignore[arg-type]


def test_a_fleet_load_with_one_damaged_checkpoint_equals_a_clean_load(tmp_path: Path) -> None:
    node = "i-0e1f2a3b4c5d6e7f8"
    with Emulator() as emulator:
        clean = pf.load_fleet(client=emulator.client(), progress=False)
        pf.load_fleet(client=emulator.client(), cache_dir=tmp_path, progress=False)
        (path,) = tmp_path.rglob(f"{node}.parquet")
        _damage_by_truncating(path)
        emulator.reset_stats()
        with pytest.warns(UserWarning, match=re.escape(str(path))):
            again = pf.load_fleet(client=emulator.client(), cache_dir=tmp_path, progress=False)
        assert set(emulator.stats.pages) == {node}  # that node again, and no other
    pd.testing.assert_frame_equal(again.patches, clean.patches)
    pd.testing.assert_frame_equal(again.errors, clean.errors)
    # scan_age is measured from the moment of each load.
    pd.testing.assert_frame_equal(
        again.nodes.drop(columns="scan_age"), clean.nodes.drop(columns="scan_age")
    )
    assert pq.read_table(path).num_rows == (clean.patches["instance_id"] == node).sum() > 0


def test_a_fleet_load_into_a_file_fails_before_any_call(tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("not a folder")
    with Emulator() as emulator:
        with pytest.raises(ValidationError, match=re.escape(repr(str(file)))):
            pf.load_fleet(client=emulator.client(), cache_dir=file, progress=False)
        assert emulator.stats.requests == {}
