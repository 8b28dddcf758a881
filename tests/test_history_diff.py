"""What changed between two fleets: diffs of hand-built frames, of the sample fleet, of
a big shuffled fleet against a plain merge, and of the synthetic history against its wire
data; and that synthetic history's own drift."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import history_data as history
import numpy as np
import pandas as pd
import pytest
from history_data import INSTALLED, OPEN, wire_states

from patchframe import Fleet
from patchframe._schema import (
    PATCH_DTYPES,
    STATE_COUNT_FIELDS,
    NodeKey,
    PatchColumns,
    build_patches,
    normalise_state,
)
from patchframe.exceptions import ColumnsError, ValidationError
from patchframe.history import diff, load_snapshot
from patchframe.history._diff import _numbered
from patchframe.sandbox.sample import HISTORY_START, WireFleet, synthetic_history

ACCOUNT, REGION = "123456789012", "eu-west-1"


@pytest.fixture(scope="module")
def history_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the whole synthetic history; tests only read it."""
    return history.save_history(tmp_path_factory.mktemp("history") / "store")


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


def test_diff_of_a_fleet_with_itself_is_empty(sample_fleet_frames: Fleet) -> None:
    same = diff(sample_fleet_frames, sample_fleet_frames)
    assert all(count == 0 for count in same.counts().values())
    assert same.headline().startswith("0 nodes added, 0 removed; 0 patches newly missing")
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


def test_diff_counts_nodes_of_the_nodes_frame(sample_fleet_frames: Fleet) -> None:
    unscanned = "i-05a7c9e1b3d5f7092"  # no patches: known from the nodes frame only
    before = Fleet(
        sample_fleet_frames.patches,
        sample_fleet_frames.nodes[sample_fleet_frames.nodes["instance_id"] != unscanned],
        sample_fleet_frames.errors,
    )
    added = diff(before, sample_fleet_frames).added_nodes
    assert added[["instance_id", "platform_name", "patches", "missing"]].values.tolist() == [
        [unscanned, "Amazon Linux", 0, 0]
    ]
    assert (
        diff(sample_fleet_frames.patches, sample_fleet_frames.patches.iloc[:0])
        .removed_nodes["patches"]
        .sum()
        == 2020
    )


def test_diff_of_a_patch_listed_twice_is_an_error_naming_it() -> None:
    twice = patches_of(
        {
            "i-00000001": [
                ("KB1", "Installed", "Critical", "", T1),
                ("KB2", "Installed", "Critical", "", T1),
                ("KB1", "Failed", "Critical", "CVE-A", 0),
            ],
            "i-00000002": [("KB1", "Missing", "Critical", "CVE-A", 0)],
        }
    )
    once = patches_of({"i-00000001": [("KB1", "Missing", "Critical", "CVE-A", 0)]})
    named = (
        r"diff \((old|new)\): 1 \(node, patch\) pair listed more than once, e\.g\. i-00000001 KB1"
    )
    with pytest.raises(ValidationError, match=named.replace("(old|new)", "old")):
        diff(twice, once)
    with pytest.raises(ValidationError, match=named.replace("(old|new)", "new")):
        diff(once, twice)
    many = patches_of({"i-00000001": [(f"KB{i}", "Missing", "Low", "", 0) for i in range(5)] * 2})
    with pytest.raises(ValidationError, match=r"5 .* pairs listed .* and 2 more"):
        diff(once, many)
    # The same patch on two nodes is no duplicate.
    deduplicated = twice.drop_duplicates(["instance_id", "kb_id"])
    assert diff(deduplicated, once).newly_missing["kb_id"].tolist() == ["KB1"]


SEVEN_FRAMES = [
    "added_nodes",
    "removed_nodes",
    "newly_missing",
    "fixed",
    "changed",
    "cves_opened",
    "cves_closed",
]


def assert_same_diff(got: Any, expected: Any) -> None:
    for name in SEVEN_FRAMES:
        pd.testing.assert_frame_equal(
            getattr(got, name), getattr(expected, name), check_exact=True
        )


