"""Organization-wide loading: listing, assumed roles, expiring credentials, per-account failures.

Every test here runs over the emulator's real HTTP: Organizations, STS and EC2
answer at the same endpoint as SSM, and temporary credentials are tied to the
account whose role issued them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from concurrency import AtOnce

import patchframe as pf
import patchframe.aws._fleet
from patchframe.aws._organization import list_members, member_session
from patchframe.sandbox import Emulator, synthetic_organization
from patchframe.sandbox.organization import WireOrganization

ROLE = "PatchframeReadOnly"
EU, US = "eu-west-1", "us-east-1"


def changed(org: WireOrganization, index: int, **changes: Any) -> WireOrganization:
    """The organization with one account changed (state, deny_role, disabled_regions)."""
    accounts = list(org.accounts)
    account = dataclasses.replace(accounts[index], **changes)
    if "disabled_regions" in changes:
        account = dataclasses.replace(
            account,
            fleets=tuple(f for f in account.fleets if f.region not in changes["disabled_regions"]),
        )
    accounts[index] = account
    return dataclasses.replace(org, accounts=tuple(accounts))


def truth(org: WireOrganization, accounts: list[int]) -> Counter[tuple[str, str, str, str]]:
    """Every patch row of the given accounts, as (account, region, node, KB)."""
    return Counter(
        (fleet.account_id, fleet.region, node, patch["KBId"])
        for index in accounts
        for fleet in org.accounts[index].fleets
        for node, rows in fleet.patches.items()
        for patch in rows
    )


def got(fleet: pf.Fleet) -> Counter[tuple[str, str, str, str]]:
    columns = ("account_id", "region", "instance_id", "kb_id")
    return Counter(zip(*(fleet.patches[c].astype(str) for c in columns), strict=True))


def error_rows(fleet: pf.Fleet) -> list[tuple[object, ...]]:
    columns = ["account_id", "region", "operation", "error_code"]
    frame = fleet.errors[columns].astype(object).where(fleet.errors[columns].notna(), None)
    return [tuple(row) for row in frame.itertuples(index=False)]


@pytest.fixture(scope="module")
def five() -> WireOrganization:
    """Five accounts, two regions: 1 SUSPENDED, 2 denies the role, 3 has us-east-1 disabled."""
    org = synthetic_organization(5, nodes_per_account=6, regions=(EU, US), seed=3)
    org = changed(org, 1, state="SUSPENDED")
    org = changed(org, 2, deny_role=True)
    return changed(org, 3, disabled_regions=(US,))


@pytest.fixture
def served(five: WireOrganization) -> Iterator[Emulator]:
    with Emulator(organization=five, latency=0.02) as emulator:
        yield emulator


# --- the organization, as given ----------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"role_name": "arn:aws:iam::111122223333:role/PatchframeReadOnly"}, "not an ARN"),
        ({"role_name": ROLE, "accounts": ["11112222333"]}, "'11112222333' is not a 12-digit"),
        ({"role_name": ROLE, "accounts": "111122223333"}, "expected a list"),
        ({"role_name": ROLE, "accounts": []}, "at least one account"),
        ({"role_name": ROLE, "units": ["ou-12"]}, "'ou-12' is not a unit id"),
        ({"role_name": ROLE, "units": ["o-abcdefghij"]}, "is not a unit id"),
        ({"role_name": ROLE, "skip": ["1"]}, "skip: '1'"),
        (
            {"role_name": ROLE, "accounts": ["111122223333"], "units": ["r-ab12"]},
            "accounts or units, not both",
        ),
        ({"role_name": ROLE, "external_id": "x"}, "external_id 'x'"),
        ({"role_name": ROLE, "session_name": "a b"}, "session_name 'a b'"),
        ({"role_name": ROLE, "session": "default"}, "expected a boto3.Session"),
    ],
)
def test_a_bad_organization_is_refused_when_made(arguments: dict[str, Any], named: str) -> None:
    with pytest.raises(pf.ValidationError, match=named.replace("(", r"\(")):
        pf.Organization(**arguments)


def test_an_organization_normalises_its_lists() -> None:
    org = pf.Organization(ROLE, accounts=["111122223333", "111122223333"], skip=["444455556666"])
    assert org.accounts == ("111122223333",)
    assert org.skip == ("444455556666",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        org.role_name = "Other"  # type: ignore[misc]


def test_organization_excludes_the_other_ways_of_naming_accounts(served: Emulator) -> None:
    org = pf.Organization(ROLE, session=served.session())
    for other in ({"client": served.client()}, {"profiles": ["a"]}, {"boto3_sessions": []}):
        with pytest.raises(pf.ValidationError, match="organization= loads"):
            pf.load_fleet(organization=org, progress=False, **other)  # type: ignore[arg-type]
    assert served.stats.total == 0  # refused before any call


# --- listing -------------------------------------------------------------------------


def test_every_page_of_accounts_is_listed_once() -> None:
    org = synthetic_organization(23, nodes_per_account=1, seed=1)
    with Emulator(organization=org) as emulator:
        members = list_members(pf.Organization(ROLE, session=emulator.session()))
        pages = emulator.stats.requests["ListAccounts"]
    assert [m.account_id for m in members] == [a.account_id for a in org.accounts]
    assert pages == 2  # 23 accounts in pages of 20, the most the service allows
    assert [m.caller for m in members] == [True] + [False] * 22


def test_state_is_read_and_status_where_state_is_absent(five: WireOrganization) -> None:
    for legacy in (False, True):
        org = dataclasses.replace(five, legacy_status=legacy)
        with Emulator(organization=org) as emulator:
            members = list_members(pf.Organization(ROLE, session=emulator.session()))
        assert [m.state for m in members] == ["ACTIVE", "SUSPENDED", "ACTIVE", "ACTIVE", "ACTIVE"]
        assert [m.loadable for m in members] == [True, False, True, True, True]


def test_units_are_walked_recursively(five: WireOrganization) -> None:
    parents = {u.unit_id: u.parent_id for u in five.units}

    def under(parent: str, unit: str) -> bool:
        while unit != parent and unit in parents:
            unit = parents[unit]
        return unit == parent

    top = next(
        u for u in five.units if u.parent_id == five.root_id and u.unit_id in parents.values()
    )
    expected = [a.account_id for a in five.accounts if under(top.unit_id, a.parent_id)]
    nested = [
        a for a in five.accounts if a.parent_id != top.unit_id and under(top.unit_id, a.parent_id)
    ]
    assert nested, "the sample organization has an account in a nested unit"
    with Emulator(organization=five) as emulator:
        members = list_members(
            pf.Organization(ROLE, units=[top.unit_id], session=emulator.session())
        )
    assert sorted(m.account_id for m in members) == sorted(expected)


def test_a_member_account_may_not_list_the_organization(five: WireOrganization) -> None:
    with Emulator(organization=five) as emulator:
        session = emulator.session(five.accounts[2].account_id)
        with pytest.raises(pf.OrganizationError, match="organizations:ListAccounts") as raised:
            pf.load_fleet(organization=pf.Organization(ROLE, session=session), progress=False)
        assert emulator.stats.requests.get("DescribeInstanceInformation", 0) == 0
    assert raised.value.code == "AccessDeniedException"


def test_an_account_outside_any_organization_says_so() -> None:
    with Emulator() as emulator:
        session = emulator.session()
        with pytest.raises(pf.OrganizationError, match="not in an AWS Organization"):
            pf.load_fleet(organization=pf.Organization(ROLE, session=session), progress=False)
        assert emulator.stats.requests.get("DescribeInstanceInformation", 0) == 0


# --- credentials -------------------------------------------------------------------------


def member_ssm(emulator: Emulator, account_id: str) -> Any:
    """An SSM client in a member account, through the role, from the management account."""
    source = emulator.session()
    session = member_session(source, source.client("sts"), account_id, pf.Organization(ROLE))
    return session.client("ssm", region_name=EU)


def test_member_sessions_leave_the_source_s_model_search_paths_as_they_were() -> None:
    """Member sessions read models through the source's loader; making one (no request
    is sent) must not add a search path to it, or every load would lengthen the list."""
    core = botocore.session.Session()
    source = boto3.Session(
        botocore_session=core, aws_access_key_id="x", aws_secret_access_key="x", region_name=EU
    )
    paths = list(core.get_component("data_loader").search_paths)
    sts = source.client("sts")
    for account in ("111122223333", "444455556666", "777788889999"):
        member_session(source, sts, account, pf.Organization(ROLE)).client("ssm")
    assert core.get_component("data_loader").search_paths == paths


def test_member_sessions_have_botocore_s_handlers_each_their_own() -> None:
    """Each member session has botocore's handlers (``generate_presigned_url`` is added
    to every client by one), and a handler registered on one is not another's."""
    source = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=EU)
    sts = source.client("sts")
    one, two = (
        member_session(source, sts, account, pf.Organization(ROLE))
        for account in ("111122223333", "444455556666")
    )
    heard: list[str] = []
    one.events.register("patchframe-test", lambda **_: heard.append("one"))
    two.events.emit("patchframe-test")
    one.events.emit("patchframe-test")
    assert heard == ["one"]
    assert hasattr(two.client("ssm"), "generate_presigned_url")


