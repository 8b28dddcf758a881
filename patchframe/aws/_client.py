"""The one place that makes boto3 clients.

Every client patchframe uses comes from :func:`make_client`, so credentials,
profiles, regions and ``AWS_ENDPOINT_URL`` all follow boto3's standard
configuration, and every client gets the same retry policy (see
:func:`client_config`). It is also the one seam tests need: point
``AWS_ENDPOINT_URL`` at the emulator, or pass a client.

botocore sends every request, so proxies, client certificates, TLS settings,
timeouts and connection pooling are exactly what the user configured for boto3.

Fast patch pages
----------------
botocore parses every response member by member and turns each timestamp into
a local-zone datetime, which costs far more CPU than the JSON itself. For
DescribeInstancePatches, whose pages are most of the traffic, patchframe hooks
botocore's public ``before-parse`` event: it decodes the JSON body once, hands
the page through untouched, and leaves botocore an empty body to parse. Retries,
signing, credentials and error parsing stay botocore's. The hook acts only
inside :func:`fast_patch_pages`, so a user's own calls on the same client are
parsed as usual.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ProfileNotFound

from ..exceptions import ValidationError

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.config import _RetryDict
    from mypy_boto3_resourcegroupstaggingapi import ResourceGroupsTaggingAPIClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

__all__ = [
    "DEFAULT_CONFIG",
    "PAGE_KEY",
    "TAGGING",
    "caller_account",
    "check_ssm_client",
    "client_config",
    "fast_patch_pages",
    "make_client",
    "make_ec2_client",
    "make_sts_client",
    "make_tagging_client",
    "profile_session",
    "tagging_client_like",
]

#: boto3's name of the Resource Groups Tagging API, where EC2 nodes' tags come from.
TAGGING: Final = "resourcegroupstaggingapi"
#: patchframe's defaults, under whatever the user configured (see :func:`client_config`):
#: botocore's standard retry mode (exponential backoff with full jitter, throttling
#: and 5xx errors retried) with a larger budget, 11 attempts in all, for long loads
#: that meet throttling storms.
DEFAULT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 11},
    connect_timeout=10,
    read_timeout=60,
    user_agent_extra="patchframe",
)

#: Key under which the fast path hands the decoded page to the caller.
PAGE_KEY = "_patchframe_page"

_HOOK_ID = "patchframe-fast-patch-pages"
_fast_pages: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "patchframe_fast_pages", default=False
)


def client_config(
    *, boto3_session: boto3.Session | None = None, botocore_config: Config | None = None
) -> Config:
    """patchframe's client configuration, under the user's own.

    Starts from :data:`DEFAULT_CONFIG`. A retry mode or a number of attempts the
    user set, in ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` or as ``retry_mode`` /
    ``max_attempts`` in the session's profile, is left to botocore, which reads it
    from there. ``botocore_config`` is merged over the result with botocore's
    :meth:`~botocore.config.Config.merge`: every option it sets wins (a ``retries``
    dict as a whole).

    Parameters
    ----------
    boto3_session
        The session whose profile is consulted; boto3's default session when None.
    botocore_config
        The user's own configuration.

    Examples
    --------
    >>> client_config().retries
    {'mode': 'standard', 'total_max_attempts': 11}
    >>> client_config(botocore_config=Config(read_timeout=5)).read_timeout
    5
    """
    session = boto3_session or boto3.Session()
    # boto3 has no public accessor for the botocore session holding the profile.
    profile = session._session.get_scoped_config()
    retries: _RetryDict = {"mode": "standard", "total_max_attempts": 11}
    # Left out, a setting is botocore's to read from the environment or the profile.
    if os.environ.get("AWS_RETRY_MODE") or "retry_mode" in profile:
        del retries["mode"]
    if os.environ.get("AWS_MAX_ATTEMPTS") or "max_attempts" in profile:
        del retries["total_max_attempts"]
    config = DEFAULT_CONFIG.merge(Config(retries=retries))
    return config if botocore_config is None else config.merge(botocore_config)


def profile_session(name: str) -> boto3.Session:
    """A boto3 session of a named profile of the AWS configuration.

    Parameters
    ----------
    name
        A profile of the AWS configuration (``AWS_CONFIG_FILE``,
        ``AWS_SHARED_CREDENTIALS_FILE``), as ``--profile`` names it to the AWS CLI.

    Raises
    ------
    ValidationError
        No such profile; the message lists the known ones. Nothing is asked of AWS.

    Examples
    --------
    >>> profile_session("no-such-profile")
    Traceback (most recent call last):
    ...
    patchframe.exceptions.ValidationError: profile 'no-such-profile' is not in the AWS ...
    """
    try:
        return boto3.Session(profile_name=name)
    except ProfileNotFound:
        known = ", ".join(boto3.Session().available_profiles) or "none"
        raise ValidationError(
            f"profile {name!r} is not in the AWS configuration; known profiles: {known}"
        ) from None


def check_ssm_client(client: object) -> SSMClient:
    """``client`` itself if it is a botocore SSM client, else ValidationError, before any call."""
    meta = getattr(client, "meta", None)
    service = getattr(getattr(meta, "service_model", None), "service_name", None)
    if service != "ssm" or not hasattr(client, "get_paginator"):
        raise ValidationError(
            f"client {client!r} is not an SSM client: pass boto3.client('ssm', ...), "
            "patchframe.sample_client() or leave client unset"
        )
    return client  # type: ignore[return-value]


def make_client(
    *,
    boto3_session: boto3.Session | None = None,
    region: str | None = None,
    max_pool_connections: int = 10,
    botocore_config: Config | None = None,
) -> SSMClient:
    """An SSM client with patchframe's configuration under the user's.

    Parameters
    ----------
    boto3_session
        Session to take credentials, profile and default region from; boto3's
        default session when None.
    region
        Region name; the session's default when None.
    max_pool_connections
        HTTP connections kept open; size it to the number of threads sharing the client.
    botocore_config
        A :class:`botocore.config.Config` merged over patchframe's defaults, its
        options winning; see :func:`client_config`.

    Examples
    --------
    >>> client = make_client(region="eu-west-1", botocore_config=Config(read_timeout=5))
    >>> client.meta.region_name, client.meta.config.read_timeout
    ('eu-west-1', 5)
    """
    session = boto3_session or boto3.Session()
    pool = Config(max_pool_connections=max_pool_connections)
    user = pool if botocore_config is None else pool.merge(botocore_config)
    config = client_config(boto3_session=session, botocore_config=user)
    return session.client("ssm", region_name=region, config=config)


def make_sts_client(
    *, boto3_session: boto3.Session | None = None, region: str | None = None
) -> STSClient:
    """An STS client with the configuration of :func:`make_client`, for the account id.

    Examples
    --------
    >>> make_sts_client(region="eu-west-1").meta.service_model.service_name
    'sts'
    """
    client: STSClient = _service_client("sts", boto3_session, region)
    return client


def make_ec2_client(
    *, boto3_session: boto3.Session | None = None, region: str | None = None
) -> BaseClient:
    """An EC2 client with the configuration of :func:`make_client`, for an account's regions.

    Examples
    --------
    >>> make_ec2_client(region="eu-west-1").meta.service_model.service_name
    'ec2'
    """
    client: BaseClient = _service_client("ec2", boto3_session, region)
    return client


def make_tagging_client(
    *, boto3_session: boto3.Session | None = None, region: str | None = None
) -> ResourceGroupsTaggingAPIClient:
    """A Resource Groups Tagging API client with the configuration of :func:`make_client`,
    for EC2 nodes' tags.

    Examples
    --------
    >>> make_tagging_client(region="eu-west-1").meta.service_model.service_name
    'resourcegroupstaggingapi'
    """
    client: ResourceGroupsTaggingAPIClient = _service_client(TAGGING, boto3_session, region)
    return client


def _service_client(service: str, boto3_session: boto3.Session | None, region: str | None) -> Any:
    session = boto3_session or boto3.Session()
    config = client_config(boto3_session=session)
    # boto3's stubs type session.client per service name; the callers declare the type.
    return session.client(service, region_name=region, config=config)  # type: ignore[call-overload]


def tagging_client_like(client: SSMClient) -> ResourceGroupsTaggingAPIClient:
    """A Resource Groups Tagging API client with an SSM client's credentials, region,
    retries and proxies.

    For a fleet loaded with ``client=``: the tags of its EC2 nodes come from that
    API. As :func:`caller_account` does for STS, a client bound to an endpoint
    outside AWS (the emulator) sends its requests to that same endpoint.

    Examples
    --------
    >>> import patchframe as pf
    >>> tagging = tagging_client_like(pf.sample_client())
    >>> tagging.meta.service_model.service_name, tagging.meta.region_name
    ('resourcegroupstaggingapi', 'eu-west-1')
    """
    tagging: ResourceGroupsTaggingAPIClient = _sibling_client(client, TAGGING)
    return tagging


def caller_account(client: SSMClient) -> str:
    """The account id behind an SSM client, from STS GetCallerIdentity.

    STS is asked with the client's own credentials, region and retry policy. A
    client bound to an endpoint outside AWS (the emulator, LocalStack and the like
    serve every service at one address) sends STS to that same endpoint.

    Examples
    --------
    >>> import patchframe as pf
    >>> caller_account(pf.sample_client())
    '123456789012'
    """
    sts: STSClient = _sibling_client(client, "sts")
    return sts.get_caller_identity()["Account"]


@functools.cache
def _sibling_loader() -> botocore.loaders.Loader:
    """One botocore data loader for every sibling client's session: the endpoints,
    partitions and service models a new session reads (0.1 s of CPU here) are read
    once a process, and a sibling after the first costs about 10 ms. It is a
    session's own, so it searches the user's ``data_path`` (``AWS_DATA_PATH``) too."""
    loader: botocore.loaders.Loader = botocore.session.Session().get_component("data_loader")
    return loader


def _sibling_client(client: SSMClient, service: str) -> Any:
    """A client of ``service`` with an SSM client's credentials, region, retries and proxies.

    A client bound to an endpoint outside AWS (the emulator, LocalStack and the like
    serve every service at one address) gets that same endpoint.
    """
    # botocore has no public accessor for a client's credentials.
    credentials = client._get_credentials()  # type: ignore[attr-defined]
    frozen = credentials.get_frozen_credentials() if credentials is not None else None
    # A botocore session of its own (one thread makes its client), sharing the loader.
    # Not through boto3.Session: that appends boto3's data path to its loader's search
    # paths, so the shared loader's list would grow by one entry per sibling client.
    core = botocore.session.Session()
    core.register_component("data_loader", _sibling_loader())
    endpoint = client.meta.endpoint_url
    host = urlsplit(endpoint).hostname or ""
    custom = not (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"))
    ssm = client.meta.config
    # botocore's stubs leave out Config's attributes.
    retries, proxies = ssm.retries, ssm.proxies  # type: ignore[attr-defined]
    config = DEFAULT_CONFIG.merge(Config(retries=retries, proxies=proxies))
    return core.create_client(
        service,
        region_name=client.meta.region_name,
        endpoint_url=endpoint if custom else None,
        aws_access_key_id=frozen.access_key if frozen else None,
        aws_secret_access_key=frozen.secret_key if frozen else None,
        aws_session_token=frozen.token if frozen else None,
        config=config,
    )


def _hand_page_through(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    if not _fast_pages.get() or response_dict.get("status_code") != 200:
        return
    customized_response_dict[PAGE_KEY] = json.loads(response_dict["body"])
    response_dict["body"] = b"{}"


@contextmanager
def fast_patch_pages(client: SSMClient) -> Iterator[None]:
    """Within the block, DescribeInstancePatches calls take patchframe's fast path.

    The page, as the wire sent it, is under :data:`PAGE_KEY` of the response;
    ``Patches`` and ``NextToken`` are then absent. Clients that never reach HTTP
    (botocore's Stubber) answer as usual, so callers handle both.

    Examples
    --------
    >>> client = make_client(region="eu-west-1")
    >>> with fast_patch_pages(client):
    ...     pass
    """
    # unique_id makes registering on the same client twice a no-op.
    client.meta.events.register(
        "before-parse.ssm.DescribeInstancePatches", _hand_page_through, unique_id=_HOOK_ID
    )
    token = _fast_pages.set(True)
    try:
        yield
    finally:
        _fast_pages.reset(token)
