"""A local Systems Manager endpoint: the SSM JSON 1.1 protocol over HTTP on 127.0.0.1.

:class:`Emulator` serves :class:`~patchframe.sandbox.sample.WireFleet` objects to real boto3
clients (and to ``aws ... --endpoint-url``) the way the service does: the operations
``DescribeInstanceInformation``, ``DescribeInstancePatchStates``,
``DescribeInstancePatches`` and ``ListTagsForResource`` with the service's paging,
filters, validation and error shapes, plus STS ``GetCallerIdentity`` and
``AssumeRole`` and EC2 ``DescribeTags`` and ``DescribeRegions`` (the query protocol:
a form-encoded POST, an XML answer), and the Resource Groups Tagging API's
``GetResources`` (in Smithy RPC v2 CBOR, a POST to
``/service/ResourceGroupsTaggingAPI_20170126/operation/GetResources``, and in JSON 1.1,
as botocore speaks either). Serving a
:class:`~patchframe.sandbox.organization.WireOrganization`, it also answers AWS
Organizations' ``DescribeOrganization``, ``ListRoots``, ``ListAccounts``,
``ListAccountsForParent`` and ``ListOrganizationalUnitsForParent``. Timestamps go
out as epoch seconds.

Tags
    Each fleet's ``tags`` are served by EC2 ``DescribeTags`` for EC2 (``i-``) nodes,
    with EC2's filters (``resource-id``, ``resource-type``, ``key``, ``value``), its
    limit of 200 filter values a call, ``MaxResults`` 5 to 1,000 and ``NextToken``
    paging; by the tagging API's ``GetResources`` for EC2 nodes named by ARN
    (``arn:<partition>:ec2:<region>:<account>:instance/<id>``) in a
    ``ResourceARNList`` of 1 to 100, each tagged node once, in the order asked, its
    tags in the fleet's order, and ARNs naming nothing served (an untagged or hybrid
    node, an unknown id, another account or region) left out, as AWS does; and by
    SSM ``ListTagsForResource`` (``ManagedInstance``) for hybrid (``mi-``) nodes.
    ``GetResources`` refuses, with ``InvalidParameterException``, an ARN list that is
    empty, longer than 100 or given with ``ResourceTypeFilters``, ``TagFilters``,
    ``ResourcesPerPage``, ``TagsPerPage`` or ``PaginationToken``, an entry that is no
    ARN or is of another partition than the request's region, and any request
    without an ARN list: the emulator serves no listing by filters. With
    :attr:`Emulator.deny_tags` all three are refused, as for a caller without
    ``ec2:DescribeTags``, ``tag:GetResources`` and ``ssm:ListTagsForResource``: EC2
    with ``UnauthorizedOperation`` (HTTP 403), the others with
    ``AccessDeniedException``.

Accounts and regions
    Each fleet is one (account, region). The region comes from the request's SigV4
    credential scope. The account comes from the access key id: a key whose last
    twelve characters are digits speaks for that account (:meth:`Emulator.credentials`
    makes such keys, ``AKIAEMUL`` + account id); any other key, or an unsigned
    request, speaks for the first fleet's account. A pair with no fleet answers like
    a region with no nodes. EC2 ``DescribeRegions`` answers the regions the account
    has fleets in.

Organizations
    With ``organization=``, every account's fleets are served, and the default
    account is the management account, in the organization's first region. The
    listing calls answer the management account only (a member gets
    ``AccessDeniedException``, an account outside the organization, or any account
    of an emulator without one, ``AWSOrganizationsNotInUseException``), in pages of
    1 to 20 (10 by default). ``DescribeOrganization`` answers every member.
    STS ``AssumeRole`` of ``arn:aws:iam::<account>:role/<role_name>`` gives
    temporary credentials for an ACTIVE account whose role does not refuse, with
    the organization's external id if it has one; otherwise ``AccessDenied``.
    Their access key id ends with the account id, so they speak for it. A request
    signed with a security token the emulator never issued is refused
    (``UnrecognizedClientException``, EC2 ``AuthFailure``, STS
    ``InvalidClientTokenId``), and so is one signed for a region the account has
    disabled; one whose credentials have expired, after their ``DurationSeconds``
    or after :attr:`Emulator.credential_lifetime`, gets ``ExpiredTokenException``
    (EC2 ``RequestExpired``, STS ``ExpiredToken``). EC2 ``DescribeRegions`` answers
    the account's enabled regions, and with ``AllRegions`` its disabled ones too.

Faults
    Every answer, and every dropped connection, leaves ``latency`` seconds after its
    request line arrived, the emulator's own work included (reading the headers and
    body too), as a service's response time is seen by its client; concurrent
    requests wait side by side. ``rate_limit`` is a token bucket of ``burst``
    requests per service, account and region (SSM, EC2 and tagging apart, as AWS
    limits each API on its own), shared by all connections; a request beyond it
    gets ``ThrottlingException``; it can be changed while serving. ``error_rate``
    answers a share of requests with ``InternalServerError`` (HTTP 500), ``drop_rate``
    closes the connection of a share without answering, and ``expire_rate`` makes a
    share of NextTokens expired when used (``InvalidNextToken``). Faults other than
    latency hit SSM, EC2 and tagging requests (EC2 throttles with
    ``RequestLimitExceeded``, tagging with ``ThrottledException`` and fails with
    ``InternalServiceException``), not STS or Organizations. Draws come from one
    generator seeded by
    ``seed``, in the order requests arrive. Faults never change the data: a retried
    request, or a restarted pagination, can succeed.

Run one from a shell with ``python -m patchframe.sandbox.emulator`` (or ``patchframe serve``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import configparser
import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import itertools
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import string
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, overload
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import boto3
import botocore.session
import cbor2
from botocore.config import Config
from botocore.exceptions import UnknownRegionError

from .._schema import STATES, normalise_state
from ..aws import client_config
from ..exceptions import ValidationError
from ._patch_catalog import available_patches, baseline_platform, effective_patches
from .organization import WireAccount, WireOrganization, synthetic_organization
from .sample import WireFleet, sample_fleet, synthetic_fleet

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

__all__ = [
    "Emulator",
    "EmulatorStats",
    "add_serve_arguments",
    "main",
    "sample_client",
    "serve",
]

_INSTANCE_ID_PATTERN = r"(^mi-[0-9a-f]{17}$)|(^i-(\w{8}|\w{17})$)"
_INSTANCE_ID = re.compile(_INSTANCE_ID_PATTERN, re.ASCII)
_BASELINE_ID = re.compile(r"^[a-zA-Z0-9_\-:/]{20,128}$", re.ASCII)
# AWS-managed baselines are named by ARN; an account's own by their pb- id alone.
_AWS_MANAGED = re.compile(r"arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:patchbaseline/pb-[0-9a-f]{17}")
_JSON = "application/x-amz-json-1.1"
#: The largest request body served, in bytes: far over any SSM request, far under harm.
_MAX_BODY = 4 << 20
_DIGITS = re.compile(r"[0-9]+")
_TARGET_PREFIX = "AmazonSSM."
_ORGANIZATIONS_PREFIX = "AWSOrganizationsV20161128."
_TAGGING_PREFIX = "ResourceGroupsTaggingAPI_20170126."
# Each JSON service's codes for a throttled request and an internal error.
_FAULT_CODES = {
    "ssm": ("ThrottlingException", "InternalServerError"),
    "tagging": ("ThrottledException", "InternalServiceException"),
}
_CBOR = "application/cbor"
# Smithy RPC v2 CBOR: the service and operation are in the path, the protocol in a header.
_RPC_V2_PATH = re.compile(r"/service/([^/?]+)/operation/([^/?]+)")
_SMITHY_HEADERS = (("smithy-protocol", "rpc-v2-cbor"),)
_ARN = re.compile(r"arn:([a-z][a-z0-9-]*):([a-z0-9-]+):([a-z0-9-]*):(\d{12}|aws)?:(.+)", re.ASCII)
_ARN_MAX = 1011  # characters in a ResourceARN, as the model says
_EC2_INSTANCE_ARN = re.compile(r"arn:[a-z0-9-]+:ec2:([a-z0-9-]+):(\d{12}):instance/(.+)", re.ASCII)
_ARN_LIST_MAX = 100  # ARNs in one GetResources
# GetResources members that a ResourceARNList excludes.
_LISTING_MEMBERS = (
    "ResourceTypeFilters",
    "TagFilters",
    "ResourcesPerPage",
    "TagsPerPage",
    "PaginationToken",
)
_ORGANIZATIONS_OPERATIONS = (
    "DescribeOrganization",
    "ListRoots",
    "ListAccounts",
    "ListAccountsForParent",
    "ListOrganizationalUnitsForParent",
)
_PARENT_ID = re.compile(r"(r-[0-9a-z]{4,32})|(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})", re.ASCII)
_STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
_ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role/([\w+=,.@/-]+)", re.ASCII)
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
# Per protocol, the refusal of credentials that are not valid (a security token never
# issued, or a region the account has not enabled), then of expired ones.
_REFUSALS = {
    "json": (
        (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            400,
        ),
        ("ExpiredTokenException", "The security token included in the request is expired", 400),
    ),
    "ec2": (
        ("AuthFailure", "AWS was not able to validate the provided access credentials", 401),
        ("RequestExpired", "Request has expired.", 400),
    ),
    "sts": (
        ("InvalidClientTokenId", "The security token included in the request is invalid.", 403),
        ("ExpiredToken", "The security token included in the request is expired", 400),
    ),
}
# The endpoint is local: never send it through a proxy from the environment.
_LOCAL = Config(proxies={}, max_pool_connections=16)
_SCOPE = re.compile(r"Credential=([^/\s,]+)/\d{8}/([^/\s,]+)/")
_DUMMY_SECRET = "patchframe-emulator-dummy-secret"
_PATCH_FILTER_KEYS = ("Classification", "KBId", "Severity", "State")
_EC2_VERSION = "2016-11-15"
_EC2_NAMESPACE = f"http://ec2.amazonaws.com/doc/{_EC2_VERSION}/"
_EC2_FILTER_VALUES = 200  # EC2's limit of filter values in one call
_EC2_TAG_FIELDS = {  # DescribeTags filter -> the tag field it matches
    "resource-id": "resourceId",
    "resource-type": "resourceType",
    "key": "key",
    "value": "value",
}
_TAG_RESOURCE_TYPES = (
    "Document",
    "ManagedInstance",
    "MaintenanceWindow",
    "Parameter",
    "PatchBaseline",
    "OpsItem",
    "OpsMetadata",
    "Automation",
    "Association",
)

# Instance information filter keys and the entry field each one matches.
_INFO_FIELDS = {
    "InstanceIds": "InstanceId",
    "AgentVersion": "AgentVersion",
    "PingStatus": "PingStatus",
    "PlatformTypes": "PlatformType",
    "ActivationIds": "ActivationId",
    "IamRole": "IamRole",
    "ResourceType": "ResourceType",
    "AssociationStatus": "AssociationStatus",
}
_INFO_ENUMS = {
    "PingStatus": ("Online", "ConnectionLost", "Inactive"),
    "PlatformTypes": ("Windows", "Linux", "MacOS"),
    "ResourceType": ("ManagedInstance", "EC2Instance"),
}


@dataclass(frozen=True)
class EmulatorStats:
    """A snapshot of an emulator's counters.

    Attributes
    ----------
    requests
        Requests received per operation, faulted and refused ones included.
    throttled, errors, dropped, expired
        Requests throttled (``ThrottlingException``, EC2's ``RequestLimitExceeded``,
        tagging's ``ThrottledException``), answered an internal error (HTTP 500),
        dropped without an answer, and refused for an expired NextToken.
    pages
        ``DescribeInstancePatches`` pages answered per instance id.
    expired_credentials
        Requests refused because their temporary credentials had expired.

    Examples
    --------
    >>> with Emulator() as emulator:
    ...     _ = emulator.client().describe_instance_information()
    ...     emulator.stats.requests
    {'DescribeInstanceInformation': 1}
    """

    requests: dict[str, int]
    throttled: int
    errors: int
    dropped: int
    expired: int
    pages: dict[str, int]
    expired_credentials: int

    @property
    def total(self) -> int:
        """All requests received."""
        return sum(self.requests.values())


class _ApiError(Exception):
    def __init__(
        self, code: str, message: str, status: int = 400, *, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.reason = code, message, status, reason


class _Reply(NamedTuple):
    status: int
    content_type: str
    body: bytes
    request_id: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # sent besides Content-Type and the request id


class _Wire(NamedTuple):
    """How a protocol of parameter maps (JSON 1.1, Smithy RPC v2 CBOR) spells a
    request, an answer and an error."""

    name: str
    content_type: str
    loads: Callable[[bytes], object]
    dumps: Callable[[object], bytes]
    malformed: tuple[type[Exception], ...]  # what ``loads`` raises for a broken body
    map_word: str  # what a request body must be
    headers: tuple[tuple[str, str], ...] = ()

    def error(
        self, code: str, message: str, status: int = 400, *, reason: str | None = None
    ) -> _Reply:
        answer = {"__type": code, "message": message}
        if reason is not None:
            answer["Reason"] = reason
        return _Reply(status, self.content_type, self.dumps(answer), headers=self.headers)


_JSON_WIRE = _Wire(
    "JSON",
    _JSON,
    json.loads,
    lambda value: json.dumps(value).encode(),
    (json.JSONDecodeError, UnicodeDecodeError),
    "an object",
)
_CBOR_WIRE = _Wire(
    "CBOR",
    _CBOR,
    cbor2.loads,
    cbor2.dumps,
    (cbor2.CBORDecodeError,),
    "a CBOR map",
    _SMITHY_HEADERS,
)


def _listed(values: Sequence[object]) -> str:
    # The service prints lists the way Java does.
    return "[" + ", ".join(str(v) for v in values) + "]"


class _Validation:
    """Collects constraint violations and reports them the way the service does."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, value: object, member: str, rule: str) -> None:
        shown = "null" if value is None else f"'{value}'"
        self.problems.append(f"Value {shown} at '{member}' failed to satisfy constraint: {rule}")

    def max_results(
        self, value: object, low: int, high: int, default: int, member: str = "maxResults"
    ) -> int:
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            raise _ApiError("SerializationException", f"{member} must be a number")
        if value < low:
            self.add(value, member, f"Member must have value greater than or equal to {low}")
        elif value > high:
            self.add(value, member, f"Member must have value less than or equal to {high}")
        return value

    def check(self, code: str = "ValidationException") -> None:
        if self.problems:
            n = len(self.problems)
            message = f"{n} validation error{'s' * (n > 1)} detected: " + "; ".join(self.problems)
            raise _ApiError(code, message)


class _Tokens:
    """Opaque NextTokens bound to the request that earned them.

    A token carries an offset, a digest of the request's scope (account, region,
    operation, filters) and a serial number; a MAC makes it tamper-proof. Whether
    a token has expired is a pure function of the seed and its serial number.
    """

    def __init__(self, seed: int, expire_rate: float) -> None:
        self._key = hashlib.sha256(f"patchframe emulator {seed}".encode()).digest()
        self._serials = itertools.count(1)
        self._expire_rate = expire_rate

    def _digest(self, scope: str) -> str:
        return hashlib.blake2b(scope.encode(), key=self._key, digest_size=8).hexdigest()

    def issue(self, scope: str, offset: int) -> str:
        body = json.dumps([self._digest(scope), offset, next(self._serials)]).encode()
        mac = hmac.new(self._key, body, "sha256").digest()[:16]
        return base64.b64encode(mac + body).decode()

    def offset(self, token: object, scope: str, *, expires: bool = True) -> int:
        """Return where ``token`` resumes; raise InvalidNextToken if it can't."""
        if token is None or token == "":
            return 0
        invalid = _ApiError("InvalidNextToken", "The specified token isn't valid.")
        try:
            raw = base64.b64decode(str(token), validate=True)
        except (binascii.Error, ValueError):
            raise invalid from None
        mac, body = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, "sha256").digest()[:16]):
            raise invalid
        digest, offset, serial = json.loads(body)
        if digest != self._digest(scope):
            raise invalid
        draw = hashlib.blake2b(str(serial).encode(), key=self._key, digest_size=8).digest()
        if expires and int.from_bytes(draw, "big") / 2**64 < self._expire_rate:
            raise _Expired("InvalidNextToken", "The specified token has expired.")
        return int(offset)


