"""Summaries: hand-counted tables on a small frame, naive-pandas oracles on a random
fleet, and the sample fleet's own patch-state counts."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from frames import patches_from_rows

import patchframe as pf
from patchframe import summary
from patchframe._schema import (
    NON_COMPLIANT_STATES,
    STATES,
    NodeKey,
    PatchColumns,
    UnknownStateWarning,
    build_errors,
    build_nodes,
    build_patches,
    build_tags,
    empty_patches,
)
from patchframe.exceptions import ColumnsError, ValidationError


def ts(day: str) -> float:
    return pd.Timestamp(day, tz="UTC").timestamp()


# (KBId, State, Severity, Classification, InstalledTime, CVEIds) per node.
FLEET: dict[str, list[tuple[str, str, str, str, float, str]]] = {
    "i-0000000a": [
        ("KB1", "Missing", "Critical", "SecurityUpdates", 0, "CVE-2024-1,CVE-2024-10"),
        ("KB2", "Installed", "Important", "CriticalUpdates", ts("2024-01-15T10:00"), ""),
        ("KB3", "InstalledPendingReboot", "Moderate", "Updates", ts("2024-02-01"), ""),
        ("KB4", "NotApplicable", "", "", 0, ""),
    ],
    "i-0000000b": [
        ("KB1", "Failed", "Critical", "SecurityUpdates", 0, "CVE-2024-1,CVE-2024-10"),
        ("KB5", "Missing", "Low", "Security", 0, "CVE-2024-100"),
        ("KB6", "InstalledOther", "", "", 0, ""),
        ("KB7", "Installed", "Medium", "Bugfix", ts("2024-01-20"), ""),
    ],
    "i-0000000c": [
        ("KB8", "Installed", "Critical", "Security", ts("2024-01-16"), ""),
        ("KB9", "InstalledRejected", "Low", "Bugfix", ts("2024-01-17"), ""),
        ("KB10", "AvailableSecurityUpdate", "Important", "Security", 0, ""),
        ("KB11", "InstalledPendingReboot", "Critical", "Security", ts("2024-01-10"), ""),
    ],
    "mi-0123456789abcdef0": [
        ("KB12", "Installed", "Low", "Security", ts("2024-03-05"), ""),
        ("KB13", "NotApplicable", "", "", 0, ""),
    ],
}
A, B, C, D = FLEET
NOW = "2024-03-06T12:00:00Z"


@pytest.fixture
def few_patches() -> pd.DataFrame:
    """FLEET as a typed patches frame: 14 rows on 4 nodes, counted by hand below."""
    return patches_from_rows(FLEET)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# node_compliance


def test_node_compliance_counts_every_state_per_node(few_patches: pd.DataFrame) -> None:
    nodes = summary.node_compliance(few_patches, now=NOW)
    counts = [s.lower() for s in STATES]
    assert nodes.columns.tolist() == [
        "instance_id",
        *counts,
        "compliant",
        "worst_missing_severity",
        "last_installed_time",
        "days_since_install",
    ]
    assert nodes["instance_id"].tolist() == [A, B, C, D]
    assert nodes[counts].to_numpy().tolist() == [
        # installed, other, pending reboot, rejected, missing, n/a, failed, available
        [1, 0, 1, 0, 1, 1, 0, 0],
        [1, 1, 0, 0, 1, 0, 1, 0],
        [1, 0, 1, 1, 0, 0, 0, 1],
        [1, 0, 0, 0, 0, 1, 0, 0],
    ]
    assert (nodes[counts].dtypes == "int64").all()


def test_node_compliance_judges_by_aws_rules(few_patches: pd.DataFrame) -> None:
    nodes = summary.node_compliance(few_patches, now=NOW)
    assert nodes["compliant"].tolist() == [False, False, False, True]
    assert nodes["compliant"].dtype == bool


def test_node_compliance_worst_gap_and_last_install(few_patches: pd.DataFrame) -> None:
    nodes = summary.node_compliance(few_patches, now=NOW)
    worst = nodes["worst_missing_severity"]
    assert worst.dtype == few_patches["severity_level"].dtype
    assert worst.astype(object).where(worst.notna(), None).tolist() == [
        "Critical",
        "Critical",
        None,
        None,
    ]
    assert nodes["last_installed_time"].tolist() == [
        utc("2024-02-01"),
        utc("2024-01-20"),
        utc("2024-01-17"),
        utc("2024-03-05"),
    ]
    assert nodes["days_since_install"].tolist() == [34, 46, 49, 1]
    assert nodes["days_since_install"].dtype == "Int64"


def test_node_compliance_of_a_node_never_installed_has_na_days() -> None:
    nodes = summary.node_compliance(patches_from_rows({A: [FLEET[A][0]]}), now=NOW)
    assert nodes["last_installed_time"].isna().all()
    assert nodes["days_since_install"].isna().all()


def test_node_compliance_adds_a_column_for_a_state_nobody_knew() -> None:
    cols = PatchColumns()
    cols.extend([{"KBId": "KB1", "State": "Quarantined"}, {"KBId": "KB2", "State": "Installed"}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStateWarning)
        frame = build_patches([(NodeKey("i-00000001"), cols)])
    nodes = summary.node_compliance(frame, now=NOW)
    assert nodes.loc[0, "quarantined"] == 1
    assert nodes.loc[0, "installed"] == 1
    assert bool(nodes.loc[0, "compliant"])


def test_node_compliance_counts_nodes_only_where_they_have_rows(few_patches: pd.DataFrame) -> None:
    only_b = few_patches[few_patches["instance_id"] == B]  # the category still lists every node
    assert summary.node_compliance(only_b, now=NOW)["instance_id"].tolist() == [B]


# state_by_severity


def test_state_by_severity_with_totals(few_patches: pd.DataFrame) -> None:
    table = summary.state_by_severity(few_patches)
    assert table.index.name == "state"
    assert table.columns.name == "severity_level"
    assert table.columns.tolist() == ["Critical", "High", "Medium", "Low", "Unspecified", "total"]
    assert table.index.tolist() == [*STATES, "total"]
    assert table.to_numpy().tolist() == [
        [1, 1, 1, 1, 0, 4],  # INSTALLED
        [0, 0, 0, 0, 1, 1],  # INSTALLED_OTHER
        [1, 0, 1, 0, 0, 2],  # INSTALLED_PENDING_REBOOT
        [0, 0, 0, 1, 0, 1],  # INSTALLED_REJECTED
        [1, 0, 0, 1, 0, 2],  # MISSING
        [0, 0, 0, 0, 2, 2],  # NOT_APPLICABLE
        [1, 0, 0, 0, 0, 1],  # FAILED
        [0, 1, 0, 0, 0, 1],  # AVAILABLE_SECURITY_UPDATE
        [4, 2, 2, 3, 3, 14],  # total
    ]
    assert (table.dtypes == "int64").all()


def test_state_by_severity_without_totals(few_patches: pd.DataFrame) -> None:
    table = summary.state_by_severity(few_patches, totals=False)
    assert table.shape == (8, 5)
    assert int(table.to_numpy().sum()) == len(few_patches)


# top_missing


def test_top_missing_counts_nodes_per_patch_most_first(few_patches: pd.DataFrame) -> None:
    top = summary.top_missing(few_patches)
    assert top.to_dict("list") == {
        "kb_id": ["KB1", "KB5"],
        "title": ["Title of KB1", "Title of KB5"],
        "classification": ["SecurityUpdates", "Security"],
        "severity_level": ["Critical", "Low"],
        "nodes": [2, 1],
        "missing": [1, 1],
        "failed": [1, 0],
        "cve_count": [2, 1],
    }
    assert top["severity_level"].dtype == few_patches["severity_level"].dtype
    assert (top[["nodes", "missing", "failed", "cve_count"]].dtypes == "int64").all()


def test_top_missing_keeps_top_and_breaks_ties_by_severity_then_id(
    few_patches: pd.DataFrame,
) -> None:
    more = dict(FLEET)
    more["i-0000000e"] = [
        ("KB5", "Missing", "Low", "Security", 0, "CVE-2024-100"),
        ("KB20", "Missing", "Critical", "Security", 0, ""),
        ("KB21", "Missing", "Critical", "Security", 0, ""),
    ]
    top = summary.top_missing(patches_from_rows(more), top=3)
    assert top["kb_id"].tolist() == ["KB1", "KB5", "KB20"]
    assert top["nodes"].tolist() == [2, 2, 1]
    assert len(summary.top_missing(patches_from_rows(more), top=None)) == 4


@pytest.mark.parametrize("top", [0, -1, 2.5, True, "10"])
def test_top_missing_rejects_a_bad_top(few_patches: pd.DataFrame, top: Any) -> None:
    with pytest.raises(ValidationError, match=f"top {top!r} is not a positive whole number"):
        summary.top_missing(few_patches, top=top)


# cve_exposure


def test_cve_exposure_explodes_cve_lists(few_patches: pd.DataFrame) -> None:
    exposure = summary.cve_exposure(few_patches)
    assert exposure.to_dict("list") == {
        "cve_id": ["CVE-2024-1", "CVE-2024-10", "CVE-2024-100"],
        "nodes": [2, 2, 1],
        "patches": [1, 1, 1],
        "severity_level": ["Critical", "Critical", "Low"],
    }
    assert (exposure[["nodes", "patches"]].dtypes == "int64").all()


def test_cve_exposure_reads_each_list_as_aws_might_space_or_case_it() -> None:
    patches = patches_from_rows(
        {
            A: [("KB1", "Missing", "Critical", "Security", 0, "cve-2024-1, CVE-2024-2,")],
            B: [("KB2", "Failed", "Low", "Security", 0, "CVE-2024-1")],
        }
    )
    exposure = summary.cve_exposure(patches)
    assert exposure[["cve_id", "nodes", "patches"]].values.tolist() == [
        ["CVE-2024-1", 2, 2],
        ["CVE-2024-2", 1, 1],
    ]
    assert summary.top_missing(patches)["cve_count"].tolist() == [2, 1]


def test_cve_exposure_counts_only_open_patches() -> None:
    patches = patches_from_rows(
        {A: [("KB1", "Installed", "Critical", "Security", ts("2024-01-01"), "CVE-2024-9")]}
    )
    assert summary.cve_exposure(patches).empty


# install_activity


def test_install_activity_per_month(few_patches: pd.DataFrame) -> None:
    months = summary.install_activity(few_patches, freq="M")
    assert months.to_dict("list") == {
        "period": [utc("2024-01-01"), utc("2024-02-01"), utc("2024-03-01")],
        "installs": [5, 1, 1],
        "nodes": [3, 1, 1],
    }


def test_install_activity_per_week_starts_on_monday_and_fills_gaps(
    few_patches: pd.DataFrame,
) -> None:
    weeks = summary.install_activity(few_patches, freq="W")
    assert weeks["period"].iloc[0] == utc("2024-01-08")
    assert (weeks["period"].dt.day_of_week == 0).all()
    assert weeks["installs"].tolist() == [1, 4, 0, 1, 0, 0, 0, 0, 1]
    assert weeks["nodes"].tolist() == [1, 3, 0, 1, 0, 0, 0, 0, 1]


def test_install_activity_per_day(few_patches: pd.DataFrame) -> None:
    days = summary.install_activity(few_patches)
    assert days["period"].iloc[0] == utc("2024-01-10")
    assert days["period"].iloc[-1] == utc("2024-03-05")
    assert len(days) == 56
    assert int(days["installs"].sum()) == 7
    assert days.dtypes.astype(str).tolist() == ["datetime64[ns, UTC]", "int64", "int64"]


def test_install_activity_before_1970() -> None:
    patches = patches_from_rows(
        {A: [("KB1", "Installed", "Low", "Security", ts("1969-12-31T23:00"), "")]}
    )
    assert summary.install_activity(patches, freq="W")["period"].tolist() == [utc("1969-12-29")]


def test_install_activity_rejects_an_unknown_freq(few_patches: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"'Q'.*'D' \(day\), 'W'.*'M' \(month\)"):
        summary.install_activity(few_patches, freq="Q")  # type: ignore[arg-type]


# pending_reboot


def test_pending_reboot_longest_waiting_first(few_patches: pd.DataFrame) -> None:
    pending = summary.pending_reboot(few_patches, now=NOW)
    assert pending.to_dict("list") == {
        "instance_id": [C, A],
        "patches": [1, 1],
        "pending_since": [utc("2024-01-10"), utc("2024-02-01")],
        "days_pending": [56, 34],
        "severity_level": ["Critical", "Medium"],
    }


# Every summary


SUMMARIES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "node_compliance": lambda df: summary.node_compliance(df, now=NOW),
    "state_by_severity": summary.state_by_severity,
    "top_missing": summary.top_missing,
    "cve_exposure": summary.cve_exposure,
    "install_activity": summary.install_activity,
    "pending_reboot": lambda df: summary.pending_reboot(df, now=NOW),
}


@pytest.mark.parametrize("name", SUMMARIES)
def test_summaries_leave_their_input_alone(few_patches: pd.DataFrame, name: str) -> None:
    before = few_patches.copy(deep=True)
    SUMMARIES[name](few_patches)
    pd.testing.assert_frame_equal(few_patches, before)


@pytest.mark.parametrize("name", SUMMARIES)
def test_summaries_of_an_empty_frame_keep_their_columns_and_dtypes(
    few_patches: pd.DataFrame, name: str
) -> None:
    full, empty = SUMMARIES[name](few_patches), SUMMARIES[name](few_patches.iloc[:0])
    assert empty.columns.tolist() == full.columns.tolist()
    assert empty.dtypes.equals(full.dtypes)
    if name != "state_by_severity":
        assert empty.empty


@pytest.mark.parametrize("name", SUMMARIES)
def test_summaries_of_a_frame_with_no_categories_at_all(
    few_patches: pd.DataFrame, name: str
) -> None:
    empty = SUMMARIES[name](empty_patches())
    assert empty.columns.tolist() == SUMMARIES[name](few_patches).columns.tolist()


@pytest.mark.parametrize("name", SUMMARIES)
def test_summaries_name_the_columns_a_frame_lacks(few_patches: pd.DataFrame, name: str) -> None:
    with pytest.raises(ColumnsError, match=f"{name} needs column.*'state'|'installed_time'"):
        SUMMARIES[name](few_patches.drop(columns=["state", "installed_time"]))


@pytest.mark.parametrize("name", ["node_compliance", "pending_reboot"])
def test_now_must_be_a_time(few_patches: pd.DataFrame, name: str) -> None:
    function = getattr(summary, name)
    with pytest.raises(ValidationError, match="now 12 is not a point in time"):
        function(few_patches, now=12)


# Oracles: the same numbers by plain, slow pandas on a random few_patches.


@pytest.fixture(scope="module")
def random_fleet() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    states = [
        *("Installed", "InstalledOther", "NotApplicable", "Missing", "Failed"),
        *("InstalledPendingReboot", "InstalledRejected", "AvailableSecurityUpdate"),
    ]
    severities = ["Critical", "Important", "Moderate", "Low", "", "Required", "Optional"]
    cve_lists = [
        "",
        "CVE-2024-1",
        "CVE-2024-1,CVE-2024-11",
        "CVE-2023-5,CVE-2024-1",
        "CVE-2024-11",
    ]
    parts = []
    for n in range(40):
        cols = PatchColumns()
        kbs = rng.choice(200, size=int(rng.integers(0, 60)), replace=False)
        cols.extend(
            {
                "KBId": f"KB{kb}",
                "Title": f"Update {kb}",
                "Classification": ["Security", "Bugfix"][kb % 2],
                "Severity": severities[kb % len(severities)],
                "State": str(rng.choice(states, p=[0.3, 0.1, 0.2, 0.2, 0.05, 0.05, 0.05, 0.05])),
                "InstalledTime": float(rng.choice([0, rng.uniform(1.69e9, 1.72e9)])),
                "CVEIds": cve_lists[kb % len(cve_lists)],
            }
            for kb in kbs
        )
        parts.append((NodeKey(f"i-{n:08x}"), cols))
    return build_patches(parts)


def open_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["state"].astype(str).isin(["MISSING", "FAILED"])]


def test_node_compliance_equals_a_groupby(random_fleet: pd.DataFrame) -> None:
    nodes = summary.node_compliance(random_fleet, now=NOW).set_index("instance_id")
    naive = random_fleet.groupby(["instance_id", "state"], observed=False).size().unstack()
    naive = naive[naive.sum(axis=1) > 0]
    naive.columns = [str(c).lower() for c in naive.columns]
    naive.index = naive.index.astype(str)
    pd.testing.assert_frame_equal(
        nodes[naive.columns], naive, check_names=False, check_index_type=False
    )
    bad = naive[[s.lower() for s in NON_COMPLIANT_STATES]].sum(axis=1) == 0
    assert nodes["compliant"].tolist() == bad.tolist()
    last = random_fleet.groupby("instance_id", observed=True)["installed_time"].max()
    assert nodes["last_installed_time"].tolist() == last.reindex(nodes.index).tolist()


def test_top_missing_equals_a_groupby(random_fleet: pd.DataFrame) -> None:
    top = summary.top_missing(random_fleet, top=None).set_index("kb_id")
    rows = open_rows(random_fleet)
    naive = rows.groupby("kb_id", observed=True)["instance_id"].nunique()
    assert top["nodes"].sort_index().to_dict() == naive.sort_index().to_dict()
    worst = rows.groupby("kb_id", observed=True)["severity_level"].max()
    assert top["severity_level"].astype(str).to_dict() == worst.astype(str).to_dict()
    cves = rows.assign(cve=rows["cve_ids"].astype(str).str.split(",")).explode("cve")
    cves = cves[cves["cve_ids"].notna()]
    per_kb = cves.groupby("kb_id", observed=True)["cve"].nunique()
    assert top["cve_count"].to_dict() == per_kb.reindex(top.index, fill_value=0).to_dict()
    assert top["nodes"].is_monotonic_decreasing


def test_cve_exposure_equals_an_explode(random_fleet: pd.DataFrame) -> None:
    exposure = summary.cve_exposure(random_fleet).set_index("cve_id")
    rows = open_rows(random_fleet)
    rows = rows[rows["cve_ids"].notna()]
    cves = rows.assign(cve=rows["cve_ids"].astype(str).str.split(",")).explode("cve")
    naive = cves.groupby("cve").agg(nodes=("instance_id", "nunique"), patches=("kb_id", "nunique"))
    assert exposure[["nodes", "patches"]].sort_index().to_dict() == naive.to_dict()


def test_install_activity_equals_a_resample(random_fleet: pd.DataFrame) -> None:
    activity = summary.install_activity(random_fleet, freq="M").set_index("period")
    times = random_fleet["installed_time"].dropna()
    naive = times.groupby(times.dt.tz_localize(None).dt.to_period("M")).size()
    naive.index = naive.index.to_timestamp().tz_localize("UTC")
    assert activity["installs"][activity["installs"] > 0].to_dict() == naive.to_dict()


# The sample fleet, through the emulator over HTTP, as a user would load it.


def test_node_compliance_equals_describe_instance_patch_states(
    sample_fleet_frames: pf.Fleet,
) -> None:
    nodes = summary.node_compliance(sample_fleet_frames.patches).set_index("instance_id")
    # The nodes frame holds DescribeInstancePatchStates' answer, for scanned nodes.
    reported = sample_fleet_frames.nodes.dropna(subset=["missing"])
    reported = reported.set_index(reported["instance_id"].astype("str"))
    assert sorted(nodes.index) == sorted(reported.index)
    for column in (state.lower() for state in STATES):
        assert nodes[column].to_dict() == reported[column].astype("int64").to_dict(), column
    non_compliant = reported[
        ["critical_non_compliant", "security_non_compliant", "other_non_compliant"]
    ].sum(axis=1)
    assert nodes["compliant"].to_dict() == (non_compliant == 0).to_dict()


def test_sample_fleet_summaries_agree_with_each_other(sample_patches: pd.DataFrame) -> None:
    patches = sample_patches
    nodes = summary.node_compliance(patches)
    table = summary.state_by_severity(patches)
    for state in STATES:
        assert table.loc[state, "total"] == nodes[state.lower()].sum()
    top = summary.top_missing(patches, top=None)
    assert top["nodes"].sum() == nodes["missing"].sum() + nodes["failed"].sum()
    assert len(summary.pending_reboot(patches)) == (nodes["installed_pending_reboot"] > 0).sum()
    assert summary.install_activity(patches)["installs"].sum() == patches["installed_time"].count()


# --- compliance_by -----------------------------------------------------------------

LOADED = pd.Timestamp("2024-06-15T08:00:00Z")
GROUP_COUNTS = [
    "nodes",
    "compliant",
    "non_compliant",
    "not_scanned",
    "stale",
    "unreachable",
    "share_compliant",
    "missing_patches",
    "missing_critical",
    "open_cves",
]


def owned_fleet() -> pf.Fleet:
    """Five nodes whose every count is known by hand.

    pay-1: compliant, scanned a day ago. pay-2: a MISSING Critical patch (CVE-1, CVE-2)
    and a FAILED High one (CVE-2), scanned 10 days ago, ConnectionLost. other-1, no
    Team tag: a MISSING Low patch (CVE-3) and a MISSING Critical one without CVEs.
    other-2, no tags at all: compliant. web-1: never scanned, Inactive.
    """
    ids = ["i-00000001", "i-00000002", "i-00000003", "i-00000004", "mi-0000000000000000e"]
    keys = [NodeKey(i, "123456789012", "eu-west-1") for i in ids]
    day = 86_400
    rows = {
        # An installed patch's CVE is closed: it is not counted.
        keys[0]: [("KB1", "Installed", "Critical", ""), ("KB2", "Installed", "Low", "CVE-9")],
        keys[1]: [
            ("KB1", "Missing", "Critical", "CVE-1,CVE-2"),
            ("KB3", "Failed", "Important", "CVE-2"),
            ("KB2", "Installed", "Low", ""),
        ],
        keys[2]: [("KB4", "Missing", "Low", "CVE-3"), ("KB5", "Missing", "Critical", "")],
        keys[3]: [("KB1", "Installed", "Critical", "")],
    }
    parts = []
    for key, patch_rows in rows.items():
        cols = PatchColumns()
        cols.extend(
            [{"KBId": k, "State": st, "Severity": sv, "CVEIds": c} for k, st, sv, c in patch_rows]
        )
        parts.append((key, cols))
    patches = build_patches(parts, node_columns={"platform_name": ["Ubuntu"] * 4})
    ago = {keys[0]: day, keys[1]: 10 * day, keys[2]: 3600, keys[3]: 3600}
    states = {
        key: {
            "OperationEndTime": LOADED.timestamp() - ago[key],
            "MissingCount": sum(r[1] == "Missing" for r in rows[key]),
            "FailedCount": sum(r[1] == "Failed" for r in rows[key]),
            "InstalledCount": sum(r[1] == "Installed" for r in rows[key]),
        }
        for key in rows
    }
    infos = {
        keys[1]: {"PingStatus": "ConnectionLost", "PlatformName": "Ubuntu"},
        keys[4]: {"PingStatus": "Inactive"},
    }
    counts = {key: len(r) for key, r in rows.items()}
    nodes = build_nodes(keys, infos, states, counts, loaded_at=LOADED)
    tags = build_tags(
        [
            (keys[0], "Team", "pay"),
            (keys[0], "Env", "prod"),
            (keys[1], "Team", "pay"),
            (keys[2], "Env", "prod"),
            (keys[4], "Team", "web"),
        ]
    )
    return pf.Fleet(patches, nodes, build_errors([]), tags=tags, loaded_at=LOADED)


def test_compliance_by_counts_equal_hand_counts_untagged_included() -> None:
    table = summary.compliance_by(owned_fleet(), by="tag:Team")
    assert table.columns.tolist() == ["tag:Team", *GROUP_COUNTS]
    assert table["tag:Team"].tolist() == ["(untagged)", "pay", "web"]  # worst first
    assert table[GROUP_COUNTS].values.tolist() == [
        [2, 1, 1, 0, 0, 0, 0.5, 2, 1, 1],
        [2, 1, 1, 0, 1, 1, 0.5, 2, 1, 2],
        [1, 0, 0, 1, 1, 1, 0.0, 0, 0, 0],
    ]
    assert (table.dtypes[[c for c in GROUP_COUNTS if c != "share_compliant"]] == "int64").all()


def test_compliance_by_staleness_follows_the_days_given() -> None:
    fleet = owned_fleet()
    lenient = summary.compliance_by(fleet, by="tag:Team", stale_after_days=30)
    assert lenient.set_index("tag:Team")["stale"].to_dict() == {
        "(untagged)": 0,
        "pay": 0,
        "web": 1,  # never scanned: stale whatever the days
    }


def test_compliance_by_several_columns_and_a_column_with_gaps() -> None:
    fleet = owned_fleet()
    table = summary.compliance_by(fleet, by=["tag:Env", "platform_name"])
    groups = table[["tag:Env", "platform_name"]].values.tolist()
    assert sorted(map(tuple, groups)) == [
        ("(untagged)", "(unknown)"),
        ("(untagged)", "Ubuntu"),
        ("prod", "(unknown)"),
    ]
    assert table["nodes"].sum() == 5
    tagged = fleet.with_tags("Env")  # a tag already a column is used as it is
    pd.testing.assert_frame_equal(
        summary.compliance_by(tagged, by=["tag:Env", "platform_name"]), table
    )


def test_compliance_by_refuses_what_it_cannot_group_by() -> None:
    fleet = owned_fleet()
    with pytest.raises(ColumnsError, match="neither a node column nor a tag"):
        summary.compliance_by(fleet, by="team")
    with pytest.raises(ValidationError, match="did you mean 'Team'"):
        summary.compliance_by(fleet, by="tag:team")
    for by in ([], "", ["tag:Team", 3]):
        with pytest.raises(ValidationError, match="not a column name"):
            summary.compliance_by(fleet, by=by)  # type: ignore[arg-type]


def test_compliance_by_a_tag_of_a_fleet_loaded_without_tags_is_one_untagged_group() -> None:
    fleet = owned_fleet()
    bare = pf.Fleet(fleet.patches, fleet.nodes, fleet.errors, loaded_at=LOADED)
    table = summary.compliance_by(bare, by="tag:Team")
    assert table["tag:Team"].tolist() == ["(untagged)"] and table["nodes"].tolist() == [5]
    assert table["open_cves"].tolist() == [3]


def test_top_missing_of_open_rows_that_list_no_cves(sample_patches: pd.DataFrame) -> None:
    # this node's open patches list no CVE at all: an empty CVE table, once a TypeError
    node = pf.filters.by_node(sample_patches, "i-0e1f2a3b4c5d6e7f8")
    assert node["cve_ids"].isna().all()
    top = summary.top_missing(node, top=None)
    assert len(top) == node["state"].isin(["MISSING", "FAILED"]).sum() > 0
    assert top["cve_count"].eq(0).all()
    assert str(top["cve_count"].dtype) == "int64"
