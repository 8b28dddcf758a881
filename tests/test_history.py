"""Patch history: snapshots written, listed and read back, crashes and damage, the same
store through DuckDB, diffs of hand-built and synthetic fleets, trends and their chart,
the synthetic history itself, and ``patchframe report --snapshot-store``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import duckdb
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from matplotlib.collections import PolyCollection

from patchframe import cli
from patchframe._fleet import Fleet
from patchframe._palette import severity_color
from patchframe._schema import (
    NON_COMPLIANT_STATES,
    PATCH_DTYPES,
    STATE_COUNT_FIELDS,
    NodeKey,
    PatchColumns,
    UnknownStateWarning,
    build_errors,
    build_nodes,
    build_patches,
    concat_patches,
    normalise_state,
    severity_level_of,
)
from patchframe.aws import load_fleet
from patchframe.exceptions import ColumnsError, StoreError, ValidationError
from patchframe.history import (
    Snapshot,
    diff,
    list_snapshots,
    load_snapshot,
    plot_trend,
    save_snapshot,
    trend,
)
from patchframe.sandbox.emulator import Emulator, sample_client
from patchframe.sandbox.sample import (
    HISTORY_START,
    WireFleet,
    synthetic_fleet,
    synthetic_history,
)
from patchframe.summary import cve_exposure

_store = import_module("patchframe.history._store")

ACCOUNT, REGION = "123456789012", "eu-west-1"
PART = "account_id=123456789012/region=eu-west-1/part-0.parquet"
JUNE = pd.Timestamp("2024-06-14T08:00:00Z")
OPEN = {"MISSING", "FAILED"}
INSTALLED = {"INSTALLED", "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED"}


def assert_same_fleet(back: Fleet, saved: Fleet) -> None:
    for name in ("patches", "nodes", "errors"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(saved, name))


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(client=sample_client(), progress=False)


@pytest.fixture(scope="module")
def wire_history() -> list[tuple[dt.datetime, WireFleet]]:
    return synthetic_history()


@pytest.fixture(scope="module")
def fleets(wire_history: list[tuple[dt.datetime, WireFleet]]) -> list[Fleet]:
    """The synthetic history as load_fleet returns it, one emulator per snapshot."""
    loaded = []
    for _, wire in wire_history:
        with Emulator(wire) as emulator:
            loaded.append(load_fleet(client=emulator.client(), progress=False))
    return loaded


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory,
    wire_history: list[tuple[dt.datetime, WireFleet]],
    fleets: list[Fleet],
) -> Path:
    """A store holding the whole synthetic history; tests only read it."""
    folder = tmp_path_factory.mktemp("history") / "store"
    for (when, _), fleet in zip(wire_history, fleets, strict=True):
        save_snapshot(fleet, folder, when=when)
    return folder


def snapshot_folder(store: Path, snapshot_id: str, dataset: str = "patches") -> Path:
    return store / dataset / f"snapshot={snapshot_id}"


# --- round trips -------------------------------------------------------------------


def test_round_trip_gives_back_every_frame_and_dtype(fleet: Fleet, tmp_path: Path) -> None:
    saved = save_snapshot(fleet, tmp_path / "store", when="2024-06-14T08:00:00.1234567Z")
    assert saved == Snapshot(
        "20240614T080000.123456Z", pd.Timestamp("2024-06-14T08:00:00.123456Z")
    )
    back = load_snapshot(tmp_path / "store")
    assert_same_fleet(back, fleet)
    for column in ("account_id", "region"):
        assert back.patches[column].dtype == fleet.patches[column].dtype  # categorical, not text
    assert (tmp_path / "store" / "patches" / f"snapshot={saved.id}" / PART).is_file()
    assert not (tmp_path / "store" / "errors").exists()  # nothing failed: no errors dataset


def two_account_fleet(sample: Fleet) -> Fleet:
    """The sample and a synthetic fleet elsewhere, with a failed node of unknown place."""
    with Emulator(synthetic_fleet(4, patches_per_node=30, account_id="111122223333")) as other:
        elsewhere = load_fleet(client=other.client(), progress=False)
    errors = build_errors(
        [
            {"operation": "GetCallerIdentity", "error_code": "AccessDenied", "message": "no"},
            {
                "account_id": "111122223333",
                "region": "us-east-1",
                "instance_id": "i-0123456789abcdef0",
                "operation": "DescribeInstancePatches",
                "error_code": "ThrottlingException",
                "message": "Rate exceeded",
                "attempts": 10,
            },
        ]
    )
    return Fleet(
        concat_patches([sample.patches, elsewhere.patches]),
        concat_patches([sample.nodes, elsewhere.nodes]),
        errors,
    )


def test_round_trip_across_accounts_with_errors(fleet: Fleet, tmp_path: Path) -> None:
    both = two_account_fleet(fleet)
    save_snapshot(both, tmp_path, when=JUNE)
    assert_same_fleet(load_snapshot(tmp_path), both)
    listed = list_snapshots(tmp_path).iloc[0]
    assert (listed["accounts"], listed["regions"], listed["errors"]) == (2, 2, 2)
    null = "account_id=__HIVE_DEFAULT_PARTITION__/region=__HIVE_DEFAULT_PARTITION__"
    assert (tmp_path / "errors" / "snapshot=20240614T080000.000000Z" / null).is_dir()


def odd_fleet() -> Fleet:
    """Rows of unknown place, a state nobody knows yet, unused and all-NA categories."""
    known, nowhere = NodeKey("i-00000001", ACCOUNT, REGION), NodeKey("mi-0123456789abcdef0")
    parts = []
    for key, records in (
        (known, [{"KBId": "KB1", "State": "Missing", "Severity": "Critical"}]),
        (nowhere, [{"KBId": "KB2", "State": "BrandNewState"}, {"KBId": "KB3", "State": "Failed"}]),
    ):
        cols = PatchColumns()
        cols.extend(records)
        parts.append((key, cols))
    with pytest.warns(UnknownStateWarning):
        patches = build_patches(parts, node_columns={"platform_name": ["Ubuntu", None]})
    patches["kb_id"] = patches["kb_id"].cat.add_categories(["KB-never-seen"])
    keys = [known, nowhere]
    nodes = build_nodes(keys, {}, {known: {"MissingCount": 1}}, {known: 1, nowhere: 2})
    return Fleet(patches, nodes, build_errors([]))


def test_round_trip_keeps_na_places_unknown_states_and_categories(tmp_path: Path) -> None:
    odd = odd_fleet()
    save_snapshot(odd, tmp_path)
    back = load_snapshot(tmp_path)
    assert_same_fleet(back, odd)
    assert back.patches["state"].cat.categories[-1] == "BRAND_NEW_STATE"
    assert "KB-never-seen" in back.patches["kb_id"].cat.categories
    assert back.patches["account_id"].isna().tolist() == [False, True, True]


def test_interleaved_places_come_back_grouped(fleet: Fleet, tmp_path: Path) -> None:
    both = two_account_fleet(fleet)
    shuffled = both.patches.sample(frac=1.0, random_state=1).reset_index(drop=True)
    save_snapshot(Fleet(shuffled, both.nodes, both.errors), tmp_path)
    first_seen = list(dict.fromkeys(shuffled["account_id"].astype(str)))
    rank = shuffled["account_id"].astype(str).map({a: i for i, a in enumerate(first_seen)})
    grouped = shuffled.iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)
    pd.testing.assert_frame_equal(load_snapshot(tmp_path).patches, grouped)


def test_save_refuses_what_is_not_a_fleet(fleet: Fleet, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="expected a Fleet"):
        save_snapshot(fleet.patches, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not a date or time"):
        save_snapshot(fleet, tmp_path, when="last tuesday")
    with pytest.raises(ValidationError, match="account_id"):
        save_snapshot(
            Fleet(fleet.patches.drop(columns="account_id"), fleet.nodes, fleet.errors), tmp_path
        )
    assert not tmp_path.joinpath("patches").exists()


# --- which snapshot ------------------------------------------------------------------


def test_load_picks_the_latest_an_id_or_the_last_at_or_before(
    fleet: Fleet, tmp_path: Path
) -> None:
    smaller = Fleet(fleet.patches.iloc[:100].copy(), fleet.nodes, fleet.errors)
    save_snapshot(fleet, tmp_path, when="2024-06-14T08:00:00Z")
    later = save_snapshot(smaller, tmp_path, when="2024-06-21T08:00:00Z")
    assert len(load_snapshot(tmp_path).patches) == 100
    assert len(load_snapshot(tmp_path, when=later.id).patches) == 100
    assert len(load_snapshot(tmp_path, when="20240614T080000.000000Z").patches) == 2020
    assert len(load_snapshot(tmp_path, when="2024-06-21T07:59:59Z").patches) == 2020
    assert (
        len(load_snapshot(tmp_path, when=dt.datetime(2024, 6, 21, 8)).patches) == 100
    )  # naive: UTC
    with pytest.raises(
        ValidationError, match=r"at or before 2024-06-01.*first is from 2024-06-14"
    ):
        load_snapshot(tmp_path, when="2024-06-01")
    with pytest.raises(ValidationError, match=r"no snapshot '20240615T000000\.000000Z'"):
        load_snapshot(tmp_path, when="20240615T000000.000000Z")
    with pytest.raises(ValidationError, match="holds no snapshot yet"):
        load_snapshot(tmp_path / "empty")


def test_listing_a_store_that_does_not_exist_is_empty(tmp_path: Path) -> None:
    listed = list_snapshots(tmp_path / "nothing-here")
    assert listed.empty
    assert listed.dtypes.astype(str).to_dict() == {
        "snapshot": "str",
        "time": "datetime64[ns, UTC]",
        **dict.fromkeys(["accounts", "regions", "nodes", "patches"], "int64"),
        **dict.fromkeys(["non_compliant_nodes", "errors"], "int64"),
    }


def test_two_snapshots_of_the_same_moment_both_stay(fleet: Fleet, tmp_path: Path) -> None:
    ids = [save_snapshot(fleet, tmp_path, when=JUNE).id for _ in range(3)]
    assert ids == [
        "20240614T080000.000000Z",
        "20240614T080000.000000Z-2",
        "20240614T080000.000000Z-3",
    ]
    assert list_snapshots(tmp_path)["snapshot"].tolist() == ids
    now = [save_snapshot(fleet, tmp_path / "now").id for _ in range(2)]
    assert len(set(now)) == 2  # unsaid times differ by microseconds at least
    for snapshot_id in ids:
        assert_same_fleet(load_snapshot(tmp_path, when=snapshot_id), fleet)


# --- crashes -------------------------------------------------------------------------


CRASH = textwrap.dedent(
    """
    import os, sys
    import patchframe as pf
    from importlib import import_module
    _store = import_module("patchframe.history._store")

    write_table, written = _store.pq.write_table, []

    def dies_on_the_second_file(*args, **kwargs):
        written.append(args[1])
        if len(written) == 2:
            os._exit(3)  # killed: no cleanup, no finally
        write_table(*args, **kwargs)

    _store.pq.write_table = dies_on_the_second_file
    fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    _store.save_snapshot(fleet, sys.argv[1], when="2024-06-14T08:00:00Z")
    """
)


def test_a_save_killed_mid_write_leaves_no_snapshot(fleet: Fleet, tmp_path: Path) -> None:
    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(store)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3, done.stderr
    leftovers = [p.name for p in store.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith("_incomplete-")
    assert any(store.joinpath(leftovers[0]).rglob("*.parquet"))  # half a snapshot, hidden
    assert list_snapshots(store).empty
    with pytest.raises(ValidationError, match="no snapshot yet"):
        load_snapshot(store)

    saved = save_snapshot(fleet, store, when=JUNE)
    assert saved.id == "20240614T080000.000000Z"
    assert list_snapshots(store)["snapshot"].tolist() == [saved.id]
    assert_same_fleet(load_snapshot(store), fleet)
    assert store.joinpath(leftovers[0]).is_dir()  # ignored by every reader; the user's to delete


class DiesRenamingPatches:
    """A local filesystem that fails to rename the patches folder, as if power went then."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def move(self, source: str, target: str) -> None:
        if target.split("/")[-2] == "patches":
            raise RuntimeError("power cut")
        self._fs.move(source, target)


