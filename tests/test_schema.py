"""The data contract: every quirk of real responses, pinned."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import warnings
from typing import Any

import pandas as pd
import pytest
from dateutil import tz

from patchframe._schema import (
    ACCOUNT_COLUMNS,
    ACCOUNT_DTYPES,
    ACCOUNT_STATES,
    NODE_COLUMNS,
    PATCH_COLUMNS,
    PATCH_DTYPES,
    SEVERITY_LEVELS,
    STATES,
    TAG_DTYPES,
    AccountRow,
    NodeKey,
    PatchColumns,
    UnknownStateWarning,
    accounts_worth_listing,
    build_accounts,
    build_errors,
    build_nodes,
    build_patches,
    build_tags,
    concat_patches,
    empty_accounts,
    empty_patches,
    empty_tags,
    normalise_state,
    validate_instance_id,
)
from patchframe.exceptions import ColumnsError, ValidationError

NODE = NodeKey("i-0123456789abcdef0", "123456789012", "eu-west-1")


def frame(*records: dict[str, Any], key: NodeKey = NODE) -> pd.DataFrame:
    cols = PatchColumns()
    cols.extend(records)
    return build_patches([(key, cols)])


def patch(**fields: Any) -> dict[str, Any]:
    base = {
        "KBId": "KB5034439",
        "Title": "2024-01 Security Update",
        "Classification": "SecurityUpdates",
        "Severity": "Critical",
        "State": "Installed",
        "InstalledTime": 1706745600,
    }
    return {**base, **fields}


def test_repeated_texts_are_held_once() -> None:
    """Pages decoded apart hold equal texts as distinct objects; the columns keep
    one of each (a fleet's titles repeat on every node)."""
    cols = PatchColumns(texts={})
    for _ in range(2):
        cols.extend(json.loads(json.dumps([patch(CVEIds="CVE-2024-1")])))
    for texts in (cols.kb_id, cols.title, cols.classification, cols.severity, cols.state):
        assert texts[0] is texts[1]
    assert cols.cve_ids[0] is cols.cve_ids[1]


def test_a_value_that_is_not_text_is_left_to_the_frame() -> None:
    cols = PatchColumns(texts={})
    cols.extend([patch(Title=None), patch(Title=1), patch(Title=1.0), patch(Title="Update")])
    assert [type(t) for t in cols.title] == [type(None), int, float, str]
    assert build_patches([(NODE, cols)])["title"].isna().tolist() == [True, False, False, False]


def test_nodes_sharing_a_table_hold_each_text_once() -> None:
    texts: dict[str, str] = {}
    first, second = PatchColumns(texts=texts), PatchColumns(texts=texts)
    first.extend(json.loads(json.dumps([patch()])))
    second.extend(json.loads(json.dumps([patch()])))
    assert first.title[0] is second.title[0]


def test_without_a_table_texts_are_kept_as_the_page_holds_them() -> None:
    page = json.loads(json.dumps([patch(), patch()]))
    cols = PatchColumns()
    cols.extend(page)
    assert cols.title[0] is page[0]["Title"] and cols.title[1] is page[1]["Title"]


def assert_contract(df: pd.DataFrame) -> None:
    assert tuple(df.columns[: len(PATCH_COLUMNS)]) == PATCH_COLUMNS
    for name, dtype in PATCH_DTYPES.items():
        if isinstance(dtype, str):
            assert isinstance(df[name].dtype, pd.CategoricalDtype), name
            assert not df[name].dtype.ordered, name
        elif isinstance(dtype, pd.CategoricalDtype):  # states nobody knew yet extend it
            assert df[name].dtype.ordered, name
            known = list(df[name].cat.categories[: len(dtype.categories)])
            assert known == list(dtype.categories), name
        else:
            assert df[name].dtype == dtype, name


CAMEL = [
    "Installed",
    "InstalledOther",
    "InstalledPendingReboot",
    "InstalledRejected",
    "Missing",
    "NotApplicable",
    "Failed",
    "AvailableSecurityUpdate",
]


@pytest.mark.parametrize(("camel", "model"), list(zip(CAMEL, STATES, strict=True)))
def test_both_state_spellings_give_the_model_enum(camel: str, model: str) -> None:
    df = frame(patch(State=camel), patch(State=model, KBId="KB2"))
    assert df["state"].tolist() == [model, model]
    assert list(df["state"].cat.categories) == list(STATES)
    assert df["state"].dtype.ordered


def test_unknown_state_is_kept_with_a_warning_never_nan() -> None:
    with pytest.warns(UnknownStateWarning, match="INSTALLED_SUPERSEDED"):
        df = frame(patch(State="InstalledSuperseded"), patch(State="Missing", KBId="KB2"))
    assert df["state"].tolist() == ["INSTALLED_SUPERSEDED", "MISSING"]
    assert df["state"].notna().all()
    assert list(df["state"].cat.categories) == [*STATES, "INSTALLED_SUPERSEDED"]


def test_known_states_raise_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame(*[patch(State=s, KBId=s) for s in CAMEL])


@pytest.mark.parametrize("state", ["InstalledOther", "NotApplicable"])
def test_empty_text_becomes_na(state: str) -> None:
    df = frame(patch(State=state, Title="", Classification="", Severity=""))
    assert df[["title", "classification", "severity"]].isna().all(axis=None)
    assert df.loc[0, "severity_level"] == "Unspecified"
    assert "" not in df["title"].cat.categories


def test_cve_ids_kept_as_sent_and_empty_is_na() -> None:
    df = frame(
        patch(CVEIds="CVE-2024-1086,CVE-2023-6817"),
        patch(KBId="KB2", CVEIds=""),
        patch(KBId="KB3"),
    )
    assert df["cve_ids"].iloc[0] == "CVE-2024-1086,CVE-2023-6817"
    assert df["cve_ids"].iloc[1:].isna().all()


UTC_VALUE = pd.Timestamp("2024-02-01T00:00:00.25Z")


@pytest.mark.parametrize(
    "value",
    [
        1706745600.25,
        dt.datetime(2024, 2, 1, 0, 0, 0, 250000, tzinfo=dt.UTC),
        dt.datetime(
            2024, 2, 1, 5, 45, 0, 250000, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=45))
        ),
        dt.datetime(2024, 1, 31, 16, 0, 0, 250000, tzinfo=tz.gettz("America/Los_Angeles")),
        "2024-02-01T00:00:00.250Z",
    ],
)
def test_installed_time_in_any_form_gives_the_same_utc_value(value: object) -> None:
    df = frame(patch(InstalledTime=value))
    assert df.loc[0, "installed_time"] == UTC_VALUE
    assert str(df["installed_time"].dtype) == "datetime64[ns, UTC]"


