"""Loading a whole fleet: every node in every account and region, concurrently.

Everything runs on one thread pool. For every account: its id (the organization's,
or STS's, asked beside its first listing); for every account and region: the nodes
(DescribeInstanceInformation); each page of nodes, as it
arrives, hands its nodes' patch-state counts (DescribeInstancePatchStates, 50
ids a call) and each node's patches (DescribeInstancePatches) to the pool, so
loading starts with the first page rather than after the last. Each account and
region has one shared client and one shared pacer, so a throttling storm slows
every worker down rather than failing nodes.

Accounts open (role assumed, session and clients made) half as many at a time as
there are workers, each opening queueing the next, so that those costs fall between
other accounts' requests rather than stall every worker at the start; one worker
at a time makes clients, and the others send requests meanwhile. An account and
region lets its clients go when its last task ends, so a load of hundreds of
accounts holds the clients of those still loading, not all of them. Workers take
nodes in waves across accounts and regions (:class:`_Waiting`), so that a load
ends on the smallest nodes of several, not on the nodes of the one listed last.

Once an account and region is listed and its last node taken, its nodes' tags are
asked for on the same pool (see :mod:`patchframe.aws._tags` for which calls and
why): one Resource Groups Tagging API ``GetResources`` per 100 EC2 nodes, and one
SSM ``ListTagsForResource`` per hybrid node. Near the end of a load these
one-request calls fill the workers that the last nodes' pages leave idle; before
that, one or two calls are made by the worker that loaded the last node, right
after it, so that the account and region lets its clients go then.

Every node ends up either with all its rows or in the errors frame; the result
is assembled in discovery order, so it does not depend on which worker finished
first, nor on whether some nodes came from the checkpoint cache. Tags are extra:
a caller not allowed to read them gets one error row and one warning per account,
region and call, and the same patches and nodes as a load with ``tags=False``.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import os
import re
import threading
import warnings
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from .._fleet import Fleet
from .._progress import progress_bar
from .._schema import (
    STATE_COUNT_FIELDS,
    AccountRow,
    NodeKey,
    PatchColumns,
    build_accounts,
    build_errors,
    build_nodes,
    build_patches,
    build_tags,
    validate_instance_id,
)
from ..exceptions import AWSRequestError, NodeNotFoundError, ValidationError
from ._checkpoints import NodeCache
from ._client import (
    TAGGING,
    caller_account,
    check_ssm_client,
    make_client,
    make_ec2_client,
    make_sts_client,
    make_tagging_client,
    profile_session,
    tagging_client_like,
)
from ._node import (
    PatchFilters,
    aws_error,
    fetch_node_patches,
    validate_patch_filters,
)
from ._organization import Member, Organization, list_members, role_credentials, role_session
from ._pacer import AdaptiveRateLimiter
from ._tags import (
    DENIED_CODES,
    PERMISSIONS,
    NodeTags,
    hybrid_tags,
    instance_arn_batches,
    instance_tags,
)

if TYPE_CHECKING:
    from mypy_boto3_resourcegroupstaggingapi import ResourceGroupsTaggingAPIClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_ssm.type_defs import InstanceInformationStringFilterTypeDef
    from mypy_boto3_sts import STSClient

__all__ = ["load_fleet"]

_T = TypeVar("_T")

NodeFilters = Mapping[str, Sequence[str]] | Sequence[Mapping[str, Any]]

_NODE_FILTER_KEYS = (
    "ActivationIds",
    "AgentVersion",
    "AssociationStatus",
    "IamRole",
    "InstanceIds",
    "PingStatus",
    "PlatformTypes",
    "ResourceType",
    "SourceIds",
    "SourceTypes",
    "tag-key",
)
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_BATCH = 50  # ids per DescribeInstancePatchStates call, and per InstanceIds filter
_OPERATIONS = (
    "ListAccounts",
    "AssumeRole",
    "DescribeRegions",
    "GetCallerIdentity",
    "DescribeInstanceInformation",
    "DescribeInstancePatchStates",
    "DescribeInstancePatches",
    "GetResources",
    "ListTagsForResource",
)


@dataclass
class _Target:
    """One account and region: its clients while it has work, its pacer, its account id.

    Its clients are let go when its last task ends (``hold``, ``let_go``). An account's
    session with an SSM and a tagging client per region holds thousands of objects per
    region, which every full garbage collection walks: an organization's
    hundreds of account x region pairs keep the few that are loading, not all of them.
    """

    region: str
    ssm: SSMClient | None
    session: boto3.Session | None = None
    account: Future[str | None] | None = None
    limiter: AdaptiveRateLimiter = field(default_factory=AdaptiveRateLimiter)
    #: AWS's error code when listing the nodes failed; None once they are all listed.
    error_code: str | None = None
    tagging: ResourceGroupsTaggingAPIClient | None = None
    #: Set as its listing's first request is sent (watched on a ``client=`` load's
    #: target only, where the account's id is looked up), or once the listing ended.
    sent: threading.Event = field(default_factory=threading.Event, repr=False)
    #: Tasks queued or running, and one for whoever may still queue some.
    holds: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def client(self) -> SSMClient:
        assert self.ssm is not None, f"{self.region}: a task after the target's last one"
        return self.ssm

    def hold(self, tasks: int = 1) -> None:
        """More tasks of this target's, queued."""
        with self._lock:
            self.holds += tasks

    def let_go(self) -> None:
        """One task done; after the last, the clients and session go."""
        with self._lock:
            self.holds -= 1
            if self.holds == 0:
                self.ssm = self.tagging = self.session = None

    @property
    def account_id(self) -> str | None:
        """The account id, once STS answered (None if it failed)."""
        return None if self.account is None else self.account.result()

    def key(self, instance_id: str | None) -> NodeKey:
        return NodeKey(instance_id or "", self.account_id, self.region)

    def tagging_client(self) -> ResourceGroupsTaggingAPIClient:
        """A Resource Groups Tagging API client for this account and region, made once
        (in the calling thread)."""
        if self.tagging is None:
            self.tagging = (
                tagging_client_like(self.client)
                if self.session is None
                else make_tagging_client(boto3_session=self.session, region=self.region)
            )
        return self.tagging


