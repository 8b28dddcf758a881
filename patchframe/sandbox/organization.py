"""An AWS Organization as the emulator serves it: its units, its accounts and their fleets.

A :class:`WireOrganization` holds what AWS Organizations knows (the organization,
its root, its organizational units, as :class:`WireUnit`, and its accounts, as
:class:`WireAccount`) and, for each account, the
:class:`~patchframe.sandbox.sample.WireFleet` of every region it has enabled.
:func:`synthetic_organization` makes one of any size.
:class:`~patchframe.sandbox.emulator.Emulator` serves it: the Organizations
listing calls, STS ``AssumeRole`` into its accounts through the organization's
role, and each account's fleets to the credentials that role gives.

Everything is frozen and checked when made; switches (a suspended account, a role
that refuses, a region turned off) are flipped on copies, e.g. with
:meth:`WireOrganization.with_account` or :func:`dataclasses.replace`.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import KW_ONLY, dataclass, replace
from typing import Any

from ..exceptions import ValidationError
from .sample import WireFleet, _check_whole, synthetic_fleet

__all__ = [
    "ACCOUNT_STATES",
    "WireAccount",
    "WireOrganization",
    "WireUnit",
    "synthetic_organization",
]

#: An account's ``State``, as Organizations answers it.
ACCOUNT_STATES = ("ACTIVE", "SUSPENDED", "PENDING_CLOSURE", "CLOSED")
_JOINED_METHODS = ("CREATED", "INVITED")
# 2024-06-14T08:00:00Z, the sample fleet's clock.
_NOW = 1718352000

_ACCOUNT = re.compile(r"\d{12}", re.ASCII)
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}", re.ASCII)
_ORGANIZATION = re.compile(r"o-[a-z0-9]{10,32}", re.ASCII)
_ROOT = re.compile(r"r-[0-9a-z]{4,32}", re.ASCII)
_UNIT = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}", re.ASCII)
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)


def _check(name: str, value: object, pattern: re.Pattern[str], expected: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValidationError(f"{name} must be {expected}, not {value!r}")


def _check_name(name: str, value: object) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise ValidationError(f"{name} must be a text of 1 to 128 characters, not {value!r}")


def _check_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be True or False, not {value!r}")


def _as_tuple(owner: object, name: str, kind: type | tuple[type, ...], expected: str) -> None:
    """Store ``owner.name`` as a tuple of ``kind``, or refuse it."""
    value = getattr(owner, name)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError(f"{name} must be a sequence of {expected}, not {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, kind):
            raise ValidationError(f"{name}: {item!r} is not {expected}")
    object.__setattr__(owner, name, items)


def _check_parent(parent_id: object) -> None:
    if not isinstance(parent_id, str) or not (
        _ROOT.fullmatch(parent_id) or _UNIT.fullmatch(parent_id)
    ):
        raise ValidationError(
            f"parent_id must be a root ('r-...') or unit ('ou-...') id, not {parent_id!r}"
        )


def _check_regions(name: str, regions: tuple[str, ...]) -> None:
    for region in regions:
        _check(name, region, _REGION, "region names such as 'us-east-1'")
    if len(set(regions)) < len(regions):
        raise ValidationError(f"{name} names a region twice: {regions!r}")


@dataclass(frozen=True)
class WireUnit:
    """An organizational unit.

    Parameters
    ----------
    unit_id
        ``ou-`` then 4 to 32 and 8 to 32 lowercase letters or digits, e.g.
        ``"ou-ab12-cdef3456"``.
    name
        Its name, 1 to 128 characters.
    parent_id
        The root's id or another unit's.

    Examples
    --------
    >>> WireUnit("ou-ab12-cdef3456", "Production", "r-ab12").name
    'Production'
    >>> WireUnit("ou-1", "Production", "r-ab12")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    patchframe.exceptions.ValidationError: unit_id must be 'ou-' then ... not 'ou-1'
    """

    unit_id: str
    name: str
    parent_id: str

    def __post_init__(self) -> None:
        _check("unit_id", self.unit_id, _UNIT, "'ou-' then 4 and 8 lowercase letters or digits")
        _check_name("name", self.name)
        _check_parent(self.parent_id)


@dataclass(frozen=True)
class WireAccount:
    """One account of an organization, and its fleets.

    Parameters
    ----------
    account_id
        12 digits.
    name
        Its name, 1 to 128 characters.
    parent_id
        The root's id, or the unit it is in.
    email
        Its root user's address; ``aws+<account_id>@example.com`` when not given.
    state
        One of :data:`ACCOUNT_STATES`. Answers also carry the older ``Status``,
        which has no ``CLOSED``: a closed account's is ``SUSPENDED``.
    fleets
        Its fleets, at most one per region, every one of this account.
    deny_role
        Whether the organization's role refuses to be assumed in this account (it
        is missing, or its trust policy does not trust the caller).
    disabled_regions
        Regions of the organization the account has not enabled: every request
        signed for one of them is refused, and a fleet there is not served.
    joined_method, joined_timestamp
        How it joined (``"CREATED"`` or ``"INVITED"``) and when, in epoch seconds.

    Examples
    --------
    >>> account = WireAccount("111122223333", "prod-payments", parent_id="r-ab12")
    >>> account.email, account.state, account.status
    ('aws+111122223333@example.com', 'ACTIVE', 'ACTIVE')
    >>> WireAccount("111122223333", "old", parent_id="r-ab12", state="CLOSED").status
    'SUSPENDED'
    """

    account_id: str
    name: str
    _: KW_ONLY
    email: str = ""
    state: str = "ACTIVE"
    parent_id: str
    fleets: tuple[WireFleet, ...] = ()
    deny_role: bool = False
    disabled_regions: tuple[str, ...] = ()
    joined_method: str = "CREATED"
    joined_timestamp: float = _NOW - 400 * 86400

    def __post_init__(self) -> None:
        _check("account_id", self.account_id, _ACCOUNT, "12 digits")
        _check_name("name", self.name)
        if self.email == "":
            object.__setattr__(self, "email", f"aws+{self.account_id}@example.com")
        if not isinstance(self.email, str) or not (
            6 <= len(self.email) <= 64 and _EMAIL.fullmatch(self.email)
        ):
            raise ValidationError(
                f"email must be an address of 6 to 64 characters, not {self.email!r}"
            )
        if self.state not in ACCOUNT_STATES:
            raise ValidationError(
                f"state must be one of {', '.join(ACCOUNT_STATES)}, not {self.state!r}"
            )
        _check_parent(self.parent_id)
        _as_tuple(self, "fleets", WireFleet, "WireFleet objects")
        for fleet in self.fleets:
            if fleet.account_id != self.account_id:
                raise ValidationError(
                    f"fleets: a fleet of account {fleet.account_id} in account {self.account_id}"
                )
        _check_regions("fleets", tuple(fleet.region for fleet in self.fleets))
        _check_flag("deny_role", self.deny_role)
        _as_tuple(self, "disabled_regions", str, "region names")
        _check_regions("disabled_regions", self.disabled_regions)
        if self.joined_method not in _JOINED_METHODS:
            raise ValidationError(
                f"joined_method must be CREATED or INVITED, not {self.joined_method!r}"
            )
        stamp = self.joined_timestamp
        if (
            isinstance(stamp, bool)
            or not isinstance(stamp, int | float)
            or not math.isfinite(stamp)
        ):
            raise ValidationError(f"joined_timestamp must be epoch seconds, not {stamp!r}")

    @property
    def status(self) -> str:
        """The account's ``Status``: its state, with ``CLOSED`` as ``SUSPENDED``."""
        return "SUSPENDED" if self.state == "CLOSED" else self.state