def test_a_member_session_speaks_for_its_account(five: WireOrganization) -> None:
    member = five.accounts[4]
    with Emulator(organization=five) as emulator:
        listed = member_ssm(emulator, member.account_id).describe_instance_information()
        assert emulator.stats.requests["AssumeRole"] == 1
    ids = {n["InstanceId"] for n in listed["InstanceInformationList"]}
    assert ids == set(next(f for f in member.fleets if f.region == EU).patches)


def test_expired_credentials_are_assumed_again_and_the_request_retried_once(
    five: WireOrganization,
) -> None:
    member = five.accounts[4].account_id
    with Emulator(organization=five, credential_lifetime=0.3) as emulator:
        ssm = member_ssm(emulator, member)
        ssm.describe_instance_information()
        threading.Event().wait(0.5)
        ssm.describe_instance_information()  # expired: assumed again, retried, answered
        assert emulator.stats.requests["AssumeRole"] == 2
        emulator.credential_lifetime = 0.0  # every token is expired at once: one retry only
        with pytest.raises(ClientError, match="ExpiredTokenException"):
            ssm.describe_instance_information()
        assert emulator.stats.requests["AssumeRole"] == 3


def test_a_request_refused_after_another_renewed_the_role_does_not_assume_it_again(
    five: WireOrganization,
) -> None:
    member = five.accounts[4].account_id
    with Emulator(organization=five, credential_lifetime=1.0) as emulator:
        ssm = member_ssm(emulator, member)
        ssm.describe_instance_information()
        threading.Event().wait(1.2)  # the credentials have expired at the emulator

        def hold_late_one(**_: Any) -> None:  # before-send: after signing, before sending
            if threading.current_thread().name == "late":
                threading.Event().wait(0.3)

        ssm.meta.events.register("before-send.ssm", hold_late_one)
        # Both sign with the expired credentials; "early" is refused, assumes the role
        # again and retries; "late" is refused after that, and retries with the new ones.
        threads = [
            threading.Thread(target=ssm.describe_instance_information, name=name)
            for name in ("late", "early")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = emulator.stats
    assert stats.expired_credentials == 2
    assert stats.requests["AssumeRole"] == 2


def test_credentials_are_refreshed_before_they_expire() -> None:
    """botocore's refreshable credentials: near their expiry, the role is assumed again."""
    sts = boto3.client("sts", region_name=EU, aws_access_key_id="a", aws_secret_access_key="b")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with Stubber(sts) as stub:
        for key, expiry in (("ASIAFIRST", soon), ("ASIASECOND", later)):
            stub.add_response(
                "assume_role",
                {
                    "Credentials": {
                        "AccessKeyId": key + "0" * (16 - len(key) + 4),
                        "SecretAccessKey": "s",
                        "SessionToken": "t",
                        "Expiration": expiry,
                    }
                },
            )
        source = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name=EU)
        session = member_session(source, sts, "111122223333", pf.Organization(ROLE))
        credentials = session.get_credentials()
        assert credentials is not None
        first = credentials.get_frozen_credentials().access_key
        second = credentials.get_frozen_credentials().access_key  # 5 minutes left: refreshed
        third = credentials.get_frozen_credentials().access_key  # an hour left: kept
        stub.assert_no_pending_responses()
    assert (first[:9], second[:10], third[:10]) == ("ASIAFIRST", "ASIASECOND", "ASIASECOND")