def test_int_and_float_epoch_seconds_agree() -> None:
    df = frame(patch(InstalledTime=1706745600), patch(KBId="KB2", InstalledTime=1706745600.0))
    assert df["installed_time"].nunique() == 1


@pytest.mark.parametrize(
    "sentinel",
    [
        0,
        0.0,
        -62135596800,
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        None,
    ],
)
def test_sentinels_become_nat(sentinel: object) -> None:
    df = frame(patch(InstalledTime=sentinel), patch(KBId="KB2"))
    assert pd.isna(df.loc[0, "installed_time"])
    assert df.loc[1, "installed_time"] == pd.Timestamp("2024-02-01", tz="UTC")


def test_year_one_in_local_zone_becomes_nat() -> None:
    local_min = dt.datetime(1, 1, 1, tzinfo=tz.tzlocal())
    assert pd.isna(frame(patch(InstalledTime=local_min)).loc[0, "installed_time"])


@pytest.mark.parametrize(
    ("word", "level"),
    [
        ("Critical", "Critical"),
        ("Important", "High"),
        ("High", "High"),
        ("Moderate", "Medium"),
        ("Medium", "Medium"),
        ("Low", "Low"),
        ("Unspecified", "Unspecified"),
        ("Required", "Critical"),
        ("Standard", "Medium"),
        ("Optional", "Low"),
        ("Extra", "Low"),
        ("critical", "Critical"),
        ("Whatever", "Unspecified"),
        ("", "Unspecified"),
    ],
)
def test_severity_level_maps_every_vendor_word(word: str, level: str) -> None:
    df = frame(patch(Severity=word))
    assert df.loc[0, "severity_level"] == level
    assert df.loc[0, "severity"] == (word or None) or pd.isna(df.loc[0, "severity"])
    assert list(df["severity_level"].cat.categories) == list(SEVERITY_LEVELS)
    assert df["severity_level"].dtype.ordered


def test_severity_level_orders_critical_highest() -> None:
    df = frame(patch(Severity="Low"), patch(KBId="KB2", Severity="Critical"))
    assert df["severity_level"].max() == "Critical"
    assert (df["severity_level"] >= "High").tolist() == [False, True]


def test_empty_result_has_every_column_and_dtype() -> None:
    empty = empty_patches()
    assert len(empty) == 0
    assert_contract(empty)
    assert_contract(frame())


