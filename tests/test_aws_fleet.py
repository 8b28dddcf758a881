"""Fleet loading through the emulator over real HTTP: nothing lost, nothing doubled.

The sample fleet's own tests use the shared fixtures (``sample_fleet_frames``, loaded
once through ``sample_client``, and ``wire_fleet``, its ground truth); tests that load
with options or faults run their own emulator.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import math
import threading
import time
import warnings
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.retries.standard
import botocore.session
import pandas as pd
import pytest
from botocore.credentials import CredentialProvider, CredentialResolver, Credentials
from concurrency import AtOnce
from mock_ssm import MockSSM

import patchframe as pf
import patchframe.aws._fleet
import patchframe.aws._pacer
from patchframe._schema import (
    PATCH_COLUMNS,
    STATE_COUNT_FIELDS,
    NodeKey,
    PatchColumns,
    build_patches,
)
from patchframe.sandbox.emulator import Emulator
from patchframe.sandbox.sample import WireFleet, synthetic_fleet

ACCOUNT_A, ACCOUNT_B = "111111111111", "222222222222"


@pytest.fixture(scope="module")
def sample() -> Iterator[Emulator]:
    """An emulator of its own serving the sample, for loads with options and its counters."""
    with Emulator() as emulator:
        yield emulator


def truth(fleet: WireFleet) -> Counter[tuple[str, str]]:
    return Counter((node, p["KBId"]) for node, rows in fleet.patches.items() for p in rows)


def loaded(frame: pd.DataFrame) -> Counter[tuple[str, str]]:
    return Counter(zip(frame["instance_id"].astype(str), frame["kb_id"].astype(str), strict=True))


#: The calls that load a node's patches; a tag call that fails leaves the patches whole.
PATCH_OPERATIONS = (
    "DescribeInstanceInformation",
    "DescribePatchStates",
    "DescribeInstancePatches",
)


def assert_nothing_lost_nothing_doubled(fleet: pf.Fleet, served: WireFleet) -> None:
    """Every node has exactly its rows, or it is in errors with none."""
    patch_errors = fleet.errors[fleet.errors["operation"].isin(PATCH_OPERATIONS)]
    failed = set(patch_errors["instance_id"].dropna())
    got = loaded(fleet.patches)
    assert max(got.values(), default=1) == 1, "a row arrived twice"
    for node in (i["InstanceId"] for i in served.instances):
        rows = {k for k in got if k[0] == node}
        if node in failed:
            assert not rows, f"{node} failed but has rows"
        else:
            assert rows == {k for k in truth(served) if k[0] == node}, node
    assert set(fleet.nodes["instance_id"]) == {i["InstanceId"] for i in served.instances}


def test_sample_fleet_every_node_and_every_patch(
    sample_fleet_frames: pf.Fleet, wire_fleet: WireFleet
) -> None:
    fleet = sample_fleet_frames
    assert fleet.errors.empty
    assert loaded(fleet.patches) == truth(wire_fleet)
    assert_nothing_lost_nothing_doubled(fleet, wire_fleet)
    assert fleet.patches["account_id"].unique().tolist() == [wire_fleet.account_id]
    assert fleet.patches["region"].unique().tolist() == [wire_fleet.region]
    assert fleet.nodes["instance_id"].str.startswith("mi-").sum() >= 2


def test_nodes_counts_equal_patch_states(
    sample_fleet_frames: pf.Fleet, wire_fleet: WireFleet
) -> None:
    fleet = sample_fleet_frames
    counts = fleet.patches.groupby(["instance_id", "state"], observed=True).size()
    fields = {state.lower(): field for state, field in STATE_COUNT_FIELDS.items()}
    states = {s["InstanceId"]: s for s in wire_fleet.patch_states}
    nodes = fleet.nodes.set_index("instance_id")
    for node, state in states.items():
        for column, field in fields.items():
            assert nodes.loc[node, column] == state[field], (node, column)
            assert counts.get((node, column.upper()), 0) == state[field], (node, column)
    never_scanned = nodes.index.difference(list(states))
    assert (nodes.loc[never_scanned, "compliance"] == "NOT_SCANNED").all()


def test_patches_carry_node_columns(sample_fleet_frames: pf.Fleet, wire_fleet: WireFleet) -> None:
    patches = sample_fleet_frames.patches
    for column in (
        "computer_name",
        "platform_type",
        "platform_name",
        "patch_group",
        "baseline_id",
    ):
        assert isinstance(patches[column].dtype, pd.CategoricalDtype), column
    info = {i["InstanceId"]: i for i in wire_fleet.instances}
    first = patches.iloc[0]
    assert first["platform_name"] == info[first["instance_id"]]["PlatformName"]


def test_repr_says_it_at_a_glance(sample_fleet_frames: pf.Fleet) -> None:
    figures = sample_fleet_frames.figures()
    text = repr(sample_fleet_frames)
    assert f"{figures['nodes']} nodes" in text
    assert f"{figures['patches']:,} patches" in text
    assert f"{figures['non_compliant_nodes']} non-compliant nodes" in text
    assert "0 errors" in text


def test_fast_path_equals_plain_botocore_path(
    sample_fleet_frames: pf.Fleet, wire_fleet: WireFleet
) -> None:
    """The parse shortcut gives the very frame botocore's own parser would."""
    client = pf.sample_client()
    parts = []
    for node in sample_fleet_frames.nodes["instance_id"]:
        cols = PatchColumns()
        for page in client.get_paginator("describe_instance_patches").paginate(InstanceId=node):
            cols.extend(page["Patches"])  # datetimes in the local zone, as botocore makes them
        parts.append((NodeKey(node, wire_fleet.account_id, wire_fleet.region), cols))
    plain = build_patches(parts)
    pd.testing.assert_frame_equal(sample_fleet_frames.patches[list(PATCH_COLUMNS)], plain)