# --- the whole load ----------------------------------------------------------------------


def test_five_accounts_each_fail_on_their_own(five: WireOrganization) -> None:
    ids = [a.account_id for a in five.accounts]
    with Emulator(organization=five, latency=0.05, credential_lifetime=0.4) as emulator:
        org = pf.Organization(ROLE, session=emulator.session())
        fleet = pf.load_fleet(organization=org, regions=[EU, US], max_workers=4, progress=False)
        stats = emulator.stats
    # Accounts 0 (its own credentials), 3 (its enabled region) and 4 load whole.
    assert got(fleet) == truth(five, [0, 3, 4])
    assert sorted(error_rows(fleet)) == sorted(
        [
            (ids[2], None, "AssumeRole", "AccessDenied"),
            (ids[3], US, "DescribeInstanceInformation", "UnrecognizedClientException"),
        ]
    )
    assert stats.expired_credentials > 0  # the load outlived the credentials, lost nothing
    accounts = fleet.accounts.set_index("account_id")
    assert accounts.index.tolist() == ids
    assert accounts["state"].astype(str).tolist() == [
        "ACTIVE",
        "SUSPENDED",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
    ]
    assert accounts["loaded"].tolist() == [True, False, False, True, True]
    assert accounts["regions"].tolist() == [f"{EU}, {US}", "", "", EU, f"{EU}, {US}"]
    assert accounts.loc[ids[2], "error_code"] == "AccessDenied"
    assert accounts["account_name"].astype(str).tolist() == [a.name for a in five.accounts]
    loaded_nodes = fleet.nodes.groupby("account_id", observed=True).size()
    assert accounts.loc[loaded_nodes.index, "nodes"].tolist() == loaded_nodes.tolist()
    names = dict(zip(ids, (a.name for a in five.accounts), strict=True))
    assert (fleet.nodes["account_name"].astype(str) == fleet.nodes["account_id"].map(names)).all()