class _Waiting:
    """The load's nodes that no worker took yet, in waves across its targets.

    Targets (accounts and regions) are numbered as their first nodes are listed, and
    the n-th target's k-th node taken goes in wave n + k. So the first targets'
    later nodes go along with the next ones' first, several targets share the
    workers rather than one having them all, and a load ends on the small last
    nodes of several targets, not on every node of the one listed last started
    together while the other workers have nothing left to do. A target still
    finishes a few waves after the next ones start, and lets its clients go. Within
    a target, the most patch rows first once its patch-state counts are in
    (discovery order until then).

    It also tells when a target's tags are due: once its listing ended and its last
    node was taken. Tag calls are one request each, so the last targets' fill the
    workers their last nodes' pages leave idle at the end of a load.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Targets with nodes waiting: (wave of the next node taken, number, target).
        self._targets: list[tuple[int, int, _Target]] = []
        # Per target: (-rows, order, node); an entry is stale once the node was
        # taken or its size changed (``_rows`` tells).
        self._nodes: dict[int, list[tuple[int, int, str]]] = {}
        self._rows: dict[tuple[int, str], int] = {}  # by (id(target), node), sizes known early
        self._waiting: dict[int, set[str]] = {}  # by id(target)
        self._wave: dict[int, int] = {}  # each target's next node's wave
        self._number: dict[int, int] = {}
        self._order = itertools.count()
        self._listed: set[int] = set()  # targets whose listing ended
        self._count = 0

    def add(self, target: _Target, ids: list[str]) -> None:
        key = id(target)
        with self._lock:
            waiting = self._waiting.setdefault(key, set())
            idle = not waiting
            nodes = self._nodes.setdefault(key, [])
            self._count += len(ids)
            for node in ids:
                waiting.add(node)
                rows = self._rows.get((key, node), 0)
                heapq.heappush(nodes, (-rows, next(self._order), node))
            if key not in self._number:
                self._number[key] = len(self._number)
                self._wave[key] = self._number[key]
            if idle and waiting:  # the target was out of the heap of targets
                heapq.heappush(self._targets, (self._wave[key], self._number[key], target))

    def sized(self, target: _Target, states: list[dict[str, Any]] | None) -> None:
        """Take the nodes' sizes from their DescribeInstancePatchStates answers."""
        key = id(target)
        with self._lock:
            waiting = self._waiting.get(key, set())
            nodes = self._nodes.setdefault(key, [])
            for state in states or []:
                counts = (state.get(field) for field in STATE_COUNT_FIELDS.values())
                rows = sum(c for c in counts if isinstance(c, int))
                node = state["InstanceId"]
                self._rows[key, node] = rows
                if node in waiting:  # its entry of size 0 goes stale
                    heapq.heappush(nodes, (-rows, next(self._order), node))

    def take(self) -> tuple[_Target, str, bool]:
        """The next node to load, its target, and whether the target's tags are due."""
        with self._lock:
            wave, number, target = heapq.heappop(self._targets)
            key = id(target)
            nodes, waiting = self._nodes[key], self._waiting[key]
            while True:
                minus_rows, _, node = heapq.heappop(nodes)
                if node in waiting and -minus_rows == self._rows.get((key, node), 0):
                    break
            waiting.discard(node)
            self._count -= 1
            self._wave[key] = wave + 1
            if waiting:
                heapq.heappush(self._targets, (wave + 1, number, target))
            else:
                nodes.clear()  # stale entries only
            return target, node, self._due(target)

    def count(self) -> int:
        """How many nodes wait."""
        with self._lock:
            return self._count

    def listed(self, target: _Target) -> bool:
        """The target's listing ended; whether its tags are due (no node waits)."""
        with self._lock:
            self._listed.add(id(target))
            return self._due(target)

    def _due(self, target: _Target) -> bool:
        # True once per target: its listing ends once, and no node is added after;
        # it is asked when the listing ends and when a node is taken, so once empty.
        return id(target) in self._listed and not self._waiting.get(id(target))


class _Found:
    """Nodes in the order discovery lists them; each new one is handed on at once."""

    def __init__(self, hand_on: Callable[[_Target, list[str]], None]) -> None:
        self._hand_on = hand_on
        self._lock = threading.Lock()
        self._infos: dict[int, dict[str, dict[str, Any]]] = {}

    def add(self, target: _Target, infos: list[dict[str, Any]]) -> None:
        with self._lock:
            known = self._infos.setdefault(id(target), {})
            # A listing restarted after an expired NextToken sends nodes again.
            new = [i for i in infos if i["InstanceId"] not in known]
            known.update((i["InstanceId"], i) for i in new)
        if new:
            self._hand_on(target, [i["InstanceId"] for i in new])

    def nodes(self, targets: list[_Target]) -> list[tuple[_Target, dict[str, Any]]]:
        with self._lock:
            return [(t, i) for t in targets for i in self._infos.get(id(t), {}).values()]


