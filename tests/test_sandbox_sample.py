"""The sample fleet and synthetic fleets: wire shapes, quirks, consistent counts, the
catalogue tables they are made from, and the arguments they refuse."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

import botocore.session
import numpy as np
import pytest
from botocore.model import StructureShape

from patchframe._schema import STATE_COUNT_FIELDS, STATES, normalise_state
from patchframe.exceptions import ValidationError
from patchframe.sandbox.sample import (
    YEAR_ONE,
    WireFleet,
    build_sample_fleet,
    main,
    read_fleet,
    sample_fleet,
    synthetic_fleet,
    synthetic_history,
    write_fleet,
)

MODEL = botocore.session.get_session().get_service_model("ssm")
CAMEL = {
    "Installed",
    "InstalledOther",
    "InstalledPendingReboot",
    "InstalledRejected",
    "Missing",
    "NotApplicable",
    "Failed",
    "AvailableSecurityUpdate",
}
NON_COMPLIANT = {
    "MISSING",
    "FAILED",
    "INSTALLED_PENDING_REBOOT",
    "INSTALLED_REJECTED",
    "AVAILABLE_SECURITY_UPDATE",
}
INSTALLED = {"INSTALLED", "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED"}
EC2_ID = re.compile(r"^i-[0-9a-f]{17}$")
HYBRID_ID = re.compile(r"^mi-[0-9a-f]{17}$")


def members(shape: str) -> set[str]:
    structure = MODEL.shape_for(shape)
    assert isinstance(structure, StructureShape)
    return set(structure.members)


def required(shape: str) -> set[str]:
    structure = MODEL.shape_for(shape)
    assert isinstance(structure, StructureShape)
    return set(structure.required_members)


def assert_consistent(fleet: WireFleet) -> None:
    """Every node's patch-state counts say what its patch rows say."""
    field = STATE_COUNT_FIELDS
    assert {s["InstanceId"] for s in fleet.patch_states} == set(fleet.patches)
    assert set(fleet.patches) <= set(fleet.instance_ids)
    for state in fleet.patch_states:
        rows = fleet.patches[state["InstanceId"]]
        counts = Counter(normalise_state(row["State"]) for row in rows)
        for name, key in field.items():
            assert state[key] == counts[name], (state["InstanceId"], key)
        bad = [row for row in rows if normalise_state(row["State"]) in NON_COMPLIANT]
        critical = [row for row in bad if row["Severity"] == "Critical"]
        security = [
            row
            for row in bad
            if row["Severity"] != "Critical"
            and row["Classification"] in {"SecurityUpdates", "Security", "security"}
        ]
        assert state["CriticalNonCompliantCount"] == len(critical)
        assert state["SecurityNonCompliantCount"] == len(security)
        assert state["OtherNonCompliantCount"] == len(bad) - len(critical) - len(security)
        assert state["OperationStartTime"] <= state["OperationEndTime"]
        assert state["Operation"] in {"Scan", "Install"}
        assert state["RebootOption"] in {"RebootIfNeeded", "NoReboot"}


def test_sample_is_a_dozen_nodes_across_the_operating_systems(wire_fleet: WireFleet) -> None:
    assert (wire_fleet.account_id, wire_fleet.region) == ("123456789012", "eu-west-1")
    assert 10 <= len(wire_fleet.instances) <= 15
    platforms = {(n["PlatformName"], n["PlatformVersion"]) for n in wire_fleet.instances}
    assert {
        ("Microsoft Windows Server 2019 Datacenter", "10.0.17763"),
        ("Microsoft Windows Server 2022 Datacenter", "10.0.20348"),
        ("Amazon Linux", "2023"),
        ("Red Hat Enterprise Linux", "8.9"),
        ("Red Hat Enterprise Linux", "9.4"),
        ("Ubuntu", "22.04"),
        ("SLES", "15.5"),
    } == platforms


def test_sample_ids_ec2_and_hybrid(wire_fleet: WireFleet) -> None:
    ids = wire_fleet.instance_ids
    assert len(set(ids)) == len(ids)
    hybrid = [i for i in ids if HYBRID_ID.match(i)]
    assert len(hybrid) == 2
    assert all(EC2_ID.match(i) for i in ids if i not in hybrid)
    for node in wire_fleet.instances:
        expected = "ManagedInstance" if node["InstanceId"] in hybrid else "EC2Instance"
        assert node["ResourceType"] == expected
        assert node["SourceId"] == node["InstanceId"]