def test_enabled_regions_skip_the_disabled_one(five: WireOrganization) -> None:
    with Emulator(organization=five) as emulator:
        org = pf.Organization(ROLE, session=emulator.session())
        fleet = pf.load_fleet(organization=org, regions="enabled", progress=False)
        asked = emulator.stats.requests["DescribeRegions"]
    assert got(fleet) == truth(five, [0, 3, 4])
    assert [row[2] for row in error_rows(fleet)] == ["AssumeRole"]
    assert asked == 3  # once per loadable account, with its own credentials


def test_units_skip_and_explicit_accounts(five: WireOrganization) -> None:
    ids = [a.account_id for a in five.accounts]
    with Emulator(organization=five) as emulator:
        session = emulator.session()
        skipped = pf.load_fleet(
            organization=pf.Organization(ROLE, skip=[ids[0], ids[2]], session=session),
            regions=[EU],
            progress=False,
            tags=False,
        )
        named = pf.load_fleet(
            organization=pf.Organization(ROLE, accounts=[ids[4], "999999999999"], session=session),
            regions=[EU],
            progress=False,
            tags=False,
        )
        root = pf.load_fleet(
            organization=pf.Organization(ROLE, units=[five.root_id], session=session),
            regions=[EU],
            progress=False,
            tags=False,
        )
    eu_only = Counter({k: n for k, n in truth(five, [0, 3, 4]).items() if k[1] == EU})
    assert got(skipped) == Counter({k: n for k, n in eu_only.items() if k[0] != ids[0]})
    assert skipped.errors.empty  # the account that denies the role was skipped
    assert skipped.accounts.set_index("account_id")["loaded"].to_dict() == {
        ids[0]: False,
        ids[1]: False,
        ids[2]: False,
        ids[3]: True,
        ids[4]: True,
    }
    assert got(named) == Counter({k: n for k, n in eu_only.items() if k[0] == ids[4]})
    assert error_rows(named) == [
        ("999999999999", None, "ListAccounts", "AccountNotFoundException")
    ]
    assert named.accounts["account_id"].tolist() == [ids[4], "999999999999"]
    assert got(root) == eu_only


def test_errors_raise_raises_the_first_failure(five: WireOrganization) -> None:
    with Emulator(organization=five) as emulator:
        org = pf.Organization(ROLE, session=emulator.session())
        with pytest.raises(pf.AWSRequestError, match="AssumeRole") as raised:
            pf.load_fleet(organization=org, regions=[EU], errors="raise", progress=False)
    assert raised.value.code == "AccessDenied"


def test_a_fleet_without_an_organization_has_accounts_too(sample_fleet_frames: pf.Fleet) -> None:
    accounts = sample_fleet_frames.accounts
    assert accounts["account_id"].tolist() == ["123456789012"]
    assert accounts["account_name"].isna().all()
    assert accounts["loaded"].tolist() == [True]
    assert accounts["nodes"].tolist() == [len(sample_fleet_frames.nodes)]