def test_a_save_cut_between_renames_is_not_a_snapshot(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_snapshot(fleet, tmp_path, when="2024-06-07")
    real = _store._move_in

    def dying(where: Any, *args: Any) -> bool:
        return real(dataclasses.replace(where, fs=DiesRenamingPatches(where.fs)), *args)

    monkeypatch.setattr(_store, "_move_in", dying)
    with pytest.raises(RuntimeError, match="power cut"):
        save_snapshot(fleet, tmp_path, when=JUNE)
    monkeypatch.undo()

    assert snapshot_folder(tmp_path, "20240614T080000.000000Z", "nodes").is_dir()  # an orphan
    assert not snapshot_folder(tmp_path, "20240614T080000.000000Z").exists()
    assert list_snapshots(tmp_path)["snapshot"].tolist() == ["20240607T000000.000000Z"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("_")]  # staging cleaned up
    again = save_snapshot(fleet, tmp_path, when=JUNE)
    assert again.id == "20240614T080000.000000Z-2"  # the orphan's id is not reused
    assert_same_fleet(load_snapshot(tmp_path), fleet)


def test_object_stores_write_in_place_and_skip_unfinished_snapshots(fleet: Fleet) -> None:
    fs = pafs._MockFileSystem()  # pyarrow's in-memory test filesystem: no rename is atomic
    first = save_snapshot(fleet, "bucket/store", when=JUNE, filesystem=fs)
    second = save_snapshot(fleet, "bucket/store", when=JUNE, filesystem=fs)
    assert (first.id, second.id) == ("20240614T080000.000000Z", "20240614T080000.000000Z-2")
    top = fs.get_file_info(pafs.FileSelector("bucket/store"))
    assert sorted(info.base_name for info in top) == ["nodes", "patches"]  # no staging folder
    unfinished = f"bucket/store/patches/snapshot=20240701T000000.000000Z/{PART}"
    fs.create_dir(unfinished.rsplit("/", 1)[0])
    fs.copy_file(f"bucket/store/patches/snapshot={first.id}/{PART}", unfinished)
    assert list_snapshots("bucket/store", filesystem=fs)["snapshot"].tolist() == [
        first.id,
        second.id,
    ]
    assert_same_fleet(load_snapshot("bucket/store", filesystem=fs), fleet)


# --- damage ----------------------------------------------------------------------------


@pytest.fixture
def saved(fleet: Fleet, tmp_path: Path) -> Path:
    save_snapshot(fleet, tmp_path, when=JUNE)
    return tmp_path


def test_a_damaged_parquet_file_is_named(saved: Path) -> None:
    part = snapshot_folder(saved, "20240614T080000.000000Z") / PART
    part.write_bytes(part.read_bytes()[: len(part.read_bytes()) // 2])
    with pytest.raises(StoreError, match=f"{part}: damaged: not a Parquet file"):
        load_snapshot(saved)
    part.write_bytes(b"PAR1 this is not parquet at all PAR1")
    with pytest.raises(StoreError, match=str(part)):
        load_snapshot(saved)
    assert len(list_snapshots(saved)) == 1  # listing reads manifests only


def test_a_replaced_parquet_file_is_named(saved: Path, fleet: Fleet) -> None:
    part = snapshot_folder(saved, "20240614T080000.000000Z", "nodes") / PART
    pq.write_table(pq.read_table(part).slice(0, 3), part)
    with pytest.raises(StoreError, match=f"{part}: holds 3 rows where its snapshot says 13"):
        load_snapshot(saved)


def test_damaged_or_missing_notes_are_named(saved: Path) -> None:
    folder = snapshot_folder(saved, "20240614T080000.000000Z")
    (folder / "_dtypes.json").unlink()
    with pytest.raises(StoreError, match=f"{folder / '_dtypes.json'}: missing"):
        load_snapshot(saved)
    manifest = folder / "_snapshot.json"
    manifest.write_text('{"format": "patchframe snapshot", "version": 1, "time": ')
    with pytest.raises(
        StoreError, match=f"{manifest}: damaged: the snapshot manifest is not JSON"
    ):
        list_snapshots(saved)
    manifest.write_text('{"format": "patchframe snapshot", "version": 99}')
    with pytest.raises(StoreError, match=f"{manifest}: damaged .*format version 99"):
        list_snapshots(saved)


def test_foreign_files_are_named_hidden_ones_ignored(saved: Path) -> None:
    folder = snapshot_folder(saved, "20240614T080000.000000Z")
    region = (folder / PART).parent
    (region / ".DS_Store").write_bytes(b"\0")
    (region / "_SUCCESS").write_bytes(b"")
    load_snapshot(saved)  # hidden names: every engine skips them
    stray = region / "part-1.parquet"
    shutil.copy(region / "part-0.parquet", stray)
    with pytest.raises(StoreError, match=f"{stray}: not part of snapshot .*SQL engines"):
        load_snapshot(saved)
    stray.unlink()

    notes = saved / "patches" / "notes.txt"
    notes.write_text("todo")
    with pytest.raises(StoreError, match=f"{notes}: not a patchframe snapshot"):
        list_snapshots(saved)
    notes.unlink()
    unfinished = saved / "patches" / "snapshot=20240701T000000.000000Z"
    unfinished.mkdir()
    with pytest.raises(StoreError, match=f"{unfinished}: not a patchframe snapshot .*_snapshot"):
        list_snapshots(saved)


def test_a_store_that_is_a_file_is_named(fleet: Fleet, tmp_path: Path) -> None:
    blocker = tmp_path / "store"
    blocker.write_text("")
    with pytest.raises(StoreError, match=f"{blocker}: is a file"):
        save_snapshot(fleet, blocker)
    with pytest.raises(StoreError, match=f"{blocker}: is a file"):
        list_snapshots(blocker)


# --- the same store through DuckDB --------------------------------------------------


def test_duckdb_reads_the_store_unchanged_and_counts_the_same(
    store: Path, fleets: list[Fleet]
) -> None:
    patches = duckdb.sql(
        f"""
        SELECT snapshot, count(*) AS patches, count(DISTINCT instance_id) AS patched_nodes,
               count(*) FILTER (WHERE state IN ('MISSING', 'FAILED')) AS missing,
               any_value(typeof(account_id)) AS account_type, any_value(account_id) AS account
        FROM read_parquet('{store}/patches/**/*.parquet',
                          hive_partitioning = true, hive_types_autocast = false)
        GROUP BY snapshot ORDER BY snapshot
        """
    ).df()
    nodes = duckdb.sql(
        f"""
        SELECT snapshot, count(*) AS nodes,
               count(*) FILTER (WHERE compliance = 'NON_COMPLIANT') AS non_compliant_nodes
        FROM read_parquet('{store}/nodes/**/*.parquet', hive_partitioning = true)
        GROUP BY snapshot ORDER BY snapshot
        """
    ).df()
    listed = list_snapshots(store)
    assert patches["snapshot"].tolist() == listed["snapshot"].tolist()
    assert patches["patches"].tolist() == listed["patches"].tolist()
    assert nodes["nodes"].tolist() == listed["nodes"].tolist()
    assert nodes["non_compliant_nodes"].tolist() == listed["non_compliant_nodes"].tolist()
    by_pandas = [
        (f.patches["instance_id"].nunique(), int(f.patches["state"].isin(OPEN).sum()))
        for f in fleets
    ]
    assert list(zip(patches["patched_nodes"], patches["missing"], strict=True)) == by_pandas
    assert set(patches["account_type"]) == {"VARCHAR"} and set(patches["account"]) == {ACCOUNT}


def test_duckdb_reads_unknown_places_as_null(tmp_path: Path) -> None:
    save_snapshot(odd_fleet(), tmp_path)
    rows = duckdb.sql(
        f"""
        SELECT account_id, region, count(*) AS n
        FROM read_parquet('{tmp_path}/patches/**/*.parquet', hive_partitioning = true,
                          hive_types_autocast = false)
        GROUP BY ALL ORDER BY ALL
        """
    ).fetchall()
    assert rows == [(ACCOUNT, REGION, 1), (None, None, 2)]


# --- diff ------------------------------------------------------------------------------

T1 = 1718000000  # 2024-06-10T06:13:20Z
T2 = 1718100000


def patches_of(nodes: dict[str, list[tuple[str, str, str, str, int]]]) -> pd.DataFrame:
    """A patches frame from (kb, state, severity, cves, installed) rows per node."""
    parts = []
    for instance_id, rows in nodes.items():
        cols = PatchColumns()
        cols.extend(
            {
                "KBId": kb,
                "Title": "" if state == "NotApplicable" else f"title {kb}",
                "Classification": "Security",
                "Severity": severity,
                "State": state,
                "InstalledTime": installed,
                "CVEIds": cves,
            }
            for kb, state, severity, cves, installed in rows
        )
        parts.append((NodeKey(instance_id, ACCOUNT, REGION), cols))
    return build_patches(parts)


OLD = patches_of(
    {
        "i-00000001": [
            ("KB1", "Missing", "Critical", "CVE-A", 0),
            ("KB2", "Installed", "Important", "", T1),
            ("KB3", "Missing", "Moderate", "CVE-C", 0),
            ("KB4", "Installed", "Low", "", T1),
            ("KB5", "Missing", "Low", "", 0),
            ("KB7", "Failed", "Important", "CVE-A", 0),
            ("KB8", "Installed", "Low", "", T1),
        ],
        "i-00000002": [("KB1", "Missing", "Critical", "CVE-A", 0)],
    }
)
NEW = patches_of(
    {
        "i-00000001": [
            ("KB1", "Installed", "Critical", "", T2),
            ("KB2", "Missing", "Important", "CVE-B", 0),
            ("KB3", "Failed", "Moderate", "CVE-C", 0),
            ("KB4", "Installed", "Low", "", T1),
            ("KB6", "Missing", "Critical", "CVE-D", 0),
            ("KB7", "InstalledPendingReboot", "Important", "", T2),
            ("KB8", "NotApplicable", "", "", 0),
        ],
        "i-00000003": [
            ("KB1", "Missing", "Critical", "CVE-A", 0),
            ("KB2", "Installed", "Important", "", T1),
        ],
    }
)


def patch_changes(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    columns = ["instance_id", "kb_id", "title", "cve_ids", "severity_level", "old_state"]
    frame = pd.DataFrame(rows, columns=[*columns, "new_state", "installed"])
    return pd.DataFrame(
        {
            "account_id": pd.array([ACCOUNT] * len(frame), dtype="str"),
            "region": pd.array([REGION] * len(frame), dtype="str"),
            **{c: frame[c].astype("str") for c in columns[:4]},
            "severity_level": frame["severity_level"].astype(PATCH_DTYPES["severity_level"]),
            "old_state": frame["old_state"].astype(PATCH_DTYPES["state"]),
            "new_state": frame["new_state"].astype(PATCH_DTYPES["state"]),
            "installed_time": pd.to_datetime(frame["installed"], unit="s", utc=True).astype(
                "datetime64[ns, UTC]"
            ),
        }
    )


def test_diff_of_hand_built_frames_gives_exactly_these_rows() -> None:
    changes = diff(OLD, NEW)
    nodes = pd.DataFrame(
        {
            "account_id": pd.array([ACCOUNT], dtype="str"),
            "region": pd.array([REGION], dtype="str"),
            "instance_id": pd.array(["i-00000003"], dtype="str"),
            "platform_name": pd.array([None], dtype="str"),
            "patches": np.array([2]),
            "missing": np.array([1]),
        }
    )
    pd.testing.assert_frame_equal(changes.added_nodes, nodes)
    removed = nodes.assign(instance_id=pd.array(["i-00000002"], dtype="str"), patches=[1])
    pd.testing.assert_frame_equal(changes.removed_nodes, removed)
    na = None
    pd.testing.assert_frame_equal(
        changes.newly_missing,
        patch_changes(
            [
                ("i-00000001", "KB6", "title KB6", "CVE-D", "Critical", na, "MISSING", na),
                ("i-00000001", "KB2", "title KB2", "CVE-B", "High", "INSTALLED", "MISSING", na),
            ]
        ),
    )
    pd.testing.assert_frame_equal(
        changes.fixed,
        patch_changes(
            [
                ("i-00000001", "KB1", "title KB1", na, "Critical", "MISSING", "INSTALLED", T2),
                (
                    "i-00000001",
                    "KB7",
                    "title KB7",
                    na,
                    "High",
                    "FAILED",
                    "INSTALLED_PENDING_REBOOT",
                    T2,
                ),
            ]
        ),
    )
    pd.testing.assert_frame_equal(
        changes.changed,
        patch_changes(
            [
                ("i-00000001", "KB3", "title KB3", "CVE-C", "Medium", "MISSING", "FAILED", na),
                ("i-00000001", "KB5", "title KB5", na, "Low", "MISSING", na, na),
                ("i-00000001", "KB8", na, na, "Unspecified", "INSTALLED", "NOT_APPLICABLE", na),
            ]
        ),
    )

    def cves(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["cve_id", "kb_ids", "severity_level"])
        return pd.DataFrame(
            {
                "account_id": pd.array([ACCOUNT] * len(rows), dtype="str"),
                "region": pd.array([REGION] * len(rows), dtype="str"),
                "instance_id": pd.array(["i-00000001"] * len(rows), dtype="str"),
                "cve_id": frame["cve_id"].astype("str"),
                "kb_ids": frame["kb_ids"].astype("str"),
                "severity_level": frame["severity_level"].astype(PATCH_DTYPES["severity_level"]),
            }
        )

    pd.testing.assert_frame_equal(
        changes.cves_opened, cves([("CVE-D", "KB6", "Critical"), ("CVE-B", "KB2", "High")])
    )
    pd.testing.assert_frame_equal(changes.cves_closed, cves([("CVE-A", "KB1,KB7", "Critical")]))
    assert str(changes) == (
        "1 node added, 1 removed; 2 patches newly missing, 2 fixed, 3 other changes; "
        "2 CVEs opened, 1 closed"
    )
    assert repr(changes) == f"<FleetDiff: {changes}>"
    page = changes._repr_html_()
    assert (
        "<th style='text-align:left'>newly missing</th><td style='text-align:right'>2</td>" in page
    )


def test_diff_of_a_fleet_with_itself_is_empty(fleet: Fleet) -> None:
    same = diff(fleet, fleet)
    assert all(count == 0 for count in same.counts().values())
    assert same.summary().startswith("0 nodes added, 0 removed; 0 patches newly missing")
    assert list(same.fixed.columns) == [
        "account_id",
        "region",
        "instance_id",
        "kb_id",
        "title",
        "cve_ids",
        "severity_level",
        "old_state",
        "new_state",
        "installed_time",
    ]


def test_diff_counts_nodes_of_the_nodes_frame(fleet: Fleet) -> None:
    unscanned = "i-05a7c9e1b3d5f7092"  # no patches: known from the nodes frame only
    before = Fleet(
        fleet.patches, fleet.nodes[fleet.nodes["instance_id"] != unscanned], fleet.errors
    )
    added = diff(before, fleet).added_nodes
    assert added[["instance_id", "platform_name", "patches", "missing"]].values.tolist() == [
        [unscanned, "Amazon Linux", 0, 0]
    ]
    assert diff(fleet.patches, fleet.patches.iloc[:0]).removed_nodes["patches"].sum() == 2020


def test_diff_refuses_what_it_cannot_compare(fleet: Fleet) -> None:
    with pytest.raises(ValidationError, match="old: expected a Fleet or a patches DataFrame"):
        diff([], fleet)  # type: ignore[arg-type]
    with pytest.raises(ColumnsError, match="'kb_id'"):
        diff(fleet, fleet.patches.drop(columns="kb_id"))


def reference_diff(old: pd.DataFrame, new: pd.DataFrame) -> dict[str, set[tuple[str, str]]]:
    """The same questions, the slow obvious way: a merge on text keys."""
    keys = ["account_id", "region", "instance_id", "kb_id"]
    both = pd.merge(
        old[[*keys, "state"]].astype(str),
        new[[*keys, "state"]].astype(str),
        on=keys,
        how="outer",
        suffixes=("_old", "_new"),
    )
    common = set(old["instance_id"].astype(str)) & set(new["instance_id"].astype(str))
    both = both[both["instance_id"].isin(common)]
    was, now = both["state_old"].isin(OPEN), both["state_new"].isin(OPEN)
    newly = now & ~was
    fixed = was & both["state_new"].isin(INSTALLED)
    changed = ~newly & ~fixed & (both["state_old"].fillna("") != both["state_new"].fillna(""))

    def pairs(mask: pd.Series[bool]) -> set[tuple[str, str]]:
        return set(zip(both.loc[mask, "instance_id"], both.loc[mask, "kb_id"], strict=True))

    return {"newly_missing": pairs(newly), "fixed": pairs(fixed), "changed": pairs(changed)}


def big_patches(n_nodes: int, per_node: int, seed: int) -> pd.DataFrame:
    """A patches frame of n_nodes * per_node rows, built from codes: fast at any size."""
    rng = np.random.default_rng(seed)
    node = np.repeat(np.arange(n_nodes), per_node)
    kb = np.tile(np.arange(per_node), n_nodes) + (node % 7) * 5
    n, kbs = len(node), per_node + 35
    weights = [0.5, 0.1, 0.02, 0.01, 0.1, 0.25, 0.01, 0.01]
    return pd.DataFrame(
        {
            "account_id": pd.Categorical.from_codes(
                node % 2, categories=["111111111111", ACCOUNT]
            ),
            "region": pd.Categorical.from_codes(node % 3, categories=["a-1", "b-1", "c-1"]),
            "instance_id": pd.Categorical.from_codes(
                node, categories=[f"i-{i:017x}" for i in range(n_nodes)]
            ),
            "kb_id": pd.Categorical.from_codes(kb, categories=[f"KB{i}" for i in range(kbs)]),
            "title": pd.Categorical.from_codes(kb, categories=[f"title {i}" for i in range(kbs)]),
            "severity_level": pd.Categorical.from_codes(
                kb % 5, dtype=PATCH_DTYPES["severity_level"]
            ),
            "state": pd.Categorical.from_codes(
                rng.choice(8, size=n, p=weights), dtype=PATCH_DTYPES["state"]
            ),
            "installed_time": pd.to_datetime(rng.integers(1.6e9, 1.7e9, n), unit="s", utc=True),
            "cve_ids": pd.Categorical.from_codes(
                np.where(kb % 9 == 0, kb % 4, -1),
                categories=["CVE-1", "CVE-2,CVE-3", "CVE-4", "CVE-5"],
            ),
        }
    )


def test_diff_agrees_with_a_plain_merge_on_a_big_shuffled_fleet() -> None:
    old = big_patches(600, 120, seed=0)
    new = big_patches(630, 120, seed=1)
    new = new[new["instance_id"].cat.codes % 40 != 3].sample(frac=1.0, random_state=2)
    changes = diff(old, new)
    expected = reference_diff(old, new)
    for name, pairs in expected.items():
        frame = getattr(changes, name)
        assert set(zip(frame["instance_id"], frame["kb_id"], strict=True)) == pairs, name
    old_nodes, new_nodes = set(old["instance_id"].astype(str)), set(new["instance_id"].astype(str))
    assert set(changes.added_nodes["instance_id"]) == new_nodes - old_nodes
    assert set(changes.removed_nodes["instance_id"]) == old_nodes - new_nodes


def wire_states(fleet: WireFleet) -> dict[tuple[str, str], dict[str, Any]]:
    return {(node, row["KBId"]): row for node, rows in fleet.patches.items() for row in rows}


def wire_cves(fleet: WireFleet, nodes: set[str]) -> set[tuple[str, str]]:
    return {
        (node, cve)
        for node, rows in fleet.patches.items()
        if node in nodes
        for row in rows
        if normalise_state(row["State"]) in OPEN
        for cve in row.get("CVEIds", "").split(",")
        if cve
    }


def pairs(cves: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(cves["instance_id"], cves["cve_id"], strict=True))


def test_diff_of_the_synthetic_history_matches_the_wire_data(
    wire_history: list[tuple[dt.datetime, WireFleet]], fleets: list[Fleet]
) -> None:
    for step in range(1, len(fleets)):
        (_, old), (_, new) = wire_history[step - 1], wire_history[step]
        changes = diff(fleets[step - 1], fleets[step])
        common = set(old.instance_ids) & set(new.instance_ids)
        before, after = wire_states(old), wire_states(new)
        keys = {k for k in before.keys() | after.keys() if k[0] in common}

        def state(rows: dict[tuple[str, str], dict[str, Any]], key: tuple[str, str]) -> str:
            return normalise_state(rows[key]["State"]) if key in rows else ""

        newly = {k for k in keys if state(after, k) in OPEN and state(before, k) not in OPEN}
        fixed = {k for k in keys if state(before, k) in OPEN and state(after, k) in INSTALLED}
        changed = {k for k in keys if state(before, k) != state(after, k)} - newly - fixed
        for name, expected in (("newly_missing", newly), ("fixed", fixed), ("changed", changed)):
            frame = getattr(changes, name)
            assert set(zip(frame["instance_id"], frame["kb_id"], strict=True)) == expected
        opened = wire_cves(new, common) - wire_cves(old, common)
        closed = wire_cves(old, common) - wire_cves(new, common)
        assert pairs(changes.cves_opened) == opened
        assert pairs(changes.cves_closed) == closed
        assert set(changes.added_nodes["instance_id"]) == set(new.instance_ids) - set(
            old.instance_ids
        )
        assert set(changes.removed_nodes["instance_id"]) == set(old.instance_ids) - set(
            new.instance_ids
        )


def test_the_last_diff_of_the_synthetic_history(store: Path) -> None:
    changes = diff(load_snapshot(store, when="2024-07-12T08:00Z"), load_snapshot(store))
    assert str(changes) == (
        "2 nodes added, 2 removed; 22 patches newly missing, 39 fixed, 42 other changes; "
        "1 CVE opened, 6 closed"
    )


# --- trend -----------------------------------------------------------------------------


def wire_figures(fleet: WireFleet) -> dict[str, int]:
    """The fleet row of a trend, counted from the wire data by other means."""
    graded = Counter(
        severity_level_of(row["Severity"]).lower()
        for rows in fleet.patches.values()
        for row in rows
        if normalise_state(row["State"]) in OPEN
    )
    counts = ["MissingCount", "FailedCount", "InstalledPendingRebootCount"]
    counts += ["InstalledRejectedCount", "AvailableSecurityUpdateCount"]
    assert len(counts) == len(NON_COMPLIANT_STATES)
    return {
        "nodes": len(fleet.instances),
        "non_compliant_nodes": sum(any(s[c] for c in counts) for s in fleet.patch_states),
        "missing": sum(graded.values()),
        **{f"missing_{level}": graded[level] for level in ("critical", "high", "medium")},
        **{f"missing_{level}": graded[level] for level in ("low", "unspecified")},
        "open_cves": len({cve for _, cve in wire_cves(fleet, set(fleet.patches))}),
    }


def test_trend_of_the_synthetic_history(
    store: Path, wire_history: list[tuple[dt.datetime, WireFleet]], fleets: list[Fleet]
) -> None:
    figures = trend(store)
    fleet_rows = figures[figures["scope"] == "fleet"].reset_index(drop=True)
    assert fleet_rows["time"].tolist() == [pd.Timestamp(when) for when, _ in wire_history]
    for i, (_, wire) in enumerate(wire_history):
        row = fleet_rows.iloc[i]
        assert {k: int(row[k]) for k in wire_figures(wire)} == wire_figures(wire)
        assert row["open_cves"] == len(cve_exposure(fleets[i].patches))
        one = figures[figures["snapshot"] == row["snapshot"]]
        for scope in ("platform", "node"):
            part = one[one["scope"] == scope]
            totals = part.drop(columns=["snapshot", "time", "scope", "group"]).sum()
            for column in ("nodes", "non_compliant_nodes", "missing", "missing_critical"):
                assert totals[column] == row[column], (scope, column)
        nodes = one[one["scope"] == "node"]
        assert sorted(nodes["group"]) == sorted(wire.instance_ids)
    # Pinned, so that a change in the drift or the counting shows.
    assert fleet_rows["missing"].tolist() == [463, 297, 225, 174, 183, 164]
    assert fleet_rows["non_compliant_nodes"].tolist() == [25, 30, 32, 32, 34, 34]
    assert fleet_rows["open_cves"].tolist() == [56, 47, 39, 35, 23, 30]
    assert fleet_rows["nodes"].tolist() == list_snapshots(store)["nodes"].tolist()


def test_trend_of_an_empty_store_has_every_column(tmp_path: Path) -> None:
    empty = trend(tmp_path)
    assert empty.empty
    assert list(empty.columns[:4]) == ["snapshot", "time", "scope", "group"]
    assert str(empty["time"].dtype) == "datetime64[ns, UTC]"


def test_plot_trend_stacks_the_fleet_by_severity(store: Path) -> None:
    figures = trend(store)
    ax = plot_trend(figures)
    areas = [c for c in ax.collections if isinstance(c, PolyCollection)]
    levels = ["Critical", "High", "Medium", "Low", "Unspecified"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == levels
    assert [tuple(a.get_facecolor()[0][:3]) for a in areas] == [
        tuple(int(severity_color(v)[i : i + 2], 16) / 255 for i in (1, 3, 5)) for v in levels
    ]
    assert ax.get_title() == "Missing and failed patches by severity"
    plt.close(ax.figure)


def test_plot_trend_draws_a_line_per_group(store: Path) -> None:
    figures = trend(store)
    ax = plot_trend(figures, metric="non_compliant_nodes", scope="platform", top=3)
    assert len(ax.lines) == 3
    assert ax.get_title() == "Non-compliant nodes by platform: top 3 of 6"
    latest = figures[(figures["scope"] == "platform") & (figures["time"] == figures["time"].max())]
    assert (
        ax.lines[0].get_label()
        == (
            latest.sort_values(["non_compliant_nodes", "group"], ascending=[False, True])[
                "group"
            ].iloc[0]
        )
    )
    plt.close(ax.figure)
    _, ax = plt.subplots()
    assert plot_trend(figures, metric="open_cves", ax=ax) is ax
    assert [line.get_label() for line in ax.lines] == ["fleet"]
    plt.close(ax.figure)


def test_plot_trend_says_when_there_is_nothing(tmp_path: Path, store: Path) -> None:
    ax = plot_trend(trend(tmp_path))
    assert [t.get_text() for t in ax.texts] == ["no snapshots"]
    plt.close(ax.figure)
    with pytest.raises(ValidationError, match="metric 'patches'"):
        plot_trend(trend(store), metric="patches")
    with pytest.raises(ValidationError, match="scope 'team'"):
        plot_trend(trend(store), scope="team")
    with pytest.raises(ColumnsError, match="'scope'"):
        plot_trend(pd.DataFrame({"time": [], "group": [], "missing": []}))


# --- the synthetic history -----------------------------------------------------------


def test_synthetic_history_is_the_same_for_the_same_seed(
    wire_history: list[tuple[dt.datetime, WireFleet]],
) -> None:
    assert synthetic_history() == wire_history
    assert synthetic_history(seed=1) != wire_history
    when = [w for w, _ in wire_history]
    assert when[0] == HISTORY_START == dt.datetime(2024, 6, 14, 8, tzinfo=dt.UTC)
    assert {b - a for a, b in itertools.pairwise(when)} == {dt.timedelta(days=7)}
    shifted = synthetic_history(2, nodes=3, start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    times = [row["InstalledTime"] for rows in shifted[0][1].patches.values() for row in rows]
    assert max(times) <= dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()
    assert max(times) > dt.datetime(2024, 6, 1, tzinfo=dt.UTC).timestamp()


def test_synthetic_history_drifts_as_real_fleets_do(
    wire_history: list[tuple[dt.datetime, WireFleet]],
) -> None:
    joined = left = installed = failed = released = rebooted = 0
    for (_, old), (when, new) in itertools.pairwise(wire_history):
        joined += len(set(new.instance_ids) - set(old.instance_ids))
        left += len(set(old.instance_ids) - set(new.instance_ids))
        before, after = wire_states(old), wire_states(new)
        for key, row in after.items():
            was = normalise_state(before[key]["State"]) if key in before else None
            now = normalise_state(row["State"])
            released += was is None and key[0] in old.instance_ids and now == "MISSING"
            if was in OPEN and now in INSTALLED:
                installed += 1
                assert when.timestamp() - 8 * 86400 < row["InstalledTime"] < when.timestamp()
                assert "CVEIds" not in row or row["CVEIds"] == ""
            failed += was == "MISSING" and now == "FAILED"
            rebooted += was == "INSTALLED_PENDING_REBOOT" and now == "INSTALLED"
    assert min(joined, left, installed, failed, released, rebooted) > 0, (
        joined,
        left,
        installed,
        failed,
        released,
        rebooted,
    )
    july = wire_history[4][1]  # 2024-07-12: after July's Patch Tuesday, the 9th
    titles = {row["Title"] for rows in july.patches.values() for row in rows}
    assert any(title.startswith("2024-07 Cumulative Update for Windows") for title in titles)
    june = wire_history[3][1]
    assert not any(
        row["Title"].startswith("2024-07") for rows in june.patches.values() for row in rows
    )


def test_synthetic_history_counts_agree_with_the_rows(
    wire_history: list[tuple[dt.datetime, WireFleet]],
) -> None:

    for _, wire in wire_history:
        for state in wire.patch_states:
            rows = wire.patches[state["InstanceId"]]
            counts = Counter(normalise_state(row["State"]) for row in rows)
            assert {f: state[f] for f in STATE_COUNT_FIELDS.values()} == {
                f: counts[s] for s, f in STATE_COUNT_FIELDS.items()
            }


def test_synthetic_history_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="snapshots must be 1 or more"):
        synthetic_history(0)
    with pytest.raises(ValueError, match="every must be a positive time"):
        synthetic_history(every=dt.timedelta(0))
    with pytest.raises(ValueError, match="timezone-aware"):
        synthetic_history(start=dt.datetime(2024, 6, 14))


# --- patchframe report --snapshot-store ---------------------------------------------------


def test_report_saves_a_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, out = tmp_path / "store", tmp_path / "report"
    argv = ["report", "--sample", "--no-progress", "--out", str(out)]
    assert cli.main([*argv, "--snapshot-store", str(store)]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    listed = list_snapshots(store)
    assert printed.out.splitlines()[-1] == f"Saved snapshot {listed.loc[0, 'snapshot']} in {store}"
    assert (listed.loc[0, "nodes"], listed.loc[0, "patches"]) == (13, 2020)
    assert (out / cli.WORKBOOK).is_file() and (out / cli.SUMMARY_CSV).is_file()  # as usual
    assert cli.main(["report", "--help"]) == 0
    assert "--snapshot-store DIR" in capsys.readouterr().out


def test_report_with_a_bad_store_exits_1_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker, out = tmp_path / "a-file", tmp_path / "report"
    blocker.write_text("")
    argv = ["report", "--sample", "--no-progress", "--out", str(out)]
    assert cli.main([*argv, "--snapshot-store", str(blocker)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"patchframe: error: {blocker}: is a file, not a snapshot store (a folder)"]
    assert not out.exists()  # the snapshot comes first; nothing else was written


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")