def test_sample_has_one_connection_lost_node(wire_fleet: WireFleet) -> None:
    pings = Counter(node["PingStatus"] for node in wire_fleet.instances)
    assert pings == {"Online": len(wire_fleet.instances) - 1, "ConnectionLost": 1}


def test_wire_shapes_match_the_botocore_model(wire_fleet: WireFleet) -> None:
    for node in wire_fleet.instances:
        assert set(node) <= members("InstanceInformation")
        assert isinstance(node["LastPingDateTime"], int | float)
    for state in wire_fleet.patch_states:
        assert required("InstancePatchState") <= set(state) <= members("InstancePatchState")
    for rows in wire_fleet.patches.values():
        for row in rows:
            assert required("PatchComplianceData") <= set(row) <= members("PatchComplianceData")
            assert all(isinstance(row[k], str) for k in row if k != "InstalledTime")


def test_every_state_is_present_in_camel_case(wire_fleet: WireFleet) -> None:
    states = Counter(row["State"] for rows in wire_fleet.patches.values() for row in rows)
    assert set(states) >= CAMEL
    assert {normalise_state(s) for s in states} == set(STATES)


def test_exactly_one_node_spells_states_in_upper_snake_case(wire_fleet: WireFleet) -> None:
    snake = [
        instance_id
        for instance_id, rows in wire_fleet.patches.items()
        if any(row["State"] in STATES for row in rows)
    ]
    assert len(snake) == 1
    assert all(row["State"] in STATES for row in wire_fleet.patches[snake[0]])
    assert {row["State"] for row in wire_fleet.patches[snake[0]]} >= {"INSTALLED_OTHER"}


def test_installed_other_and_not_applicable_rows_are_blank(wire_fleet: WireFleet) -> None:
    for rows in wire_fleet.patches.values():
        for row in rows:
            blank = normalise_state(row["State"]) in {"INSTALLED_OTHER", "NOT_APPLICABLE"}
            fields = [row["Title"], row["Classification"], row["Severity"]]
            assert (fields == ["", "", ""]) == blank, row
            assert row["KBId"]


def test_installed_time_quirks(wire_fleet: WireFleet) -> None:
    rows = [row for rows in wire_fleet.patches.values() for row in rows]
    installed = [r["InstalledTime"] for r in rows if normalise_state(r["State"]) in INSTALLED]
    others = [r["InstalledTime"] for r in rows if normalise_state(r["State"]) not in INSTALLED]
    assert any(isinstance(t, float) and t % 1 for t in installed)
    assert any(isinstance(t, int) for t in installed)
    assert all(1.5e9 < t < 1718352000 for t in installed)
    assert set(others) == {0, YEAR_ONE}
    assert Counter(others)[YEAR_ONE] < Counter(others)[0] / 5


def test_cve_ids_only_on_some_linux_missing_and_failed_rows(wire_fleet: WireFleet) -> None:
    platform = {n["InstanceId"]: n["PlatformType"] for n in wire_fleet.instances}
    with_cves = []
    for instance_id, rows in wire_fleet.patches.items():
        for row in rows:
            if row.get("CVEIds"):
                with_cves.append(row)
                assert platform[instance_id] == "Linux"
                assert normalise_state(row["State"]) in {"MISSING", "FAILED"}
                assert re.fullmatch(r"CVE-\d{4}-\d{4,}(,CVE-\d{4}-\d{4,})*", row["CVEIds"])
    assert len(with_cves) >= 10
    assert any("," in row["CVEIds"] for row in with_cves)
    rows = [row for rows in wire_fleet.patches.values() for row in rows]
    missing = [r for r in rows if normalise_state(r["State"]) == "MISSING"]
    assert any(not r.get("CVEIds") for r in missing)
    assert any(r.get("CVEIds") == "" for r in rows)  # an empty string, as some responses send
    assert any("CVEIds" not in r for r in rows)


def test_vendor_vocabularies(wire_fleet: WireFleet) -> None:
    words: dict[str, tuple[set[str], set[str]]] = {}
    for node in wire_fleet.instances:
        family = node["PlatformName"].split()[0]
        seen = words.setdefault(family, (set(), set()))
        for row in wire_fleet.patches.get(node["InstanceId"], []):
            if row["Classification"]:
                seen[0].add(row["Classification"])
                seen[1].add(row["Severity"])
    classes, severities = words["Microsoft"]
    assert classes == {"SecurityUpdates", "CriticalUpdates", "Updates", "DefinitionUpdates"}
    assert severities == {"Critical", "Important", "Moderate", "Low", "Unspecified"}
    for family in ("Amazon", "Red"):
        assert words[family][0] == {"Security", "Bugfix", "Enhancement"}
        assert words[family][1] == {"Critical", "Important", "Medium", "Low"}
    assert words["SLES"] == (
        {"security", "recommended"},
        {"Critical", "Important", "Moderate", "Low"},
    )
    assert words["Ubuntu"][1] == {"Required", "Important", "Standard", "Optional", "Extra"}