@dataclass(frozen=True)
class WireOrganization:
    """An AWS Organization: its root, units and accounts, and the role to assume in them.

    Parameters
    ----------
    organization_id, root_id
        ``o-`` then 10 to 32, and ``r-`` then 4 to 32, lowercase letters or digits.
    management_account_id
        The management account: one of ``accounts``.
    accounts
        Every account, in the order Organizations lists them.
    regions
        The regions the organization uses; each account has enabled all but its
        ``disabled_regions``, and every fleet is in one of them.
    units
        The organizational units; every ``parent_id`` is the root or one of them.
    role_name
        The role :class:`~patchframe.sandbox.emulator.Emulator` lets callers assume
        in each ACTIVE account whose ``deny_role`` is False.
    external_id
        The external id the role's trust policy asks for; None for none.
    legacy_status
        Answer accounts with ``Status`` only, as Organizations did before it
        answered ``State``.

    Raises
    ------
    ValidationError
        A value that is not one of the above, or an organization that does not
        hold together (a parent, fleet region or management account it lacks).

    Examples
    --------
    >>> org = WireOrganization(
    ...     "o-abcdef1234", "r-ab12", "111122223333",
    ...     [WireAccount("111122223333", "management", parent_id="r-ab12"),
    ...      WireAccount("444455556666", "prod", parent_id="ou-ab12-cdef3456")],
    ...     units=[WireUnit("ou-ab12-cdef3456", "Production", "r-ab12")],
    ...     regions=["eu-west-1"],
    ... )
    >>> org.arn
    'arn:aws:organizations::111122223333:organization/o-abcdef1234'
    >>> org.with_account("444455556666", state="SUSPENDED").account("444455556666").status
    'SUSPENDED'
    """

    organization_id: str
    root_id: str
    management_account_id: str
    accounts: tuple[WireAccount, ...]
    _: KW_ONLY
    units: tuple[WireUnit, ...] = ()
    regions: tuple[str, ...]
    role_name: str = "PatchframeReadOnly"
    external_id: str | None = None
    legacy_status: bool = False

    def __post_init__(self) -> None:
        _check(
            "organization_id",
            self.organization_id,
            _ORGANIZATION,
            "'o-' then 10 to 32 lowercase letters or digits",
        )
        _check("root_id", self.root_id, _ROOT, "'r-' then 4 to 32 lowercase letters or digits")
        _as_tuple(self, "accounts", WireAccount, "a WireAccount")
        _as_tuple(self, "units", WireUnit, "a WireUnit")
        _as_tuple(self, "regions", str, "region names")
        if not self.accounts or not self.regions:
            raise ValidationError("an organization needs at least one account and one region")
        _check_regions("regions", self.regions)
        ids = [account.account_id for account in self.accounts]
        if len(set(ids)) < len(ids):
            raise ValidationError("accounts: an account id is listed twice")
        if self.management_account_id not in ids:
            raise ValidationError(
                f"management_account_id {self.management_account_id!r} is not one of the accounts"
            )
        parents = {unit.unit_id: unit.parent_id for unit in self.units}
        if len(parents) < len(self.units):
            raise ValidationError("units: a unit id is listed twice")
        known = {self.root_id, *parents}
        nodes: list[WireUnit | WireAccount] = [*self.units, *self.accounts]
        for node in nodes:
            if node.parent_id not in known:
                raise ValidationError(
                    f"{node.name}: parent {node.parent_id} is not in the organization"
                )
        for unit in self.units:
            seen, parent = {unit.unit_id}, unit.parent_id
            while parent != self.root_id:
                if parent in seen:
                    raise ValidationError(f"units: {unit.unit_id} is its own ancestor")
                seen.add(parent)
                parent = parents[parent]
        for account in self.accounts:
            outside = {f.region for f in account.fleets} | set(account.disabled_regions)
            outside -= set(self.regions)
            if outside:
                raise ValidationError(
                    f"account {account.account_id}: {', '.join(sorted(outside))} is not one "
                    "of the organization's regions"
                )
        _check(
            "role_name",
            self.role_name,
            _ROLE_NAME,
            "a role name of 1 to 64 letters, digits or +=,.@-",
        )
        if self.external_id is not None:
            _check(
                "external_id",
                self.external_id,
                _EXTERNAL_ID,
                "2 to 1,224 letters, digits or +=,.@:/-, or None",
            )
        _check_flag("legacy_status", self.legacy_status)

    @property
    def arn(self) -> str:
        """The organization's ARN."""
        management, organization = self.management_account_id, self.organization_id
        return f"arn:aws:organizations::{management}:organization/{organization}"

    def account(self, account_id: str) -> WireAccount:
        """The account ``account_id``.

        Raises
        ------
        ValidationError
            If the organization has no such account.

        Examples
        --------
        >>> synthetic_organization(2).account("000000000000")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        patchframe.exceptions.ValidationError: account_id '000000000000' is not an account of o-...
        """
        for account in self.accounts:
            if account.account_id == account_id:
                return account
        raise ValidationError(
            f"account_id {account_id!r} is not an account of {self.organization_id}"
        )

    def with_account(self, account_id: str, **changes: Any) -> WireOrganization:
        """A copy in which the account ``account_id`` has ``changes``.

        ``changes`` are :class:`WireAccount` fields, as for :func:`dataclasses.replace`.

        Examples
        --------
        >>> org = synthetic_organization(3)
        >>> member = org.accounts[1].account_id
        >>> org.with_account(member, deny_role=True).account(member).deny_role
        True
        """
        changed = replace(self.account(account_id), **changes)
        accounts = [changed if a.account_id == account_id else a for a in self.accounts]
        return replace(self, accounts=tuple(accounts))

    def enabled_regions(self, account_id: str) -> tuple[str, ...]:
        """The organization's regions the account has enabled.

        Examples
        --------
        >>> org = synthetic_organization(2)
        >>> member = org.accounts[1].account_id
        >>> org.with_account(member, disabled_regions=("us-east-1",)).enabled_regions(member)
        ('eu-west-1',)
        """
        disabled = self.account(account_id).disabled_regions
        return tuple(region for region in self.regions if region not in disabled)

    @property
    def fleets(self) -> tuple[WireFleet, ...]:
        """What is served: each account's fleet in every region it has enabled (an
        empty one where it has none); none in a disabled region.

        Examples
        --------
        >>> org = synthetic_organization(3, nodes_per_account=4)
        >>> len(org.fleets), sum(len(fleet.instances) for fleet in org.fleets)
        (6, 12)
        """
        served = []
        for account in self.accounts:
            own = {fleet.region: fleet for fleet in account.fleets}
            served += [
                own.get(region) or WireFleet(account.account_id, region)
                for region in self.enabled_regions(account.account_id)
            ]
        return tuple(served)

    def path(self, entity_id: str) -> str:
        """The entity's path in the organization, as Organizations spells it.

        Examples
        --------
        >>> org = synthetic_organization(3)
        >>> org.path(org.accounts[2].account_id).count("/ou-")
        2
        """
        parents = {unit.unit_id: unit.parent_id for unit in self.units}
        parents |= {account.account_id: account.parent_id for account in self.accounts}
        steps = [entity_id]
        while steps[-1] != self.root_id:
            steps.append(parents[steps[-1]])
        return "/".join([self.organization_id, *reversed(steps)]) + "/"