@pytest.fixture
def two_accounts() -> Iterator[Emulator]:
    fleets = [
        synthetic_fleet(4, seed=1, account_id=ACCOUNT_A, region="eu-west-1"),
        synthetic_fleet(3, seed=2, account_id=ACCOUNT_A, region="us-east-1"),
        synthetic_fleet(5, seed=3, account_id=ACCOUNT_B, region="eu-west-1"),
    ]
    with Emulator(fleets) as emulator:
        yield emulator


def expected_pairs(emulator: Emulator) -> Counter[tuple[str, str, str, str]]:
    out: Counter[tuple[str, str, str, str]] = Counter()
    for account, region in itertools.product((ACCOUNT_A, ACCOUNT_B), ("eu-west-1", "us-east-1")):
        for (node, kb), n in truth(emulator.fleet(account, region)).items():
            out[account, region, node, kb] += n
    return out


def test_every_account_and_region_through_aws_endpoint_url(
    two_accounts: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", two_accounts.url)
    sessions = [boto3.Session(**two_accounts.credentials(a)) for a in (ACCOUNT_A, ACCOUNT_B)]
    fleet = pf.load_fleet(
        regions=["eu-west-1", "us-east-1"], boto3_sessions=sessions, progress=False
    )
    assert fleet.errors.empty
    got = Counter(
        zip(
            *(
                fleet.patches[c].astype(str)
                for c in ("account_id", "region", "instance_id", "kb_id")
            ),
            strict=True,
        )
    )
    assert got == expected_pairs(two_accounts)
    assert fleet.nodes.groupby(["account_id", "region"], observed=True).size().to_dict() == {
        (ACCOUNT_A, "eu-west-1"): 4,
        (ACCOUNT_A, "us-east-1"): 3,
        (ACCOUNT_B, "eu-west-1"): 5,
    }


def test_profiles_fan_out(
    two_accounts: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "".join(
            f"[{name}]\naws_access_key_id = {keys['aws_access_key_id']}\n"
            f"aws_secret_access_key = {keys['aws_secret_access_key']}\n"
            for name, keys in (
                ("a", two_accounts.credentials(ACCOUNT_A)),
                ("b", two_accounts.credentials(ACCOUNT_B)),
            )
        )
    )
    config = tmp_path / "config"
    config.write_text("[profile a]\nregion = eu-west-1\n[profile b]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ENDPOINT_URL", two_accounts.url)
    fleet = pf.load_fleet(profiles=["a", "b"], progress=False)
    assert sorted(fleet.nodes["account_id"].astype(str).unique()) == [ACCOUNT_A, ACCOUNT_B]
    assert len(fleet.nodes) == 4 + 5


@pytest.mark.parametrize(
    ("node_filters", "field", "allowed"),
    [
        ({"PlatformTypes": ["Windows"]}, "PlatformType", {"Windows"}),
        ({"PingStatus": ["ConnectionLost"]}, "PingStatus", {"ConnectionLost"}),
        (
            [{"Key": "ResourceType", "Values": ["ManagedInstance"]}],
            "ResourceType",
            {"ManagedInstance"},
        ),
    ],
)
def test_node_filters_pass_through(
    sample: Emulator, node_filters: Any, field: str, allowed: set[str]
) -> None:
    fleet = pf.load_fleet(client=sample.client(), node_filters=node_filters, progress=False)
    info = {i["InstanceId"]: i for i in sample.fleet().instances}
    wanted = {n for n, i in info.items() if i.get(field) in allowed}
    assert wanted and set(fleet.nodes["instance_id"]) == wanted
    assert set(fleet.patches["instance_id"].astype(str)) <= wanted


def test_tag_filter(sample: Emulator) -> None:
    tags = sample.fleet().tags
    key, value = next(iter(next(t for t in tags.values() if t).items()))
    fleet = pf.load_fleet(
        client=sample.client(), node_filters={f"tag:{key}": [value]}, progress=False
    )
    assert set(fleet.nodes["instance_id"]) == {n for n, t in tags.items() if t.get(key) == value}


def test_patch_filters_pass_through(sample: Emulator) -> None:
    fleet = pf.load_fleet(
        client=sample.client(), patch_filters={"State": ["Missing", "Failed"]}, progress=False
    )
    assert set(fleet.patches["state"].unique()) == {"MISSING", "FAILED"}


def test_instance_ids_and_an_unknown_node(sample: Emulator) -> None:
    nodes = [i["InstanceId"] for i in sample.fleet().instances[:3]]
    ghost = "i-0000000000000dead"
    fleet = pf.load_fleet([*nodes, ghost], client=sample.client(), progress=False)
    assert set(fleet.nodes["instance_id"]) == set(nodes)
    assert fleet.errors["instance_id"].tolist() == [ghost]
    assert fleet.errors["error_code"].tolist() == ["InvalidInstanceId"]
    with pytest.raises(pf.NodeNotFoundError, match=ghost):
        pf.load_fleet([ghost], client=sample.client(), progress=False, errors="raise")


def vanish(client: Any, node: str) -> None:
    """Make ``node`` disappear between discovery and its patches, as a terminated node does."""

    def swap(params: dict[str, Any], **_: Any) -> None:
        if params.get("InstanceId") == node:
            params["InstanceId"] = "i-0000000000000dead"

    client.meta.events.register("provide-client-params.ssm.DescribeInstancePatches", swap)


def test_a_vanished_node_is_an_error_row_not_a_crash(sample: Emulator) -> None:
    client = sample.client()
    node = sample.fleet().instances[1]["InstanceId"]
    vanish(client, node)
    fleet = pf.load_fleet(client=client, progress=False)
    row = fleet.errors.iloc[0]
    assert (row["instance_id"], row["error_code"], row["operation"]) == (
        node,
        "InvalidInstanceId",
        "DescribeInstancePatches",
    )
    assert row["attempts"] == 1
    assert node not in set(fleet.patches["instance_id"].astype(str))
    assert pd.isna(fleet.nodes.set_index("instance_id").loc[node, "patch_rows"])
    assert_nothing_lost_nothing_doubled(fleet, sample.fleet())
    with pytest.raises(pf.NodeNotFoundError, match=node):
        pf.load_fleet(client=client, progress=False, errors="raise")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"regions": ["eu-west-1"]}, "client="),
        ({"max_workers": 0}, "max_workers"),
        ({"errors": "ignore"}, "'ignore'"),
        ({"node_filters": {"Colour": ["blue"]}}, "'Colour'"),
        ({"node_filters": {"PingStatus": "Online"}}, "'Online'"),
        ({"patch_filters": {"State": ["Gone"]}}, "'Gone'"),
        ({"instance_ids": "i-0123456789abcdef0"}, "one string"),
        ({"instance_ids": ["nope"]}, "'nope'"),
    ],
)
def test_bad_input_raises_before_any_call(
    sample: Emulator, kwargs: dict[str, Any], named: str
) -> None:
    sample.reset_stats()
    with pytest.raises(pf.ValidationError, match=named):
        pf.load_fleet(client=sample.client(), progress=False, **kwargs)
    assert sample.stats.total == 0


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"regions": ["Ireland"]}, "'Ireland'"),
        ({"regions": "eu-west-1"}, "'eu-west-1'"),
        ({"profiles": ["nobody-has-this-profile"]}, "nobody-has-this-profile"),
        ({"profiles": ["a"], "boto3_sessions": [boto3.Session()]}, "not both"),
    ],
)
def test_bad_targets_raise_before_any_call(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(pf.ValidationError, match=named):
        pf.load_fleet(progress=False, **kwargs)


FAULTS = {
    "rate_limit": [None, 60.0],
    "error_rate": [0.0, 0.15],
    "drop_rate": [0.0, 0.05],
    "expire_rate": [0.0, 0.3],
}
MATRIX = [dict(zip(FAULTS, combo, strict=True)) for combo in itertools.product(*FAULTS.values())]


@pytest.fixture(scope="module")
def small_fleet() -> WireFleet:
    return synthetic_fleet(12, seed=7, patches_per_node=180)


@pytest.mark.parametrize(
    "faults", MATRIX, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items() if v)
)
def test_fault_matrix_every_row_once_or_node_in_errors(  # with patchframe's own retry policy
    small_fleet: WireFleet, faults: dict[str, Any]
) -> None:
    with Emulator(small_fleet, seed=11, burst=3, latency=0.005, **faults) as emulator:
        client = emulator.client()
        fleet = pf.load_fleet(client=client, progress=False, max_workers=8)
        assert_nothing_lost_nothing_doubled(fleet, emulator.fleet())
        if not faults["expire_rate"]:
            assert fleet.errors.empty, fleet.errors.to_dict("records")
        for row in fleet.errors.itertuples():
            assert row.error_code == "InvalidNextToken" and row.instance_id


