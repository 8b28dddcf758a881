"""The snapshot store: snapshots written, listed and read back, crashes and damage, the
same store through DuckDB, and ``patchframe report --snapshot-store``."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from history_data import OPEN, history_fleets, save_history

import patchframe.history._store
from patchframe import Fleet, cli
from patchframe._schema import (
    NodeKey,
    PatchColumns,
    UnknownStateWarning,
    build_errors,
    build_nodes,
    build_patches,
    concat_patches,
)
from patchframe.aws import load_fleet
from patchframe.exceptions import StoreError, ValidationError
from patchframe.export import to_excel
from patchframe.history import Snapshot, list_snapshots, load_snapshot, save_snapshot
from patchframe.sandbox.emulator import Emulator
from patchframe.sandbox.sample import synthetic_fleet

ACCOUNT, REGION = "123456789012", "eu-west-1"
PART = "account_id=123456789012/region=eu-west-1/part-0.parquet"
JUNE = pd.Timestamp("2024-06-14T08:00:00Z")


@pytest.fixture(scope="module")
def history_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the whole synthetic history; tests only read it."""
    return save_history(tmp_path_factory.mktemp("history") / "store")


def test_the_store_module_is_importable_by_its_name() -> None:
    module = patchframe.history._store
    assert module.__name__ == "patchframe.history._store"
    assert module.save_snapshot is save_snapshot


def assert_same_fleet(back: Fleet, saved: Fleet) -> None:
    for name in ("patches", "nodes", "errors"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(saved, name))


def snapshot_folder(store: Path, snapshot_id: str, dataset: str = "patches") -> Path:
    return store / dataset / f"snapshot={snapshot_id}"


# --- round trips -------------------------------------------------------------------