class _Failures:
    """Failed nodes and calls, collected from every worker; or the first one raised."""

    def __init__(self, *, raise_first: bool) -> None:
        # A failure belongs to a target, or to an account and region before any target.
        self._failed: list[tuple[_Target | tuple[str, str | None], AWSRequestError]] = []
        self._denied: dict[tuple[int, str], tuple[_Target, AWSRequestError]] = {}
        self._raise_first = raise_first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._failed)

    def add(self, target: _Target | tuple[str, str | None], err: AWSRequestError) -> None:
        if self._raise_first:
            raise err
        with self._lock:
            self._failed.append((target, err))

    def deny(self, target: _Target, err: AWSRequestError) -> None:
        """A tag call refused for want of permission: one row per target and operation.

        Never raised, even with ``errors="raise"``: tags are extra, and a caller
        allowed to read patches but not tags still gets every patch.
        """
        with self._lock:
            if (id(target), err.operation) not in self._denied:
                self._denied[id(target), err.operation] = (target, err)
                self._failed.append((target, err))

    def denied(self, target: _Target, operation: str) -> bool:
        with self._lock:
            return (id(target), operation) in self._denied

    def warn_denied(self) -> None:
        """One warning per refused kind of tag call, from the caller's thread."""
        denied = sorted(self._denied.values(), key=lambda d: (d[1].operation, d[0].region))
        for target, err in denied:
            warnings.warn(
                f"{err.operation} was refused ({err.code}) in account {target.account_id} "
                f"and region {target.region}: the fleet has no tags from it, and its "
                f"patches and nodes are complete. Allow {PERMISSIONS[err.operation]}, "
                "or load with tags=False.",
                UserWarning,
                stacklevel=3,
            )

    def rows(self) -> list[dict[str, Any]]:
        """One row per failure, in a stable order whatever the threads did.

        Built at the end, when every account id is known; sorted by the order of
        the calls in a load, then account, region and node.
        """
        rows = [
            {
                "account_id": where.account_id if isinstance(where, _Target) else where[0],
                "region": where.region if isinstance(where, _Target) else where[1],
                "instance_id": err.instance_id,
                "operation": err.operation,
                "error_code": err.code,
                "message": str(err),
                "attempts": err.attempts,
            }
            for where, err in self._failed
        ]
        return sorted(
            rows,
            key=lambda r: (
                _OPERATIONS.index(r["operation"]) if r["operation"] in _OPERATIONS else 9,
                str(r["account_id"]),
                str(r["region"]),
                str(r["instance_id"]),
            ),
        )


def validate_node_filters(
    filters: NodeFilters | None,
) -> list[InstanceInformationStringFilterTypeDef]:
    """Check DescribeInstanceInformation filters and return the API's shape.

    Examples
    --------
    >>> validate_node_filters({"PingStatus": ["Online"], "tag:Env": ["prod"]})
    [{'Key': 'PingStatus', 'Values': ['Online']}, {'Key': 'tag:Env', 'Values': ['prod']}]
    """
    if filters is None:
        return []
    pairs: list[tuple[Any, Any]]
    if isinstance(filters, Mapping):
        pairs = list(filters.items())
    elif isinstance(filters, Sequence) and not isinstance(filters, str):
        pairs = [(f.get("Key"), f.get("Values")) for f in filters if isinstance(f, Mapping)]
        if len(pairs) != len(filters):
            raise ValidationError(
                f"node_filters {filters!r}: expected {{'Key': ..., 'Values': [...]}}"
            )
    else:
        raise ValidationError(
            f"node_filters {filters!r}: expected a dict such as {{'PingStatus': ['Online']}}"
        )
    checked: list[InstanceInformationStringFilterTypeDef] = []
    for key, values in pairs:
        if not isinstance(key, str) or not (key in _NODE_FILTER_KEYS or key.startswith("tag:")):
            raise ValidationError(
                f"node filter key {key!r} is not one DescribeInstanceInformation accepts: "
                + ", ".join(_NODE_FILTER_KEYS)
                + ", or tag:<name>"
            )
        if (
            isinstance(values, str)
            or not isinstance(values, Sequence)
            or not values
            or not all(isinstance(v, str) for v in values)
        ):
            raise ValidationError(
                f"node filter {key!r} values {values!r}: expected a non-empty list of strings"
            )
        checked.append({"Key": key, "Values": list(values)})
    return checked


def _sessions(
    profiles: Sequence[str] | None, boto3_sessions: Sequence[boto3.Session] | None
) -> list[boto3.Session]:
    if profiles is not None and boto3_sessions is not None:
        raise ValidationError("give profiles or boto3_sessions, not both")
    if boto3_sessions is not None:
        if not boto3_sessions or not all(isinstance(s, boto3.Session) for s in boto3_sessions):
            raise ValidationError(
                f"boto3_sessions {boto3_sessions!r}: expected a non-empty list of boto3.Session"
            )
        return list(boto3_sessions)
    if profiles is None:
        return [boto3.Session()]
    if isinstance(profiles, str) or not profiles:
        raise ValidationError(f"profiles {profiles!r}: expected a non-empty list of profile names")
    return [profile_session(profile) for profile in profiles]


def _check_regions(regions: Sequence[str] | Literal["enabled"] | None) -> list[str] | None:
    """The regions asked for: a list, or None for each account's enabled ones ("enabled")."""
    if regions is None or regions == "enabled":
        return None
    if isinstance(regions, str) or not regions:
        raise ValidationError(
            f"regions {regions!r}: expected a non-empty list of region names, or 'enabled'"
        )
    for region in regions:
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            raise ValidationError(f"region {region!r} is not a region name such as 'eu-west-1'")
    return list(regions)


def _home_region(session: boto3.Session, regions: list[str] | None, enabled: bool) -> list[str]:
    """A session's regions when none were named: its default region, else a ValidationError."""
    if regions is not None:
        return regions
    if session.region_name is None:
        raise ValidationError(
            "no region: pass regions=[...] or regions='enabled', or configure a default "
            f"region (profile {session.profile_name!r} has none)"
        )
    return [] if enabled else [session.region_name]


@dataclass
class _Account:
    """One account to load: its session, what the organization says of it, its targets.

    ``regions`` empty means every region enabled for the account (EC2 DescribeRegions).
    """

    session: boto3.Session | None
    regions: list[str]
    member: Member | None = None
    client: SSMClient | None = None
    error_code: str | None = None
    targets: list[_Target] = field(default_factory=list)


def _enabled_regions(session: boto3.Session) -> list[str]:
    ec2: Any = make_ec2_client(boto3_session=session, region=session.region_name or "us-east-1")
    return sorted(r["RegionName"] for r in ec2.describe_regions()["Regions"])