@pytest.fixture(scope="module")
def paced_fleet() -> WireFleet:
    return synthetic_fleet(28, seed=7, patches_per_node=300)


def test_the_pacer_keeps_throttles_rare_once_it_has_measured(paced_fleet: WireFleet) -> None:
    """16 workers against 25 requests/s: past the first storm, throttles are rare.

    Without the pacer, botocore's backoff alone leaves fewer than two accepted
    answers for every throttled one, for the whole load; with it, about four or
    more once the first two seconds of throttling (the storms that measure) have passed.
    """
    with Emulator(paced_fleet, rate_limit=25, burst=3, latency=0.02) as emulator:
        client = emulator.client()
        answers: list[tuple[float, bool]] = []

        def record(response: Any = None, **_: Any) -> None:
            if response is not None:
                code = response[1].get("Error", {}).get("Code")
                answers.append((time.monotonic(), code == "ThrottlingException"))

        client.meta.events.register("needs-retry.ssm", record)
        fleet = pf.load_fleet(client=client, progress=False, max_workers=16)
        assert fleet.errors.empty
        assert loaded(fleet.patches) == truth(emulator.fleet())
    first_throttle = next(at for at, throttled in answers if throttled)
    later = [throttled for at, throttled in answers if at > first_throttle + 2.0]
    accepted, throttled = later.count(False), later.count(True)
    assert accepted >= 2.5 * throttled, f"{accepted} accepted, {throttled} throttled"


@pytest.fixture
def two_sessions(two_accounts: Emulator, monkeypatch: pytest.MonkeyPatch) -> list[boto3.Session]:
    """A boto3 session in each of ``two_accounts``' accounts, reaching its emulator."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", two_accounts.url)
    return [boto3.Session(**two_accounts.credentials(a)) for a in (ACCOUNT_A, ACCOUNT_B)]


def test_an_account_s_session_makes_all_its_clients_in_one_thread(
    two_sessions: list[boto3.Session],
) -> None:
    """boto3 sessions make clients safely in one thread only: SSM, STS and tagging
    clients of a given session all come from the thread that opened its account."""
    made: list[tuple[int, str]] = []
    for number, session in enumerate(two_sessions):

        def record(number: int = number, **_: Any) -> None:
            made.append((number, threading.current_thread().name))

        session.events.register("creating-client-class", record)
    fleet = pf.load_fleet(
        regions=["eu-west-1", "us-east-1"], boto3_sessions=two_sessions, progress=False
    )
    assert fleet.errors.empty and not fleet.tags.empty
    for number in range(2):
        threads = [thread for n, thread in made if n == number]
        assert len(threads) == 5  # SSM and tagging clients in each region, and STS
        assert len(set(threads)) == 1, threads


def test_accounts_opening_together_make_their_clients_one_at_a_time(
    two_sessions: list[boto3.Session],
) -> None:
    """A client costs CPU: accounts that open at once take turns to make theirs, so
    that the first has its requests out early rather than all of them late."""
    making = AtOnce()
    for session in two_sessions:
        session.events.register("creating-client-class", partial(making.stay, 0.05))
    fleet = pf.load_fleet(
        regions=["eu-west-1", "us-east-1"], boto3_sessions=two_sessions, progress=False
    )
    assert fleet.errors.empty and fleet.accounts["loaded"].all()
    assert making.most == 1


def test_no_worker_waits_for_its_turn_to_make_clients(
    two_sessions: list[boto3.Session],
) -> None:
    """While one worker makes clients, the others send requests: two workers open two
    accounts at once, and the account whose clients come first has its first
    discovery sent before its last client is made, not after both accounts' clients."""
    making = AtOnce()
    made: list[tuple[int, float]] = []  # each client made: its account, and when
    sent: list[float] = []
    for number, session in enumerate(two_sessions):

        def slow(number: int = number, **_: Any) -> None:
            making.stay(0.05)  # widened: a real client costs 5-17 ms of CPU
            made.append((number, time.monotonic()))

        session.events.register("creating-client-class", slow)
        session.events.register("before-send", lambda **_: sent.append(time.monotonic()))
    fleet = pf.load_fleet(
        regions=["eu-west-1", "us-east-1"],
        boto3_sessions=two_sessions,
        progress=False,
        max_workers=2,
    )
    assert fleet.errors.empty and fleet.accounts["loaded"].all()
    first = made[0][0]
    last_made = max(at for number, at in made if number == first)
    assert making.most == 1 and min(sent) < last_made