def test_round_trip_gives_back_every_frame_and_dtype(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    saved = save_snapshot(
        sample_fleet_frames, tmp_path / "store", when="2024-06-14T08:00:00.1234567Z"
    )
    assert saved == Snapshot(
        "20240614T080000.123456Z", pd.Timestamp("2024-06-14T08:00:00.123456Z")
    )
    back = load_snapshot(tmp_path / "store")
    assert_same_fleet(back, sample_fleet_frames)
    for column in ("account_id", "region"):
        assert (
            back.patches[column].dtype == sample_fleet_frames.patches[column].dtype
        )  # categorical, not text
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


def test_round_trip_across_accounts_with_errors(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    both = two_account_fleet(sample_fleet_frames)
    save_snapshot(both, tmp_path, when=JUNE)
    assert_same_fleet(load_snapshot(tmp_path), both)
    listed = list_snapshots(tmp_path).iloc[0]
    assert (listed["accounts"], listed["regions"], listed["errors"]) == (2, 2, 2)
    null = "account_id=__HIVE_DEFAULT_PARTITION__/region=__HIVE_DEFAULT_PARTITION__"
    assert (tmp_path / "errors" / "snapshot=20240614T080000.000000Z" / null).is_dir()


def test_account_names_round_trip_and_snapshots_without_them_still_load(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    both = two_account_fleet(sample_fleet_frames)
    names = both.nodes["account_id"].astype("str").map({"111122223333": "dev"})
    named = Fleet(
        both.patches, both.nodes.assign(account_name=names.astype("category")), both.errors
    )
    assert named.nodes.columns[1] == "account_name"
    save_snapshot(named, tmp_path / "named", when=JUNE)
    back = load_snapshot(tmp_path / "named")
    assert_same_fleet(back, named)
    assert back.nodes["account_name"].isna().sum() == len(sample_fleet_frames.nodes)
    # Saved before nodes had account_name: read back as saved, and every view still works.
    before = Fleet(both.patches, both.nodes.drop(columns="account_name"), both.errors)
    save_snapshot(before, tmp_path / "before", when=JUNE)
    old = load_snapshot(tmp_path / "before")
    assert_same_fleet(old, before)
    assert "account_name" not in old.nodes.columns
    assert old.figures()["accounts"] == 2 and "patchframe-fleet" in old._repr_html_()
    assert to_excel(old, tmp_path / "old.xlsx").is_file()


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


def test_interleaved_places_come_back_grouped(sample_fleet_frames: Fleet, tmp_path: Path) -> None:
    both = two_account_fleet(sample_fleet_frames)
    shuffled = both.patches.sample(frac=1.0, random_state=1).reset_index(drop=True)
    save_snapshot(Fleet(shuffled, both.nodes, both.errors), tmp_path)
    first_seen = list(dict.fromkeys(shuffled["account_id"].astype(str)))
    rank = shuffled["account_id"].astype(str).map({a: i for i, a in enumerate(first_seen)})
    grouped = shuffled.iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)
    pd.testing.assert_frame_equal(load_snapshot(tmp_path).patches, grouped)


def test_save_refuses_what_is_not_a_fleet(sample_fleet_frames: Fleet, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="expected a Fleet"):
        save_snapshot(sample_fleet_frames.patches, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not a date or time"):
        save_snapshot(sample_fleet_frames, tmp_path, when="last tuesday")
    with pytest.raises(ValidationError, match="account_id"):
        save_snapshot(
            Fleet(
                sample_fleet_frames.patches.drop(columns="account_id"),
                sample_fleet_frames.nodes,
                sample_fleet_frames.errors,
            ),
            tmp_path,
        )
    assert not tmp_path.joinpath("patches").exists()


# --- which snapshot ------------------------------------------------------------------


def test_load_picks_the_latest_an_id_or_the_last_at_or_before(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    smaller = Fleet(
        sample_fleet_frames.patches.iloc[:100].copy(),
        sample_fleet_frames.nodes,
        sample_fleet_frames.errors,
    )
    save_snapshot(sample_fleet_frames, tmp_path, when="2024-06-14T08:00:00Z")
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


def test_two_snapshots_of_the_same_moment_both_stay(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    ids = [save_snapshot(sample_fleet_frames, tmp_path, when=JUNE).id for _ in range(3)]
    assert ids == [
        "20240614T080000.000000Z",
        "20240614T080000.000000Z-2",
        "20240614T080000.000000Z-3",
    ]
    assert list_snapshots(tmp_path)["snapshot"].tolist() == ids
    now = [save_snapshot(sample_fleet_frames, tmp_path / "now").id for _ in range(2)]
    assert len(set(now)) == 2  # unsaid times differ by microseconds at least
    for snapshot_id in ids:
        assert_same_fleet(load_snapshot(tmp_path, when=snapshot_id), sample_fleet_frames)


# --- crashes -------------------------------------------------------------------------


CRASH = textwrap.dedent(
    """
    import os, sys
    import pyarrow.parquet as pq
    import patchframe as pf

    write_table, written = pq.write_table, []

    def dies_on_the_second_file(*args, **kwargs):
        written.append(args[1])
        if len(written) == 2:
            os._exit(3)  # killed: no cleanup, no finally
        write_table(*args, **kwargs)

    pq.write_table = dies_on_the_second_file
    fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    pf.save_snapshot(fleet, sys.argv[1], when="2024-06-14T08:00:00Z")
    """
)


def test_a_save_killed_mid_write_leaves_no_snapshot(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
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

    saved = save_snapshot(sample_fleet_frames, store, when=JUNE)
    assert saved.id == "20240614T080000.000000Z"
    assert list_snapshots(store)["snapshot"].tolist() == [saved.id]
    assert_same_fleet(load_snapshot(store), sample_fleet_frames)
    assert store.joinpath(leftovers[0]).is_dir()  # ignored by every reader; the user's to delete


class DiesRenamingPatches(pafs.LocalFileSystem):
    """The local filesystem, failing to rename the patches folder as if power went then."""

    def move(self, src: str, dest: str) -> None:
        if dest.split("/")[-2] == "patches":
            raise RuntimeError("power cut")
        super().move(src, dest)


def test_a_save_cut_between_renames_is_not_a_snapshot(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    fleet = sample_fleet_frames
    save_snapshot(fleet, tmp_path, when="2024-06-07")
    with pytest.raises(RuntimeError, match="power cut"):
        save_snapshot(fleet, tmp_path, when=JUNE, filesystem=DiesRenamingPatches())

    assert snapshot_folder(tmp_path, "20240614T080000.000000Z", "nodes").is_dir()  # an orphan
    assert not snapshot_folder(tmp_path, "20240614T080000.000000Z").exists()
    assert list_snapshots(tmp_path)["snapshot"].tolist() == ["20240607T000000.000000Z"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("_")]  # staging cleaned up
    again = save_snapshot(fleet, tmp_path, when=JUNE)
    assert again.id == "20240614T080000.000000Z-2"  # the orphan's id is not reused
    assert_same_fleet(load_snapshot(tmp_path), fleet)


def test_object_stores_write_in_place_and_skip_unfinished_snapshots(
    sample_fleet_frames: Fleet,
) -> None:
    fs = pafs._MockFileSystem()  # pyarrow's in-memory test filesystem: no rename is atomic
    first = save_snapshot(sample_fleet_frames, "bucket/store", when=JUNE, filesystem=fs)
    second = save_snapshot(sample_fleet_frames, "bucket/store", when=JUNE, filesystem=fs)
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
    assert_same_fleet(load_snapshot("bucket/store", filesystem=fs), sample_fleet_frames)


# --- damage ----------------------------------------------------------------------------


@pytest.fixture
def saved(sample_fleet_frames: Fleet, tmp_path: Path) -> Path:
    save_snapshot(sample_fleet_frames, tmp_path, when=JUNE)
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


def test_a_replaced_parquet_file_is_named(saved: Path, sample_fleet_frames: Fleet) -> None:
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


def test_a_store_that_is_a_file_is_named(sample_fleet_frames: Fleet, tmp_path: Path) -> None:
    blocker = tmp_path / "store"
    blocker.write_text("")
    with pytest.raises(StoreError, match=f"{blocker}: is a file"):
        save_snapshot(sample_fleet_frames, blocker)
    with pytest.raises(StoreError, match=f"{blocker}: is a file"):
        list_snapshots(blocker)


# --- the same store through DuckDB --------------------------------------------------


def test_duckdb_reads_the_store_unchanged_and_counts_the_same(history_store: Path) -> None:
    store, fleets = history_store, history_fleets()
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


def test_save_snapshot_under_a_file_names_that_file(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    with pytest.raises(StoreError, match=f"{a_file} is a file, not a folder"):
        save_snapshot(sample_fleet_frames, a_file / "sub" / "store")
    assert a_file.read_text() == "not a folder"


@pytest.mark.parametrize("when", ["9999-12-31", "0001-01-01", dt.date(2300, 1, 1)])
def test_save_snapshot_outside_pandas_times_is_a_validation_error(
    sample_fleet_frames: Fleet, tmp_path: Path, when: object
) -> None:
    with pytest.raises(ValidationError, match="outside the times a snapshot can hold"):
        save_snapshot(sample_fleet_frames, tmp_path / "store", when=when)  # type: ignore[arg-type]
    assert not (tmp_path / "store").exists()
