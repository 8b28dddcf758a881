"""Per-node checkpoints: what a rerun reads back is what the first run loaded."""

from __future__ import annotations

import math
from pathlib import Path

from patchframe._schema import NodeKey, PatchColumns
from patchframe.aws._checkpoints import NodeCache

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