# --------------------------------------------------------------------------- synthetic

# Units, parent first: (name, parent's name or None for the root).
_UNITS = (
    ("Production", None),
    ("Production EU", "Production"),
    ("Development", None),
    ("Sandbox", "Development"),
)
# Member accounts in the order they are made: (name, unit or None for the root).
_MEMBERS = (
    ("prod-payments", "Production"),
    ("dev-sandbox", "Sandbox"),
    ("prod-eu-web", "Production EU"),
    ("dev-tools", "Development"),
    ("prod-data", "Production"),
    ("prod-eu-api", "Production EU"),
    ("dev-ci", "Development"),
    ("security-audit", None),
)
_ALPHANUMERIC = string.ascii_lowercase + string.digits


def synthetic_organization(
    accounts: int = 5,
    *,
    nodes_per_account: int = 10,
    regions: Sequence[str] = ("eu-west-1", "us-east-1"),
    patches_per_node: int = 60,
    seed: int = 0,
) -> WireOrganization:
    """Make an organization of any size, each account with a synthetic fleet per region.

    The same arguments give the same organization. Account 0 is the management
    account, named ``management``, in the root; the others are spread over the
    units Production (and Production EU in it) and Development (and Sandbox in it),
    with readable unique names (``prod-payments``, ``dev-sandbox``, ...). Each
    account's nodes are split across the regions; every account is ACTIVE, every
    region enabled and the role ``PatchframeReadOnly`` assumable everywhere:
    flip those on copies (:meth:`WireOrganization.with_account`).

    Parameters
    ----------
    accounts
        How many accounts, the management account included (1 to 1,000).
    nodes_per_account
        How many nodes each account has, all regions together.
    regions
        The organization's regions, such as ``"eu-west-1"``.
    patches_per_node
        As for :func:`~patchframe.sandbox.sample.synthetic_fleet`.
    seed
        Seeds the ids and the fleets.

    Raises
    ------
    ValidationError
        If an argument is not one of the values above.

    Examples
    --------
    >>> org = synthetic_organization(4, nodes_per_account=3, patches_per_node=10)
    >>> [(account.name, org.path(account.account_id).count("/ou-")) for account in org.accounts]
    [('management', 0), ('prod-payments', 1), ('dev-sandbox', 2), ('prod-eu-web', 2)]
    >>> org == synthetic_organization(4, nodes_per_account=3, patches_per_node=10)
    True
    """
    _check_whole("accounts", accounts, low=1, high=1000)
    _check_whole("nodes_per_account", nodes_per_account, low=0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError(f"seed must be a whole number, not {seed!r}")
    if isinstance(regions, str) or not isinstance(regions, Sequence) or not regions:
        raise ValidationError(f"regions must be a sequence of region names, not {regions!r}")
    _check_regions("regions", tuple(regions))
    rng = random.Random(f"patchframe organization {seed}")
    root = "".join(rng.choices(_ALPHANUMERIC, k=4))
    unit_ids: dict[str | None, str] = {None: f"r-{root}"}
    units = []
    for name, parent in _UNITS:
        unit_ids[name] = f"ou-{root}-{''.join(rng.choices(_ALPHANUMERIC, k=8))}"
        units.append(WireUnit(unit_ids[name], name, unit_ids[parent]))
    ids = [str(number) for number in rng.sample(range(10**11, 10**12), accounts)]
    members = [("management", None), *_MEMBERS]
    made = []
    for index, account_id in enumerate(ids):
        rounds, place = divmod(index - 1, len(_MEMBERS)) if index else (0, -1)
        name, unit = members[place + 1]
        share, extra = divmod(nodes_per_account, len(regions))
        fleets = tuple(
            synthetic_fleet(
                share + (position < extra),
                seed=seed,
                account_id=account_id,
                region=region,
                patches_per_node=patches_per_node,
            )
            for position, region in enumerate(regions)
        )
        made.append(
            WireAccount(
                account_id,
                f"{name}-{rounds + 1}" if rounds else name,
                parent_id=unit_ids[unit],
                fleets=fleets,
                joined_method="CREATED" if index else "INVITED",
                joined_timestamp=_NOW - (1500 - index) * 86400 + rng.randrange(86400),
            )
        )
    organization = f"o-{''.join(rng.choices(_ALPHANUMERIC, k=10))}"
    return WireOrganization(
        organization, f"r-{root}", ids[0], tuple(made), units=tuple(units), regions=tuple(regions)
    )