def test_the_progress_bar_counts_accounts_done(
    five: WireOrganization, capsys: pytest.CaptureFixture[str]
) -> None:
    with Emulator(organization=five) as emulator:
        org = pf.Organization(ROLE, session=emulator.session())
        pf.load_fleet(organization=org, regions=[EU], progress=True, tags=False)
    err = capsys.readouterr().err
    # Accounts 0, 2, 3 and 4 are tried (1 is suspended); 2 fails, done from the start.
    assert "accounts=4/4" in err


def test_an_account_lets_its_clients_go_once_its_work_is_done() -> None:
    """A load of hundreds of account x region pairs holds the clients of those still
    loading, not all of them until it ends."""
    org = synthetic_organization(4, nodes_per_account=3, regions=(EU,), seed=5)
    first: list[weakref.ref[Any]] = []
    first_alive: list[bool] = []

    def keep(request_signer: Any, **_: Any) -> None:
        # A client's request signer lives exactly as long as the client does.
        if not first:
            first.append(weakref.ref(request_signer))

    def watch(**_: Any) -> None:
        gc.collect()
        first_alive.append(first[0]() is not None)

    with Emulator(organization=org) as emulator:
        sessions = [emulator.session(a.account_id, region=EU) for a in org.accounts]
        sessions[0].events.register("before-sign.ssm", keep)
        sessions[-1].events.register("before-sign.ssm", watch)
        # One worker takes the tasks in the order they are queued: the first
        # account's are all done before the last account's last request.
        fleet = pf.load_fleet(boto3_sessions=sessions, max_workers=1, progress=False)
    assert fleet.errors.empty
    assert fleet.accounts["nodes"].tolist() == [3, 3, 3, 3]
    assert first and first_alive and not first_alive[-1]


def test_accounts_open_a_few_at_a_time() -> None:
    """An account's session and clients cost CPU: 16 workers open 8 accounts at once and
    take node work in between, rather than all stalling on openings together."""
    org = synthetic_organization(14, nodes_per_account=2, regions=(EU,), seed=6)
    in_flight = AtOnce()
    with Emulator(organization=org, latency=0.1) as emulator:
        source = emulator.session()
        source.events.register("before-send.sts.AssumeRole", in_flight.enter)
        source.events.register("after-call.sts.AssumeRole", in_flight.leave)
        organization = pf.Organization(ROLE, session=source)
        fleet = pf.load_fleet(
            organization=organization, regions=[EU], max_workers=16, progress=False, tags=False
        )
    assert fleet.errors.empty and fleet.accounts["loaded"].all()
    assert 2 <= in_flight.most <= 8  # of 13 members to assume a role in


def test_the_source_s_clients_are_made_while_the_organization_is_listed() -> None:
    """A client costs CPU; listing the organization is a round trip. The source
    session's clients, whose service models the member sessions share, are made
    while the listing is in flight, not after its answer."""
    org = synthetic_organization(2, nodes_per_account=1, regions=(EU,), seed=8)
    steps: list[str] = []
    with Emulator(organization=org, latency=0.2) as emulator:
        source = emulator.session()
        source.events.register("creating-client-class.ssm", lambda **_: steps.append("ssm"))
        source.events.register(
            "after-call.organizations.ListAccounts", lambda **_: steps.append("listed")
        )
        fleet = pf.load_fleet(
            organization=pf.Organization(ROLE, session=source), regions=[EU], progress=False
        )
    assert fleet.errors.empty and fleet.accounts["loaded"].all()
    assert steps.index("ssm") < steps.index("listed")


def test_accounts_opening_at_once_assume_their_roles_before_making_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A session costs CPU; an AssumeRole is a round trip. The accounts that open
    together send every AssumeRole first, so no role waits behind a session."""
    org = synthetic_organization(5, nodes_per_account=1, regions=(EU,), seed=8)
    steps: list[str] = []
    make_session = patchframe.aws._fleet.role_session

    def session(*args: Any, **kwargs: Any) -> Any:
        steps.append("session")
        return make_session(*args, **kwargs)

    monkeypatch.setattr(patchframe.aws._fleet, "role_session", session)
    with Emulator(organization=org, latency=0.2) as emulator:
        source = emulator.session()
        source.events.register("before-send.sts.AssumeRole", lambda **_: steps.append("assume"))
        fleet = pf.load_fleet(
            organization=pf.Organization(ROLE, session=source),
            regions=[EU],
            max_workers=16,  # all five accounts open at once
            progress=False,
        )
    assert fleet.errors.empty and fleet.accounts["loaded"].all()
    assert steps == ["assume"] * 4 + ["session"] * 4
