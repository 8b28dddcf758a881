"""Row filters: hand-counted results on a small fleet, argument errors, purity."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from frames import patches_from_rows

from patchframe import filters
from patchframe._schema import (
    NodeKey,
    PatchColumns,
    UnknownStateWarning,
    build_nodes,
    build_patches,
)
from patchframe.exceptions import ColumnsError, ValidationError

JAN15 = dt.datetime(2024, 1, 15, 10, tzinfo=dt.UTC).timestamp()


def ts(day: str) -> float:
    return pd.Timestamp(day, tz="UTC").timestamp()


# (KBId, State, Severity, Classification, InstalledTime, CVEIds) per node.
FLEET: dict[str, tuple[str, str, list[tuple[str, str, str, str, float, str]]]] = {
    "i-0000000a": (
        "Windows",
        "Microsoft Windows Server 2022 Datacenter",
        [
            ("KB1", "Missing", "Critical", "SecurityUpdates", 0, "CVE-2024-1,CVE-2024-10"),
            ("KB2", "Installed", "Important", "CriticalUpdates", JAN15, ""),
            ("KB3", "InstalledPendingReboot", "Moderate", "Updates", ts("2024-02-01"), ""),
            ("KB4", "NotApplicable", "", "", 0, ""),
        ],
    ),
    "i-0000000b": (
        "Linux",
        "Ubuntu",
        [
            ("KB1", "Failed", "Critical", "SecurityUpdates", 0, "CVE-2024-1,CVE-2024-10"),
            ("KB5", "Missing", "Low", "Security", 0, "CVE-2024-100"),
            ("KB6", "InstalledOther", "", "", 0, ""),
            ("KB7", "Installed", "Medium", "Bugfix", ts("2024-01-20"), ""),
        ],
    ),
    "i-0000000c": (
        "Linux",
        "Amazon Linux",
        [
            ("KB8", "Installed", "Critical", "Security", ts("2024-01-16"), ""),
            ("KB9", "InstalledRejected", "Low", "Bugfix", ts("2024-01-17"), ""),
            ("KB10", "AvailableSecurityUpdate", "Important", "Security", 0, ""),
            ("KB11", "InstalledPendingReboot", "Critical", "Security", ts("2024-01-10"), ""),
        ],
    ),
    "mi-0123456789abcdef0": (
        "Linux",
        "SLES",
        [
            ("KB12", "Installed", "Low", "Security", ts("2024-03-05"), ""),
            ("KB13", "NotApplicable", "", "", 0, ""),
        ],
    ),
}


def build(fleet: dict[str, Any], *, node_columns: bool = True) -> pd.DataFrame:
    extra = {
        "platform_type": [v[0] for v in fleet.values()],
        "platform_name": [v[1] for v in fleet.values()],
    }
    return patches_from_rows(
        {instance_id: rows for instance_id, (_, _, rows) in fleet.items()},
        account_id="123456789012",
        region="eu-west-1",
        node_columns=extra if node_columns else None,
    )


@pytest.fixture
def fleet() -> pd.DataFrame:
    return build(FLEET)


def keys(df: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(df["instance_id"].astype(str), df["kb_id"].astype(str), strict=True))


A, B, C, D = "i-0000000a", "i-0000000b", "i-0000000c", "mi-0123456789abcdef0"


def test_by_state_takes_camel_case_and_upper_snake_case(fleet: pd.DataFrame) -> None:
    assert keys(filters.by_state(fleet, "Missing")) == [(A, "KB1"), (B, "KB5")]
    assert keys(filters.by_state(fleet, "INSTALLED_PENDING_REBOOT", "InstalledOther")) == [
        (A, "KB3"),
        (B, "KB6"),
        (C, "KB11"),
    ]


def test_filters_keep_index_labels(fleet: pd.DataFrame) -> None:
    assert filters.by_state(fleet, "MISSING").index.tolist() == [0, 5]


def test_by_state_rejects_an_unknown_state_listing_the_allowed(fleet: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"'Mising'.*INSTALLED, INSTALLED_OTHER.*FAILED"):
        filters.by_state(fleet, "Mising")


@pytest.mark.parametrize("bad", [(), (["Missing"],), ("",)])
def test_by_state_rejects_no_state_or_a_list(fleet: pd.DataFrame, bad: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError, match="by_state"):
        filters.by_state(fleet, *bad)


def test_by_state_accepts_a_state_nobody_knew_that_the_frame_holds() -> None:
    cols = PatchColumns()
    cols.extend([{"KBId": "KB1", "State": "Quarantined"}, {"KBId": "KB2", "State": "Missing"}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStateWarning)
        frame = build_patches([(NodeKey("i-00000001"), cols)])
    assert filters.by_state(frame, "Quarantined")["kb_id"].tolist() == ["KB1"]
    assert filters.non_compliant(frame)["kb_id"].tolist() == ["KB2"]


def test_non_compliant_follows_aws_rules(fleet: pd.DataFrame) -> None:
    assert keys(filters.non_compliant(fleet)) == [
        (A, "KB1"),
        (A, "KB3"),
        (B, "KB1"),
        (B, "KB5"),
        (C, "KB9"),
        (C, "KB10"),
        (C, "KB11"),
    ]


@pytest.mark.parametrize(
    ("level", "rows"),
    [("Critical", 4), ("high", 6), ("MEDIUM", 8), ("Low", 11), ("Unspecified", 14)],
)
def test_severity_at_least(fleet: pd.DataFrame, level: str, rows: int) -> None:
    picked = filters.severity_at_least(fleet, level)
    assert len(picked) == rows
    floor = level.capitalize()
    assert (picked["severity_level"] >= floor).all()


def test_severity_at_least_rejects_a_vendor_word_naming_its_level(fleet: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"'Important'.*Unspecified, Low.*level is 'High'"):
        filters.severity_at_least(fleet, "Important")
    with pytest.raises(ValidationError, match=r"'Severe' is not a level"):
        filters.severity_at_least(fleet, "Severe")


def test_by_classification_matches_whole_names_ignoring_case(fleet: pd.DataFrame) -> None:
    assert keys(filters.by_classification(fleet, "security")) == [
        (B, "KB5"),
        (C, "KB8"),
        (C, "KB10"),
        (C, "KB11"),
        (D, "KB12"),
    ]
    assert filters.by_classification(fleet, "NoSuchClass").empty


def test_by_cve_matches_an_exact_id_inside_the_list(fleet: pd.DataFrame) -> None:
    assert keys(filters.by_cve(fleet, "CVE-2024-1")) == [(A, "KB1"), (B, "KB1")]
    assert keys(filters.by_cve(fleet, "cve-2024-10")) == [(A, "KB1"), (B, "KB1")]
    assert keys(filters.by_cve(fleet, "CVE-2024-100")) == [(B, "KB5")]
    assert filters.by_cve(fleet, "CVE-2024-1000").empty


def test_by_cve_rejects_what_is_not_a_cve_id(fleet: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"'KB1' is not a CVE id.*CVE-2024-3094"):
        filters.by_cve(fleet, "KB1")


def test_installed_before_and_after_split_installed_rows(fleet: pd.DataFrame) -> None:
    before = filters.installed_before(fleet, "2024-01-16")
    after = filters.installed_after(fleet, "2024-01-16")
    assert keys(before) == [(A, "KB2"), (C, "KB11")]
    assert keys(after) == [(A, "KB3"), (B, "KB7"), (C, "KB8"), (C, "KB9"), (D, "KB12")]
    assert fleet["installed_time"].notna().sum() == len(before) + len(after)


@pytest.mark.parametrize(
    ("when", "rows"),
    [
        ("2024-01-15T11:00:00+02:00", 1),  # 09:00 UTC: KB2 at 10:00 UTC is not before
        ("2024-01-15T11:00:00", 2),  # naive: taken as UTC
        (dt.datetime(2024, 1, 15, 11, tzinfo=dt.timezone(dt.timedelta(hours=2))), 1),
        (dt.datetime(2024, 1, 15, 11), 2),
        (pd.Timestamp("2024-01-15 05:00", tz="America/New_York"), 1),  # 10:00 UTC: KB2 is not
        (pd.Timestamp("2024-01-15 05:00:01", tz="America/New_York"), 2),
        (dt.date(2024, 1, 15), 1),
        (np.datetime64("2024-01-15T10:00:00.000001"), 2),
    ],
)
def test_installed_before_reads_aware_and_naive_times_as_utc(
    fleet: pd.DataFrame, when: Any, rows: int
) -> None:
    assert len(filters.installed_before(fleet, when)) == rows


def test_installed_between_is_half_open(fleet: pd.DataFrame) -> None:
    picked = filters.installed_between(fleet, "2024-01-15", "2024-01-20")
    assert keys(picked) == [(A, "KB2"), (C, "KB8"), (C, "KB9")]


@pytest.mark.parametrize("when", [1706745600, None, "last tuesday", pd.NaT])
def test_installed_filters_reject_what_is_not_a_time(fleet: pd.DataFrame, when: Any) -> None:
    with pytest.raises(ValidationError, match="when"):
        filters.installed_after(fleet, when)


def test_installed_between_rejects_an_end_before_its_start(fleet: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match="earlier than start"):
        filters.installed_between(fleet, "2024-02-01", "2024-01-01")


def test_by_platform_matches_name_or_type(fleet: pd.DataFrame) -> None:
    assert filters.by_platform(fleet, "windows")["instance_id"].unique().tolist() == [A]
    ubuntu_or_sles = filters.by_platform(fleet, "Ubuntu", "sles")
    assert ubuntu_or_sles["instance_id"].unique().tolist() == [B, D]
    assert len(filters.by_platform(fleet, "Linux")) == 10


def test_by_platform_needs_the_node_columns() -> None:
    frame = build(FLEET, node_columns=False)
    with pytest.raises(ColumnsError, match=r"platform_name.*load_instance_patches"):
        filters.by_platform(frame, "Windows")


def test_by_node(fleet: pd.DataFrame) -> None:
    picked = filters.by_node(fleet, A, D)
    assert picked["instance_id"].unique().tolist() == [A, D]
    assert len(picked) == 6
    with pytest.raises(ValidationError, match="'web-1' is not a managed node id"):
        filters.by_node(fleet, "web-1")


@pytest.mark.parametrize(
    ("call", "column"),
    [
        (lambda df: filters.by_state(df, "Missing"), "state"),
        (filters.non_compliant, "state"),
        (lambda df: filters.severity_at_least(df, "High"), "severity_level"),
        (lambda df: filters.by_classification(df, "Security"), "classification"),
        (lambda df: filters.by_cve(df, "CVE-2024-1"), "cve_ids"),
        (lambda df: filters.installed_before(df, "2024-01-01"), "installed_time"),
        (lambda df: filters.installed_after(df, "2024-01-01"), "installed_time"),
        (lambda df: filters.installed_between(df, "2024-01-01", "2024-02-01"), "installed_time"),
        (lambda df: filters.by_node(df, "i-0000000a"), "instance_id"),
    ],
)
def test_a_frame_without_the_column_raises_columns_error_naming_it(
    fleet: pd.DataFrame, call: Callable[[pd.DataFrame], pd.DataFrame], column: str
) -> None:
    with pytest.raises(ColumnsError, match=f"needs column.*'{column}'"):
        call(fleet.drop(columns=column))


ALL_FILTERS: list[Callable[[pd.DataFrame], pd.DataFrame]] = [
    lambda df: filters.by_state(df, "Missing", "Failed"),
    filters.non_compliant,
    lambda df: filters.severity_at_least(df, "High"),
    lambda df: filters.by_classification(df, "Security"),
    lambda df: filters.by_cve(df, "CVE-2024-1"),
    lambda df: filters.installed_before(df, "2024-01-16"),
    lambda df: filters.installed_after(df, "2024-01-16"),
    lambda df: filters.installed_between(df, "2024-01-01", "2024-02-01"),
    lambda df: filters.by_platform(df, "Linux"),
    lambda df: filters.by_node(df, "i-0000000a"),
]


@pytest.mark.parametrize("call", ALL_FILTERS)
def test_filters_leave_their_input_alone_and_keep_dtypes(
    fleet: pd.DataFrame, call: Callable[[pd.DataFrame], pd.DataFrame]
) -> None:
    before = fleet.copy(deep=True)
    picked = call(fleet)
    pd.testing.assert_frame_equal(fleet, before)
    assert picked.dtypes.equals(fleet.dtypes)
    assert 0 < len(picked) < len(fleet)


@pytest.mark.parametrize("call", ALL_FILTERS)
def test_filters_on_an_empty_frame_give_an_empty_frame(
    fleet: pd.DataFrame, call: Callable[[pd.DataFrame], pd.DataFrame]
) -> None:
    picked = call(fleet.iloc[:0])
    assert picked.empty
    assert picked.dtypes.equals(fleet.dtypes)


def test_filters_work_on_plain_text_columns(fleet: pd.DataFrame) -> None:
    text = fleet.astype({"state": "str", "severity_level": "str", "cve_ids": "str"})
    text["state"] = text["state"].str.title().str.replace("_", "")  # "InstalledOther"
    assert keys(filters.by_state(text, "MISSING")) == [(A, "KB1"), (B, "KB5")]
    assert len(filters.severity_at_least(text, "High")) == 6
    assert keys(filters.by_cve(text, "CVE-2024-100")) == [(B, "KB5")]


# --- stale and unreachable nodes ----------------------------------------------------

LOADED = pd.Timestamp("2024-06-15T08:00:00Z")


def node_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes scanned 1 hour, exactly 7 days and 8 days before the load, one never;
    one of them lost; and the patches of the scanned ones."""
    ids = ["i-0000000a", "i-0000000b", "i-0000000c", "i-0000000d"]
    keys = [NodeKey(i, "123456789012", "eu-west-1") for i in ids]
    ago = {keys[0]: 3600, keys[1]: 7 * 86400, keys[2]: 8 * 86400}
    states = {k: {"OperationEndTime": LOADED.timestamp() - s} for k, s in ago.items()}
    infos = {keys[1]: {"PingStatus": "ConnectionLost"}, keys[3]: {"PingStatus": "Inactive"}}
    nodes = build_nodes(keys, infos, states, {}, loaded_at=LOADED)
    parts = []
    for key in keys[:3]:
        cols = PatchColumns()
        cols.extend([{"KBId": "KB1", "State": "Missing"}, {"KBId": "KB2", "State": "Installed"}])
        parts.append((key, cols))
    return nodes, build_patches(parts)