class _Expired(_ApiError):
    pass


class _Caller(NamedTuple):
    """Who signed a request, where, and with which security token, if any."""

    account: str
    region: str
    key: str
    token: str | None


class _Grant(NamedTuple):
    """Temporary credentials issued by AssumeRole."""

    access_key: str
    arn: str
    user_id: str
    issued: float  # time.monotonic()
    lasts: int  # seconds


class _Region:
    """One fleet, indexed for serving; patch rows are serialised once, when first asked."""

    def __init__(self, fleet: WireFleet) -> None:
        self.fleet = fleet
        self.states = {state["InstanceId"]: state for state in fleet.patch_states}
        self.known = set(fleet.instance_ids) | set(fleet.patches)
        self.hybrid = {i for i in fleet.instance_ids if i.startswith("mi-")}
        self.ec2 = {i for i in fleet.instance_ids if i.startswith("i-")}
        self._encoded: dict[str, list[str]] = {}

    def encoded(self, instance_id: str) -> list[str]:
        rows = self._encoded.get(instance_id)
        if rows is None:
            rows = [json.dumps(row) for row in self.fleet.patches.get(instance_id, [])]
            self._encoded[instance_id] = rows
        return rows


class _TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def set_rate(self, rate: float) -> None:
        self._refill()  # tokens earned so far at the old rate are kept
        self.rate = rate

    def take(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _check_number(
    name: str, value: object, *, low: float, high: float | None = None, whole: bool = False
) -> None:
    kind = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValidationError(f"{name} must be a {'whole ' * whole}number, not {value!r}")
    # NaN compares false both ways; infinity is no latency or rate either
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        within = f"between {low} and {high}" if high is not None else f"{low} or more"
        raise ValidationError(f"{name} must be {within}, not {value!r}")


def _check_rate_limit(rate_limit: object) -> None:
    if rate_limit is None:
        return
    _check_number("rate_limit", rate_limit, low=0)
    if rate_limit == 0:
        raise ValidationError("rate_limit must be more than 0 requests a second, or None")


def _text_values(values: object) -> list[str] | None:
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return values
    return None


def _instance_filter(
    key: object, values: object, tags: dict[str, dict[str, str]]
) -> Callable[[dict[str, Any]], bool]:
    """Build the predicate of one DescribeInstanceInformation filter."""
    if not isinstance(key, str) or not key:
        raise _ApiError("InvalidFilterKey", f"The filter key {key!r} is not valid.")
    # The older filter list spells its keys in camelCase; both lists accept either.
    name = key if key.startswith("tag") else key[0].upper() + key[1:]
    wanted = _text_values(values)
    if wanted is None:
        raise _ApiError(
            "InvalidInstanceInformationFilterValue",
            f"The filter {key} needs a list of one or more string values.",
        )
    if name == "tag-key":
        return lambda node: any(k in tags.get(node["InstanceId"], {}) for k in wanted)
    if name.startswith("tag:") and len(name) > 4:
        tag = name[4:]
        return lambda node: tags.get(node["InstanceId"], {}).get(tag) in wanted
    if name not in _INFO_FIELDS:
        allowed = ", ".join([*_INFO_FIELDS, "tag:<key>", "tag-key"])
        raise _ApiError(
            "InvalidFilterKey", f"The filter key {key} is not valid: use one of {allowed}."
        )
    allowed_values = _INFO_ENUMS.get(name)
    for value in wanted:
        if allowed_values is not None and value not in allowed_values:
            raise _ApiError(
                "InvalidInstanceInformationFilterValue",
                f"{value} is not a valid value for {name}: use one of "
                f"{', '.join(allowed_values)}.",
            )
        if name == "InstanceIds" and not _INSTANCE_ID.match(value):
            raise _ApiError(
                "InvalidInstanceInformationFilterValue", f"{value} is not a valid instance id."
            )
    field, accepted = _INFO_FIELDS[name], set(wanted)
    return lambda node: node.get(field) in accepted


def _patch_filter(item: object) -> Callable[[dict[str, Any]], bool]:
    """Build the predicate of one DescribeInstancePatches filter."""
    key = item.get("Key") if isinstance(item, dict) else None
    values = item.get("Values") if isinstance(item, dict) else None
    if key not in _PATCH_FILTER_KEYS:
        raise _ApiError(
            "InvalidFilter",
            f"The filter key {key} is not valid: use one of {', '.join(_PATCH_FILTER_KEYS)}.",
        )
    wanted = _text_values(values)
    if wanted is None:
        raise _ApiError("InvalidFilter", f"The filter {key} needs a list of one or more values.")
    if key == "State":
        states = {normalise_state(value) for value in wanted}
        unknown = sorted(states - set(STATES))
        if unknown:
            raise _ApiError(
                "InvalidFilter", f"The filter value {unknown[0]} is not a valid patch state."
            )
        # Rows may spell their state either way; compare in the model's spelling.
        return lambda row: normalise_state(row["State"]) in states
    accepted = set(wanted)
    return lambda row: row.get(key) in accepted


class Emulator:
    """A local SSM endpoint serving one or more fleets over real HTTP.

    Parameters
    ----------
    fleets
        One fleet or several (one per account and region); None serves the sample
        (unless ``organization`` is given).
    organization
        An organization to serve instead of ``fleets``: AWS Organizations' listing
        calls, STS AssumeRole into its accounts, and every account's fleets (see
        the module's notes). The default account is the management account, in the
        organization's first region.
    credential_lifetime
        Seconds after which temporary credentials from AssumeRole stop working
        (refused as expired) although the Expiration they were issued with is
        later, as when a role session is revoked or clocks disagree; None for their
        whole DurationSeconds. Can be changed while serving.
    latency
        Seconds from a request's arrival (its request line read) to its answer, or to
        its dropped connection, the emulator's own work included.
    rate_limit, burst
        Requests per second per service (SSM, EC2, tagging), account and region, and the
        bucket's capacity; None for no limit. :attr:`rate_limit` can be changed while serving.
    error_rate, drop_rate, expire_rate
        Shares of requests answered an internal error (HTTP 500: InternalServerError,
        tagging's InternalServiceException), of requests dropped without an answer,
        and of NextTokens that have expired when used.
    max_patch_results
        The largest MaxResults DescribeInstancePatches accepts: 100 as the model
        says, or 50 as the service has been seen to.
    deny_tags
        Refuse the tag calls (EC2 DescribeTags, tagging GetResources, SSM
        ListTagsForResource) as AWS refuses a caller without permission for them;
        can be changed while serving.
    seed
        Seeds the fault draws.
    host, port
        Where to listen; port 0 picks a free port.

    Examples
    --------
    >>> with Emulator() as emulator:
    ...     ssm = emulator.client()
    ...     page = ssm.describe_instance_patches(InstanceId="i-0e1f2a3b4c5d6e7f8", MaxResults=100)
    ...     len(page["Patches"]), "NextToken" in page
    (100, True)

    An organization, listed by its management account, and a role assumed in a member:

    >>> org = synthetic_organization(3, nodes_per_account=2)
    >>> with Emulator(organization=org) as emulator:
    ...     session = emulator.session()
    ...     listed = session.client("organizations").list_accounts()["Accounts"]
    ...     role = f"arn:aws:iam::{listed[1]['Id']}:role/PatchframeReadOnly"
    ...     keys = session.client("sts").assume_role(RoleArn=role, RoleSessionName="demo")
    ...     member = emulator.client(**{
    ...         "aws_" + name: keys["Credentials"][key]
    ...         for name, key in [("access_key_id", "AccessKeyId"),
    ...                           ("secret_access_key", "SecretAccessKey"),
    ...                           ("session_token", "SessionToken")]})
    ...     nodes = member.describe_instance_information()["InstanceInformationList"]
    >>> [account["Name"] for account in listed], len(nodes)
    (['management', 'prod-payments', 'dev-sandbox'], 1)
    """

    def __init__(
        self,
        fleets: WireFleet | Iterable[WireFleet] | None = None,
        *,
        organization: WireOrganization | None = None,
        credential_lifetime: float | None = None,
        latency: float = 0.0,
        rate_limit: float | None = None,
        burst: int = 5,
        error_rate: float = 0.0,
        drop_rate: float = 0.0,
        expire_rate: float = 0.0,
        max_patch_results: int = 100,
        deny_tags: bool = False,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if organization is not None:
            if fleets is not None:
                raise ValidationError("give an emulator fleets or an organization, not both")
            if not isinstance(organization, WireOrganization):
                raise ValidationError(f"organization: {organization!r} is not a WireOrganization")
            fleets = organization.fleets
        elif fleets is None:
            fleets = [sample_fleet()]
        elif isinstance(fleets, WireFleet):
            fleets = [fleets]
        served = list(fleets) if isinstance(fleets, Iterable) else [fleets]
        if not served and organization is None:
            raise ValidationError("an emulator needs at least one fleet")
        for fleet in served:
            if not isinstance(fleet, WireFleet):
                raise ValidationError(f"fleets: {fleet!r} is not a WireFleet")
        for name, share in (
            ("error_rate", error_rate),
            ("drop_rate", drop_rate),
            ("expire_rate", expire_rate),
        ):
            _check_number(name, share, low=0, high=1)
        _check_number("latency", latency, low=0)
        _check_rate_limit(rate_limit)
        _check_number("burst", burst, low=1, whole=True)
        _check_number("max_patch_results", max_patch_results, low=10, high=100, whole=True)
        _check_number("port", port, low=0, high=65535, whole=True)
        self._regions: dict[tuple[str, str], _Region] = {}
        for fleet in served:
            where = (fleet.account_id, fleet.region)
            if where in self._regions:
                raise ValidationError(f"two fleets for account {where[0]} in {where[1]}")
            self._regions[where] = _Region(fleet)
        self._organization = organization
        self._accounts: dict[str, WireAccount] = {}
        if organization is None:
            self._default = (served[0].account_id, served[0].region)
        else:
            self._default = (organization.management_account_id, organization.regions[0])
            self._accounts = {account.account_id: account for account in organization.accounts}
        self.credential_lifetime = credential_lifetime
        self._grants: dict[str, _Grant] = {}
        self.latency, self._rate_limit, self.burst = latency, rate_limit, burst
        self.error_rate, self.drop_rate, self.expire_rate = error_rate, drop_rate, expire_rate
        if not isinstance(deny_tags, bool):
            raise ValidationError(f"deny_tags must be True or False, not {deny_tags!r}")
        self.max_patch_results, self.seed = max_patch_results, seed
        #: Whether the tag calls are refused, as for a caller without permission for them.
        self.deny_tags = deny_tags
        self.host, self.port = host, port
        self._tokens = _Tokens(seed, expire_rate)
        self._random = random.Random(seed)
        self._buckets: dict[tuple[str, str, str], _TokenBucket] = {}
        self._lock = threading.Lock()
        self._session: boto3.session.Session | None = None
        self._session_lock = threading.Lock()
        self._profiles: str | None = None  # the folder of session()'s config files
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: Counter[str] = Counter()
        self._pages: Counter[str] = Counter()
        self._throttled = self._errors = self._dropped = self._expired = 0
        self._expired_credentials = 0

    @property
    def organization(self) -> WireOrganization | None:
        """The organization served, or None."""
        return self._organization

    @property
    def credential_lifetime(self) -> float | None:
        """Seconds temporary credentials work for, at most; None for their DurationSeconds.

        Set it while serving to make credentials already issued expire early.

        Examples
        --------
        >>> emulator = Emulator(organization=synthetic_organization(2), credential_lifetime=5)
        >>> emulator.credential_lifetime = 0.5
        >>> emulator.credential_lifetime
        0.5
        """
        return self._credential_lifetime

    @credential_lifetime.setter
    def credential_lifetime(self, seconds: float | None) -> None:
        if seconds is not None:
            _check_number("credential_lifetime", seconds, low=0)
        self._credential_lifetime = seconds

    @property
    def rate_limit(self) -> float | None:
        """Requests per second per account and region; None for no limit.

        Set it while serving to change the limit of every account and region at
        once, as a service whose quota drops and comes back does; tokens already
        saved in a bucket are kept, up to ``burst``.

        Examples
        --------
        >>> with Emulator(rate_limit=40, burst=1) as emulator:
        ...     emulator.rate_limit = 0.1
        ...     ssm = emulator.client(config=Config(retries={"total_max_attempts": 1}))
        ...     _ = ssm.describe_instance_information()
        ...     _ = ssm.describe_instance_information()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        botocore.errorfactory.ThrottlingException: ...Rate exceeded
        """
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, rate_limit: float | None) -> None:
        _check_rate_limit(rate_limit)
        with self._lock:
            self._rate_limit = rate_limit
            if rate_limit is None:
                self._buckets.clear()
            else:
                for bucket in self._buckets.values():
                    bucket.set_rate(rate_limit)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The endpoint URL, e.g. ``http://127.0.0.1:49152``; valid once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> Emulator:
        """Start serving in a background thread; return the emulator itself.

        Examples
        --------
        >>> emulator = Emulator().start()
        >>> emulator.url.startswith("http://127.0.0.1:")
        True
        >>> emulator.stop()
        """
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="patchframe-emulator",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection.

        Examples
        --------
        >>> emulator = Emulator().start()
        >>> emulator.stop()
        >>> emulator.stop()  # stopping twice is harmless
        """
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None
        with self._session_lock:
            if self._profiles is not None:
                shutil.rmtree(self._profiles, ignore_errors=True)
            self._profiles = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ ground truth

    def fleet(self, account_id: str | None = None, region: str | None = None) -> WireFleet:
        """Return the fleet served for an account and region: the ground truth.

        Parameters
        ----------
        account_id
            Defaults to the first fleet's account (an organization's: its management
            account).
        region
            Defaults to the account's first fleet's region. A pair with no fleet
            gets an empty one.

        Examples
        --------
        >>> emulator = Emulator()
        >>> emulator.fleet().region, emulator.fleet("111122223333").n_patches
        ('eu-west-1', 0)
        """
        account, where = self._where(account_id, region)
        found = self._regions.get((account, where))
        return found.fleet if found is not None else WireFleet(account, where)

    def _where(self, account_id: str | None, region: str | None) -> tuple[str, str]:
        account = account_id or self._default[0]
        if region is None:
            regions = [r for a, r in self._regions if a == account]
            region = regions[0] if regions else self._default[1]
        return account, region

    def credentials(self, account_id: str | None = None) -> dict[str, str]:
        """Dummy credentials that make the emulator answer as ``account_id``.

        The access key id is ``AKIAEMUL`` followed by the account id; the secret is
        a fixed dummy. Without an account, the first fleet's account.

        Examples
        --------
        >>> Emulator().credentials("111122223333")["aws_access_key_id"]
        'AKIAEMUL111122223333'
        """
        account = account_id or self._default[0]
        if not (isinstance(account, str) and len(account) == 12 and account.isdigit()):
            raise ValidationError(f"account_id must be 12 digits, not {account!r}")
        return {"aws_access_key_id": f"AKIAEMUL{account}", "aws_secret_access_key": _DUMMY_SECRET}

    @overload
    def client(
        self,
        service: Literal["ssm"] = "ssm",
        *,
        account_id: str | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> SSMClient: ...

    @overload
    def client(
        self,
        service: Literal["sts"],
        *,
        account_id: str | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> STSClient: ...

    @overload
    def client(
        self,
        service: Literal["ec2", "resourcegroupstaggingapi"],
        *,
        account_id: str | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> BaseClient: ...

    def client(
        self,
        service: str = "ssm",
        *,
        account_id: str | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A boto3 client bound to this emulator, with dummy credentials.

        Parameters
        ----------
        service
            ``"ssm"``, ``"sts"``, ``"ec2"`` (DescribeTags and DescribeRegions),
            ``"resourcegroupstaggingapi"`` (GetResources) or ``"organizations"``.
        account_id, region
            Whom the client speaks for and where; default to the first fleet's
            account and that account's first region.
        **kwargs
            Passed to ``boto3.session.Session.client``; a ``config=`` is merged over
            patchframe's configuration, as ``botocore_config=`` is by
            :func:`~patchframe.aws.make_client`, so the user's ``AWS_RETRY_MODE`` and
            ``AWS_MAX_ATTEMPTS`` win over patchframe's retry defaults here too. Keys
            given here (``aws_access_key_id``, ``aws_session_token``, ...) replace
            the dummy ones, e.g. temporary credentials from ``AssumeRole``.

        Examples
        --------
        >>> with Emulator() as emulator:
        ...     emulator.client("sts", account_id="111122223333").get_caller_identity()["Account"]
        '111122223333'
        """
        account, where = self._where(account_id, region)
        keys = self.credentials(account)
        # Otherwise the client is configured as patchframe's own factory does it.
        config = _LOCAL
        if kwargs.get("config") is not None:
            config = config.merge(kwargs["config"])
        with self._session_lock:  # boto3 sessions are not safe to share across threads
            if self._session is None:
                self._session = boto3.session.Session()
            kwargs["config"] = client_config(boto3_session=self._session, botocore_config=config)
            return self._session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.url,
                region_name=where,
                **{**keys, **kwargs},
            )

    def session(
        self, account_id: str | None = None, *, region: str | None = None
    ) -> boto3.Session:
        """A boto3 session whose every client goes to this emulator, as ``account_id``.

        Clients of any service made from it, by anyone, reach the emulator with
        dummy long-term credentials of the account, in ``region``, and bypass any
        proxy from the environment. It reads a profile (``endpoint_url``,
        ``region`` and the keys) from a config file of the emulator's own, removed
        by :meth:`stop`: a botocore session given the same ``config_file`` and
        ``profile`` variables reaches the emulator too, though through the
        environment's proxies, if any. ``AWS_ENDPOINT_URL`` in the environment wins
        over the profile's endpoint, as botocore decides.

        Parameters
        ----------
        account_id, region
            As for :meth:`client`.

        Examples
        --------
        >>> with Emulator() as emulator:
        ...     session = emulator.session("111122223333", region="us-east-1")
        ...     session.client("sts").get_caller_identity()["Account"], session.region_name
        ('111122223333', 'us-east-1')
        """
        account, where = self._where(account_id, region)
        keys = self.credentials(account)
        url = self.url  # refuses an emulator that is not running
        profile = f"patchframe-emulator-{account}-{where}"
        with self._session_lock:
            if self._profiles is None:
                self._profiles = tempfile.mkdtemp(prefix="patchframe-emulator-")
            path = os.path.join(self._profiles, f"{profile}.ini")
            if not os.path.exists(path):
                config = configparser.ConfigParser()
                config[f"profile {profile}"] = {"endpoint_url": url, "region": where, **keys}
                with open(path, "w", encoding="utf-8") as file:
                    config.write(file)
        core = botocore.session.Session()
        core.set_config_variable("config_file", path)
        core.set_config_variable("profile", profile)
        core.set_default_client_config(_LOCAL)
        return boto3.Session(botocore_session=core, region_name=where)

    # ------------------------------------------------------------------ counters

    @property
    def stats(self) -> EmulatorStats:
        """A snapshot of the counters (see :class:`EmulatorStats`)."""
        with self._lock:
            return EmulatorStats(
                dict(self._requests),
                self._throttled,
                self._errors,
                self._dropped,
                self._expired,
                dict(self._pages),
                self._expired_credentials,
            )

    def reset_stats(self) -> None:
        """Set every counter back to zero.

        Examples
        --------
        >>> emulator = Emulator()
        >>> emulator.reset_stats()
        >>> emulator.stats.total
        0
        """
        with self._lock:
            self._requests, self._pages = Counter(), Counter()
            self._throttled = self._errors = self._dropped = self._expired = 0
            self._expired_credentials = 0

    # ------------------------------------------------------------------ requests

    def _caller(self, authorization: str, token: str | None) -> _Caller:
        match = _SCOPE.search(authorization)
        if match is None:
            return _Caller(*self._default, "", token)
        key, region = match.groups()
        account = key[-12:] if key[-12:].isdigit() and len(key) >= 12 else self._default[0]
        return _Caller(account, region, key, token)

    def _receive(self, operation: str) -> None:
        """Count a request that draws no fault."""
        with self._lock:
            self._requests[operation] += 1

    def _refusal(
        self, protocol: str, caller: _Caller, *, regional: bool = True
    ) -> _ApiError | None:
        """The error refusing the caller's credentials in ``protocol``, if any: a
        security token never issued (or not for this key), an expired one, or (for
        a regional service) a region the account has disabled."""
        invalid, expired = _REFUSALS[protocol]
        if caller.token is not None:
            grant = self._grants.get(caller.token)
            if grant is None or grant.access_key != caller.key:
                return _ApiError(*invalid)
            lasts: float = grant.lasts
            if self._credential_lifetime is not None:
                lasts = min(lasts, self._credential_lifetime)
            if time.monotonic() - grant.issued > lasts:
                with self._lock:
                    self._expired_credentials += 1
                return _ApiError(*expired)
        account = self._accounts.get(caller.account)
        if regional and account is not None and caller.region in account.disabled_regions:
            return _ApiError(*invalid)
        return None

    def _fault(
        self, service: str, operation: str, account: str, region: str
    ) -> Literal["throttled", "dropped", "error"] | None:
        """Count a request and draw its fault, if any.

        Each service has its own rate limit per account and region, as AWS has.
        """
        with self._lock:
            self._requests[operation] += 1
            drop, error = self._random.random(), self._random.random()
            allowed = True
            if self._rate_limit is not None:
                bucket = self._buckets.get((service, account, region))
                if bucket is None:
                    bucket = self._buckets[service, account, region] = _TokenBucket(
                        self._rate_limit, self.burst
                    )
                allowed = bucket.take()
        with self._lock:
            if not allowed:
                self._throttled += 1
                return "throttled"
            if drop < self.drop_rate:
                self._dropped += 1
                return "dropped"
            if error < self.error_rate:
                self._errors += 1
                return "error"
        return None

    def _answer(self, path: str, headers: Message, body: bytes) -> _Reply | None:
        """Answer one request; None means drop the connection without answering.

        The protocol comes from the request's path and headers: a POST to
        ``/service/<service>/operation/<operation>`` is Smithy RPC v2 CBOR (the tagging
        API, as current botocore speaks it), a form-encoded one the query protocol
        (EC2, STS), any other JSON 1.1, routed by its X-Amz-Target."""
        caller = self._caller(
            headers.get("Authorization", ""), headers.get("X-Amz-Security-Token")
        )
        target, content_type = headers.get("X-Amz-Target"), headers.get("Content-Type", "")
        rpc = _RPC_V2_PATH.fullmatch(path)
        if rpc is not None or path.startswith("/service/"):
            operation = ".".join(rpc.groups()) if rpc is not None else path
            return self._tagging(caller, operation, body, rpc_v2=headers)
        if target is None and content_type.startswith("application/x-www-form-urlencoded"):
            # The query protocol: EC2 and STS tell themselves apart by their API version.
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            if form.get("Version") == [_EC2_VERSION]:
                return self._ec2(caller, form)
            return self._sts(caller, form)
        target = target or ""
        if target.startswith(_ORGANIZATIONS_PREFIX):
            return self._organizations(caller, target, body)
        if target.startswith(_TAGGING_PREFIX):
            return self._tagging(caller, target, body)
        operation = (
            target.removeprefix(_TARGET_PREFIX) if target.startswith(_TARGET_PREFIX) else ""
        )
        go, stop = self._json_gate("ssm", operation or target, caller, _error)
        if not go:
            return stop
        handler = self._operations.get(operation)
        if handler is None:
            return _unknown_operation(target)
        where = self._regions.get(caller[:2]) or _Region(WireFleet(*caller[:2]))
        return self._json_call(body, lambda params: handler(self, where, params))

    def _json_gate(
        self,
        service: Literal["ssm", "tagging"],
        operation: str,
        caller: _Caller,
        error: Callable[..., _Reply],
    ) -> tuple[bool, _Reply | None]:
        """Whether a request of a JSON service goes on to its operation, or else the
        answer that stops it (None: drop the connection): its credentials refused, or a
        fault drawn. ``error`` spells an error in the request's protocol."""
        refusal = self._refusal("json", caller)
        if refusal is not None:
            self._receive(operation)
            return False, error(refusal.code, refusal.message, refusal.status)
        fault = self._fault(service, operation, caller.account, caller.region)
        throttled, internal = _FAULT_CODES[service]
        if fault == "throttled":
            return False, error(throttled, "Rate exceeded")
        if fault == "dropped":
            return False, None
        if fault == "error":
            return False, error(internal, "An internal error occurred.", 500)
        return True, None

    def _json_call(
        self, body: bytes, call: Callable[[dict[str, Any]], bytes], wire: _Wire = _JSON_WIRE
    ) -> _Reply:
        """Answer a request of a JSON-like ``wire``: ``call`` with its parameters, or the
        error it raises."""
        try:
            params = wire.loads(body) if body else {}
            if not isinstance(params, dict):
                raise _ApiError(
                    "SerializationException", f"The request body must be {wire.map_word}"
                )
            return _Reply(200, wire.content_type, call(params), headers=wire.headers)
        except wire.malformed:
            return wire.error(
                "SerializationException", f"The request body is not valid {wire.name}"
            )
        except _Expired as exc:
            with self._lock:
                self._expired += 1
            return wire.error(exc.code, exc.message, exc.status)
        except _ApiError as exc:
            return wire.error(exc.code, exc.message, exc.status, reason=exc.reason)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # A member of a shape no check above foresaw: an answer, never a dropped line.
            return wire.error("ValidationException", f"1 validation error detected: {exc}")

    def _scope(self, where: _Region, operation: str, request: object) -> str:
        return json.dumps(
            [where.fleet.account_id, where.fleet.region, operation, request], sort_keys=True
        )

    def _describe_instance_information(self, where: _Region, params: dict[str, Any]) -> bytes:
        validation = _Validation()
        limit = validation.max_results(params.get("MaxResults"), 5, 50, default=50)
        validation.check()
        old, new = params.get("InstanceInformationFilterList") or [], params.get("Filters") or []
        tags = where.fleet.tags
        predicates = [
            *(_instance_filter(f.get("key"), f.get("valueSet"), tags) for f in old),
            *(_instance_filter(f.get("Key"), f.get("Values"), tags) for f in new),
        ]
        scope = self._scope(where, "DescribeInstanceInformation", [old, new])
        offset = self._tokens.offset(params.get("NextToken"), scope)
        nodes = [node for node in where.fleet.instances if all(p(node) for p in predicates)]
        answer: dict[str, Any] = {"InstanceInformationList": nodes[offset : offset + limit]}
        if offset + limit < len(nodes):
            answer["NextToken"] = self._tokens.issue(scope, offset + limit)
        return json.dumps(answer).encode()

    def _describe_instance_patch_states(self, where: _Region, params: dict[str, Any]) -> bytes:
        validation = _Validation()
        ids = params.get("InstanceIds")
        if ids is None:
            validation.add(None, "instanceIds", "Member must not be null")
            ids = []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _ApiError("SerializationException", "InstanceIds must be a list of strings")
        if len(ids) > 50:
            validation.add(
                _listed(ids), "instanceIds", "Member must have length less than or equal to 50"
            )
        if any(not _INSTANCE_ID.match(i) for i in ids):
            rule = f"Member must satisfy regular expression pattern: {_INSTANCE_ID_PATTERN}"
            validation.add(
                _listed(ids), "instanceIds", f"Member must satisfy constraint: [{rule}]"
            )
        limit = validation.max_results(params.get("MaxResults"), 10, 100, default=50)
        validation.check()
        scope = self._scope(where, "DescribeInstancePatchStates", ids)
        offset = self._tokens.offset(params.get("NextToken"), scope)
        states = [where.states[i] for i in dict.fromkeys(ids) if i in where.states]
        answer: dict[str, Any] = {"InstancePatchStates": states[offset : offset + limit]}
        if offset + limit < len(states):
            answer["NextToken"] = self._tokens.issue(scope, offset + limit)
        return json.dumps(answer).encode()

    def _describe_instance_patches(self, where: _Region, params: dict[str, Any]) -> bytes:
        validation = _Validation()
        instance_id = params.get("InstanceId")
        if instance_id is None:
            validation.add(None, "instanceId", "Member must not be null")
        elif not isinstance(instance_id, str):
            raise _ApiError("SerializationException", "InstanceId must be a string")
        elif not _INSTANCE_ID.match(instance_id):
            rule = f"Member must satisfy regular expression pattern: {_INSTANCE_ID_PATTERN}"
            validation.add(instance_id, "instanceId", rule)
        filters = params.get("Filters") or []
        if not isinstance(filters, list):
            raise _ApiError("SerializationException", "Filters must be a list")
        if len(filters) > 5:
            validation.add(
                _listed(filters), "filters", "Member must have length less than or equal to 5"
            )
        for position, item in enumerate(filters, start=1):
            if not isinstance(item, dict):
                rule = "Member must be a structure with Key and Values"
                validation.add(item, f"filters.{position}.member", rule)
        largest = self.max_patch_results
        limit = validation.max_results(
            params.get("MaxResults"), 10, largest, default=min(50, largest)
        )
        validation.check()
        assert isinstance(instance_id, str)  # the validation above made sure
        if instance_id not in where.known:
            raise _ApiError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
        predicates = [_patch_filter(item) for item in filters]
        scope = self._scope(where, "DescribeInstancePatches", [instance_id, filters])
        offset = self._tokens.offset(params.get("NextToken"), scope)
        rows = where.encoded(instance_id)
        if predicates:
            raw = where.fleet.patches.get(instance_id, [])
            rows = [rows[i] for i, row in enumerate(raw) if all(p(row) for p in predicates)]
        body = '{"Patches":[' + ",".join(rows[offset : offset + limit]) + "]"
        if offset + limit < len(rows):
            body += ',"NextToken":' + json.dumps(self._tokens.issue(scope, offset + limit))
        with self._lock:
            self._pages[instance_id] += 1
        return (body + "}").encode()

    def _list_tags_for_resource(self, where: _Region, params: dict[str, Any]) -> bytes:
        validation = _Validation()
        kind, resource = params.get("ResourceType"), params.get("ResourceId")
        if kind is None:
            validation.add(None, "resourceType", "Member must not be null")
        elif kind not in _TAG_RESOURCE_TYPES:
            rule = f"Member must satisfy enum value set: {_listed(_TAG_RESOURCE_TYPES)}"
            validation.add(kind, "resourceType", rule)
        if resource is None:
            validation.add(None, "resourceId", "Member must not be null")
        elif not isinstance(resource, str):
            raise _ApiError("SerializationException", "ResourceId must be a string")
        validation.check()
        account, region = where.fleet.account_id, where.fleet.region
        if self.deny_tags:
            raise _ApiError(
                "AccessDeniedException",
                f"User: arn:aws:iam::{account}:user/patchframe is not authorized to perform: "
                f"ssm:ListTagsForResource on resource: arn:aws:ssm:{region}:{account}:"
                f"managed-instance/{resource} because no identity-based policy allows the "
                "ssm:ListTagsForResource action",
            )
        # Only hybrid nodes are managed instances; this emulator knows no other resources.
        if kind != "ManagedInstance" or resource not in where.hybrid:
            raise _ApiError(
                "InvalidResourceId",
                f"The resource ID {resource} is not valid. Verify the ID and try again.",
            )
        tags = where.fleet.tags.get(str(resource), {})
        listed = [{"Key": key, "Value": value} for key, value in tags.items()]
        return json.dumps({"TagList": listed}).encode()

    def _baseline_fleets(self, where: _Region, baseline_id: str) -> list[WireFleet]:
        """The fleets that may use ``baseline_id``: the caller's own, and for an
        AWS-managed baseline (named by ARN) every account's in the region."""
        if not _AWS_MANAGED.match(baseline_id):
            return [where.fleet]
        return [
            r.fleet for (_, region), r in self._regions.items() if region == where.fleet.region
        ]

    def _describe_effective_patches_for_patch_baseline(
        self, where: _Region, params: dict[str, Any]
    ) -> bytes:
        validation = _Validation()
        baseline_id = params.get("BaselineId")
        if baseline_id is None:
            validation.add(None, "baselineId", "Member must not be null")
        elif not isinstance(baseline_id, str):
            raise _ApiError("SerializationException", "BaselineId must be a string")
        elif not _BASELINE_ID.fullmatch(baseline_id):
            rule = f"Member must satisfy regular expression pattern: {_BASELINE_ID.pattern}"
            validation.add(baseline_id, "baselineId", rule)
        limit = validation.max_results(params.get("MaxResults"), 1, 100, default=100)
        validation.check()
        assert isinstance(baseline_id, str)  # the validation above made sure
        fleets = self._baseline_fleets(where, baseline_id)
        platform = baseline_platform(fleets, baseline_id)
        if platform is None:
            raise _ApiError(
                "DoesNotExistException", f"Patch Baseline {baseline_id} does not exist."
            )
        if platform != "Windows":
            raise _ApiError(
                "UnsupportedOperatingSystem",
                "The operating system you specified is not supported, or the operation is "
                "not supported for the operating system.",
            )
        scope = self._scope(where, "DescribeEffectivePatchesForPatchBaseline", baseline_id)
        offset = self._tokens.offset(params.get("NextToken"), scope)
        rows = effective_patches(fleets, baseline_id)
        answer: dict[str, Any] = {"EffectivePatches": rows[offset : offset + limit]}
        if offset + limit < len(rows):
            answer["NextToken"] = self._tokens.issue(scope, offset + limit)
        with self._lock:
            self._pages[baseline_id] += 1
        return json.dumps(answer).encode()

    def _describe_available_patches(self, where: _Region, params: dict[str, Any]) -> bytes:
        validation = _Validation()
        filters = params.get("Filters") or []
        if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
            raise _ApiError("SerializationException", "Filters must be a list of objects")
        if len(filters) > 5:
            validation.add(
                _listed(filters), "filters", "Member must have length less than or equal to 5"
            )
        limit = validation.max_results(params.get("MaxResults"), 1, 100, default=100)
        validation.check()
        products = [
            value
            for item in filters
            if item.get("Key") == "PRODUCT"
            for value in (item.get("Values") or [])
        ]
        if not products:
            # The service cannot tell which Linux patches are meant without a product.
            raise _ApiError(
                "ValidationException",
                "A PRODUCT filter is required to describe available patches.",
            )
        fleets = [
            r.fleet for (_, region), r in self._regions.items() if region == where.fleet.region
        ]
        rows = [patch for product in products for patch in available_patches(fleets, str(product))]
        scope = self._scope(where, "DescribeAvailablePatches", filters)
        offset = self._tokens.offset(params.get("NextToken"), scope)
        answer: dict[str, Any] = {"Patches": rows[offset : offset + limit]}
        if offset + limit < len(rows):
            answer["NextToken"] = self._tokens.issue(scope, offset + limit)
        with self._lock:
            self._pages[",".join(map(str, products))] += 1
        return json.dumps(answer).encode()

    _operations: ClassVar[dict[str, Callable[[Emulator, _Region, dict[str, Any]], bytes]]] = {
        "DescribeInstanceInformation": _describe_instance_information,
        "DescribeInstancePatchStates": _describe_instance_patch_states,
        "DescribeInstancePatches": _describe_instance_patches,
        "ListTagsForResource": _list_tags_for_resource,
        "DescribeEffectivePatchesForPatchBaseline": (
            _describe_effective_patches_for_patch_baseline
        ),
        "DescribeAvailablePatches": _describe_available_patches,
    }

    # ------------------------------------------------------------------ Organizations

    def _organizations(self, caller: _Caller, target: str, body: bytes) -> _Reply:
        """Answer AWS Organizations' JSON 1.1 protocol: its listing calls."""
        operation = target.removeprefix(_ORGANIZATIONS_PREFIX)
        self._receive(operation)
        refusal = self._refusal("json", caller, regional=False)
        if refusal is not None:
            return _error(refusal.code, refusal.message, refusal.status)
        if operation not in _ORGANIZATIONS_OPERATIONS:
            return _unknown_operation(target)
        return self._json_call(
            body,
            lambda params: json.dumps(
                self._organization_answer(caller, operation, params)
            ).encode(),
        )

    def _organization_answer(
        self, caller: _Caller, operation: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        org = self._organization
        if org is None or caller.account not in self._accounts:
            raise _ApiError(
                "AWSOrganizationsNotInUseException",
                "Your account is not a member of an organization.",
            )
        if operation == "DescribeOrganization":  # any member may
            return {"Organization": _organization_entry(org)}
        if caller.account != org.management_account_id:
            raise _ApiError(
                "AccessDeniedException", "You don't have permissions to access this resource."
            )
        limit = params.get("MaxResults", 10)
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise _ApiError("SerializationException", "MaxResults must be a number")
        if not 1 <= limit <= 20:
            bound = "exceeds the maximum" if limit > 20 else "is less than the minimum"
            reason = "MAX_VALUE_EXCEEDED" if limit > 20 else "MIN_VALUE_EXCEEDED"
            raise _ApiError(
                "InvalidInputException",
                f"You provided a value that {bound} allowed value.",
                reason=reason,
            )
        parent = params.get("ParentId") if operation.endswith("ForParent") else None
        if operation.endswith("ForParent"):
            _check_parent(org, parent)
        key, items = _organization_items(org, operation, parent)
        scope = json.dumps([caller.account, operation, parent])
        try:
            offset = self._tokens.offset(params.get("NextToken"), scope, expires=False)
        except _ApiError:
            raise _ApiError(
                "InvalidInputException",
                "You specified an invalid value for nextToken.",
                reason="INVALID_NEXT_TOKEN",
            ) from None
        answer: dict[str, Any] = {key: items[offset : offset + limit]}
        if offset + limit < len(items):
            answer["NextToken"] = self._tokens.issue(scope, offset + limit)
        return answer

    # ------------------------------------------------------------------ Resource Groups Tagging

    def _tagging(
        self, caller: _Caller, target: str, body: bytes, *, rpc_v2: Message | None = None
    ) -> _Reply | None:
        """Answer the Resource Groups Tagging API: GetResources, in JSON 1.1 or, given
        the request's headers as ``rpc_v2``, in Smithy RPC v2 CBOR."""
        wire = _JSON_WIRE if rpc_v2 is None else _CBOR_WIRE
        error = wire.error
        operation = (
            target.removeprefix(_TAGGING_PREFIX) if target.startswith(_TAGGING_PREFIX) else ""
        )
        go, stop = self._json_gate("tagging", operation or target, caller, error)
        if not go:
            return stop
        if operation != "GetResources":
            unknown = "com.amazon.coral.service#UnknownOperationException"
            return error(unknown, f"Unknown operation {target}")
        refusal = None if rpc_v2 is None else _cbor_refusal(rpc_v2, body)
        if refusal is not None:
            return refusal
        return self._json_call(
            body, lambda params: wire.dumps(self._get_resources(caller, params)), wire
        )

    def _get_resources(self, caller: _Caller, params: dict[str, Any]) -> dict[str, Any]:
        """GetResources by ResourceARNList: the tags of the EC2 nodes the ARNs name."""
        if self.deny_tags:
            arn = self._identity(caller)[0]
            raise _ApiError(
                "AccessDeniedException",
                f"User: {arn} is not authorized to perform: tag:GetResources because no "
                "identity-based policy allows the tag:GetResources action",
            )
        arns = params.get("ResourceARNList")
        if arns is None:
            raise _ApiError(
                "InvalidParameterException",
                "This emulator serves GetResources with a ResourceARNList (1 to "
                f"{_ARN_LIST_MAX} ARNs) only, not listings by ResourceTypeFilters, "
                "TagFilters or pages.",
            )
        if not isinstance(arns, list):
            raise _ApiError("SerializationException", "ResourceARNList must be a list of ARNs")
        if not 1 <= len(arns) <= _ARN_LIST_MAX:
            raise _ApiError(
                "InvalidParameterException",
                f"ResourceARNList must hold 1 to {_ARN_LIST_MAX} ARNs, not {len(arns)}.",
            )
        combined = [member for member in _LISTING_MEMBERS if params.get(member) is not None]
        if combined:
            raise _ApiError(
                "InvalidParameterException",
                f"You can't specify both ResourceARNList and {' or '.join(combined)} in the "
                "same request.",
            )
        partition = _partition(caller.region)
        for arn in arns:
            parts = _ARN.fullmatch(arn) if isinstance(arn, str) and len(arn) <= _ARN_MAX else None
            if parts is None:
                raise _ApiError(
                    "InvalidParameterException",
                    f"ResourceARNList: {arn!r} is not an ARN; expected "
                    "arn:<partition>:<service>:<region>:<account-id>:<resource>.",
                )
            if parts[1] != partition:
                raise _ApiError(
                    "InvalidParameterException",
                    f"The partition of {arn} is {parts[1]}, not {partition}, the partition "
                    f"of {caller.region} where the request was made.",
                )
        where = self._regions.get(caller[:2]) or _Region(WireFleet(*caller[:2]))
        mappings = []
        for arn in dict.fromkeys(arns):
            named = _EC2_INSTANCE_ARN.fullmatch(arn)
            if named is None or (named[1], named[2]) != (caller.region, caller.account):
                continue  # what names nothing served is left out, as AWS does
            tags = where.fleet.tags.get(named[3]) if named[3] in where.ec2 else None
            if tags:  # GetResources never answers untagged resources
                listed = [{"Key": key, "Value": value} for key, value in tags.items()]
                mappings.append({"ResourceARN": arn, "Tags": listed})
        return {"PaginationToken": "", "ResourceTagMappingList": mappings}

    # ------------------------------------------------------------------ EC2

    def _ec2(self, caller: _Caller, form: dict[str, list[str]]) -> _Reply | None:
        """Answer EC2's query protocol: enough of it for DescribeTags and DescribeRegions."""
        action = form.get("Action", [""])[0]
        refusal = self._refusal("ec2", caller)
        if refusal is not None:
            self._receive(action or "UnknownOperation")
            return _ec2_error(refusal.code, refusal.message, refusal.status)
        fault = self._fault("ec2", action or "UnknownOperation", caller.account, caller.region)
        if fault == "throttled":
            return _ec2_error("RequestLimitExceeded", "Request limit exceeded.", 503)
        if fault == "dropped":
            return None
        if fault == "error":
            return _ec2_error("InternalError", "An internal error has occurred.", 500)
        if action == "DescribeRegions":
            return self._describe_regions(caller, form)
        if action != "DescribeTags":
            return _ec2_error(
                "InvalidAction",
                f"The action {action or '(none)'} is not valid for this web service.",
            )
        try:
            where = self._regions.get(caller[:2]) or _Region(WireFleet(*caller[:2]))
            return self._describe_tags(where, form)
        except _Expired as exc:
            with self._lock:
                self._expired += 1
            return _ec2_error(exc.code, exc.message, exc.status)
        except _ApiError as exc:
            return _ec2_error(exc.code, exc.message, exc.status)

    def _describe_tags(self, where: _Region, form: dict[str, list[str]]) -> _Reply:
        account = where.fleet.account_id
        if self.deny_tags:
            raise _ApiError(
                "UnauthorizedOperation",
                "You are not authorized to perform this operation. User: "
                f"arn:aws:iam::{account}:user/patchframe is not authorized to perform: "
                "ec2:DescribeTags because no identity-based policy allows the "
                "ec2:DescribeTags action",
                403,
            )
        filters: dict[str, tuple[str, list[str]]] = {}
        for name, values in form.items():
            match = re.fullmatch(r"Filter\.(\d+)\.(Name|Value\.\d+)", name)
            if match is None:
                continue
            number, part = match.groups()
            named, wanted = filters.get(number, ("", []))
            if part == "Name":
                filters[number] = (values[0], wanted)
            else:
                filters[number] = (named, [*wanted, values[0]])
        if sum(len(wanted) for _, wanted in filters.values()) > _EC2_FILTER_VALUES:
            raise _ApiError(
                "FilterLimitExceeded",
                "The maximum number of filter values specified on a single call is "
                f"{_EC2_FILTER_VALUES}",
            )
        for named, _ in filters.values():
            if named not in _EC2_TAG_FIELDS:
                raise _ApiError("InvalidParameterValue", f"The filter '{named}' is invalid")
        limit_text = form.get("MaxResults", [""])[0]
        limit = int(limit_text) if limit_text.isdigit() else None
        if limit_text and (limit is None or not 5 <= limit <= 1000):
            raise _ApiError(
                "InvalidParameterValue",
                f"Value ( {limit_text} ) for parameter maxResults is invalid. "
                "Expecting a value between 5 and 1000.",
            )
        request = sorted((n, sorted(w)) for n, w in filters.values())
        scope = self._scope(where, "DescribeTags", [request, limit])
        offset = self._tokens.offset(form.get("NextToken", [""])[0], scope)
        tags = [
            {"resourceId": node, "resourceType": "instance", "key": key, "value": value}
            for node in where.fleet.instance_ids
            if node.startswith("i-")
            for key, value in where.fleet.tags.get(node, {}).items()
        ]
        chosen = [
            tag
            for tag in tags
            if all(tag[_EC2_TAG_FIELDS[n]] in set(w) for n, w in filters.values())
        ]
        end = len(chosen) if limit is None else offset + limit
        items = "".join(f"<item>{_xml_fields(tag)}</item>" for tag in chosen[offset:end])
        more = (
            f"<nextToken>{_xml(self._tokens.issue(scope, end))}</nextToken>"
            if end < len(chosen)
            else ""
        )
        return _ec2_reply("DescribeTags", f"<tagSet>{items}</tagSet>{more}")

    def _describe_regions(self, caller: _Caller, form: dict[str, list[str]]) -> _Reply:
        """The account's enabled regions; with AllRegions, its disabled ones too."""
        account = self._accounts.get(caller.account)
        if self._organization is None:
            enabled = tuple(dict.fromkeys(r for a, r in self._regions if a == caller.account))
        else:
            enabled = self._organization.regions
        disabled = account.disabled_regions if account is not None else ()
        statuses = [(r, "opt-in-not-required") for r in enabled if r not in disabled]
        if form.get("AllRegions", [""])[0].lower() == "true":
            statuses += [(r, "not-opted-in") for r in enabled if r in disabled]
        items = "".join(
            f"<item><regionName>{region}</regionName>"
            f"<regionEndpoint>ec2.{region}.amazonaws.com</regionEndpoint>"
            f"<optInStatus>{status}</optInStatus></item>"
            for region, status in statuses
        )
        return _ec2_reply("DescribeRegions", f"<regionInfo>{items}</regionInfo>")

    # ------------------------------------------------------------------ STS

    def _sts(self, caller: _Caller, form: dict[str, list[str]]) -> _Reply:
        """Answer STS's query protocol: GetCallerIdentity and AssumeRole."""
        action = form.get("Action", [""])[0]
        self._receive(action or "UnknownOperation")
        try:
            refusal = self._refusal("sts", caller)
            if refusal is not None:
                raise refusal
            if action == "GetCallerIdentity":
                arn, user_id = self._identity(caller)
                fields = {"Arn": arn, "UserId": user_id, "Account": caller.account}
                return _sts_reply(action, _xml_fields(fields))
            if action == "AssumeRole":
                return _sts_reply(action, self._assume_role(caller, form))
            raise _ApiError(
                "InvalidAction",
                f"Could not find operation {action or 'with no Action'} for version 2011-06-15",
            )
        except _ApiError as exc:
            return _sts_error(exc.code, exc.message, exc.status)

    def _identity(self, caller: _Caller) -> tuple[str, str]:
        """The caller's ARN and user id, as GetCallerIdentity answers them."""
        grant = self._grants.get(caller.token or "")
        if grant is not None:
            return grant.arn, grant.user_id
        return f"arn:aws:iam::{caller.account}:user/patchframe", f"AIDAEMUL{caller.account}"

    def _assume_role(self, caller: _Caller, form: dict[str, list[str]]) -> str:
        """Issue temporary credentials for an organization's role: the result's XML."""
        role_arn, name, external_id, duration = (
            form.get(key, [None])[0]
            for key in ("RoleArn", "RoleSessionName", "ExternalId", "DurationSeconds")
        )
        validation = _Validation()
        if role_arn is None:
            validation.add(None, "roleArn", "Member must not be null")
        if name is None:
            validation.add(None, "roleSessionName", "Member must not be null")
        elif not _SESSION_NAME.fullmatch(name):
            rule = r"Member must satisfy regular expression pattern: [\w+=,.@-]{2,64}"
            validation.add(name, "roleSessionName", rule)
        lasts = validation.max_results(
            int(duration) if duration and duration.isdigit() else duration,
            900,
            43200,
            default=3600,
            member="durationSeconds",
        )
        validation.check("ValidationError")
        assert role_arn is not None and name is not None  # the validation above made sure
        match = _ROLE_ARN.fullmatch(role_arn)
        if match is None:
            raise _ApiError("ValidationError", "Request ARN is invalid")
        account_id, role = match.groups()
        account, org = self._accounts.get(account_id), self._organization
        if (
            org is None
            or account is None
            or role != org.role_name
            or account.state != "ACTIVE"
            or account.deny_role
            or org.external_id not in (None, external_id)
        ):
            raise _ApiError(
                "AccessDenied",
                f"User: {self._identity(caller)[0]} is not authorized to perform: "
                f"sts:AssumeRole on resource: {role_arn}",
                403,
            )
        alphabet = string.ascii_uppercase + string.digits
        access_key = "ASIA" + "".join(secrets.choice(alphabet) for _ in range(4)) + account_id
        token = secrets.token_urlsafe(96)
        digest = hashlib.sha256(f"{account_id} {role}".encode()).hexdigest().upper()
        grant = _Grant(
            access_key,
            f"arn:aws:sts::{account_id}:assumed-role/{role}/{name}",
            f"AROA{digest[:17]}:{name}",
            time.monotonic(),
            lasts,
        )
        with self._lock:
            self._grants[token] = grant
        expiration = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lasts)
        credentials = {
            "AccessKeyId": access_key,
            "SecretAccessKey": secrets.token_urlsafe(30),
            "SessionToken": token,
            "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        user = {"Arn": grant.arn, "AssumedRoleId": grant.user_id}
        return (
            f"<Credentials>{_xml_fields(credentials)}</Credentials>"
            f"<AssumedRoleUser>{_xml_fields(user)}</AssumedRoleUser>"
        )


def _check_parent(org: WireOrganization, parent: object) -> None:
    """Refuse a ParentId as Organizations does: missing, malformed, or not found."""
    if parent is None:
        raise _ApiError(
            "InvalidInputException",
            "You must include a value for all required parameters.",
            reason="INPUT_REQUIRED",
        )
    if not isinstance(parent, str) or not _PARENT_ID.fullmatch(parent):
        raise _ApiError(
            "InvalidInputException",
            "You provided a value that doesn't match the required pattern.",
            reason="INVALID_PATTERN",
        )
    if parent != org.root_id and parent not in {unit.unit_id for unit in org.units}:
        raise _ApiError(
            "ParentNotFoundException",
            "We can't find a root or OU with the ParentId that you specified.",
        )


def _organization_entry(org: WireOrganization) -> dict[str, Any]:
    """DescribeOrganization's ``Organization``."""
    management = org.management_account_id
    return {
        "Id": org.organization_id,
        "Arn": org.arn,
        "FeatureSet": "ALL",
        "MasterAccountArn": _organizations_arn(org, "account", management),
        "MasterAccountId": management,
        "MasterAccountEmail": org.account(management).email,
        "AvailablePolicyTypes": [],
    }


def _organizations_arn(org: WireOrganization, kind: str, entity_id: str) -> str:
    """The ARN of an organization's account, root or unit."""
    management, organization = org.management_account_id, org.organization_id
    return f"arn:aws:organizations::{management}:{kind}/{organization}/{entity_id}"


def _organization_items(
    org: WireOrganization, operation: str, parent: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """A listing operation's key and every item it lists, in order."""
    if operation == "ListRoots":
        root = {"Id": org.root_id, "Arn": _organizations_arn(org, "root", org.root_id)}
        return "Roots", [{**root, "Name": "Root", "PolicyTypes": []}]
    if operation == "ListOrganizationalUnitsForParent":
        units = [
            {
                "Id": unit.unit_id,
                "Arn": _organizations_arn(org, "ou", unit.unit_id),
                "Name": unit.name,
                "Path": org.path(unit.unit_id),
            }
            for unit in org.units
            if unit.parent_id == parent
        ]
        return "OrganizationalUnits", units
    accounts = []
    for account in org.accounts:
        if parent is not None and account.parent_id != parent:
            continue
        entry = {
            "Id": account.account_id,
            "Arn": _organizations_arn(org, "account", account.account_id),
            "Email": account.email,
            "Name": account.name,
            "Status": account.status,
            "State": account.state,
            "Paths": [org.path(account.account_id)],
            "JoinedMethod": account.joined_method,
            "JoinedTimestamp": account.joined_timestamp,
        }
        if org.legacy_status:  # answers from before State (and Paths)
            del entry["State"], entry["Paths"]
        accounts.append(entry)
    return "Accounts", accounts


def _xml_fields(fields: dict[str, str]) -> str:
    return "".join(f"<{key}>{_xml(value)}</{key}>" for key, value in fields.items())


def _sts_reply(action: str, result: str) -> _Reply:
    request_id = str(uuid.uuid4())
    xml = (
        f'<{action}Response xmlns="{_STS_NAMESPACE}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )
    return _Reply(200, "text/xml", xml.encode(), request_id)


def _sts_error(code: str, message: str, status: int = 400) -> _Reply:
    """An error as STS's query protocol spells it."""
    request_id = str(uuid.uuid4())
    xml = (
        f'<ErrorResponse xmlns="{_STS_NAMESPACE}"><Error><Type>Sender</Type>'
        f"<Code>{_xml(code)}</Code><Message>{_xml(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return _Reply(status, "text/xml", xml.encode(), request_id)


_error = _JSON_WIRE.error


def _cbor_refusal(headers: Message, body: bytes) -> _Reply | None:
    """The error refusing a Smithy RPC v2 CBOR request's protocol header or content
    type, if either is wrong."""
    protocol = headers.get("smithy-protocol")
    if protocol != "rpc-v2-cbor":
        return _CBOR_WIRE.error(
            "SerializationException",
            f"The smithy-protocol header is {protocol!r}; expected 'rpc-v2-cbor'",
        )
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if body and content_type != _CBOR:
        return _CBOR_WIRE.error(
            "SerializationException",
            f"The Content-Type of a CBOR request is {content_type!r}; expected {_CBOR!r}",
        )
    return None


@functools.lru_cache(maxsize=64)
def _partition(region: str) -> str:
    """The partition of ``region`` (``aws``, ``aws-cn``, ...), as botocore knows them;
    ``aws`` for a region it does not know."""
    try:
        partition: str = botocore.session.get_session().get_partition_for_region(region)
    except UnknownRegionError:
        return "aws"
    return partition


def _unknown_operation(target: str) -> _Reply:
    return _error(
        "com.amazon.coral.service#UnknownOperationException", f"Unknown operation {target}"
    )


def _xml(text: str) -> str:
    return escape(text)


def _ec2_reply(action: str, members: str) -> _Reply:
    """An EC2 answer as its query protocol spells it: ``members`` in ``<ActionResponse>``."""
    request_id = str(uuid.uuid4())
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<{action}Response xmlns="{_EC2_NAMESPACE}">'
        f"<requestId>{request_id}</requestId>{members}</{action}Response>"
    )
    return _Reply(200, "text/xml;charset=UTF-8", xml.encode(), request_id)


def _ec2_error(code: str, message: str, status: int = 400) -> _Reply:
    """An error as EC2's query protocol spells it."""
    request_id = str(uuid.uuid4())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{_xml(code)}</Code><Message>{_xml(message)}</Message>"
        f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
    )
    return _Reply(status, "text/xml;charset=UTF-8", body.encode(), request_id)


def _body_size(lengths: list[str]) -> tuple[int, _Reply | None]:
    """The request body's size from its Content-Length headers, or the 4xx refusing it;
    never reads or allocates the size claimed."""
    if not lengths:
        return 0, None
    if len(set(lengths)) > 1 or not _DIGITS.fullmatch(lengths[0].strip()):
        return 0, _error("BadRequest", f"Content-Length {', '.join(lengths)!r} is not a size")
    text = lengths[0].strip()
    # Digits beyond an int64 are refused as text: int() of thousands of digits is work too.
    if len(text) > 18 or int(text) > _MAX_BODY:
        message = f"a request body of {text} bytes is over the limit of {_MAX_BODY}"
        return 0, _error("RequestEntityTooLarge", message, 413)
    return int(text), None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    disable_nagle_algorithm = True  # headers and body leave without waiting for an ACK
    server: _Server
    arrived = 0.0

    def parse_request(self) -> bool:
        # The request line is in: the service's clock starts, before its headers are
        # parsed (1-2 ms of the emulator's CPU among 16 connections' threads).
        self.arrived = time.monotonic()
        return super().parse_request()

    def do_POST(self) -> None:
        size, refusal = _body_size(self.headers.get_all("Content-Length") or [])
        if refusal is not None:
            # The body's end is unknown (or not worth reading): answer, then hang up.
            self.close_connection = True
            self._send(refusal)
            return
        body = self.rfile.read(size)
        reply = self.server.emulator._answer(self.path, self.headers, body)
        # The answer leaves ``latency`` after the request arrived, the emulator's own
        # work included, as a service's response time is seen by its client.
        wait = self.arrived + self.server.emulator.latency - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if reply is None:
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("x-amzn-RequestId", reply.request_id or str(uuid.uuid4()))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: benchmarks push thousands of requests through."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many workers may connect at once

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        if isinstance(request, socket.socket):
            with self._open_lock:
                self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self._open_lock:
                self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer is routine (its timeouts, stop()): not news.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        # Idle keep-alive connections would otherwise go on being served after stop().
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


_sample_lock = threading.Lock()
_sample_emulators: list[Emulator] = []


def sample_client() -> SSMClient:
    """A ready boto3 SSM client for the sample fleet, served on 127.0.0.1.

    The first call starts one emulator for the whole process; every call returns a
    new client bound to it, with dummy credentials and the sample's region, so no
    AWS configuration is needed.

    Examples
    --------
    >>> ssm = sample_client()
    >>> lost = ssm.describe_instance_information(
    ...     Filters=[{"Key": "PingStatus", "Values": ["ConnectionLost"]}]
    ... )
    >>> [node["InstanceId"] for node in lost["InstanceInformationList"]]
    ['mi-0c2a5e7f9b1d3486a']
    """
    with _sample_lock:
        if not _sample_emulators:
            _sample_emulators.append(Emulator().start())
        emulator = _sample_emulators[0]
    return emulator.client("ssm")


def _flag(*, low: float, high: float | None = None, whole: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` that reads a number and refuses one outside low..high."""
    within = f"between {low:g} and {high:g}" if high is not None else f"{low:g} or more"
    noun = "a whole number" if whole else "a number"

    def read(text: str) -> float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun} {within}")
        return value

    return read


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's command-line options to ``parser``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_serve_arguments(parser)
    >>> args = parser.parse_args(["--synthetic", "500", "--rate-limit", "40"])
    >>> args.synthetic, args.rate_limit, args.port
    (500, 40.0, 0)
    """
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=_flag(low=0, high=65535, whole=True),
        default=0,
        help="port to listen on (0: a free one)",
    )
    parser.add_argument(
        "--synthetic",
        type=_flag(low=1, whole=True),
        metavar="N",
        help="serve a synthetic fleet of N nodes instead of the sample fleet",
    )
    parser.add_argument(
        "--organization",
        type=_flag(low=1, high=1000, whole=True),
        metavar="N",
        help="serve a synthetic AWS Organization of N accounts (--synthetic: nodes per account)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic fleet and faults"
    )
    share = _flag(low=0, high=1)
    parser.add_argument(
        "--latency",
        type=_flag(low=0),
        default=0.0,
        metavar="SECONDS",
        help="seconds from a request's arrival to its answer, the emulator's work included",
    )
    parser.add_argument(
        "--rate-limit",
        type=_flag(low=1),
        metavar="RPS",
        help="requests a second before throttling (1 or more)",
    )
    parser.add_argument(
        "--burst", type=_flag(low=1, whole=True), default=5, help="token bucket capacity"
    )
    parser.add_argument("--error-rate", type=share, default=0.0, help="share of HTTP 500 answers")
    parser.add_argument(
        "--drop-rate", type=share, default=0.0, help="share of dropped connections"
    )
    parser.add_argument(
        "--expire-rate", type=share, default=0.0, help="share of expired NextTokens"
    )
    parser.add_argument(
        "--deny-tags",
        action="store_true",
        help=(
            "refuse the tag calls (DescribeTags, GetResources, ListTagsForResource) "
            "as for no permission"
        ),
    )
    parser.add_argument(
        "--max-patch-results",
        type=_flag(low=10, high=100, whole=True),
        default=100,
        help="largest DescribeInstancePatches MaxResults accepted (10 to 100, as the API)",
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM, with options from :func:`add_serve_arguments`.

    Prints ``patchframe emulator listening on <url>`` on one line first.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_serve_arguments(parser)
    >>> serve(parser.parse_args(["--synthetic", "50"]))  # doctest: +SKIP
    patchframe emulator listening on http://127.0.0.1:49152
    """
    try:
        emulator = _emulator(args)
    except ValidationError as err:  # options set in Python rather than parsed from flags
        prog = getattr(getattr(args, "parser", None), "prog", "patchframe serve")
        print(f"{prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with emulator:
            print(f"patchframe emulator listening on {emulator.url}", flush=True)
            if emulator.organization is not None:
                _print_organization(emulator)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _print_organization(emulator: Emulator) -> None:
    org = emulator.organization
    assert org is not None
    keys = emulator.credentials()
    print(
        f"organization {org.organization_id}: {len(org.accounts)} accounts, management "
        f"account {org.management_account_id}, role {org.role_name}\n"
        "point boto3 (and the AWS CLI) at it as the management account with:\n"
        f"  export AWS_ENDPOINT_URL={emulator.url} AWS_DEFAULT_REGION={org.regions[0]}\n"
        f"  export AWS_ACCESS_KEY_ID={keys['aws_access_key_id']} "
        f"AWS_SECRET_ACCESS_KEY={keys['aws_secret_access_key']}",
        flush=True,
    )


def _emulator(args: argparse.Namespace) -> Emulator:
    """The emulator the options ask for, checked, not started."""
    fleet, organization = None, None
    if args.organization is not None:
        nodes = 10 if args.synthetic is None else args.synthetic
        organization = synthetic_organization(
            args.organization, nodes_per_account=nodes, seed=args.seed
        )
    elif args.synthetic is None:
        fleet = sample_fleet()
    else:
        fleet = synthetic_fleet(args.synthetic, seed=args.seed)
    return Emulator(
        fleet,
        organization=organization,
        latency=args.latency,
        rate_limit=args.rate_limit,
        burst=args.burst,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        expire_rate=args.expire_rate,
        max_patch_results=args.max_patch_results,
        deny_tags=args.deny_tags,
        seed=args.seed,
        host=args.host,
        port=args.port,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator from a shell: ``python -m patchframe.sandbox.emulator --help``.

    Examples
    --------
    >>> main(["--port", "0"])  # doctest: +SKIP
    patchframe emulator listening on http://127.0.0.1:49152
    """
    parser = argparse.ArgumentParser(
        prog="python -m patchframe.sandbox.emulator", description="Serve a local SSM endpoint."
    )
    add_serve_arguments(parser)
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