def test_diff_matches_keys_whatever_the_order_of_their_categories() -> None:
    def reordered(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(
            **{
                c: frame[c].cat.reorder_categories(frame[c].cat.categories[::-1])
                for c in ["instance_id", "kb_id"]
            }
        )

    assert all(count == 0 for count in diff(OLD, reordered(OLD)).counts().values())
    assert_same_diff(diff(OLD, reordered(NEW)), diff(OLD, NEW))
    assert_same_diff(diff(reordered(OLD), NEW), diff(OLD, NEW))


def test_diff_of_keys_with_more_combinations_than_an_int64_holds() -> None:
    """Key columns of 2**16 - 1 categories (accounts 2**16 + 1): node numbers spanning
    about 2**48 values, far more than the rows, are numbered again by the nodes that occur."""
    size = 2**16 - 1
    dtypes = {
        column: pd.CategoricalDtype([f"{column}{i}" for i in range(n)])
        for column, n in [
            ("account_id", size + 2),
            ("region", size),
            ("instance_id", size),
            ("kb_id", size),
        ]
    }
    row = patches_of({"i-00000001": [("KB1", "Missing", "Critical", "CVE-A", 0)]})
    both = pd.concat([row, row.assign(state="INSTALLED")], ignore_index=True)
    keys = {"account_id": ["account_id0", f"account_id{size + 1}"], "region": ["region0"] * 2}
    keys |= {"instance_id": ["instance_id0"] * 2, "kb_id": ["kb_id0"] * 2}
    old = both.assign(**{c: pd.Categorical(v, dtype=dtypes[c]) for c, v in keys.items()})
    new = old.iloc[::-1]
    assert all(count == 0 for count in diff(old, new).counts().values())
    fixed = old.assign(state="INSTALLED")
    compact = diff(old.astype({c: "str" for c in keys}), fixed.astype({c: "str" for c in keys}))
    assert len(compact.fixed) == 1
    assert_same_diff(diff(old, fixed), compact)


def test_rows_are_numbered_by_the_combinations_that_occur_beyond_an_int64() -> None:
    """Two columns of 2**40 values: (0, 0) and (2**24, 0) would share one int64."""
    size = 2**40
    first = [np.array([0, 2**24, size - 1]), np.array([2**24])]
    second = [np.array([0, 0, 7]), np.array([0])]
    keys, span = _numbered([(first, size), (second, size)])
    assert len(set(keys[0].tolist())) == 3
    assert keys[1].tolist() == [keys[0][1]]
    assert span == 3 * size


def test_diff_refuses_what_it_cannot_compare(sample_fleet_frames: Fleet) -> None:
    with pytest.raises(ValidationError, match="old: expected a Fleet or a patches DataFrame"):
        diff([], sample_fleet_frames)  # type: ignore[arg-type]
    with pytest.raises(ColumnsError, match="'kb_id'"):
        diff(sample_fleet_frames, sample_fleet_frames.patches.drop(columns="kb_id"))


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


def test_diff_of_the_synthetic_history_matches_the_wire_data() -> None:
    wire_history, fleets = history.wire_history(), history.history_fleets()
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


def test_the_last_diff_of_the_synthetic_history(history_store: Path) -> None:
    before = load_snapshot(history_store, when="2024-07-12T08:00Z")
    changes = diff(before, load_snapshot(history_store))
    assert str(changes) == (
        "2 nodes added, 2 removed; 22 patches newly missing, 39 fixed, 42 other changes; "
        "1 CVE opened, 6 closed"
    )


# --- the synthetic history these tests stand on ------------------------------------


def test_synthetic_history_is_the_same_for_the_same_seed() -> None:
    wire_history = history.wire_history()
    assert synthetic_history() == wire_history
    assert synthetic_history(seed=1) != wire_history
    when = [w for w, _ in wire_history]
    assert when[0] == HISTORY_START == dt.datetime(2024, 6, 14, 8, tzinfo=dt.UTC)
    assert {b - a for a, b in itertools.pairwise(when)} == {dt.timedelta(days=7)}
    shifted = synthetic_history(2, nodes=3, start=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    times = [row["InstalledTime"] for rows in shifted[0][1].patches.values() for row in rows]
    assert max(times) <= dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()
    assert max(times) > dt.datetime(2024, 6, 1, tzinfo=dt.UTC).timestamp()


def test_synthetic_history_drifts_as_real_fleets_do() -> None:
    wire_history = history.wire_history()
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


def test_synthetic_history_counts_agree_with_the_rows() -> None:
    wire_history = history.wire_history()

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


def test_node_frames_of_no_node_are_typed_as_those_of_some(sample_fleet_frames: Fleet) -> None:
    patches = sample_fleet_frames.patches
    fewer = patches[patches["instance_id"] != patches["instance_id"].iloc[0]]
    none, some = diff(patches, patches), diff(fewer, patches)
    assert len(some.added_nodes) == 1 and none.added_nodes.empty
    for name in ("added_nodes", "removed_nodes"):
        pd.testing.assert_frame_equal(getattr(none, name), some.added_nodes.iloc[:0])