def test_instance_account_region_filled_in() -> None:
    df = frame(patch(), patch(KBId="KB2"))
    assert df["instance_id"].tolist() == [NODE.instance_id] * 2
    assert df["account_id"].tolist() == ["123456789012"] * 2
    assert df["region"].tolist() == ["eu-west-1"] * 2
    assert_contract(df)


def test_unknown_account_is_na() -> None:
    df = frame(patch(), key=NodeKey("i-12345678"))
    assert df["account_id"].isna().all()
    assert_contract(df)


def test_concat_keeps_categories_and_unions_them() -> None:
    a = frame(patch(KBId="KB1"))
    with pytest.warns(UnknownStateWarning):
        b = frame(patch(KBId="KB2", State="Superseded"), key=NodeKey("i-87654321"))
    both = concat_patches([a, b])
    assert_contract(both)
    assert both["kb_id"].tolist() == ["KB1", "KB2"]
    assert both["state"].tolist() == ["INSTALLED", "SUPERSEDED"]
    assert both["instance_id"].tolist() == [NODE.instance_id, "i-87654321"]
    assert concat_patches([]).shape == (0, len(PATCH_COLUMNS))


def test_many_nodes_build_in_one_pass() -> None:
    parts = []
    for i in range(3):
        cols = PatchColumns()
        cols.extend([patch(KBId=f"KB{j}") for j in range(i + 1)])
        parts.append((NodeKey(f"i-0000000{i}"), cols))
    df = build_patches(parts, node_columns={"platform_name": ["Ubuntu", None, "Ubuntu"]})
    assert df["instance_id"].value_counts().sort_index().tolist() == [1, 2, 3]
    assert df["platform_name"].isna().sum() == 2
    assert isinstance(df["platform_name"].dtype, pd.CategoricalDtype)


def test_nodes_compliance_follows_aws_rules() -> None:
    keys = [NodeKey(f"i-0000000{i}") for i in range(4)]
    states = {
        keys[0]: {"InstalledCount": 3},
        keys[1]: {"InstalledCount": 3, "InstalledPendingRebootCount": 1},
        keys[2]: {"NotApplicableCount": 3, "InstalledOtherCount": 1},
    }
    nodes = build_nodes(keys, {}, states, {keys[0]: 3})
    assert nodes["compliance"].tolist() == [
        "COMPLIANT",
        "NON_COMPLIANT",
        "COMPLIANT",
        "NOT_SCANNED",
    ]
    assert nodes["installed"].tolist()[:3] == [3, 3, 0]
    assert pd.isna(nodes.loc[3, "installed"])
    assert nodes["patch_rows"].isna().tolist() == [False, True, True, True]


def test_nodes_carry_scan_age_to_the_load_time_and_reachable() -> None:
    keys = [NodeKey(f"i-0000000{i}") for i in range(4)]
    pings = ["Online", "ConnectionLost", "Inactive", None]
    infos = {k: {"PingStatus": p} for k, p in zip(keys, pings, strict=True) if p}
    ends = {keys[0]: 1718352000, keys[1]: 1718352000 - 14 * 86400, keys[2]: 1718352000}
    states = {k: {"OperationEndTime": end} for k, end in ends.items()}
    loaded = pd.Timestamp("2024-06-15T08:00:00Z")
    nodes = build_nodes(keys, infos, states, {}, loaded_at=loaded)
    assert nodes.columns.tolist() == list(NODE_COLUMNS)
    assert nodes["scan_age"].dtype == "timedelta64[ns]"
    assert nodes["scan_age"].dt.days.tolist()[:3] == [1, 15, 1]
    assert pd.isna(nodes.loc[3, "scan_age"])  # never scanned
    assert nodes["reachable"].tolist() == [True, False, False, True]
    assert nodes["compliance"].tolist()[:3] == ["COMPLIANT"] * 3  # AWS's verdict, untouched
    unknown = build_nodes(keys, infos, states, {})  # no load time: no age
    assert unknown["scan_age"].isna().all() and unknown["scan_age"].dtype == "timedelta64[ns]"


def test_tags_frame_keeps_keys_and_values_exactly() -> None:
    other = NodeKey("mi-0123456789abcdef0", None, None)
    tags = build_tags(
        [(NODE, "Team", "Zahlungsverkehr ü"), (NODE, "team", "lower"), (other, "Backup", "")]
    )
    assert tags.columns.tolist() == list(TAG_DTYPES)
    assert all(isinstance(t, pd.CategoricalDtype) for t in tags.dtypes)
    assert tags["key"].tolist() == ["Team", "team", "Backup"]
    assert tags["value"].tolist() == ["Zahlungsverkehr ü", "lower", ""]  # "" is a value
    assert tags["account_id"].isna().tolist() == [False, False, True]
    empty = empty_tags()
    assert empty.empty and empty.columns.tolist() == list(TAG_DTYPES)
    assert all(isinstance(t, pd.CategoricalDtype) for t in empty.dtypes)