@dataclass
class _Opener:
    """Opens each account on the pool: assumes its role, finds its regions, makes its targets."""

    failures: _Failures
    pool_size: int
    organization: Organization | None = None
    source: boto3.Session | None = None
    sts: STSClient | None = None

    def _step(
        self, account: _Account, operation: str, call: Callable[[], Any], region: str | None
    ) -> Any:
        """One call that opens an account; a failure is the account's, and an error row."""
        try:
            return call()
        except (ClientError, BotoCoreError) as err:
            failed = aws_error(err, operation=operation)
            account.error_code = failed.code
            member_id = account.member.account_id if account.member is not None else ""
            self.failures.add((member_id, region), failed)
            return None

    def regions(self, account: _Account) -> tuple[boto3.Session | None, list[str]]:
        """The account's session and regions: its role assumed, its regions found.

        A member's AssumeRole is sent before its session is made, so that the
        accounts opening at once all have theirs in flight before any spends CPU on
        a session. Nothing (``None, []``) where a step failed: that is an error row.
        """
        if account.client is not None:
            return None, [account.client.meta.region_name]
        member = account.member
        session = account.session
        if session is not None:
            # Found now, before its clients are made in turn (one worker at a time): a
            # profile's credentials may come from a process, or from instance metadata.
            session.get_credentials()
        else:  # a member account, reached through the role
            assert member is not None and self.organization is not None
            assert self.source is not None and self.sts is not None
            credentials = role_credentials(
                self.source, self.sts, member.account_id, self.organization
            )
            if self._step(account, "AssumeRole", credentials.get_frozen_credentials, None) is None:
                return None, []
            region = self.source.region_name or self.sts.meta.region_name
            session = role_session(self.source, credentials, region=region)
        regions = account.regions or self._step(
            account, "DescribeRegions", lambda: _enabled_regions(session), session.region_name
        )
        return session, regions or []

    def target(self, account: _Account, session: boto3.Session | None, region: str) -> _Target:
        """The account's target in ``region``, with its SSM client."""
        if account.client is not None:
            return _Target(region, account.client)
        assert session is not None
        client = make_client(
            boto3_session=session, region=region, max_pool_connections=self.pool_size
        )
        return _Target(region, client, session)


def _describe_nodes(
    target: _Target, filters: list[InstanceInformationStringFilterTypeDef], found: _Found
) -> None:
    paginator = target.client.get_paginator("describe_instance_information")
    for restart in (False, True):
        try:
            pages = paginator.paginate(Filters=filters, PaginationConfig={"PageSize": 50})
            for page in pages:
                found.add(target, [dict(n) for n in page["InstanceInformationList"]])
            return
        except ClientError as err:
            if restart or err.response.get("Error", {}).get("Code") != "InvalidNextToken":
                raise


def _describe_patch_states(target: _Target, ids: list[str]) -> list[dict[str, Any]]:
    paginator = target.client.get_paginator("describe_instance_patch_states")
    states: list[dict[str, Any]] = []
    for page in paginator.paginate(InstanceIds=ids, PaginationConfig={"PageSize": 50}):
        states.extend(dict(s) for s in page["InstancePatchStates"])
    return states


def _attempt(
    target: _Target, failures: _Failures, operation: str, call: Callable[..., Any], *args: Any
) -> Any:
    """Run one AWS call for a target; a failure becomes an error row and None."""
    try:
        return call(*args)
    except (ClientError, BotoCoreError) as err:
        failures.add(target, aws_error(err, operation=operation))
        return None


def _tag_call(
    target: _Target,
    failures: _Failures,
    operation: str,
    call: Callable[..., NodeTags],
    *args: Any,
    instance_id: str | None = None,
) -> NodeTags:
    """One tag call for a target; a refusal stops that kind of call for the target."""
    if failures.denied(target, operation):
        return {}
    try:
        return call(*args)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in DENIED_CODES:
            failures.deny(target, aws_error(err, operation=operation))
        else:
            failures.add(target, aws_error(err, operation=operation, instance_id=instance_id))
    except BotoCoreError as err:
        failures.add(target, aws_error(err, operation=operation, instance_id=instance_id))
    return {}


def _sized(
    waiting: _Waiting, target: _Target, states: Future[list[dict[str, Any]] | None]
) -> None:
    """A target's patch-state counts are in: its waiting nodes take their order."""
    if not states.cancelled() and states.exception() is None:
        waiting.sized(target, states.result())


class _OneAtATime:
    """Jobs run one at a time, each by whichever worker is running them already.

    A worker with a job adds it and, unless another worker is running jobs, runs
    them until none is left; so no worker waits for its turn, idle, while it could
    be sending requests.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._running = False

    def run(self, job: Callable[[], _T]) -> Future[_T]:
        """``job``'s outcome, once it ran here or in the worker running jobs."""
        outcome: Future[_T] = Future()
        with self._lock:
            self._jobs.append((job, outcome))
            if self._running:
                return outcome
            self._running = True
        while True:
            with self._lock:
                if not self._jobs:
                    self._running = False
                    return outcome
                next_job, its_outcome = self._jobs.popleft()
            _run_into(its_outcome, next_job)


def _run_into(outcome: Future[_T], call: Callable[[], _T]) -> None:
    """Run ``call``, its result or exception into ``outcome``, as a pool would."""
    try:
        outcome.set_result(call())
    except BaseException as exc:  # the outcome's reader sees it
        outcome.set_exception(exc)