def test_kb_ids_look_like_each_vendors(wire_fleet: WireFleet) -> None:
    for node in wire_fleet.instances:
        rows = wire_fleet.patches.get(node["InstanceId"], [])
        kb_ids = [row["KBId"] for row in rows]
        assert len(set(kb_ids)) == len(kb_ids)
        if node["PlatformType"] == "Windows":
            assert all(re.fullmatch(r"KB\d{6,7}", kb) for kb in kb_ids)
        else:
            assert all(re.search(r"\.(x86_64|noarch|amd64|all)$", kb) for kb in kb_ids)
    titles = {row["Title"] for rows in wire_fleet.patches.values() for row in rows}
    assert (
        "2024-01 Cumulative Update for Windows Server 2022 for x64-based Systems (KB5034129)"
        in titles
    )


def test_some_nodes_need_several_pages(wire_fleet: WireFleet) -> None:
    sizes = sorted(len(rows) for rows in wire_fleet.patches.values())
    assert sizes[-1] > 300 and sizes[-2] > 200
    assert 1500 <= wire_fleet.n_patches <= 5000


def test_one_node_was_never_scanned(wire_fleet: WireFleet) -> None:
    unscanned = [i for i in wire_fleet.instance_ids if i not in wire_fleet.patches]
    assert len(unscanned) == 1
    assert unscanned[0] not in {s["InstanceId"] for s in wire_fleet.patch_states}


def test_nodes_compliant_and_not(wire_fleet: WireFleet) -> None:
    bad = [
        s["InstanceId"]
        for s in wire_fleet.patch_states
        if any(s[k] for k in ("MissingCount", "FailedCount", "InstalledRejectedCount"))
        or s["InstalledPendingRebootCount"]
        or s["AvailableSecurityUpdateCount"]
    ]
    assert 0 < len(bad) < len(wire_fleet.patch_states)


def test_sample_counts_are_consistent(wire_fleet: WireFleet) -> None:
    assert_consistent(wire_fleet)


def test_tags_name_every_node_and_match_patch_groups(wire_fleet: WireFleet) -> None:
    assert set(wire_fleet.tags) == set(wire_fleet.instance_ids)
    for state in wire_fleet.patch_states:
        tags = wire_fleet.tags[state["InstanceId"]]
        assert tags.get("Patch Group", "") == state["PatchGroup"]
        assert tags["Name"] and tags["Environment"]


def test_builder_reproduces_the_committed_json(tmp_path: Path) -> None:
    write_fleet(build_sample_fleet(), tmp_path)
    bundled = files("patchframe.sample_data")
    names = {p.name for p in bundled.iterdir() if p.name.endswith(".json")}
    assert names == {p.name for p in tmp_path.glob("*.json")}
    patch_files = {p.name for p in (bundled / "patches").iterdir()}
    assert patch_files == {p.name for p in (tmp_path / "patches").iterdir()}
    for name in [*names, *(f"patches/{p}" for p in patch_files)]:
        assert (tmp_path / name).read_text() == (bundled / name).read_text(), name


def test_main_writes_the_sample_and_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "patches").mkdir()
    (tmp_path / "patches" / "i-00000000000000000.json").write_text("{}")
    assert main(["--write", str(tmp_path)]) == 0
    assert read_fleet(tmp_path) == sample_fleet()


def test_write_and_read_round_trip_any_fleet(tmp_path: Path) -> None:
    fleet = synthetic_fleet(8, seed=3, patches_per_node=20, region="ap-southeast-2")
    written = write_fleet(fleet, tmp_path)
    assert len(written) == 4 + len(fleet.patches)
    assert read_fleet(str(tmp_path)) == fleet


# --------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def synthetic() -> WireFleet:
    return synthetic_fleet(300, seed=11)


def test_synthetic_is_deterministic_per_seed() -> None:
    a = synthetic_fleet(40, seed=5, patches_per_node=60)
    assert a == synthetic_fleet(40, seed=5, patches_per_node=60)
    assert a != synthetic_fleet(40, seed=6, patches_per_node=60)


