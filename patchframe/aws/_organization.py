"""A whole AWS Organization: its member accounts, and a session in each through a role.

:class:`Organization` says which accounts to load and which role to assume in
them. :func:`list_members` asks AWS Organizations for the accounts (every page,
units walked recursively) before any SSM call, and :func:`member_session` gives
each account a boto3 session whose credentials come from STS ``AssumeRole``: in
two steps, :func:`role_credentials` and :func:`role_session`, for a caller that
assumes the role before it spends CPU on the session.

Those credentials are botocore's own :class:`~botocore.credentials.RefreshableCredentials`:
the role is assumed on first use and again shortly before the credentials
expire, so a load longer than the role session lasts goes on. If the service
still answers that the token expired (it was revoked, or clocks disagree), the
role is assumed again and that one request retried once, through botocore's
``needs-retry`` event; concurrent requests that meet the same expired token
cause a single new AssumeRole.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3
import botocore.session
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
    ReadOnlyCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError

from ..exceptions import OrganizationError, ValidationError
from ._client import client_config

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_sts import STSClient

__all__ = [
    "EXPIRED_TOKEN_CODES",
    "Member",
    "Organization",
    "RoleCredentials",
    "list_members",
    "member_session",
    "role_credentials",
    "role_session",
]

_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_ACCOUNT = re.compile(r"\d{12}", re.ASCII)
_UNIT = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32}", re.ASCII)
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)

#: The codes AWS answers a request signed with expired temporary credentials:
#: SSM's JSON protocol, STS, and EC2.
EXPIRED_TOKEN_CODES = frozenset({"ExpiredTokenException", "ExpiredToken", "RequestExpired"})

_LIST_PERMISSIONS = {
    "ListAccounts": "organizations:ListAccounts",
    "ListAccountsForParent": "organizations:ListAccountsForParent",
    "ListOrganizationalUnitsForParent": "organizations:ListOrganizationalUnitsForParent",
}


def _ids(name: str, values: object, pattern: re.Pattern[str], expected: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValidationError(f"{name} {values!r}: expected a list of {expected}")
    for value in values:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValidationError(f"{name}: {value!r} is not {expected}")
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class Organization:
    """The accounts of an AWS Organization to load, and the role to assume in each.

    Parameters
    ----------
    role_name
        The role to assume in every member account: its name, such as
        ``"PatchframeReadOnly"``; the ARN is built per account and partition.
    accounts
        Account ids (12 digits) to load; None for every account the organization lists.
    units
        Organizational unit ids (``ou-...``) or the root (``r-...``): the accounts
        in them and, recursively, in their child units. Not with ``accounts``.
    skip
        Account ids to leave out.
    external_id
        The external id the role's trust policy asks for, if any.
    session_name
        The role session name, as CloudTrail shows it in each account.
    session
        The boto3 session of the management or delegated-administrator account;
        boto3's default session when None. Its own account is loaded with its own
        credentials, not through the role (unless skipped).

    Raises
    ------
    ValidationError
        A value that cannot be what it names, before any AWS call.

    Examples
    --------
    >>> org = Organization("PatchframeReadOnly", units=["ou-ab12-cdef3456"], skip=["111122223333"])
    >>> org.units, org.skip
    (('ou-ab12-cdef3456',), ('111122223333',))
    >>> Organization("arn:aws:iam::111122223333:role/PatchframeReadOnly")
    Traceback (most recent call last):
    ...
    patchframe.exceptions.ValidationError: role_name 'arn:aws:iam::...': expected a role name ...
    """

    role_name: str
    _: KW_ONLY
    accounts: Sequence[str] | None = None
    units: Sequence[str] | None = None
    skip: Sequence[str] = ()
    external_id: str | None = None
    session_name: str = "patchframe"
    session: boto3.Session | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.role_name, str) or not _ROLE_NAME.fullmatch(self.role_name):
            hint = ", not an ARN" if str(self.role_name).startswith("arn:") else ""
            raise ValidationError(
                f"role_name {self.role_name!r}: expected a role name such as "
                f"'PatchframeReadOnly'{hint}"
            )
        account = "a 12-digit account id"
        if self.accounts is not None:
            accounts = _ids("accounts", self.accounts, _ACCOUNT, account)
            if not accounts:
                raise ValidationError("accounts []: expected at least one account id, or None")
            object.__setattr__(self, "accounts", accounts)
        if self.units is not None:
            units = _ids("units", self.units, _UNIT, "a unit id ('ou-...') or a root id ('r-...')")
            if not units:
                raise ValidationError("units []: expected at least one unit id, or None")
            if self.accounts is not None:
                raise ValidationError("give accounts or units, not both")
            object.__setattr__(self, "units", units)
        object.__setattr__(self, "skip", _ids("skip", self.skip, _ACCOUNT, account))
        if self.external_id is not None and not (
            isinstance(self.external_id, str) and _EXTERNAL_ID.fullmatch(self.external_id)
        ):
            raise ValidationError(
                f"external_id {self.external_id!r}: expected 2 to 1,224 letters, digits "
                "or +=,.@:/-"
            )
        if not isinstance(self.session_name, str) or not _SESSION_NAME.fullmatch(
            self.session_name
        ):
            raise ValidationError(
                f"session_name {self.session_name!r}: expected 2 to 64 letters, digits or +=,.@-"
            )
        if self.session is not None and not isinstance(self.session, boto3.Session):
            raise ValidationError(f"session {self.session!r}: expected a boto3.Session or None")


class Member(NamedTuple):
    """One account the organization lists (or that was named).

    ``state`` is the account's ``State`` (``Status`` in older answers), None for
    a named account the organization does not list; ``caller`` marks the
    account whose own credentials load it.
    """

    account_id: str
    name: str | None
    state: str | None
    skipped: bool = False
    caller: bool = False

    @property
    def loadable(self) -> bool:
        """Whether the account is to be loaded: ACTIVE and not skipped."""
        return self.state == "ACTIVE" and not self.skipped


def _listing_error(err: ClientError, operation: str, caller: str) -> OrganizationError:
    code = str(err.response.get("Error", {}).get("Code", "Unknown"))
    message = str(err.response.get("Error", {}).get("Message", ""))
    if code == "AWSOrganizationsNotInUseException":
        text = (
            f"account {caller} is not in an AWS Organization ({code}): load its accounts "
            "with profiles= or boto3_sessions= instead"
        )
    elif code in ("AccessDeniedException", "AccessDenied"):
        text = (
            f"{operation} was refused for account {caller} ({code}): the organization's "
            f"accounts are listed by its management account or a delegated administrator "
            f"allowed {_LIST_PERMISSIONS.get(operation, 'organizations:List*')}"
        )
    elif code == "ParentNotFoundException":
        text = f"{operation}: a unit is not in the organization ({code}: {message})"
    else:
        text = f"{operation} failed for account {caller}: {code}: {message}"
    return OrganizationError(text, code=code)


def _pages(client: OrganizationsClient, operation: str, key: str, **kwargs: Any) -> list[Any]:
    paginator = client.get_paginator(operation)  # type: ignore[call-overload]
    pages = paginator.paginate(**kwargs, PaginationConfig={"PageSize": 20})  # the most allowed
    return [item for page in pages for item in page[key]]


def _unit_accounts(client: OrganizationsClient, units: Sequence[str]) -> list[Any]:
    """Every account in the units and, recursively, their child units."""
    accounts: list[Any] = []
    queue, seen = list(units), set(units)
    while queue:
        parent = queue.pop(0)
        accounts += _pages(client, "list_accounts_for_parent", "Accounts", ParentId=parent)
        for unit in _pages(
            client, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent
        ):
            if unit["Id"] not in seen:
                seen.add(unit["Id"])
                queue.append(unit["Id"])
    return accounts


def list_members(
    organization: Organization, *, meanwhile: Callable[[], object] | None = None
) -> list[Member]:
    """The accounts to load, as the organization lists them; before any SSM call.

    With ``units``: ListAccountsForParent and ListOrganizationalUnitsForParent,
    walked recursively; otherwise ListAccounts. Every page is read. An account's
    ``State`` decides whether it is loaded (ACTIVE only); older answers have only
    ``Status``, read where ``State`` is absent. Named ``accounts`` the organization
    does not list are members with no state, reported by the load. ``meanwhile``
    runs in the calling thread while the listing is in flight (the listing itself
    is sent from another thread, so all clients are made in the caller's).

    Raises
    ------
    OrganizationError
        The caller may not list the organization, or is not in one; the message
        names the permission or the condition.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.sandbox import Emulator, synthetic_organization
    >>> with Emulator(organization=synthetic_organization(3)) as emulator:
    ...     members = list_members(pf.Organization("PatchframeReadOnly",
    ...                                            session=emulator.session()))
    >>> [(m.state, m.caller) for m in members]
    [('ACTIVE', True), ('ACTIVE', False), ('ACTIVE', False)]
    """
    session = organization.session or boto3.Session()
    config = client_config(boto3_session=session)
    region = session.region_name or "us-east-1"
    sts: STSClient = session.client("sts", region_name=region, config=config)
    client: OrganizationsClient = session.client(
        "organizations", region_name=region, config=config
    )
    operation = "ListAccountsForParent" if organization.units else "ListAccounts"
    # Who the caller is, asked while the organization is listed: one round trip less.
    with ThreadPoolExecutor(2, thread_name_prefix="patchframe") as two:
        identity = two.submit(sts.get_caller_identity)
        listing = (
            two.submit(_unit_accounts, client, organization.units)
            if organization.units
            else two.submit(_pages, client, "list_accounts", "Accounts")
        )
        if meanwhile is not None:
            meanwhile()
        try:
            listed = listing.result()
            error: ClientError | BotoCoreError | None = None
        except (ClientError, BotoCoreError) as err:
            error = err
        try:
            caller = identity.result()["Account"]
        except (ClientError, BotoCoreError) as err:
            raise OrganizationError(
                f"GetCallerIdentity failed for the organization's session: {err}",
                code=type(err).__name__,
            ) from err
    if isinstance(error, ClientError):
        raise _listing_error(error, error.operation_name or operation, caller) from error
    if error is not None:
        raise OrganizationError(f"{operation} failed: {error}", code=type(error).__name__)
    found = {
        a["Id"]: Member(a["Id"], a.get("Name"), a.get("State") or a.get("Status")) for a in listed
    }
    ids = list(organization.accounts) if organization.accounts is not None else list(found)
    skip = set(organization.skip)
    return [
        found.get(i, Member(i, None, None))._replace(skipped=i in skip, caller=i == caller)
        for i in ids
    ]


class RoleCredentials(DeferredRefreshableCredentials):
    """botocore's refreshable credentials, that can also be told the service found them expired.

    The clock botocore consults runs ahead once :meth:`expire` is called, so
    botocore's own refresh (under its lock) assumes the role again; the fetch puts
    the clock right before botocore checks the new credentials.
    """

    def __init__(self, fetch: Callable[[], dict[str, Any]]) -> None:
        self._ahead = dt.timedelta(0)
        self._fetch = fetch
        self._current: str | None = None  # the access key of the credentials now held
        self._used = threading.local()
        super().__init__(refresh_using=self._assume, method="assume-role", time_fetcher=self._now)

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self._ahead

    def _assume(self) -> dict[str, Any]:
        metadata = self._fetch()
        self._current, self._ahead = metadata["access_key"], dt.timedelta(0)
        return metadata

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        frozen: ReadOnlyCredentials = super().get_frozen_credentials()
        self._used.key = frozen.access_key  # which credentials this thread signs with
        return frozen

    def expire(self) -> None:
        """The credentials this thread last signed with were refused as expired.

        Unless another thread has already replaced them, the next request assumes
        the role again.
        """
        if getattr(self._used, "key", None) == self._current:
            self._ahead = dt.timedelta(days=365)


class _Provider(CredentialProvider):
    METHOD = "assume-role"

    def __init__(self, credentials: RoleCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RoleCredentials:
        return self._credentials


def _retry_expired(credentials: RoleCredentials) -> Callable[..., float | None]:
    def needs_retry(
        response: tuple[Any, dict[str, Any]] | None, request_dict: dict[str, Any], **_: Any
    ) -> float | None:
        if response is None:
            return None
        code = response[1].get("Error", {}).get("Code")
        context = request_dict.setdefault("context", {})
        if code not in EXPIRED_TOKEN_CODES or context.get("patchframe_reassumed"):
            return None
        context["patchframe_reassumed"] = True
        credentials.expire()
        return 0.0  # retry now, signed with the new credentials

    return needs_retry


def member_session(
    source: boto3.Session,
    sts: STSClient,
    account_id: str,
    organization: Organization,
) -> boto3.Session:
    """A session in a member account through the organization's role.

    It keeps the source session's profile settings (region, endpoint, retries)
    and has credentials from ``sts.assume_role``, assumed on first use and
    refreshed by botocore before they expire; a request refused with an expired
    token (:data:`EXPIRED_TOKEN_CODES`) assumes the role again and is retried once.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.sandbox import Emulator, synthetic_organization
    >>> with Emulator(organization=synthetic_organization(2)) as emulator:
    ...     source = emulator.session()
    ...     member = member_session(source, source.client("sts"), emulator.organization
    ...                             .accounts[1].account_id, pf.Organization("PatchframeReadOnly"))
    ...     arn = member.client("sts").get_caller_identity()["Arn"]
    >>> arn.split(":")[5].split("/")[:2]
    ['assumed-role', 'PatchframeReadOnly']
    """
    credentials = role_credentials(source, sts, account_id, organization)
    return role_session(source, credentials, region=source.region_name or sts.meta.region_name)


def role_credentials(
    source: boto3.Session,
    sts: STSClient,
    account_id: str,
    organization: Organization,
) -> RoleCredentials:
    """The organization's role in ``account_id``: assumed through ``sts`` on first use.

    Cheap to make: no request is sent until the credentials are first read, so a
    caller opening many accounts can send every AssumeRole before it spends CPU on
    their sessions (:func:`role_session`).

    Examples
    --------
    >>> import boto3
    >>> import patchframe as pf
    >>> source = boto3.Session(region_name="eu-west-1")
    >>> credentials = role_credentials(source, source.client("sts"), "111122223333",
    ...                                pf.Organization("PatchframeReadOnly"))
    >>> credentials.method
    'assume-role'
    """
    region = source.region_name or sts.meta.region_name
    partition = source.get_partition_for_region(region)
    arn = f"arn:{partition}:iam::{account_id}:role/{organization.role_name}"
    arguments: dict[str, Any] = {"RoleArn": arn, "RoleSessionName": organization.session_name}
    if organization.external_id is not None:
        arguments["ExternalId"] = organization.external_id

    def fetch() -> dict[str, Any]:
        answer = sts.assume_role(**arguments)["Credentials"]
        return {
            "access_key": answer["AccessKeyId"],
            "secret_key": answer["SecretAccessKey"],
            "token": answer["SessionToken"],
            "expiry_time": answer["Expiration"].isoformat(),
        }

    return RoleCredentials(fetch)


def role_session(
    source: boto3.Session, credentials: RoleCredentials, *, region: str | None
) -> boto3.Session:
    """A session of the source's profile settings, in ``region``, signing with ``credentials``.

    Examples
    --------
    >>> import boto3
    >>> import patchframe as pf
    >>> source = boto3.Session(region_name="eu-west-1")
    >>> credentials = role_credentials(source, source.client("sts"), "111122223333",
    ...                                pf.Organization("PatchframeReadOnly"))
    >>> role_session(source, credentials, region="eu-west-1").region_name
    'eu-west-1'
    """
    core = botocore.session.Session()
    # The member session reads the same profile as the source: region, endpoint, retries.
    base = source._session  # boto3 has no public accessor for its botocore session
    for name in ("config_file", "credentials_file", "profile"):
        value = base.get_config_variable(name)
        if value is not None:
            core.set_config_variable(name, value)
    core.register_component("credential_provider", CredentialResolver([_Provider(credentials)]))
    # botocore's stubs type event handlers as returning None; needs-retry's return a delay.
    core.register("needs-retry", _retry_expired(credentials))  # type: ignore[arg-type]
    session = boto3.Session(botocore_session=core, region_name=region)
    # Service models are read once, not once per account: about 0.1 s of CPU per client.
    # Shared only now: a new boto3.Session appends boto3's data folder to its loader's
    # search paths, and the source's would grow by one entry per member account.
    core.register_component("data_loader", base.get_component("data_loader"))
    return session