def test_errors_frame_has_its_columns_even_when_empty() -> None:
    assert build_errors([]).dtypes["attempts"] == "Int64"
    row = {
        "account_id": "1",
        "region": "r",
        "instance_id": None,
        "operation": "Op",
        "error_code": "E",
        "message": "m",
        "attempts": 3,
    }
    assert build_errors([row]).loc[0, "attempts"] == 3


def test_frame_is_identical_under_any_local_time_zone() -> None:
    """boto3 parses timestamps into the machine's zone; the frame must not care."""
    script = (
        "import datetime as dt, pickle, sys\n"
        "from dateutil import tz\n"
        "from patchframe._schema import NodeKey, PatchColumns, build_patches\n"
        "c = PatchColumns()\n"
        "c.extend([{'KBId': 'a', 'State': 'Installed', 'InstalledTime': 1706745600.5},\n"
        "          {'KBId': 'b', 'State': 'Installed',\n"
        "           'InstalledTime': dt.datetime.fromtimestamp(1706745600.5, tz.tzlocal())},\n"
        "          {'KBId': 'c', 'State': 'Missing',\n"
        "           'InstalledTime': dt.datetime.fromtimestamp(0, tz.tzlocal())}])\n"
        "sys.stdout.buffer.write(pickle.dumps(build_patches([(NodeKey('i-12345678'), c)])))\n"
    )
    outputs = []
    for zone in ("UTC", "Asia/Kathmandu", "America/St_Johns"):
        env = {**os.environ, "TZ": zone}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, check=True
        )
        outputs.append(pd.read_pickle(io.BytesIO(done.stdout)))
    for other in outputs[1:]:
        pd.testing.assert_frame_equal(outputs[0], other)
    assert outputs[0]["installed_time"].iloc[:2].nunique() == 1
    assert pd.isna(outputs[0]["installed_time"].iloc[2])


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("Installed", "INSTALLED"),
        ("InstalledOther", "INSTALLED_OTHER"),
        ("AvailableSecurityUpdate", "AVAILABLE_SECURITY_UPDATE"),
        ("NOT_APPLICABLE", "NOT_APPLICABLE"),
        ("installed_rejected", "INSTALLED_REJECTED"),
    ],
)
def test_normalise_state(spelling: str, expected: str) -> None:
    assert normalise_state(spelling) == expected


@pytest.mark.parametrize(
    "instance_id",
    [
        "i-" + "\u0661" * 17,  # Arabic-Indic digits: \w in Unicode, not in AWS's pattern
        "i-" + "\u0661" * 8,
        "mi-" + "\uff10" * 17,  # fullwidth digits
        "i-0123456789abcdefé",
    ],
)
def test_instance_ids_are_matched_in_ascii_as_aws_does(instance_id: str) -> None:
    with pytest.raises(ValidationError, match="is not a managed node id"):
        validate_instance_id(instance_id)
    assert validate_instance_id("i-0123456789abcdef0") == "i-0123456789abcdef0"


def test_concat_patches_names_the_position_of_a_frame_that_is_not_a_patches_frame(
    sample_patches: pd.DataFrame,
) -> None:
    with pytest.raises(ColumnsError, match=r"frames\[1\] lacks column\(s\) 'account_id'"):
        concat_patches([sample_patches, pd.DataFrame()])
    with pytest.raises(ValidationError, match=r"frames\[2\] is a NoneType.*DataFrame"):
        concat_patches([sample_patches, sample_patches, None])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match=r"frames\[0\] is a list"):
        concat_patches([[]])  # type: ignore[list-item]


# --- accounts ---------------------------------------------------------------------

PROD, DEV, OLD, NEW = "111111111111", "222222222222", "333333333333", "444444444444"


def account_nodes() -> pd.DataFrame:
    """Three nodes of PROD (two non-compliant), one of DEV (never scanned), named."""
    keys = [NodeKey(f"i-0000000{i}", PROD, "eu-west-1") for i in range(3)]
    keys.append(NodeKey("i-00000009", DEV, "us-east-1"))
    states = {keys[0]: {"MissingCount": 1}, keys[1]: {"FailedCount": 2}, keys[2]: {}}
    return build_nodes(keys, {}, states, {}, account_names={PROD: "prod-payments", DEV: None})