def test_synthetic_size_ids_and_place(synthetic: WireFleet) -> None:
    ids = synthetic.instance_ids
    assert len(ids) == len(set(ids)) == 300
    assert all(EC2_ID.match(i) or HYBRID_ID.match(i) for i in ids)
    assert 0 < sum(i.startswith("mi-") for i in ids) < 60
    assert (synthetic.account_id, synthetic.region) == ("123456789012", "us-east-1")
    mean = synthetic.n_patches / len(synthetic.patches)
    assert 300 < mean < 360


def test_synthetic_mix_of_systems_and_states(synthetic: WireFleet) -> None:
    platforms = Counter(n["PlatformName"] for n in synthetic.instances)
    assert len(platforms) == 6
    assert max(platforms.values()) < 0.4 * len(synthetic.instances)
    pings = Counter(n["PingStatus"] for n in synthetic.instances)
    assert pings["Online"] > 0.9 * len(synthetic.instances) and pings["ConnectionLost"] > 0
    states = Counter(row["State"] for rows in synthetic.patches.values() for row in rows)
    assert set(states) >= CAMEL
    assert states["Installed"] > states["Missing"] > states["Failed"]


def test_synthetic_counts_are_consistent(synthetic: WireFleet) -> None:
    assert_consistent(synthetic)


def test_synthetic_rows_have_the_wire_shape(synthetic: WireFleet) -> None:
    allowed, needed = members("PatchComplianceData"), required("PatchComplianceData")
    for rows in list(synthetic.patches.values())[:50]:
        for row in rows:
            assert needed <= set(row) <= allowed


def test_synthetic_fleets_elsewhere_do_not_share_ids() -> None:
    here = synthetic_fleet(50, seed=1, patches_per_node=10)
    there = synthetic_fleet(50, seed=1, patches_per_node=10, account_id="210987654321")
    assert there.account_id == "210987654321"
    assert not set(here.instance_ids) & set(there.instance_ids)


def test_synthetic_edges() -> None:
    assert synthetic_fleet(0) == WireFleet("123456789012", "us-east-1")
    empty_rows = synthetic_fleet(5, patches_per_node=0)
    assert len(empty_rows.instances) == 5 and empty_rows.n_patches == 0
    big = synthetic_fleet(3, seed=2, patches_per_node=1000)
    assert all(len({r["KBId"] for r in rows}) == len(rows) for rows in big.patches.values())
    assert_consistent(big)


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"nodes": 20, "seed": 7, "patches_per_node": 50}, "cecee2ad56da6baf"),
        ({"nodes": 8, "seed": 3, "patches_per_node": 20}, "eb25fab0cccdcbc5"),
        (
            {
                "nodes": 50,
                "seed": 1,
                "patches_per_node": 10,
                "account_id": "210987654321",
                "region": "ap-southeast-2",
            },
            "dae48c47300cb4af",
        ),
    ],
)
def test_synthetic_fleets_stay_the_same(kwargs: dict[str, Any], expected: str) -> None:
    # Tests and benchmarks across the project take these fleets as ground truth: a
    # change here must be on purpose (then update the digests).
    assert digest(dataclasses.asdict(synthetic_fleet(**kwargs))) == expected


def test_synthetic_history_stays_the_same() -> None:
    history = synthetic_history(3, nodes=10, patches_per_node=40)
    assert digest([(str(when), dataclasses.asdict(f)) for when, f in history]) == (
        "a50f3eaee29be5ba"
    )


def test_numpy_integers_count_as_whole_numbers() -> None:
    assert synthetic_fleet(
        np.int64(3), seed=np.int32(1), patches_per_node=np.int64(10)
    ) == synthetic_fleet(3, seed=1, patches_per_node=10)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nodes": "10"}, "nodes must be a whole number (0 or more), not '10'"),
        ({"nodes": 2.0}, "nodes must be a whole number"),
        ({"nodes": True}, "nodes must be a whole number"),
        ({"nodes": -1}, "nodes must be 0 or more, not -1"),
        ({"seed": "7"}, "seed must be a whole number, not '7'"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"patches_per_node": 1001}, "patches_per_node must be between 0 and 1000, not 1001"),
        ({"patches_per_node": -1}, "patches_per_node must be between 0 and 1000"),
        ({"patches_per_node": "30"}, "patches_per_node must be a whole number"),
        ({"account_id": "42"}, "account_id must be 12 digits, not '42'"),
        ({"account_id": 123456789012}, "account_id must be 12 digits"),
        ({"account_id": "\uff11" * 12}, "account_id must be 12 digits"),  # full-width 1s
        ({"region": ""}, "region must be a region name such as 'us-east-1', not ''"),
        ({"region": "Mars"}, "region must be a region name"),
        ({"region": None}, "region must be a region name"),
    ],
)
def test_synthetic_fleet_refuses_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        synthetic_fleet(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"snapshots": 0}, "snapshots must be 1 or more, not 0"),
        ({"snapshots": "3"}, "snapshots must be a whole number (1 or more)"),
        ({"nodes": -2}, "nodes must be 0 or more"),
        ({"seed": "x"}, "seed must be a whole number"),
        ({"patches_per_node": 5000}, "patches_per_node must be between 0 and 1000"),
        ({"account_id": "1234"}, "account_id must be 12 digits"),
        ({"region": "moon"}, "region must be a region name"),
        ({"start": dt.datetime(2024, 6, 14)}, "start must be a timezone-aware datetime"),
        ({"start": "2024-06-14T00:00Z"}, "start must be a timezone-aware datetime"),
        ({"every": dt.timedelta(0)}, "every must be a positive timedelta"),
        ({"every": dt.timedelta(days=-1)}, "every must be a positive timedelta"),
        ({"every": 7}, "every must be a positive timedelta, not 7"),
    ],
)
def test_synthetic_history_refuses_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        synthetic_history(**kwargs)