class _Tasks:
    """The pool, each task counted against its target until it ends (``_Target.hold``)."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    def submit(
        self, target: _Target, call: Callable[..., _T], /, *args: Any, **kwargs: Any
    ) -> Future[_T]:
        target.hold()
        future = self.pool.submit(call, *args, **kwargs)
        future.add_done_callback(lambda _: target.let_go())
        return future


def _tag_calls(
    nodes: list[tuple[_Target, dict[str, Any]]], failures: _Failures
) -> list[tuple[_Target, Callable[[], NodeTags]]]:
    """The tag calls of every node found, each with its target: EC2 ids in batches,
    hybrid ids one each.

    EC2 nodes are named by ARN, which needs the account id: where STS could not
    tell it, that failure is already an error row, and those nodes get no tags.
    """
    ids: dict[int, tuple[_Target, list[str]]] = {}
    for target, info in nodes:
        ids.setdefault(id(target), (target, []))[1].append(info["InstanceId"])
    calls: list[tuple[_Target, Callable[[], NodeTags]]] = []
    for target, listed in ids.values():
        account_id = target.account_id
        batches = (
            []
            if account_id is None
            else instance_arn_batches(
                listed,
                account_id=account_id,
                region=target.region,
                partition=target.client.meta.partition,
            )
        )
        if batches:
            ask = partial(_tag_call, target, failures, "GetResources", instance_tags)
            tagging = target.tagging_client()
            calls.extend((target, partial(ask, tagging, b)) for b in batches)
        # Its calls hold the tagging client until they end; the target needs it no more
        # (about 1,000 objects an account and region for every full collection to walk).
        target.tagging = None
        calls.extend(
            (
                target,
                partial(
                    _tag_call,
                    target,
                    failures,
                    "ListTagsForResource",
                    hybrid_tags,
                    target.client,
                    i,
                    instance_id=i,
                ),
            )
            for i in listed
            if i.startswith("mi-")
        )
    return calls


#: The event a target's listing request fires as it is sent (:func:`_look_up_account`).
_LISTING_SENT = "before-send.ssm.DescribeInstanceInformation"


def _flag(flag: threading.Event, **_: Any) -> None:
    """A botocore event handler that sets ``flag``."""
    flag.set()


def _look_up_account(
    target: _Target, known: Future[str | None], ask: Callable[[], str | None], *, tags: bool
) -> None:
    """Once a ``client=`` load's listing is being sent, make its tagging client (with
    tags), then ``ask`` STS for the account's id into ``known``.

    Such a load's STS and tagging clients each have a botocore session of their own
    (:func:`caller_account`): about 20 ms of CPU each, more than 0.1 s for the first
    in a process. The listing is the load's first request and nothing else can be
    sent before its answer: made during its round trip, they delay no request; made
    before it was sent, they delayed it (benchmark part 3 prints when the first
    request left). The tagging client is made even if no EC2 node is listed, then
    for nothing. ``known`` is resolved whatever happens: a tagging client that cannot
    be made here is tried again, and fails, at tag time.
    """
    target.sent.wait()
    try:
        if tags:
            target.tagging_client()
    finally:
        _run_into(known, ask)


def _account(target: _Target, sts: STSClient | None) -> str:
    """The account id of the target's credentials: ``sts`` asked, or without it a
    client of the target's SSM client's kind (:func:`caller_account`)."""
    if sts is None:
        return caller_account(target.client)
    return sts.get_caller_identity()["Account"]


def _discover(
    target: _Target,
    node_filters: list[InstanceInformationStringFilterTypeDef],
    instance_ids: list[str] | None,
    failures: _Failures,
    found: _Found,
) -> None:
    """List the target's nodes into ``found``: all of them, or those of ``instance_ids``.

    A listing that fails part way keeps the nodes listed before, is an error row,
    and sets the target's ``error_code``.
    """
    batches: list[list[InstanceInformationStringFilterTypeDef]] = (
        [list(node_filters)]
        if instance_ids is None
        else [
            [*node_filters, {"Key": "InstanceIds", "Values": instance_ids[i : i + _BATCH]}]
            for i in range(0, len(instance_ids), _BATCH)
        ]
    )
    for filters in batches:
        try:
            _describe_nodes(target, filters, found)
        except (ClientError, BotoCoreError) as err:
            failed = aws_error(err, operation="DescribeInstanceInformation")
            target.error_code = target.error_code or failed.code
            failures.add(target, failed)


def load_fleet(
    instance_ids: Sequence[str] | None = None,
    *,
    regions: Sequence[str] | Literal["enabled"] | None = None,
    organization: Organization | None = None,
    profiles: Sequence[str] | None = None,
    boto3_sessions: Sequence[boto3.Session] | None = None,
    node_filters: NodeFilters | None = None,
    patch_filters: PatchFilters | None = None,
    max_workers: int = 16,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    client: SSMClient | None = None,
    errors: Literal["collect", "raise"] = "collect",
    tags: bool = True,
) -> Fleet:
    """Load every node's patches in every account and region into a :class:`Fleet`.

    Parameters
    ----------
    instance_ids
        The nodes to load; by default every managed node that
        DescribeInstanceInformation lists (EC2 and hybrid ``mi-`` nodes).
    regions
        Regions to load in every account; ``"enabled"`` for every region enabled
        for each account (EC2 DescribeRegions, asked with that account's
        credentials); the session's default region when None.
    organization
        Every member account of an AWS Organization, each through an assumed role
        (see :class:`Organization`): its accounts are listed before any SSM call,
        and each account's failure (AssumeRole refused, a region not enabled) is
        its own rows in ``errors`` while the others load.
    profiles, boto3_sessions
        One profile name or one ready boto3 session per account; boto3's default
        session when both are None. Every pair of account and region is loaded.
    node_filters
        DescribeInstanceInformation filters, e.g. ``{"PingStatus": ["Online"]}``,
        ``{"PlatformTypes": ["Linux"]}`` or ``{"tag:Env": ["prod"]}``.
    patch_filters
        DescribeInstancePatches filters, as for :func:`load_instance_patches`.
    max_workers
        Threads loading at once, shared by every account and region; also the
        connection pool size of each client.
    progress
        A bar counting the nodes loaded, with rows, accounts done, errors and
        throttles: None shows it in a notebook or on an interactive terminal only,
        True and False force it on or off.
    cache_dir
        Folder where each finished node's rows are written as it completes; a
        rerun after an interruption loads only the nodes that are missing. A damaged
        checkpoint is named in a warning and its node loaded again.
    client
        A ready SSM client: loads its one account and region, instead of
        ``regions``/``profiles``/``boto3_sessions``.
    errors
        ``"collect"`` (default) reports failed nodes and calls in
        ``Fleet.errors``; ``"raise"`` raises the first failure instead.
    tags
        Also load every node's tags into ``Fleet.tags`` (the Resource Groups Tagging
        API's ``GetResources`` for EC2 nodes, 100 a call, and SSM
        ``ListTagsForResource`` for each hybrid node; permissions
        ``tag:GetResources`` and ``ssm:ListTagsForResource``). A
        refused tag call is one row in ``Fleet.errors`` and a warning per account,
        region and call, never a failure, whatever ``errors`` says. False makes
        no tag call.

    Returns
    -------
    Fleet
        ``patches``, ``nodes``, ``errors``, ``tags`` and ``accounts`` frames, and
        ``loaded_at``, when the load started, which the nodes' ``scan_age`` is
        measured to. Every node is either in ``patches`` with all its rows, or in
        ``errors`` (a failed tag call names its node but leaves its patches whole).

    Raises
    ------
    ValidationError
        A bad argument, before any AWS call: an instance id, a region, a filter,
        ``client`` that is not an SSM client, ``client`` or ``organization`` with
        ``regions``/``profiles``/``boto3_sessions`` they exclude, or a
        ``cache_dir`` that cannot be a folder.
    OrganizationError
        With ``organization``: its accounts cannot be listed (permission, or no
        organization), before any SSM call.
    AWSRequestError
        With ``errors="raise"``: the first failed call, AWS's error as ``__cause__``.

    Examples
    --------
    >>> import patchframe as pf
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> fleet.nodes["compliance"].value_counts().to_dict()
    {'NON_COMPLIANT': ..., 'COMPLIANT': ..., 'NOT_SCANNED': ...}
    >>> len(fleet.errors)
    0
    """
    ids = None
    if instance_ids is not None:
        if isinstance(instance_ids, str):
            raise ValidationError(
                f"instance_ids {instance_ids!r}: expected a list of node ids, not one string"
            )
        ids = list(dict.fromkeys(validate_instance_id(i) for i in instance_ids))
    checked_patch_filters = validate_patch_filters(patch_filters)
    checked_node_filters = validate_node_filters(node_filters)
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValidationError(f"max_workers {max_workers!r}: expected a whole number >= 1")
    if errors not in ("collect", "raise"):
        raise ValidationError(f"errors {errors!r}: expected 'collect' or 'raise'")
    if not isinstance(tags, bool):
        raise ValidationError(f"tags {tags!r}: expected True or False")
    if progress is not None and not isinstance(progress, bool):
        raise ValidationError(f"progress {progress!r}: expected True, False or None")
    named_regions = _check_regions(regions)
    failures = _Failures(raise_first=errors == "raise")
    opener = _Opener(failures, max_workers)
    members: list[Member] | None = None
    if organization is not None:
        if not isinstance(organization, Organization):
            raise ValidationError(
                f"organization {organization!r}: expected a patchframe.Organization"
            )
        if client is not None or profiles is not None or boto3_sessions is not None:
            raise ValidationError(
                "organization= loads the organization's accounts: leave client, profiles "
                "and boto3_sessions unset, or drop organization="
            )
        source = organization.session or boto3.Session()
        home = _home_region(source, named_regions, regions == "enabled")

        def prepare() -> None:
            """The source's STS client; and the service models that member sessions
            share (role_session), read here once, not in every worker at once as
            the accounts open. While the organization is listed."""
            opener.sts = make_sts_client(boto3_session=source, region=source.region_name)
            source.client("ssm", region_name=source.region_name)
            if tags:
                source.client(TAGGING, region_name=source.region_name)

        members = list_members(organization, meanwhile=prepare)
        opener.organization, opener.source = organization, source
        accounts = [
            _Account(source if m.caller else None, home, member=m) for m in members if m.loadable
        ]
        for member in members:
            if member.state is None and not member.skipped:
                failures.add(
                    (member.account_id, None),
                    AWSRequestError(
                        f"account {member.account_id} is not in the organization",
                        code="AccountNotFoundException",
                        operation="ListAccounts",
                    ),
                )
    elif client is not None:
        if regions is not None or profiles is not None or boto3_sessions is not None:
            raise ValidationError(
                "client= loads that client's one account and region: leave regions, "
                "profiles and boto3_sessions unset, or drop client="
            )
        client = check_ssm_client(client)
        accounts = [_Account(None, [], client=client)]
        # More threads than the client has connections only queue for them.
        max_workers = min(max_workers, client.meta.config.max_pool_connections or 10)  # type: ignore[attr-defined]
    else:
        accounts = [
            _Account(s, _home_region(s, named_regions, regions == "enabled"))
            for s in _sessions(profiles, boto3_sessions)
        ]
    cache = None if cache_dir is None else NodeCache(cache_dir, filters=checked_patch_filters)

    # What scan ages are measured to: the start of the load, before any node is listed.
    loaded_at = pd.Timestamp.now(tz="UTC")
    loads: list[Future[tuple[_Target, str, PatchColumns | None]]] = []
    state_batches: list[tuple[_Target, Future[Any]]] = []
    tag_calls: list[tuple[_Target, Future[NodeTags]]] = []

    texts: dict[str, str] = {}  # the load's patch texts, each held once (PatchColumns)

    # ``undo`` runs once the pool's threads are done (it exits after the pool).
    with (
        ExitStack() as undo,
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="patchframe") as pool,
    ):
        tasks = _Tasks(pool)
        stopping = threading.Event()

        waiting = _Waiting()

        def load_node() -> tuple[_Target, str, PatchColumns | None]:
            """Load the next node no worker took yet (:class:`_Waiting`), and ask for its
            target's tags if they are due: near the end of the load, queued before the
            node's pages, so that their one-request calls fill the workers the last
            nodes leave idle; before, by this worker once the node is loaded, so that
            the target lets its clients go then, not after the queue's length."""
            target, instance_id, tags_due = waiting.take()
            after_node = tags_due and waiting.count() > max_workers
            try:
                if tags_due and not after_node:
                    ask_for_tags(target)
                cols = fetch(target, instance_id)
                if after_node:
                    ask_for_tags(target, here=True)
                return target, instance_id, cols
            finally:
                target.let_go()

        def fetch(target: _Target, instance_id: str) -> PatchColumns | None:
            """A node's patches, from the checkpoint cache or the service; None if it failed."""
            key = target.key(instance_id) if cache is not None else None
            cached = cache.get(key) if cache is not None and key is not None else None
            if cached is not None:
                return cached
            try:
                cols = fetch_node_patches(
                    target.client, instance_id, filters=checked_patch_filters, texts=texts
                )
            except AWSRequestError as err:
                failures.add(target, err)
                return None
            if cache is not None and key is not None:
                cache.put(key, cols)
            return cols

        def hand_on(target: _Target, ids: list[str]) -> None:
            """A page of new nodes: their patch-state counts and their patches, to the pool."""
            if stopping.is_set():
                return
            # Waiting before their counts are asked for, which may come back at once.
            target.hold(len(ids))  # each node holds its target until its load ends
            waiting.add(target, ids)
            states = tasks.submit(
                target,
                _attempt,
                target,
                failures,
                "DescribeInstancePatchStates",
                _describe_patch_states,
                target,
                ids,
            )
            state_batches.append((target, states))
            states.add_done_callback(partial(_sized, waiting, target))
            loads.extend(pool.submit(load_node) for _ in ids)

        found = _Found(hand_on)

        def open_account(account: _Account) -> Future[list[Future[None]]]:
            """Open an account on the pool: assume its role and find its regions, then
            make its clients in turn (below); the next account's opening is queued
            once they are made."""
            try:
                session, regions = opener.regions(account)
            except BaseException:
                open_next()
                raise
            return making_clients.run(partial(open_targets, account, session, regions))

        # Accounts open several at a time (below) but make their clients one at a time: a
        # client costs 5-17 ms of CPU, and eight accounts making theirs together under the
        # GIL all finish late and slow every request in flight, where one at a time sends
        # the first account's discovery 40 ms in. Measured on 20 accounts, on an earlier
        # day: 88.4% of the 80 requests/s 16 workers carry, 87.5% without (medians of four
        # loads). The worker making clients makes those of every account whose role came
        # back meanwhile: no other worker waits for its turn rather than send requests. A
        # one-thread executor carries as much (90.1% both, medians of six loads each), but
        # it makes clients beside the workers rather than in one, so a region's discovery
        # may be queued after the previous region's nodes were taken, and accounts and
        # regions no longer share the workers in waves.
        making_clients = _OneAtATime()

        def account_lookup(
            account: _Account, target: _Target, session: boto3.Session | None
        ) -> tuple[Future[str | None], Callable[[], None] | None]:
            """The account's id, to come: the organization's, or STS's, asked by the
            task returned, to be queued behind the target's discovery."""
            known: Future[str | None] = Future()
            if account.member is not None:
                known.set_result(account.member.account_id)
                return known, None
            ask = partial(_attempt, target, failures, "GetCallerIdentity", _account, target)
            if session is not None:
                # Its client made here, as every client of the account's session is.
                sts = make_sts_client(boto3_session=session, region=target.region)
                return known, partial(_run_into, known, partial(ask, sts))
            # A client= load's lookup waits for its listing to be sent. Watched before the
            # discovery is queued, so that its first send is seen; not after the load.
            events, handler_id = target.client.meta.events, f"pf-sent-{id(target)}"
            events.register(_LISTING_SENT, partial(_flag, target.sent), unique_id=handler_id)
            undo.callback(events.unregister, _LISTING_SENT, unique_id=handler_id)
            return known, partial(_look_up_account, target, known, partial(ask, None), tags=tags)

        def open_targets(
            account: _Account, session: boto3.Session | None, regions: list[str]
        ) -> list[Future[None]]:
            """Each region's discovery queued as soon as its clients are made, while
            the next region's are made; then the next account's opening, before this
            one's outcome is set (which the caller waits for)."""
            try:
                known: Future[str | None] | None = None
                discoveries: list[Future[None]] = []
                for region in regions:
                    target = opener.target(account, session, region)
                    account.targets.append(target)
                    target.limiter.attach(target.client)
                    if account.client is not None:  # the caller's: not paced after the load
                        undo.callback(target.limiter.detach, account.client)
                    if tags and target.session is not None:
                        # Made here, as every client of the account's session is: a boto3
                        # session makes clients safely in one thread only (5 ms each).
                        target.tagging_client()
                    lookup = None
                    if known is None:
                        known, lookup = account_lookup(account, target, session)
                    target.account = known
                    discoveries.append(tasks.submit(target, discover, target))
                    if lookup is not None:  # queued after the discovery, which it never waits on
                        tasks.submit(target, lookup)
                if ids is None:  # each discovery queues its targets' tasks itself
                    for target in account.targets:
                        target.let_go()
                return discoveries
            finally:
                open_next()

        # Accounts open max_workers / 2 at a time, each opening queueing the next when it
        # ends, so that the CPU an account's session and clients cost is spent while
        # other accounts' requests are in flight, not by every worker at once.
        unopened = deque(accounts)
        openings: list[Future[Future[list[Future[None]]]]] = []
        opening_lock = threading.Lock()
        opening_at_once = max(2, max_workers // 2)

        def open_next() -> None:
            with opening_lock:
                if unopened and not stopping.is_set():
                    openings.append(pool.submit(open_account, unopened.popleft()))

        def discover(target: _Target) -> None:
            """List a target's nodes; ask for their tags if none waits (see below)."""
            try:
                _discover(target, checked_node_filters, ids, failures, found)
            finally:
                target.sent.set()  # even if no request went out
            if waiting.listed(target):
                ask_for_tags(target)

        def ask_for_tags(target: _Target, *, here: bool = False) -> None:
            """Ask for a target's tags, once its listing ended and its last node was
            taken (:class:`_Waiting`): ``here``, in this worker if they are one or two
            calls, else on the pool."""
            if tags and ids is None and not stopping.is_set():
                calls = _tag_calls(found.nodes([target]), failures)
                inline = here and len(calls) <= 2
                for owner, call in calls:
                    if inline:
                        outcome: Future[NodeTags] = Future()
                        _run_into(outcome, call)
                    else:
                        outcome = tasks.submit(owner, call)
                    tag_calls.append((owner, outcome))

        try:
            for _ in range(min(len(accounts), opening_at_once)):
                open_next()
            discoveries: list[Future[None]] = []
            done = 0
            while done < len(openings):  # each opening queues the next before it ends
                discoveries.extend(openings[done].result().result())
                done += 1
            for discovery in discoveries:
                discovery.result()
            targets = [t for a in accounts for t in a.targets]
            nodes = found.nodes(targets)
            if ids is not None and targets:
                _report_unknown(ids, nodes, targets[0], failures)
            if tags and ids is not None:  # the named nodes found, in any account and region
                tag_calls = [(t, tasks.submit(t, call)) for t, call in _tag_calls(nodes, failures)]
            if ids is not None:  # nothing more is queued for any target
                for target in targets:
                    target.let_go()
            columns = _gather(loads, nodes, failures, accounts, progress)
            states = {
                target.key(s["InstanceId"]): s
                for target, future in state_batches
                for s in future.result() or []
            }
            node_tags = {
                target.key(instance_id): pairs
                for target, future in tag_calls
                for instance_id, pairs in future.result().items()
            }
        finally:
            stopping.set()
            for future in loads:  # after errors="raise" or Ctrl-C: start nothing new
                future.cancel()
            for _, tag_call in tag_calls:
                tag_call.cancel()
    failures.warn_denied()
    names = {m.account_id: m.name for m in members or []}
    fleet = _assemble(nodes, states, columns, failures, loaded_at=loaded_at, names=names)
    keys = [target.key(info["InstanceId"]) for target, info in nodes]
    rows = [(k, key, value) for k in keys for key, value in node_tags.get(k, [])]
    return dataclasses.replace(
        fleet,
        tags=build_tags(rows),
        accounts=build_accounts(_account_rows(accounts, members), fleet.nodes),
    )


def _account_rows(accounts: list[_Account], members: list[Member] | None) -> list[AccountRow]:
    """One row per account listed (organization) or loaded (sessions, client)."""
    rows: dict[str, AccountRow] = {}
    for member in members or []:
        rows[member.account_id] = AccountRow(
            member.account_id, member.name, member.state, (), None, loaded=False
        )
    for account in accounts:
        account_id = (
            account.member.account_id
            if account.member is not None
            else next((t.account_id for t in account.targets if t.account_id), None)
        )
        if account_id is None:  # STS failed: the errors frame says so
            continue
        regions = tuple(sorted(t.region for t in account.targets if t.error_code is None))
        failed = [t.error_code for t in account.targets if t.error_code is not None]
        error_code = account.error_code or (failed[0] if failed and not regions else None)
        known = rows.get(account_id)
        rows[account_id] = AccountRow(
            account_id,
            known.account_name if known else None,
            known.state if known else None,
            tuple(sorted({*regions, *(known.regions if known else ())})),
            error_code,
            loaded=bool(regions) or (known.loaded if known else False),
        )
    return list(rows.values())


def _gather(
    loads: list[Future[tuple[_Target, str, PatchColumns | None]]],
    nodes: list[tuple[_Target, dict[str, Any]]],
    failures: _Failures,
    accounts: list[_Account],
    progress: bool | None,
) -> dict[NodeKey, PatchColumns]:
    """Every loaded node's columns, as the loads finish, with a progress bar."""
    columns: dict[NodeKey, PatchColumns] = {}
    owner = {id(t): n for n, a in enumerate(accounts) for t in a.targets}
    targets = [t for a in accounts for t in a.targets]
    # An account is done when its last node is; one without nodes already is.
    pending = Counter(owner[id(t)] for t, _ in nodes)
    done = len(accounts) - len(pending)
    with progress_bar(len(loads), description="patches", unit="node", progress=progress) as bar:
        rows = 0
        for future in as_completed(loads):
            target, instance_id, cols = future.result()
            if cols is not None:
                columns[target.key(instance_id)] = cols
                rows += len(cols)
            pending[owner[id(target)]] -= 1
            done += pending[owner[id(target)]] == 0
            throttles = sum(t.limiter.throttles for t in targets)
            bar.set_postfix(
                rows=rows,
                accounts=f"{done}/{len(accounts)}",
                errors=len(failures),
                throttles=throttles,
            )
            bar.update()
    return columns


def _report_unknown(
    ids: list[str],
    nodes: list[tuple[_Target, dict[str, Any]]],
    target: _Target,
    failures: _Failures,
) -> None:
    seen = {info["InstanceId"] for _, info in nodes}
    for instance_id in ids:
        if instance_id not in seen:
            failures.add(
                target,
                NodeNotFoundError(
                    f"node {instance_id} is not a managed node in any account and region loaded",
                    code="InvalidInstanceId",
                    operation="DescribeInstanceInformation",
                    instance_id=instance_id,
                ),
            )


def _assemble(
    nodes: list[tuple[_Target, dict[str, Any]]],
    states: dict[NodeKey, dict[str, Any]],
    columns: dict[NodeKey, PatchColumns],
    failures: _Failures,
    *,
    loaded_at: pd.Timestamp,
    names: Mapping[str, str | None],
) -> Fleet:
    keys = [target.key(info["InstanceId"]) for target, info in nodes]
    infos = {target.key(info["InstanceId"]): info for target, info in nodes}
    loaded = [k for k in keys if k in columns]
    # The node columns of the patches frame (_schema.NODE_PATCH_COLUMNS), per node.
    node_fields = {
        "computer_name": "ComputerName",
        "platform_type": "PlatformType",
        "platform_name": "PlatformName",
        "platform_version": "PlatformVersion",
    }
    node_columns: dict[str, list[str | None]] = {
        name: [infos[k].get(field) or None for k in loaded] for name, field in node_fields.items()
    }
    node_columns["patch_group"] = [states.get(k, {}).get("PatchGroup") for k in loaded]
    node_columns["baseline_id"] = [states.get(k, {}).get("BaselineId") for k in loaded]
    patches = build_patches([(k, columns[k]) for k in loaded], node_columns=node_columns)
    rows = {k: len(columns[k]) for k in loaded}
    frame = build_nodes(keys, infos, states, rows, loaded_at=loaded_at, account_names=names)
    return Fleet(
        patches=patches, nodes=frame, errors=build_errors(failures.rows()), loaded_at=loaded_at
    )