def test_an_account_and_region_s_tags_are_asked_for_once_its_last_node_is_taken(
    two_sessions: list[boto3.Session],
) -> None:
    """Tag calls are one request each: asked for when an account and region's last
    node is taken, the last ones fill the workers left idle at the end of a load."""
    fleet, events = tags_and_first_pages(two_sessions)
    assert len(fleet.tags) > 0
    where = node_targets(fleet)
    asked = {target: at for at, (kind, target) in enumerate(events) if kind == "tags"}
    assert len(asked) == 3
    for at, (kind, node) in enumerate(events):
        if kind == "node":
            assert at < asked[where[node]], (node, events)


def test_an_account_and_region_done_early_has_its_tags_asked_by_its_last_node_s_worker(
    two_sessions: list[boto3.Session],
) -> None:
    """While other nodes still wait, the worker that loaded an account and region's last
    node makes its one tag call right after it, so that the account and region lets
    its clients go then, not after every node queued meanwhile."""
    fleet, events = tags_and_first_pages(two_sessions)
    where = node_targets(fleet)
    first = next(at for at, (kind, _) in enumerate(events) if kind == "tags")
    kind, node = events[first - 1]
    assert kind == "node" and where[node] == events[first][1], events
    assert any(kind == "node" for kind, _ in events[first + 1 :]), events


def test_more_than_two_tag_calls_go_to_the_pool_not_to_the_last_node_s_worker() -> None:
    """Three or more calls (two GetResources batches and the hybrid nodes' calls here)
    are queued: one worker making them one after the other would hold back the nodes
    that wait."""
    done_early, later = (
        synthetic_fleet(n, seed=n, patches_per_node=1, account_id=ACCOUNT_A, region=region)
        for n, region in ((201, "eu-west-1"), (210, "us-east-1"))
    )
    with Emulator([done_early, later]) as emulator:
        session = emulator.session(ACCOUNT_A, region="eu-west-1")
        _, events = tags_and_first_pages([session], accounts=[ACCOUNT_A])
    first = [at for at, event in enumerate(events) if event == ("tags", (ACCOUNT_A, "eu-west-1"))]
    hybrid = sum(i.startswith("mi-") for i in done_early.instance_ids)
    assert first and len(first) + hybrid > 2  # the first region's, done while nodes wait
    assert all(kind == "tags" for kind, _ in events[first[0] :]), "asked before nodes that waited"


def test_tags_are_asked_for_beside_the_last_node_and_their_client_goes_after() -> None:
    """An account and region's tags are asked for once its last node is taken, beside
    that node's pages rather than after them; its tagging client goes once the tag
    call ends, not with its SSM client after the last page."""
    served = synthetic_fleet(3, seed=2, account_id=ACCOUNT_A, region="eu-west-1")
    assert all(i.startswith("i-") and len(p) > 300 for i, p in served.patches.items())
    tagging: list[weakref.ref[Any]] = []
    alive: list[bool] = []  # at each SSM request once the tag call was sent

    def keep(request_signer: Any, **_: Any) -> None:
        # A client's request signer lives exactly as long as the client does.
        tagging.append(weakref.ref(request_signer))

    def watch(**_: Any) -> None:
        if tagging:
            gc.collect()
            alive.append(tagging[0]() is not None)

    with Emulator(served, latency=0.05) as emulator:
        session = emulator.session(ACCOUNT_A, region="eu-west-1")
        session.events.register("before-sign.resource-groups-tagging-api", keep)
        session.events.register("before-sign.ssm.DescribeInstancePatches", watch)
        # Two workers take the two largest nodes; the one that ends first takes the
        # last (4 pages), and the other the tag call.
        fleet = pf.load_fleet(boto3_sessions=[session], max_workers=2, progress=False)
    assert fleet.errors.empty and len(fleet.tags) > 0
    assert len(tagging) == 1 and len(alive) >= 2 and not alive[-1]


