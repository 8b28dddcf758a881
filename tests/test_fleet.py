"""The Fleet: tags as columns, scan ages measured to a chosen time, the figures."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import patchframe as pf
from patchframe._schema import ACCOUNT_COLUMNS, AccountRow, NodeKey, build_accounts, build_tags
from patchframe.exceptions import ValidationError
from patchframe.sandbox.sample import WireFleet

SAMPLE_CLOCK = "2024-06-14T08:00Z"  # the sample's last scans are just before it


def test_with_tags_adds_one_category_column_per_key_to_nodes_and_patches(
    sample_fleet_frames: pf.Fleet, wire_fleet: WireFleet
) -> None:
    tagged = sample_fleet_frames.with_tags("Team", "Patch Group")
    nodes, patches = tagged.nodes, tagged.patches
    for column in ("tag:Team", "tag:Patch Group"):
        assert isinstance(nodes[column].dtype, pd.CategoricalDtype)
        assert isinstance(patches[column].dtype, pd.CategoricalDtype)
    expected = [wire_fleet.tags[i].get("Patch Group") for i in nodes["instance_id"]]
    got = nodes["tag:Patch Group"].astype(object).where(nodes["tag:Patch Group"].notna(), None)
    assert got.tolist() == expected and None in expected  # NA where a node lacks the tag
    teams = dict(zip(nodes["instance_id"], nodes["tag:Team"], strict=True))
    assert (patches["tag:Team"] == patches["instance_id"].map(teams)).all()
    # The fleet it came from is untouched.
    assert "tag:Team" not in sample_fleet_frames.nodes.columns
    assert "tag:Team" not in sample_fleet_frames.patches.columns


def odd_fleet(fleet: pf.Fleet) -> pf.Fleet:
    """The sample with tags in odd spellings: case, spaces, Unicode, an empty value."""
    first, second = (
        NodeKey(str(r.instance_id), r.account_id, r.region)
        for r in fleet.nodes.head(2).itertuples()
    )
    rows = [
        (first, "Équipe", "Zahlungsverkehr ü"),
        (first, "équipe", "lower"),
        (second, "Équipe", ""),
        (second, "cost center", "42"),
    ]
    return dataclasses.replace(fleet, tags=build_tags(rows))


def test_with_tags_keeps_case_unicode_and_empty_values(sample_fleet_frames: pf.Fleet) -> None:
    tagged = odd_fleet(sample_fleet_frames).with_tags("Équipe", "équipe", "cost center")
    head = tagged.nodes.head(3)
    assert head["tag:Équipe"].tolist()[:2] == ["Zahlungsverkehr ü", ""]
    assert head["tag:équipe"].tolist()[0] == "lower" and pd.isna(head["tag:équipe"].iloc[1])
    assert pd.isna(head["tag:cost center"].iloc[0]) and head["tag:cost center"].iloc[1] == "42"
    assert head["tag:Équipe"].isna().tolist() == [False, False, True]


def test_with_tags_refuses_a_clash_an_unknown_key_and_no_key(
    sample_fleet_frames: pf.Fleet,
) -> None:
    tagged = sample_fleet_frames.with_tags("Team")
    with pytest.raises(ValidationError, match="already has a column 'tag:Team'"):
        tagged.with_tags("Team")
    with pytest.raises(ValidationError, match="did you mean 'Team'"):
        sample_fleet_frames.with_tags("team")
    with pytest.raises(ValidationError, match="no tag key given"):
        sample_fleet_frames.with_tags()


def test_a_fleet_without_tags_gets_all_na_columns(sample_fleet_frames: pf.Fleet) -> None:
    bare = dataclasses.replace(sample_fleet_frames, tags=build_tags([]))
    tagged = bare.with_tags("Team")
    assert tagged.nodes["tag:Team"].isna().all() and tagged.patches["tag:Team"].isna().all()


def test_as_of_measures_scan_ages_to_the_time_given(sample_fleet_frames: pf.Fleet) -> None:
    fleet = sample_fleet_frames.as_of(SAMPLE_CLOCK)
    clock = pd.Timestamp(SAMPLE_CLOCK)
    assert fleet.loaded_at == clock
    ages = clock - sample_fleet_frames.nodes["operation_end_time"]
    pd.testing.assert_series_equal(fleet.nodes["scan_age"], ages, check_names=False)
    assert sample_fleet_frames.nodes["scan_age"].min() > pd.Timedelta(days=365)  # unchanged
    pd.testing.assert_frame_equal(fleet.patches, sample_fleet_frames.patches)


def test_figures_count_stale_and_unreachable_nodes(sample_fleet_frames: pf.Fleet) -> None:
    at_clock = sample_fleet_frames.as_of(SAMPLE_CLOCK).figures()
    assert (at_clock["stale_nodes"], at_clock["unreachable_nodes"]) == (2, 1)
    assert sample_fleet_frames.as_of(SAMPLE_CLOCK).figures(stale_after_days=20)["stale_nodes"] == 1
    now = sample_fleet_frames.figures()  # loaded today: every 2024 scan is stale
    assert now["stale_nodes"] == 13
    old = dataclasses.replace(
        sample_fleet_frames,
        nodes=sample_fleet_frames.nodes.drop(columns=["scan_age", "reachable"]),
    )
    assert (old.figures()["stale_nodes"], old.figures()["unreachable_nodes"]) == (0, 0)


def with_accounts(fleet: pf.Fleet) -> pf.Fleet:
    """The sample as part of a load across an organization: its account and one that failed."""
    rows = [
        AccountRow("123456789012", "prod-payments", "ACTIVE", ("eu-west-1",), None),
        AccountRow("444455556666", "dev", "SUSPENDED", (), "AccessDenied"),
    ]
    return dataclasses.replace(fleet, accounts=build_accounts(rows, fleet.nodes))


def test_a_fleet_keeps_its_accounts_through_every_method(sample_fleet_frames: pf.Fleet) -> None:
    fleet = with_accounts(sample_fleet_frames)
    for derived in (fleet.with_tags("Team"), fleet.as_of(SAMPLE_CLOCK)):
        assert derived.accounts is fleet.accounts
    assert fleet.figures()["accounts"] == 2  # the failed account counts, though it has no nodes
    assert "13 nodes in 2 accounts" in repr(fleet)


def test_accounts_is_the_last_field_and_empty_by_default(sample_fleet_frames: pf.Fleet) -> None:
    s = sample_fleet_frames
    positional = pf.Fleet(s.patches, s.nodes, s.errors, s.tags, s.loaded_at)
    assert positional.loaded_at == s.loaded_at and positional.tags is s.tags
    assert positional.accounts.columns.tolist() == list(ACCOUNT_COLUMNS)
    assert positional.accounts.empty
    assert positional.figures()["accounts"] == 1  # from the nodes, as before
    assert [f.name for f in dataclasses.fields(pf.Fleet)][-1] == "accounts"