def test_read_fleet_refuses_what_is_not_a_stored_fleet(tmp_path: Path) -> None:
    with pytest.raises(
        ValidationError, match=r"directory must be an existing folder, not '.*nope'"
    ):
        read_fleet(tmp_path / "nope")
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(ValidationError, match="directory must be an existing folder"):
        read_fleet(tmp_path / "file.json")
    with pytest.raises(ValidationError, match=r"with fleet\.json; '.*' has none"):
        read_fleet(str(tmp_path))
    with pytest.raises(ValidationError, match="directory must be a path or a package resource"):
        read_fleet(42)  # type: ignore[arg-type]


def test_write_fleet_refuses_before_writing(tmp_path: Path, wire_fleet: WireFleet) -> None:
    with pytest.raises(ValidationError, match="fleet must be a WireFleet, not dict"):
        write_fleet({"AccountId": "123456789012"}, tmp_path / "out")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()
    (tmp_path / "taken").write_text("")
    with pytest.raises(ValidationError, match="directory must be a folder, not the file"):
        write_fleet(wire_fleet, tmp_path / "taken")
    with pytest.raises(ValidationError, match="directory must be a path, not 42"):
        write_fleet(wire_fleet, 42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- catalogue tables

CATALOG = files("patchframe.sandbox") / "catalog"


def read_csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader((CATALOG / name).read_text(encoding="utf-8").splitlines()))


def read_json(name: str) -> Any:
    return json.loads((CATALOG / name).read_text(encoding="utf-8"))


def test_catalogue_tables_ship_as_package_data() -> None:
    platforms = read_json("platforms.json")
    linux = {f"{key}.csv" for key, p in platforms.items() if p["family"] != "windows"}
    tables = {"platforms.json", "windows.json", "cves.json", "grades.json", "nodes.json"}
    tables |= {"hygiene.csv", "sample_nodes.csv", *linux}
    assert {p.name for p in CATALOG.iterdir() if p.is_file()} == tables


def test_linux_packages_name_known_cve_pools() -> None:
    pools = read_json("cves.json")
    assert all(re.fullmatch(r"CVE-\d{4}-\d{4,}", cve) for pool in pools.values() for cve in pool)
    named = set()
    for key, platform in read_json("platforms.json").items():
        if platform["family"] in {"al2023", "rhel", "suse"}:
            rows = read_csv(f"{key}.csv")
            assert all("{n}" in row["release"] for row in rows), key
            named |= {row["cves"] for row in rows if row["cves"]}
    assert named == set(pools)


def test_hygiene_weighs_every_state_for_older_and_newest_patches() -> None:
    rows = read_csv("hygiene.csv")
    assert list(rows[0]) == ["hygiene", "patches", *STATES]
    profiles = {row["hygiene"] for row in rows}
    assert sorted((row["hygiene"], row["patches"]) for row in rows) == sorted(
        (p, w) for p in profiles for w in ("older", "newest")
    )
    assert profiles == set(read_json("nodes.json")["hygiene"])


def test_nodes_are_drawn_from_known_platforms_and_profiles() -> None:
    platforms = set(read_json("platforms.json"))
    profiles = {row["hygiene"] for row in read_csv("hygiene.csv")}
    assert set(read_json("nodes.json")["platforms"]) == platforms
    flags = {"install", "noreboot", "lost", "snake", "unscanned"}
    for node in read_csv("sample_nodes.csv"):
        assert node["os"] in platforms and node["hygiene"] in profiles
        assert set(node["flags"].split()) <= flags