def test_stale_keeps_old_and_never_scanned_nodes_by_the_load_time() -> None:
    nodes, _ = node_frames()
    # Measured to the load, in 2024: were it the wall clock, every node would be stale.
    assert filters.stale(nodes, days=7)["instance_id"].tolist() == ["i-0000000c", "i-0000000d"]
    assert filters.stale(nodes, 0)["instance_id"].tolist() == [
        "i-0000000a",
        "i-0000000b",
        "i-0000000c",
        "i-0000000d",
    ]
    assert filters.stale(nodes, days=30)["instance_id"].tolist() == ["i-0000000d"]
    assert filters.stale(nodes).index.tolist() == [2, 3]  # 7 days by default, labels kept


def test_stale_without_a_load_time_keeps_only_nodes_never_scanned() -> None:
    nodes, _ = node_frames()
    unknown = nodes.assign(scan_age=pd.Series(pd.NaT, index=nodes.index, dtype="m8[ns]"))
    assert filters.stale(unknown)["instance_id"].tolist() == ["i-0000000d"]


def test_stale_and_unreachable_pick_the_rows_of_a_patches_frame_by_its_nodes() -> None:
    nodes, patches = node_frames()
    picked = filters.stale(patches, 7, nodes=nodes)
    assert picked["instance_id"].astype(str).tolist() == ["i-0000000c"] * 2
    lost = filters.unreachable(patches, nodes=nodes)
    assert lost["instance_id"].astype(str).tolist() == ["i-0000000b"] * 2
    with pytest.raises(ColumnsError, match="pass its nodes frame too"):
        filters.stale(patches)
    with pytest.raises(ColumnsError, match="scan_age"):
        filters.stale(patches, nodes=patches)


def test_unreachable_means_connection_lost_or_inactive() -> None:
    nodes, _ = node_frames()
    assert filters.unreachable(nodes)["ping_status"].tolist() == ["ConnectionLost", "Inactive"]


@pytest.mark.parametrize("days", [-1, "7", True, float("nan"), float("inf"), None])
def test_stale_days_must_be_a_number_of_days(days: Any) -> None:
    nodes, _ = node_frames()
    with pytest.raises(ValidationError, match="not a number of days"):
        filters.stale(nodes, days)