def test_nodes_carry_account_names_right_after_account_ids() -> None:
    nodes = account_nodes()
    assert nodes.columns.tolist()[:3] == ["account_id", "account_name", "region"]
    assert list(NODE_COLUMNS[:2]) == ["account_id", "account_name"]
    assert isinstance(nodes["account_name"].dtype, pd.CategoricalDtype)
    assert nodes["account_name"].tolist()[:3] == ["prod-payments"] * 3
    assert pd.isna(nodes.loc[3, "account_name"])  # no name given for DEV
    keys = [NodeKey("i-00000001", PROD), NodeKey("i-00000002")]  # an unknown account
    unnamed = build_nodes(keys, {}, {}, {})
    assert unnamed["account_name"].isna().all()
    assert isinstance(unnamed["account_name"].dtype, pd.CategoricalDtype)
    named = build_nodes(keys, {}, {}, {}, account_names={PROD: "prod"})
    assert named["account_name"].isna().tolist() == [False, True]


def test_accounts_frame_counts_each_accounts_nodes_in_the_order_given() -> None:
    rows = [
        AccountRow(DEV, "dev", "ACTIVE", ("us-east-1",), None),
        AccountRow(PROD, "prod-payments", "ACTIVE", ("us-east-1", "eu-west-1", "eu-west-1"), None),
        AccountRow(NEW, "", "PENDING_ACTIVATION", ("eu-west-1",), None),  # loaded, no nodes
        AccountRow(OLD, "old", "SUSPENDED", (), "AccessDenied"),
        AccountRow("555555555555", None, None, (), None, loaded=False),  # listed, never tried
    ]
    accounts = build_accounts(rows, account_nodes())
    assert accounts.columns.tolist() == list(ACCOUNT_COLUMNS)
    assert accounts["account_id"].tolist()[:4] == [DEV, PROD, NEW, OLD]
    assert accounts["loaded"].tolist() == [True, True, True, False, False]
    assert accounts["nodes"].tolist()[:3] == [1, 3, 0]
    assert accounts["non_compliant_nodes"].tolist()[:3] == [0, 2, 0]
    assert accounts[["nodes", "non_compliant_nodes"]].iloc[3:].isna().all().all()
    assert accounts["regions"].tolist() == [
        "us-east-1",
        "eu-west-1, us-east-1",
        "eu-west-1",
        "",
        "",
    ]
    assert accounts["error_code"].isna().tolist() == [True, True, True, False, True]
    assert accounts["account_name"].isna().tolist() == [False, False, True, False, True]
    assert pd.isna(accounts.loc[4, "state"])
    for frame in (accounts, empty_accounts()):
        for name, dtype in ACCOUNT_DTYPES.items():
            if isinstance(dtype, pd.CategoricalDtype):
                assert list(frame[name].cat.categories) == list(ACCOUNT_STATES), name
            else:
                assert frame[name].dtype == dtype, name
    assert empty_accounts().empty and empty_accounts().columns.tolist() == list(ACCOUNT_COLUMNS)


def test_an_account_state_nobody_knows_yet_is_kept() -> None:
    rows = [
        AccountRow(PROD, "prod", "ACTIVE", (), None),
        AccountRow(DEV, "dev", "RETIRED", (), None),
    ]
    accounts = build_accounts(rows, account_nodes())
    assert accounts["state"].tolist() == ["ACTIVE", "RETIRED"]
    assert list(accounts["state"].cat.categories) == [*ACCOUNT_STATES, "RETIRED"]


def test_accounts_worth_listing_when_several_or_one_failed() -> None:
    one = AccountRow(PROD, "prod", "ACTIVE", ("eu-west-1",), None)
    nodes = account_nodes()
    assert not accounts_worth_listing(build_accounts([one], nodes))
    assert not accounts_worth_listing(empty_accounts())
    assert accounts_worth_listing(build_accounts([one, one._replace(account_id=DEV)], nodes))
    assert accounts_worth_listing(build_accounts([one._replace(loaded=False)], nodes))


def test_build_accounts_refuses_what_is_not_an_account_list() -> None:
    one = AccountRow(PROD, "prod", "ACTIVE", (), None)
    with pytest.raises(ValidationError, match=r"rows\[1\] is a tuple, but an AccountRow"):
        build_accounts([one, (DEV, "dev", None, (), None)], account_nodes())  # type: ignore[list-item]
    with pytest.raises(ValidationError, match=rf"account\(s\) \['{PROD}'\] listed twice"):
        build_accounts([one, one], account_nodes())
    with pytest.raises(ColumnsError, match=r"lacks column.*compliance"):
        build_accounts([one], account_nodes().drop(columns="compliance"))