def test_a_load_s_nodes_share_one_table_of_texts(
    sample: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Titles and KB ids repeat across nodes: a load holds each once, in one table
    that goes with the load."""
    tables: list[object] = []
    fetch = patchframe.aws._fleet.fetch_node_patches

    def spy(*args: Any, texts: Any = None, **kwargs: Any) -> Any:
        tables.append(texts)
        return fetch(*args, texts=texts, **kwargs)

    monkeypatch.setattr(patchframe.aws._fleet, "fetch_node_patches", spy)
    pf.load_fleet(client=sample.client(), progress=False)
    pf.load_fleet(client=sample.client(), progress=False)
    half = len(tables) // 2
    assert half > 1 and isinstance(tables[0], dict)
    assert all(t is tables[0] for t in tables[:half])
    assert tables[half] is not tables[0]


def test_accounts_opening_together_find_their_credentials_at_once(
    two_accounts: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials may take a process or a metadata request to find: accounts look for
    theirs side by side, not in turn as their clients are made (one worker at a time)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", two_accounts.url)
    finding = AtOnce()

    class Slow(CredentialProvider):
        METHOD = "slow"

        def __init__(self, account: str) -> None:
            super().__init__()
            self.account = account

        def load(self) -> Credentials:
            finding.stay(0.2)
            keys = two_accounts.credentials(self.account)
            return Credentials(keys["aws_access_key_id"], keys["aws_secret_access_key"])

    sessions = []
    for account in (ACCOUNT_A, ACCOUNT_B):
        core = botocore.session.Session()
        core.register_component("credential_provider", CredentialResolver([Slow(account)]))
        sessions.append(boto3.Session(botocore_session=core, region_name="eu-west-1"))
    fleet = pf.load_fleet(regions=["eu-west-1"], boto3_sessions=sessions, progress=False)
    assert fleet.errors.empty and fleet.accounts["loaded"].all()
    assert finding.most == 2


def test_the_page_size_is_learnt_with_one_refusal_per_account_and_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every worker starts before the first refusal is back; only one asks for 100."""
    fleets = [
        synthetic_fleet(16, seed=1, patches_per_node=120, account_id=ACCOUNT_A),
        synthetic_fleet(16, seed=2, patches_per_node=120, account_id=ACCOUNT_B),
    ]
    with Emulator(fleets, max_patch_results=50, latency=0.05) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
        sessions = [boto3.Session(**emulator.credentials(a)) for a in (ACCOUNT_A, ACCOUNT_B)]
        fleet = pf.load_fleet(
            regions=[fleets[0].region], boto3_sessions=sessions, max_workers=16, progress=False
        )
        stats = emulator.stats
    assert fleet.errors.empty and len(fleet.nodes) == 32
    refused = stats.requests["DescribeInstancePatches"] - sum(stats.pages.values())
    assert refused == 2


def test_cache_dir_resumes_with_only_the_missing_nodes(
    small_fleet: WireFleet, tmp_path: Path
) -> None:
    with Emulator(small_fleet, expire_rate=0.6, seed=3) as flaky:
        first = pf.load_fleet(client=flaky.client(), progress=False, cache_dir=tmp_path)
    failed = set(first.errors["instance_id"])
    assert failed, "the first run should leave some nodes to resume"
    with Emulator(small_fleet) as healthy:
        resumed = pf.load_fleet(client=healthy.client(), progress=False, cache_dir=tmp_path)
        assert set(healthy.stats.pages) == failed  # only the missing nodes were fetched
        uninterrupted = pf.load_fleet(client=healthy.client(), progress=False)
    assert resumed.errors.empty
    pd.testing.assert_frame_equal(resumed.patches, uninterrupted.patches)
    # Two loads, two load times: scan ages compare once measured to the same time.
    when = uninterrupted.loaded_at
    pd.testing.assert_frame_equal(resumed.as_of(when).nodes, uninterrupted.as_of(when).nodes)


def test_progress_bar_reports_nodes_rows_errors_throttles(
    sample: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pf.load_fleet(client=sample.client(), progress=True)
    err = capsys.readouterr().err
    assert "13/13" in err and "rows=" in err and "errors=0" in err and "throttles=" in err
    pf.load_fleet(client=sample.client(), progress=False)
    assert capsys.readouterr().err == ""


def sent_patch_requests(client: Any) -> list[tuple[float, str]]:
    """When each DescribeInstancePatches request for a first page was sent, and for which node."""
    sent: list[tuple[float, str]] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        if "NextToken" not in params:
            sent.append((time.monotonic(), params["InstanceId"]))

    client.meta.events.register("provide-client-params.ssm.DescribeInstancePatches", note)
    return sent


def test_loading_starts_with_the_first_page_of_nodes() -> None:
    fleet = synthetic_fleet(60, seed=5, patches_per_node=20)  # two pages of nodes
    with Emulator(fleet, latency=0.05) as emulator:
        client = emulator.client()
        sent = sent_patch_requests(client)
        listed: list[float] = []

        def note(response: Any = None, **_: Any) -> None:
            listed.append(time.monotonic())

        client.meta.events.register("needs-retry.ssm.DescribeInstanceInformation", note)
        loaded_fleet = pf.load_fleet(client=client, progress=False)
    assert len(listed) == 2 and len(loaded_fleet.nodes) == 60
    assert sent[0][0] < listed[1], "patches waited for the last page of nodes"
    assert loaded_fleet.nodes["instance_id"].tolist() == fleet.instance_ids  # in listed order


def test_a_client_load_makes_its_sts_and_tagging_clients_once_the_listing_went_out(
    sample: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their botocore sessions cost about 20 ms of CPU each (more than 0.1 s for the
    first in a process): spent during the listing's round trip, they delay no request.
    The listing is held back 0.1 s before it is sent, so that a lookup that did not
    wait for it would make its clients first."""
    made: list[tuple[float, str]] = []
    create = botocore.session.Session.create_client

    def record(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        made.append((time.monotonic(), service))
        return create(self, service, *args, **kwargs)

    client = sample.client()
    monkeypatch.setattr(botocore.session.Session, "create_client", record)
    listing: list[float] = []
    client.meta.events.register(
        "before-call.ssm.DescribeInstanceInformation", lambda **_: time.sleep(0.1)
    )
    client.meta.events.register(
        "before-send.ssm.DescribeInstanceInformation", lambda **_: listing.append(time.monotonic())
    )
    fleet = pf.load_fleet(client=client, progress=False)
    assert fleet.errors.empty and not fleet.tags.empty
    assert sorted(service for _, service in made) == ["resourcegroupstaggingapi", "sts"]
    assert all(at > listing[0] for at, _ in made), (listing, made)


def test_a_listing_restarted_after_an_expired_token_lists_each_node_once() -> None:
    page_one = [{"InstanceId": f"i-{n:017x}"} for n in range(50)]
    page_two = [{"InstanceId": f"i-{n:017x}"} for n in range(50, 55)]
    listings = iter(
        [
            (200, {"InstanceInformationList": page_one, "NextToken": "t"}),
            (400, {"__type": "InvalidNextToken", "message": "expired"}),
            (200, {"InstanceInformationList": page_one, "NextToken": "t"}),
            (200, {"InstanceInformationList": page_two}),
        ]
    )

    def answer(request: tuple[str, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        operation = request[0]
        if operation == "DescribeInstanceInformation":
            return next(listings)
        if operation == "DescribeInstancePatchStates":
            return 200, {"InstancePatchStates": []}
        return 200, {"Patches": []}

    ssm = MockSSM(answer)
    client = ssm.client(retries={"mode": "standard", "total_max_attempts": 1})
    fleet = pf.load_fleet(client=client, progress=False, tags=False)
    assert fleet.nodes["instance_id"].tolist() == [n["InstanceId"] for n in page_one + page_two]
    assert ssm.operations.count("DescribeInstancePatches") == 55
    assert fleet.errors["operation"].tolist() == ["GetCallerIdentity"]  # no STS here


# --- tags, load time, staleness ----------------------------------------------------


def tags_of(fleet: pf.Fleet) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = {}
    for row in fleet.tags.itertuples():
        assert row.key not in tags.get(row.instance_id, {}), "a tag key twice"
        tags.setdefault(str(row.instance_id), {})[str(row.key)] = str(row.value)
    return tags


def test_tags_of_ec2_and_hybrid_nodes_equal_the_sample_exactly(
    sample_fleet_frames: pf.Fleet, wire_fleet: WireFleet
) -> None:
    tags = sample_fleet_frames.tags
    assert tags.columns.tolist() == ["account_id", "region", "instance_id", "key", "value"]
    assert all(isinstance(t, pd.CategoricalDtype) for t in tags.dtypes)
    assert tags_of(sample_fleet_frames) == wire_fleet.tags
    assert {i[:2] for i in tags_of(sample_fleet_frames)} == {"i-", "mi"}
    assert set(tags["account_id"]) == {wire_fleet.account_id}


def ec2_only(nodes: int) -> WireFleet:
    """A synthetic fleet of exactly ``nodes`` EC2 nodes (hybrid ones left out)."""
    fleet = synthetic_fleet(nodes + nodes // 4, seed=9, patches_per_node=4)
    keep = [i for i in fleet.instance_ids if i.startswith("i-")][:nodes]
    kept = set(keep)
    return dataclasses.replace(
        fleet,
        instances=[n for n in fleet.instances if n["InstanceId"] in kept],
        patch_states=[s for s in fleet.patch_states if s["InstanceId"] in kept],
        patches={i: rows for i, rows in fleet.patches.items() if i in kept},
        tags={i: tags for i, tags in fleet.tags.items() if i in kept},
    )


def test_tags_of_300_ec2_nodes_take_a_bounded_number_of_calls() -> None:
    served = ec2_only(300)
    most_tags = max(len(t) for t in served.tags.values())
    with Emulator(served) as emulator:
        fleet = pf.load_fleet(client=emulator.client(), progress=False)
        calls = emulator.stats.requests
    # Batches of 100 ARNs, each answered whole in one call.
    assert most_tags == 4 and calls["GetResources"] == math.ceil(300 / 100) == 3
    assert "DescribeTags" not in calls
    assert "ListTagsForResource" not in calls
    assert tags_of(fleet) == served.tags
    assert len(served.tags) < 300  # some nodes are untagged: no rows, no error
    assert fleet.errors.empty


def test_each_hybrid_node_takes_one_call() -> None:
    served = synthetic_fleet(30, seed=0, patches_per_node=5)
    hybrid = [i for i in served.instance_ids if i.startswith("mi-")]
    with Emulator(served) as emulator:
        fleet = pf.load_fleet(client=emulator.client(), progress=False)
        calls = emulator.stats.requests
    assert hybrid and calls["ListTagsForResource"] == len(hybrid)
    assert calls["GetResources"] == 1
    assert tags_of(fleet) == served.tags


def test_tags_false_makes_no_tag_call(sample: Emulator) -> None:
    sample.reset_stats()
    fleet = pf.load_fleet(client=sample.client(), progress=False, tags=False)
    assert not {"GetResources", "ListTagsForResource"} & set(sample.stats.requests)
    assert fleet.tags.empty and fleet.tags.columns.tolist()[-2:] == ["key", "value"]


@pytest.mark.parametrize("errors", ["collect", "raise"])
def test_access_denied_on_tags_leaves_patches_and_nodes_as_a_load_without_tags(
    errors: str,
) -> None:
    with Emulator() as plain:
        untagged = pf.load_fleet(client=plain.client(), progress=False, tags=False)
    with Emulator(deny_tags=True) as denied:
        with pytest.warns(UserWarning) as warned:
            fleet = pf.load_fleet(client=denied.client(), progress=False, errors=errors)
        calls = denied.stats.requests
    pd.testing.assert_frame_equal(fleet.patches, untagged.patches)
    when = fleet.loaded_at
    pd.testing.assert_frame_equal(fleet.nodes, untagged.as_of(when).nodes)
    assert fleet.tags.empty
    # One row per account x region and call, naming the call; no node is blamed.
    rows = fleet.errors[["account_id", "region", "operation", "error_code"]]
    assert rows.values.tolist() == [
        ["123456789012", "eu-west-1", "GetResources", "AccessDeniedException"],
        ["123456789012", "eu-west-1", "ListTagsForResource", "AccessDeniedException"],
    ]
    assert fleet.errors["instance_id"].isna().all()
    messages = [str(w.message) for w in warned]
    assert len(messages) == 2
    assert "tag:GetResources" in messages[0] and "ssm:ListTagsForResource" in messages[1]
    assert warned[0].filename == __file__  # points at the caller of load_fleet
    assert calls["ListTagsForResource"] <= 2  # the sample's two hybrid nodes, at most


def one_node_without_patches(
    node: str, **answers: tuple[int, dict[str, Any]]
) -> Callable[[tuple[str, dict[str, Any]]], tuple[int, dict[str, Any]]]:
    """MockSSM's answers for a fleet of one node and no patches; ``answers`` by operation."""

    def answer(request: tuple[str, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        operation = request[0]
        if operation in answers:
            return answers[operation]
        if operation == "DescribeInstanceInformation":
            return 200, {"InstanceInformationList": [{"InstanceId": node}]}
        if operation == "DescribeInstancePatchStates":
            return 200, {"InstancePatchStates": []}
        return 200, {"Patches": []}

    return answer


def test_a_tag_call_that_fails_otherwise_is_a_row_naming_its_node() -> None:
    hybrid = "mi-0123456789abcdef0"
    gone = (400, {"__type": "InvalidResourceId", "message": "gone"})
    answer = one_node_without_patches(hybrid, ListTagsForResource=gone)
    client = MockSSM(answer).client(retries={"mode": "standard", "total_max_attempts": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not a refusal: no warning
        fleet = pf.load_fleet(client=client, progress=False)
    tag_rows = fleet.errors[fleet.errors["operation"] == "ListTagsForResource"]
    assert tag_rows[["instance_id", "error_code"]].values.tolist() == [
        [hybrid, "InvalidResourceId"]
    ]
    assert fleet.nodes["patch_rows"].tolist() == [0]  # its patches loaded all the same


def test_a_load_leaves_the_client_it_was_given_unpaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The load's pacer and its watch on the listing go with the load: a later call
    meets none of their handlers, and a throttle that comes later is botocore's to
    back off from, not answered by an old pacer, load after load."""
    handled: list[str] = []
    pacer_wait = patchframe.aws._pacer.AdaptiveRateLimiter._wait
    flag = patchframe.aws._fleet._flag

    def waited(self: Any, **kwargs: Any) -> None:
        handled.append("pace")
        pacer_wait(self, **kwargs)

    def flagged(event: threading.Event, **kwargs: Any) -> None:
        handled.append("listing")
        flag(event, **kwargs)

    monkeypatch.setattr(patchframe.aws._pacer.AdaptiveRateLimiter, "_wait", waited)
    monkeypatch.setattr(patchframe.aws._fleet, "_flag", flagged)
    backoff = botocore.retries.standard.ExponentialBackoff
    monkeypatch.setattr(backoff, "delay_amount", lambda *_: 0.5)  # botocore's, fixed
    slept: list[float] = []
    monkeypatch.setattr("botocore.endpoint.time.sleep", slept.append)
    later: list[tuple[int, dict[str, Any]]] = []
    answer = one_node_without_patches("i-0123456789abcdef0")
    ssm = MockSSM(lambda request: later.pop(0) if later else answer(request))
    client = ssm.client(retries={"mode": "standard", "total_max_attempts": 3})
    for _ in range(2):
        assert pf.load_fleet(client=client, progress=False, tags=False).nodes.shape[0] == 1
    assert {"pace", "listing"} <= set(handled)  # both were there during the loads
    handled.clear()
    client.describe_instance_information()
    assert handled == []
    slept.clear()
    later[:] = [(400, {"__type": "ThrottlingException"}), (200, {"Patches": []})]
    client.describe_instance_patches(InstanceId="i-0123456789abcdef0")
    # botocore's own backoff. A pacer left attached would answer first, with a share
    # of the round trip: about 0 here.
    assert slept == [0.5]


def test_a_tagging_client_that_cannot_be_made_fails_the_load_rather_than_hang(
    sample: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made as the listing goes out, it fails there first: the account's id is still
    resolved, and the failure comes again at tag time, as the load's error."""

    def refuse(client: Any) -> Any:
        raise botocore.exceptions.CredentialRetrievalError(provider="test", error_msg="expired")

    monkeypatch.setattr(patchframe.aws._fleet, "tagging_client_like", refuse)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            pf.load_fleet(client=sample.client(), progress=False)
        except BaseException as exc:
            outcome.append(exc)

    loading = threading.Thread(target=load, daemon=True)
    loading.start()
    loading.join(timeout=60)
    assert not loading.is_alive(), "the load hangs"
    assert len(outcome) == 1
    assert isinstance(outcome[0], botocore.exceptions.CredentialRetrievalError)


def test_tags_are_asked_by_arns_of_the_region_s_partition() -> None:
    served = synthetic_fleet(6, seed=2, patches_per_node=2, region="cn-north-1")
    with Emulator(served) as emulator:
        fleet = pf.load_fleet(client=emulator.client(), progress=False)
    assert fleet.errors.empty
    assert tags_of(fleet) == served.tags


def test_ec2_nodes_of_an_account_sts_cannot_name_get_no_tag_call() -> None:
    """An EC2 node's tags are asked by ARN, which needs the account id: without it
    the one error is STS's, and no tag call names a made-up account."""
    node = "i-0123456789abcdef0"
    # STS and the Tagging API go to the SSM client's endpoint, where nothing answers.
    answer = one_node_without_patches(node)
    client = MockSSM(answer).client(retries={"mode": "standard", "total_max_attempts": 1})
    fleet = pf.load_fleet(client=client, progress=False)
    assert fleet.errors["operation"].tolist() == ["GetCallerIdentity"]
    assert fleet.tags.empty
    assert fleet.nodes["instance_id"].tolist() == [node]


def test_loaded_at_is_what_scan_ages_are_measured_to(sample: Emulator) -> None:
    before = pd.Timestamp.now(tz="UTC")
    fleet = pf.load_fleet(client=sample.client(), progress=False)
    after = pd.Timestamp.now(tz="UTC")
    assert fleet.loaded_at is not None and before <= fleet.loaded_at <= after
    nodes = fleet.nodes
    ages = fleet.loaded_at - nodes["operation_end_time"]
    pd.testing.assert_series_equal(nodes["scan_age"], ages, check_names=False)
    assert nodes["scan_age"].isna().sum() == 1  # the node never scanned
    assert nodes.loc[~nodes["reachable"], "ping_status"].tolist() == ["ConnectionLost"]


def test_progress_follows_the_convention_none_hides_it_off_a_terminal(
    sample: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pf.load_fleet(client=sample.client())  # progress=None: stderr here is no terminal
    assert capsys.readouterr().err == ""


def test_a_refused_tag_call_is_not_asked_again_in_that_account_and_region() -> None:
    served = synthetic_fleet(30, seed=0, patches_per_node=5)  # six hybrid nodes
    with Emulator(served, deny_tags=True) as emulator:
        with pytest.warns(UserWarning) as warned:
            fleet = pf.load_fleet(client=emulator.client(), progress=False, max_workers=1)
        assert len(warned) == 2
        calls = emulator.stats.requests
    assert sum(i.startswith("mi-") for i in served.instance_ids) == 6
    assert calls["ListTagsForResource"] == 1 and calls["GetResources"] == 1
    assert fleet.errors["operation"].tolist() == ["GetResources", "ListTagsForResource"]


@pytest.mark.parametrize("client", ["ssm", None.__class__, 42])
def test_load_fleet_refuses_a_client_that_is_not_an_ssm_client(client: object) -> None:
    with pytest.raises(pf.ValidationError, match="is not an SSM client"):
        pf.load_fleet(client=client, progress=False)  # type: ignore[arg-type]


def test_load_fleet_refuses_a_client_of_another_service() -> None:
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(pf.ValidationError, match="is not an SSM client"):
        pf.load_fleet(client=sts, progress=False)  # type: ignore[arg-type]


def load_one_by_one(
    sessions: list[boto3.Session], first_page: Callable[[str], None], *, tags: bool
) -> pf.Fleet:
    """Load both regions of ``sessions`` with one worker, which takes the tasks in the
    order they are queued (every listing, then the nodes' patches), telling
    ``first_page`` each node whose first page is asked for."""

    def record(params: dict[str, Any], **_: Any) -> None:
        if "NextToken" not in params:
            first_page(params["InstanceId"])

    for session in sessions:
        session.events.register("provide-client-params.ssm.DescribeInstancePatches", record)
    fleet = pf.load_fleet(
        regions=["eu-west-1", "us-east-1"],
        boto3_sessions=sessions,
        max_workers=1,
        progress=False,
        tags=tags,
    )
    assert fleet.errors.empty
    return fleet


def tags_and_first_pages(
    sessions: list[boto3.Session], *, accounts: Sequence[str] = (ACCOUNT_A, ACCOUNT_B)
) -> tuple[pf.Fleet, list[tuple[str, Any]]]:
    """A one-worker load with tags (:func:`load_one_by_one`) of the ``accounts``' sessions,
    and in order each tag call's ``("tags", (account, region))`` and each node's
    ``("node", id)`` as its first page is asked for."""
    events: list[tuple[str, Any]] = []
    for account, session in zip(accounts, sessions, strict=True):

        def tags(request_signer: Any, account: str = account, **_: Any) -> None:
            events.append(("tags", (account, request_signer.region_name)))

        session.events.register("before-sign.resource-groups-tagging-api.GetResources", tags)
    fleet = load_one_by_one(sessions, lambda node: events.append(("node", node)), tags=True)
    return fleet, events


def node_targets(fleet: pf.Fleet) -> dict[str, tuple[str, str]]:
    """Each node's account and region."""
    nodes = fleet.nodes[["instance_id", "account_id", "region"]]
    return {n: (a, r) for n, a, r in nodes.itertuples(index=False)}


def test_accounts_and_regions_share_the_workers_in_waves(
    two_sessions: list[boto3.Session],
) -> None:
    """The n-th account and region listed has its k-th node loaded in wave n + k: the
    first ones' later nodes go along with the next ones' first, so several share the
    workers and a load ends on the small last nodes of several, not on every node of
    the one listed last."""
    first_pages: list[str] = []
    where = node_targets(load_one_by_one(two_sessions, first_pages.append, tags=False))
    listed: dict[tuple[str, str], int] = {}
    taken: Counter[tuple[str, str]] = Counter()
    waves = []
    for node in first_pages:
        target = where[node]
        waves.append(listed.setdefault(target, len(listed)) + taken[target])
        taken[target] += 1
    assert len(taken) == 3 and sorted(taken.values()) == [3, 4, 5]
    assert waves == sorted(waves) and waves[-1] == 6


def test_waiting_nodes_go_in_waves_largest_first_whenever_their_sizes_come() -> None:
    """Sizes may come before their nodes are listed (a state call answered at once)."""
    Waiting, Target = patchframe.aws._fleet._Waiting, patchframe.aws._fleet._Target
    first, second = Target("eu-west-1", None), Target("us-east-1", None)
    waiting = Waiting()
    waiting.sized(first, [{"InstanceId": "i-1", "InstalledCount": 5}])
    waiting.add(first, ["i-0", "i-1", "i-2"])
    waiting.add(second, ["i-3", "i-4"])
    waiting.sized(first, [{"InstanceId": "i-2", "MissingCount": 9}])
    taken = [waiting.take()[1] for _ in range(5)]
    assert taken == ["i-2", "i-1", "i-3", "i-0", "i-4"] and waiting.count() == 0


def test_the_largest_nodes_are_loaded_first_once_their_sizes_are_known() -> None:
    """A load ends on the last pages of small nodes, not on one large node's pages
    while the other workers have nothing left to do."""
    wire = synthetic_fleet(12, seed=4)
    rows = {node: len(patches) for node, patches in wire.patches.items()}
    first_pages: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if "NextToken" not in params:
            first_pages.append(params["InstanceId"])

    with Emulator(wire) as emulator:
        ssm = emulator.client()
        ssm.meta.events.register("provide-client-params.ssm.DescribeInstancePatches", record)
        # One worker takes the tasks in the order they are queued: the node listing,
        # the patch-state counts, then one node after another.
        fleet = pf.load_fleet(client=ssm, max_workers=1, progress=False, tags=False)
    assert fleet.errors.empty
    assert len(set(rows.values())) > 6  # sizes that tell an order apart
    listed = list(wire.patches)
    assert first_pages == sorted(listed, key=lambda node: (-rows[node], listed.index(node)))
