"""The sample fleet and synthetic fleets, as the Systems Manager wire carries them.

A :class:`WireFleet` is one account and region's state in the API's own JSON:
``DescribeInstanceInformation`` entries, ``DescribeInstancePatchStates`` entries,
``DescribeInstancePatches`` rows per node, and each node's tags. The local emulator
(:mod:`patchframe.sandbox.emulator`) serves fleets; tests use them as ground truth.

:func:`sample_fleet` reads the bundled sample (``sample_data/``, packaged as
``patchframe.sample_data``): thirteen nodes across Windows Server, Amazon Linux,
RHEL, Ubuntu and SUSE, with the quirks real responses have. :func:`build_sample_fleet`
is the deterministic builder that wrote it (``python -m patchframe.sandbox.sample --write
sample_data``), and :func:`synthetic_fleet` makes fleets of any size from the same
per-OS catalogues. The tables they are made from (platforms, Windows updates, Linux
packages, CVEs, the sample's nodes) are package data files in ``sandbox/catalog/``.

Patch-state counts follow AWS's rules: MISSING, FAILED, INSTALLED_PENDING_REBOOT,
INSTALLED_REJECTED and AVAILABLE_SECURITY_UPDATE are non-compliant (the sample's
baselines report available security updates as non-compliant). A non-compliant
patch of severity Critical counts as critical, else one classified as security as
security, else as other, so the three counts add up to the non-compliant rows.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import math
import operator
import os
import random
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, NamedTuple

from .._schema import (
    NON_COMPLIANT_STATES,
    STATE_COUNT_FIELDS,
    STATES,
    WIRE_STATES,
    normalise_state,
)
from ..exceptions import ValidationError
from ._catalog import (
    AGENT_VERSIONS,
    ENVIRONMENTS,
    HYGIENE,
    HYGIENE_MIX,
    INSTALLS_PER_WINDOW,
    NEWEST_MONTH,
    PLATFORM_MIX,
    PLATFORMS,
    ROLES,
    SAMPLE_NODES,
    SECURITY_CLASSES,
    TEAMS,
    WINDOWS,
    Catalogue,
    Entry,
    catalogue,
    catalogue_size,
    windows_month,
)

__all__ = [
    "HISTORY_START",
    "YEAR_ONE",
    "WireFleet",
    "build_sample_fleet",
    "main",
    "read_fleet",
    "sample_fleet",
    "synthetic_fleet",
    "synthetic_history",
    "write_fleet",
]

# Real responses spell states in CamelCase (WIRE_STATES); a few nodes spell them as the
# model does, in upper snake case.
_SNAKE = {state: state for state in STATES}

_INSTALLED = frozenset(
    {"INSTALLED", "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED"}
)
# The service leaves these rows' descriptive fields empty rather than absent.
_BLANK = frozenset({"INSTALLED_OTHER", "NOT_APPLICABLE"})

#: Seconds since the epoch of 0001-01-01, a sentinel the service sends for "never".
YEAR_ONE = -62135596800
# The sample's clock: every timestamp is relative to 2024-06-14T08:00:00Z.
_NOW = 1718352000


@dataclass(frozen=True)
class WireFleet:
    """One account and region's Systems Manager state, as the wire carries it.

    Parameters
    ----------
    account_id, region
        Where the fleet lives.
    instances
        ``DescribeInstanceInformation`` ``InstanceInformationList`` entries.
    patch_states
        ``DescribeInstancePatchStates`` ``InstancePatchStates`` entries; a node that
        was never scanned has none.
    patches
        Instance id to ``DescribeInstancePatches`` ``Patches`` rows; a node that was
        never scanned has no key.
    tags
        Instance id to its tags, for tag filters.

    Timestamps are epoch seconds, as on the wire.

    Examples
    --------
    >>> fleet = sample_fleet()
    >>> fleet.region, len(fleet.instances), fleet.n_patches > 2000
    ('eu-west-1', 13, True)
    >>> WireFleet("111122223333", "us-east-1").n_patches
    0
    """

    account_id: str
    region: str
    instances: list[dict[str, Any]] = field(default_factory=list)
    patch_states: list[dict[str, Any]] = field(default_factory=list)
    patches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def instance_ids(self) -> list[str]:
        """The nodes' ids, in ``DescribeInstanceInformation`` order."""
        return [node["InstanceId"] for node in self.instances]

    @property
    def n_patches(self) -> int:
        """How many patch rows the fleet holds, all nodes together."""
        return sum(len(rows) for rows in self.patches.values())


# --------------------------------------------------------------------------- arguments

_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")


def _check_whole(name: str, value: object, *, low: int, high: int | None = None) -> None:
    """Refuse ``value`` unless it is a whole number (numpy's too) from ``low`` to ``high``."""
    bounds = f"{low} or more" if high is None else f"between {low} and {high}"
    # bool is an int to Python, never a count to a person.
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValidationError(f"{name} must be a whole number ({bounds}), not {value!r}")
    number = operator.index(value)
    if number < low or (high is not None and number > high):
        raise ValidationError(f"{name} must be {bounds}, not {value!r}")


def _check_fleet_arguments(
    nodes: object, seed: object, patches_per_node: object, account_id: object, region: object
) -> None:
    """Refuse arguments of :func:`synthetic_fleet` that it cannot honour."""
    _check_whole("nodes", nodes, low=0)
    if isinstance(seed, bool) or not hasattr(seed, "__index__"):
        raise ValidationError(f"seed must be a whole number, not {seed!r}")
    _check_whole("patches_per_node", patches_per_node, low=0, high=1000)
    if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id):
        raise ValidationError(f"account_id must be 12 digits, not {account_id!r}")
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ValidationError(f"region must be a region name such as 'us-east-1', not {region!r}")


# --------------------------------------------------------------------------- building


class _Node(NamedTuple):
    instance_id: str
    os: str
    rows: int
    profile: str
    name: str
    environment: str
    team: str
    patch_group: str
    ping: str = "Online"
    operation: str = "Scan"
    reboot: str = "RebootIfNeeded"
    upper_snake: bool = False
    scanned: bool = True


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _stamp(rng: random.Random, when: float) -> float | int:
    # The wire carries whole seconds for some records and milliseconds for others.
    return round(when + rng.random(), 3) if rng.random() < 0.5 else int(when)


def _state_counts(rows: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """A node's DescribeInstancePatchStates counts: per state, and non-compliant graded."""
    states = [normalise_state(row["State"]) for row in rows]
    counts = Counter(states)
    graded = dict.fromkeys(
        ("CriticalNonCompliantCount", "SecurityNonCompliantCount", "OtherNonCompliantCount"), 0
    )
    for row, state in zip(rows, states, strict=True):
        if state in NON_COMPLIANT_STATES:
            if row["Severity"] == "Critical":
                graded["CriticalNonCompliantCount"] += 1
            elif row["Classification"] in SECURITY_CLASSES:
                graded["SecurityNonCompliantCount"] += 1
            else:
                graded["OtherNonCompliantCount"] += 1
    return {name: counts[state] for state, name in STATE_COUNT_FIELDS.items()}, graded


def _patches(
    rng: random.Random, node: _Node, offered: Catalogue, runs: list[float | int]
) -> list[dict[str, Any]]:
    entries, recent, applicable = offered
    take = min(node.rows, int(0.85 * applicable))
    picks = rng.sample(range(applicable), take)
    picks += rng.sample(range(applicable, len(entries)), node.rows - take)
    older_weights, recent_weights = HYGIENE[node.profile]
    states = rng.choices(STATES, weights=older_weights, k=node.rows)
    fresh = [i for i, index in enumerate(picks) if index < recent]
    newest = rng.choices(STATES, weights=recent_weights, k=len(fresh))
    for i, state in zip(fresh, newest, strict=True):
        states[i] = state
    states[take:] = ["NOT_APPLICABLE"] * (node.rows - take)
    windows = PLATFORMS[node.os].family == "windows"
    for i, state in enumerate(states):
        if state == "AVAILABLE_SECURITY_UPDATE" and (
            not windows or entries[picks[i]].classification != "SecurityUpdates"
        ):
            states[i] = "MISSING"
    installed_at = rng.choices(runs, k=node.rows)
    year_one = set(rng.sample(range(node.rows), node.rows // 20))
    spell = _SNAKE if node.upper_snake else WIRE_STATES
    blank_cves = PLATFORMS[node.os].family == "al2023"
    rows = []
    for i, (index, state) in enumerate(zip(picks, states, strict=True)):
        title, kb_id, classification, severity, cve_ids = entries[index]
        row: dict[str, Any]
        if state in _BLANK:
            row = {"Title": "", "KBId": kb_id, "Classification": "", "Severity": ""}
        else:
            row = {
                "Title": title,
                "KBId": kb_id,
                "Classification": classification,
                "Severity": severity,
            }
        row["State"] = spell[state]
        if state in _INSTALLED:
            pending = state == "INSTALLED_PENDING_REBOOT"
            row["InstalledTime"] = runs[-1] if pending else installed_at[i]
        else:
            row["InstalledTime"] = YEAR_ONE if i in year_one else 0
        if cve_ids and (state == "MISSING" or state == "FAILED"):
            row["CVEIds"] = cve_ids
        elif blank_cves:
            row["CVEIds"] = ""
        rows.append(row)
    return rows


def _instance(rng: random.Random, node: _Node, region: str) -> dict[str, Any]:
    platform = PLATFORMS[node.os]
    hybrid = node.instance_id.startswith("mi-")
    ping = _NOW - (
        12 * 86400 + rng.randrange(3600) if node.ping == "ConnectionLost" else rng.randrange(300)
    )
    agent = rng.choice(AGENT_VERSIONS)
    info: dict[str, Any] = {
        "InstanceId": node.instance_id,
        "PingStatus": node.ping,
        "LastPingDateTime": round(ping + rng.random(), 3),
        "AgentVersion": agent,
        "IsLatestVersion": agent == AGENT_VERSIONS[-1],
        "PlatformType": platform.type,
        "PlatformName": platform.name,
        "PlatformVersion": platform.version,
    }
    octets = [rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)]
    if hybrid:
        info["ActivationId"] = _uuid(rng)
        info["IamRole"] = "SSMServiceRole"
        info["RegistrationDate"] = _NOW - 400 * 86400 - rng.randrange(86400)
        info["ResourceType"] = "ManagedInstance"
        info["Name"] = node.name
        info["IPAddress"] = f"192.168.{octets[1]}.{octets[2]}"
        if platform.type == "Windows":
            info["ComputerName"] = node.name.upper()
        else:
            info["ComputerName"] = f"{node.name}.corp.example.com"
    else:
        info["ResourceType"] = "EC2Instance"
        info["IPAddress"] = "10.{}.{}.{}".format(*octets)
        if platform.type == "Windows":
            info["ComputerName"] = "EC2AMAZ-" + "".join(
                rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=7)
            )
        else:
            info["ComputerName"] = "ip-10-{}-{}-{}.{}.compute.internal".format(*octets, region)
    if not node.scanned:
        status = "Pending"
    else:
        status = "Failed" if node.ping == "ConnectionLost" else "Success"
    info["AssociationStatus"] = status
    if node.scanned:
        info["LastAssociationExecutionDate"] = round(ping - 1800 + rng.random(), 3)
        info["LastSuccessfulAssociationExecutionDate"] = round(
            ping - 1800 - 86400 * (status == "Failed"), 3
        )
    info["AssociationOverview"] = {
        "DetailedStatus": status,
        "InstanceAssociationStatusAggregatedCount": {status: 2 if node.scanned else 1},
    }
    info["SourceId"] = node.instance_id
    info["SourceType"] = "AWS::SSM::ManagedInstance" if hybrid else "AWS::EC2::Instance"
    return info


def _build(
    nodes: Sequence[_Node],
    *,
    account_id: str,
    region: str,
    rng: random.Random,
    patches_per_node: int,
) -> WireFleet:
    size = catalogue_size(patches_per_node)
    catalogues = {os_key: catalogue(os_key, size) for os_key in {node.os for node in nodes}}
    # One custom baseline per patch group; nodes without a group get the default.
    baselines: dict[tuple[str, str], str] = {}
    fleet = WireFleet(account_id, region)
    for node in nodes:
        fleet.instances.append(_instance(rng, node, region))
        tags = {"Name": node.name, "Environment": node.environment, "Team": node.team}
        if node.patch_group:
            tags["Patch Group"] = node.patch_group
        fleet.tags[node.instance_id] = tags
        if not node.scanned:
            continue
        lost = node.ping == "ConnectionLost"
        start = (
            _NOW - (14 * 86400 if lost else 3600 * (1 + rng.randrange(20))) - rng.randrange(3600)
        )
        end = start + 40 + rng.randrange(600 if node.operation == "Install" else 120)
        runs = sorted(_stamp(rng, start - 86400 * rng.randrange(1, 400)) for _ in range(6))
        rows = _patches(rng, node, catalogues[node.os], runs)
        fleet.patches[node.instance_id] = rows
        family = PLATFORMS[node.os].family
        key = (family, node.patch_group)
        if key not in baselines:
            baseline = f"pb-0{_hex(rng, 16)}"
            if not node.patch_group:
                # AWS-owned default baselines are named by ARN.
                baseline = f"arn:aws:ssm:{region}:{account_id}:patchbaseline/{baseline}"
            baselines[key] = baseline
        state: dict[str, Any] = {
            "InstanceId": node.instance_id,
            "PatchGroup": node.patch_group,
            "BaselineId": baselines[key],
            "SnapshotId": _uuid(rng),
        }
        by_state, graded = _state_counts(rows)
        state.update(by_state)
        state["OperationStartTime"] = _stamp(rng, start)
        state["OperationEndTime"] = _stamp(rng, end)
        state["Operation"] = node.operation
        if node.reboot == "NoReboot" and node.operation == "Install":
            state["LastNoRebootInstallOperationTime"] = state["OperationEndTime"]
        state["RebootOption"] = node.reboot
        state.update(graded)
        fleet.patch_states.append(state)
    return fleet


# --------------------------------------------------------------------------- the sample

_SAMPLE_ACCOUNT, _SAMPLE_REGION = "123456789012", "eu-west-1"


def _sample_nodes() -> list[_Node]:
    nodes = []
    for row in SAMPLE_NODES:
        flags = row["flags"].split()
        nodes.append(
            _Node(
                row["instance_id"],
                row["os"],
                int(row["rows"]),
                row["hygiene"],
                row["name"],
                row["environment"],
                row["team"],
                row["patch_group"],
                ping="ConnectionLost" if "lost" in flags else "Online",
                operation="Install" if {"install", "noreboot"} & set(flags) else "Scan",
                reboot="NoReboot" if "noreboot" in flags else "RebootIfNeeded",
                upper_snake="snake" in flags,
                scanned="unscanned" not in flags,
            )
        )
    return nodes


def build_sample_fleet() -> WireFleet:
    """Build the sample fleet from its recipe: the same result on every run.

    :func:`sample_fleet` reads what this wrote to ``sample_data/``; the test suite
    checks the two still agree.

    Examples
    --------
    >>> build_sample_fleet() == sample_fleet()
    True
    """
    return _build(
        _sample_nodes(),
        account_id=_SAMPLE_ACCOUNT,
        region=_SAMPLE_REGION,
        rng=random.Random("patchframe sample fleet"),
        patches_per_node=330,
    )


def read_fleet(directory: str | Path | Traversable) -> WireFleet:
    """Read a fleet stored as wire JSON in the layout of ``sample_data/``.

    The layout: ``fleet.json`` (``AccountId``, ``Region``), ``instance_information.json``,
    ``instance_patch_states.json``, ``tags.json`` (``{"Tags": {instance_id: {key: value}}}``)
    and ``patches/<instance_id>.json``, each as the API returns it.

    Parameters
    ----------
    directory
        A directory path, or a package resource such as ``files("patchframe.sample_data")``.

    Raises
    ------
    ValidationError
        If ``directory`` is not a folder holding ``fleet.json``.

    Examples
    --------
    >>> from importlib.resources import files
    >>> read_fleet(files("patchframe.sample_data")).account_id
    '123456789012'
    """
    root = Path(directory) if isinstance(directory, str | os.PathLike) else directory
    if not isinstance(root, Traversable):
        raise ValidationError(f"directory must be a path or a package resource, not {directory!r}")
    if not root.is_dir():
        raise ValidationError(f"directory must be an existing folder, not {str(directory)!r}")
    if not (root / "fleet.json").is_file():
        raise ValidationError(
            f"directory must hold a fleet as write_fleet writes it, with fleet.json; "
            f"{str(directory)!r} has none"
        )

    def load(name: str) -> Any:
        return json.loads((root / name).read_text(encoding="utf-8"))

    where = load("fleet.json")
    fleet = WireFleet(
        where["AccountId"],
        where["Region"],
        load("instance_information.json")["InstanceInformationList"],
        load("instance_patch_states.json")["InstancePatchStates"],
        {},
        load("tags.json")["Tags"],
    )
    stored = {
        p.name[: -len(".json")]: p
        for p in (root / "patches").iterdir()
        if p.name.endswith(".json")
    }
    # Keep the nodes' own order, so a fleet read back equals the fleet written.
    for instance_id in [*fleet.instance_ids, *sorted(set(stored) - set(fleet.instance_ids))]:
        if instance_id in stored:
            fleet.patches[instance_id] = json.loads(
                stored[instance_id].read_text(encoding="utf-8")
            )["Patches"]
    return fleet


def sample_fleet() -> WireFleet:
    """Return the bundled sample fleet, read from the package's ``sample_data``.

    Thirteen nodes in account 123456789012, region eu-west-1: Windows Server 2019
    and 2022, Amazon Linux 2023, RHEL 8 and 9, Ubuntu 22.04 and SUSE 15, two of them
    hybrid (``mi-``) nodes, one ConnectionLost, one never scanned, one whose states
    are spelled in upper snake case; every patch state is present.

    Examples
    --------
    >>> fleet = sample_fleet()
    >>> sorted({node["PlatformName"] for node in fleet.instances})[:2]
    ['Amazon Linux', 'Microsoft Windows Server 2019 Datacenter']
    """
    return read_fleet(files("patchframe.sample_data"))


def _document(key: str, rows: list[dict[str, Any]]) -> str:
    # One row a line: diffs stay readable and the file stays small.
    if not rows:
        return json.dumps({key: []}, indent=2) + "\n"
    body = ",\n".join(f"    {json.dumps(row)}" for row in rows)
    return f'{{\n  "{key}": [\n{body}\n  ]\n}}\n'


def write_fleet(fleet: WireFleet, directory: str | Path) -> list[Path]:
    """Write ``fleet`` as wire JSON in the layout :func:`read_fleet` reads.

    Patch files of nodes no longer in the fleet are removed, so the directory holds
    exactly the fleet.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ValidationError
        If ``fleet`` is not a :class:`WireFleet` or ``directory`` is a file.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = write_fleet(sample_fleet(), tmp)
    ...     read_fleet(tmp) == sample_fleet()
    True
    """
    if not isinstance(fleet, WireFleet):
        raise ValidationError(f"fleet must be a WireFleet, not {type(fleet).__name__}")
    if not isinstance(directory, str | os.PathLike):
        raise ValidationError(f"directory must be a path, not {directory!r}")
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise ValidationError(f"directory must be a folder, not the file {str(directory)!r}")
    (root / "patches").mkdir(parents=True, exist_ok=True)
    documents = {
        "fleet.json": json.dumps({"AccountId": fleet.account_id, "Region": fleet.region}, indent=2)
        + "\n",
        "instance_information.json": json.dumps(
            {"InstanceInformationList": fleet.instances}, indent=2
        )
        + "\n",
        "instance_patch_states.json": json.dumps(
            {"InstancePatchStates": fleet.patch_states}, indent=2
        )
        + "\n",
        "tags.json": json.dumps({"Tags": fleet.tags}, indent=2) + "\n",
    }
    for instance_id, rows in fleet.patches.items():
        documents[f"patches/{instance_id}.json"] = _document("Patches", rows)
    for stale in (root / "patches").glob("*.json"):
        if f"patches/{stale.name}" not in documents:
            stale.unlink()
    written = []
    for name, text in documents.items():
        path = root / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# --------------------------------------------------------------------------- synthetic


def synthetic_fleet(
    nodes: int = 100,
    *,
    seed: int = 0,
    patches_per_node: int = 330,
    account_id: str = "123456789012",
    region: str = "us-east-1",
) -> WireFleet:
    """Make a fleet of any size from the sample's per-OS catalogues.

    The same arguments give the same fleet. Nodes mix operating systems, hygiene
    and ping status; about one in a hundred was never scanned and about two in a
    hundred spell their states in upper snake case, as on real fleets. Nodes are
    tagged Name, Environment, Team and Patch Group (when in one), but, as on
    real fleets, about one in twenty has none of the first three and another one
    in twenty no Team.

    Parameters
    ----------
    nodes
        How many nodes.
    seed
        Seeds the generator, together with ``account_id`` and ``region`` so that
        fleets in different places do not share instance ids.
    patches_per_node
        The mean number of patch rows per node (each node has 70% to 130% of it),
        at most 1000.
    account_id, region
        Where the fleet lives: 12 digits, and a region name such as ``"eu-west-1"``.

    Raises
    ------
    ValidationError
        If an argument is not one of the values above.

    Examples
    --------
    >>> fleet = synthetic_fleet(20, seed=7, patches_per_node=50)
    >>> len(fleet.instances), fleet == synthetic_fleet(20, seed=7, patches_per_node=50)
    (20, True)
    """
    _check_fleet_arguments(nodes, seed, patches_per_node, account_id, region)
    rng = random.Random(f"patchframe synthetic {seed} {account_id} {region}")
    seen: set[str] = set()
    specs: list[_Node] = []
    for os_key in rng.choices(tuple(PLATFORM_MIX), weights=tuple(PLATFORM_MIX.values()), k=nodes):
        hybrid = rng.random() < 0.1
        instance_id = ""
        while not instance_id or instance_id in seen:
            instance_id = f"mi-{_hex(rng, 17)}" if hybrid else f"i-0{_hex(rng, 16)}"
        seen.add(instance_id)
        family = PLATFORMS[os_key].family
        environment = rng.choices(tuple(ENVIRONMENTS), weights=tuple(ENVIRONMENTS.values()))[0]
        group = "" if rng.random() < 0.1 else f"{environment}-{PLATFORMS[os_key].type.lower()}"
        ping_draw = rng.random()
        specs.append(
            _Node(
                instance_id,
                os_key,
                round(patches_per_node * (0.7 + 0.6 * rng.random())),
                rng.choices(tuple(HYGIENE_MIX), weights=tuple(HYGIENE_MIX.values()))[0],
                f"{rng.choice(ROLES.get(family, ROLES['other']))}-{len(specs) + 1:04d}",
                environment,
                rng.choice(TEAMS),
                group,
                ping="ConnectionLost"
                if ping_draw < 0.03
                else "Inactive"
                if ping_draw < 0.04
                else "Online",
                operation="Install" if rng.random() < 0.3 else "Scan",
                reboot="NoReboot" if rng.random() < 0.15 else "RebootIfNeeded",
                upper_snake=rng.random() < 0.02,
                scanned=rng.random() >= 0.01,
            )
        )
    fleet = _build(
        specs, account_id=account_id, region=region, rng=rng, patches_per_node=patches_per_node
    )
    _untag_some(fleet)
    return fleet


_OWNER_TAGS = ("Name", "Environment", "Team")


def _untag_some(fleet: WireFleet) -> None:
    """Leave about 5% of nodes without owner tags and 5% more without Team.

    Nodes are picked by a hash of their id, not by the fleet's generator, so every
    other field of a fleet stays what it was before synthetic fleets had untagged nodes.
    A patch group is itself a tag, so a node in one keeps its "Patch Group" tag.
    """
    for instance_id in list(fleet.tags):
        digest = hashlib.blake2b(f"untagged {instance_id}".encode(), digest_size=8).digest()
        share = int.from_bytes(digest, "big") / 2**64
        tags = fleet.tags[instance_id]
        if share < 0.05:
            for key in _OWNER_TAGS:
                del tags[key]
            if not tags:
                del fleet.tags[instance_id]
        elif share < 0.10:
            del tags["Team"]


# --------------------------------------------------------------------------- history

#: When a synthetic history starts by default: the sample's clock, 2024-06-14T08:00:00Z.
HISTORY_START = dt.datetime.fromtimestamp(_NOW, tz=dt.UTC)

_FAIL_SHARE = 0.08  # of install attempts
_REBOOT_SHARE = 0.6  # of pending reboots done by the next snapshot
_LEAVE_SHARE = 0.04  # of nodes terminated between two snapshots
_JOINS = (0, 1, 1, 2)  # nodes registering between two snapshots, drawn from these
_LINUX_RELEASES = 3  # packages per Linux platform with a new version between snapshots
_RELEASE_SHARE = 0.8  # of a platform's nodes a new package version applies to
_TIME_FIELDS = (
    "LastPingDateTime",
    "RegistrationDate",
    "LastAssociationExecutionDate",
    "LastSuccessfulAssociationExecutionDate",
    "OperationStartTime",
    "OperationEndTime",
    "LastNoRebootInstallOperationTime",
)
_OS_OF = {(p.name, p.version): key for key, p in PLATFORMS.items()}


def _copied(fleet: WireFleet) -> WireFleet:
    """A copy sharing nothing mutable; patch rows are flat, so a dict() each will do."""
    return WireFleet(
        fleet.account_id,
        fleet.region,
        copy.deepcopy(fleet.instances),
        [dict(state) for state in fleet.patch_states],
        {node: [dict(row) for row in rows] for node, rows in fleet.patches.items()},
        {node: dict(tags) for node, tags in fleet.tags.items()},
    )


def _shifted(fleet: WireFleet, seconds: int) -> WireFleet:
    """A copy of ``fleet`` with every timestamp moved by ``seconds``; "never" stays never."""
    moved = _copied(fleet)
    for record in [*moved.instances, *moved.patch_states]:
        for name in _TIME_FIELDS:
            if name in record:
                record[name] += seconds
    for rows in moved.patches.values():
        for row in rows:
            if row.get("InstalledTime") not in (0, YEAR_ONE, None):
                row["InstalledTime"] += seconds
    return moved


class _Releases:
    """The patches vendors publish after the sample's catalogues end (June 2024)."""

    def __init__(self, patches_per_node: int, snapshots: int) -> None:
        self.size = catalogue_size(patches_per_node)
        self.snapshots = snapshots
        self._newer: dict[str, tuple[Catalogue, int]] = {}

    def windows(self, os_key: str, since: dt.datetime, until: dt.datetime) -> list[Entry]:
        """Windows updates of each month whose Patch Tuesday (second Tuesday) is in the period."""
        entries = []
        for month in range(NEWEST_MONTH + 1, until.year * 12 + until.month):
            first = dt.datetime(month // 12, month % 12 + 1, 1, 18, tzinfo=dt.UTC)
            tuesday = first + dt.timedelta(days=(1 - first.weekday()) % 7 + 7)
            if since < tuesday <= until:
                entries.extend(windows_month(WINDOWS[os_key], month))
        return entries

    def linux(self, rng: random.Random, os_key: str, step: int) -> list[Entry]:
        """New versions of a few packages: ``step`` versions past the catalogue's newest."""
        if os_key not in self._newer:
            packages = catalogue(os_key, self.size).recent
            steps = math.ceil(self.size / packages)
            # A longer catalogue starts that many versions further on: its first rows
            # are the versions after the ones nodes already list.
            longer = catalogue(os_key, (steps + self.snapshots) * packages)
            self._newer[os_key] = (longer, packages)
        longer, packages = self._newer[os_key]
        row = (self.snapshots - step) * packages
        picked = rng.sample(range(packages), min(_LINUX_RELEASES, packages))
        return [longer.entries[row + i] for i in sorted(picked)]


def _new_row(entry: Entry, spell: dict[str, str], blank_cves: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Title": entry.title,
        "KBId": entry.kb_id,
        "Classification": entry.classification,
        "Severity": entry.severity,
        "State": spell["MISSING"],
        "InstalledTime": 0,
    }
    if entry.cve_ids:
        row["CVEIds"] = entry.cve_ids
    elif blank_cves:
        row["CVEIds"] = ""
    return row


def _leave(rng: random.Random, fleet: WireFleet) -> None:
    """Some nodes are terminated: they vanish from every answer."""
    gone = {i for i in fleet.instance_ids if rng.random() < _LEAVE_SHARE}
    if 2 * len(gone) > len(fleet.instances):  # a fleet that shrinks, not one that dies
        return
    fleet.instances[:] = [n for n in fleet.instances if n["InstanceId"] not in gone]
    fleet.patch_states[:] = [s for s in fleet.patch_states if s["InstanceId"] not in gone]
    for instance_id in sorted(gone):
        fleet.patches.pop(instance_id, None)
        fleet.tags.pop(instance_id, None)


def _join(rng: random.Random, fleet: WireFleet, when: dt.datetime, patches_per_node: int) -> None:
    """A few nodes register, each with the patch state of its image."""
    count = rng.choice(_JOINS)
    if not count:
        return
    newcomers = synthetic_fleet(
        count,
        seed=rng.getrandbits(32),
        patches_per_node=patches_per_node,
        account_id=fleet.account_id,
        region=fleet.region,
    )
    newcomers = _shifted(newcomers, round(when.timestamp()) - _NOW)
    known = set(fleet.instance_ids)
    states = {s["InstanceId"]: s for s in newcomers.patch_states}
    for info in newcomers.instances:
        instance_id = info["InstanceId"]
        if instance_id in known:
            continue
        fleet.instances.append(info)
        if instance_id in newcomers.tags:
            fleet.tags[instance_id] = newcomers.tags[instance_id]
        if instance_id in states:
            fleet.patch_states.append(states[instance_id])
            fleet.patches[instance_id] = newcomers.patches[instance_id]


def _patch_window(
    rng: random.Random,
    fleet: WireFleet,
    releases: _Releases,
    step: int,
    since: dt.datetime,
    until: dt.datetime,
) -> None:
    """Vendors release patches, scanned nodes list them MISSING; then nodes install some."""
    platforms = {_OS_OF[(n["PlatformName"], n["PlatformVersion"])] for n in fleet.instances}
    linux = {
        os_key: releases.linux(rng, os_key, step)
        for os_key in sorted(platforms)
        if PLATFORMS[os_key].family != "windows"
    }
    infos = {n["InstanceId"]: n for n in fleet.instances}
    for state in fleet.patch_states:
        info = infos[state["InstanceId"]]
        if info["PingStatus"] != "Online":
            continue  # it does not scan: its last answer stands
        os_key = _OS_OF[(info["PlatformName"], info["PlatformVersion"])]
        rows = fleet.patches.setdefault(state["InstanceId"], [])
        spell = _SNAKE if rows and rows[0]["State"].isupper() else WIRE_STATES
        blank_cves = PLATFORMS[os_key].family == "al2023"
        if os_key in WINDOWS:
            released = releases.windows(os_key, since, until)
        else:
            released = [e for e in linux[os_key] if rng.random() < _RELEASE_SHARE]
        listed = {row["KBId"] for row in rows}
        rows.extend(_new_row(e, spell, blank_cves) for e in released if e.kb_id not in listed)
        installed = _install(rng, rows, state, since, until, blank_cves=blank_cves)
        _report(rng, state, info, rows, installed, since, until)


def _install(
    rng: random.Random,
    rows: list[dict[str, Any]],
    state: dict[str, Any],
    since: dt.datetime,
    until: dt.datetime,
    *,
    blank_cves: bool,
) -> float | None:
    """Install a share of a node's open patches; return when, None if nothing was tried."""
    node = random.Random(f"patchframe diligence {state['InstanceId']}")
    # The share of its open patches a node installs, drawn once per node from the
    # hygiene mix; the node's own hygiene profile plays no part.
    diligence = node.choices(
        tuple(INSTALLS_PER_WINDOW.values()), weights=tuple(HYGIENE_MIX.values())
    )[0]
    # The node's maintenance window, in the second half of the period, ten minutes long.
    period = (until - since).total_seconds()
    window = until.timestamp() - period * rng.uniform(0.05, 0.5)
    done = "INSTALLED_PENDING_REBOOT" if state.get("RebootOption") == "NoReboot" else "INSTALLED"
    tried = False
    for row in rows:
        current = normalise_state(row["State"])
        if current in ("MISSING", "AVAILABLE_SECURITY_UPDATE", "FAILED"):
            if rng.random() >= diligence:
                continue
            tried = True
            fails = current != "FAILED" and rng.random() < _FAIL_SHARE
            new = "FAILED" if fails else done
        elif current == "INSTALLED_PENDING_REBOOT" and rng.random() < _REBOOT_SHARE:
            new = "INSTALLED"  # rebooted: the install it waited on takes effect
        else:
            continue
        spell = _SNAKE if row["State"].isupper() else WIRE_STATES
        row["State"] = spell[new]
        if new == "FAILED":
            continue
        if current != "INSTALLED_PENDING_REBOOT":
            row["InstalledTime"] = _stamp(rng, window + rng.uniform(0, min(600, period / 20)))
        # The service lists CVEs for MISSING and FAILED patches only.
        if "CVEIds" in row:
            if blank_cves:
                row["CVEIds"] = ""
            else:
                del row["CVEIds"]
    return window if tried else None


def _report(
    rng: random.Random,
    state: dict[str, Any],
    info: dict[str, Any],
    rows: list[dict[str, Any]],
    installed: float | None,
    since: dt.datetime,
    until: dt.datetime,
) -> None:
    """Update what the node reports: its counts, its last operation, its last ping."""
    now, period = until.timestamp(), (until - since).total_seconds()
    start = installed if installed is not None else now - period * rng.uniform(0.1, 0.2)
    by_state, graded = _state_counts(rows)
    state.update(by_state | graded)
    state["Operation"] = "Install" if installed is not None else "Scan"
    state["OperationStartTime"] = _stamp(rng, start)
    state["OperationEndTime"] = _stamp(rng, start + min(40 + rng.randrange(600), period / 20))
    if installed is not None and state.get("RebootOption") == "NoReboot":
        state["LastNoRebootInstallOperationTime"] = state["OperationEndTime"]
    info["LastPingDateTime"] = round(now - rng.uniform(0, min(300, period / 20)), 3)
    if "LastAssociationExecutionDate" in info:
        info["LastAssociationExecutionDate"] = round(start - rng.uniform(0, period / 20), 3)
        info["LastSuccessfulAssociationExecutionDate"] = info["LastAssociationExecutionDate"]


def synthetic_history(
    snapshots: int = 6,
    *,
    nodes: int = 30,
    seed: int = 0,
    start: dt.datetime = HISTORY_START,
    every: dt.timedelta = dt.timedelta(days=7),
    patches_per_node: int = 100,
    account_id: str = "123456789012",
    region: str = "us-east-1",
) -> list[tuple[dt.datetime, WireFleet]]:
    """Make a fleet's history: the same fleet at several times, drifting as real ones do.

    The first snapshot is :func:`synthetic_fleet` with its clock moved to ``start``.
    Between two snapshots, in this order: a few nodes are terminated (about one in
    25); zero to two nodes register; vendors release patches, which every online
    node they apply to lists MISSING (each month's Windows updates on its Patch
    Tuesday, new versions of three packages per Linux platform at every snapshot);
    then each online node installs a share of its MISSING, FAILED and available
    security updates (a share fixed per node, from 8% to 85%) in a maintenance
    window, setting InstalledTime; about 8% of installs fail (FAILED); nodes that
    install without rebooting leave INSTALLED_PENDING_REBOOT, and most pending
    reboots happen by the next snapshot. ConnectionLost and Inactive nodes change
    nothing. Patch-state counts always agree with the patch rows.

    Parameters
    ----------
    snapshots
        How many snapshots, 1 or more.
    nodes
        Nodes at the start.
    seed
        The same arguments give the same history.
    start
        The first snapshot's time, timezone-aware.
    every
        The time between two snapshots.
    patches_per_node, account_id, region
        As for :func:`synthetic_fleet`.

    Raises
    ------
    ValidationError
        If an argument is not one of the values above.

    Returns
    -------
    list of (datetime, WireFleet)
        One (time, fleet) per snapshot, oldest first; each fleet is its own copy,
        ready for :class:`~patchframe.Emulator`.

    Examples
    --------
    >>> history = synthetic_history(3, nodes=10, patches_per_node=40)
    >>> [(f"{when:%Y-%m-%d}", len(fleet.instances), fleet.n_patches) for when, fleet in history]
    [('2024-06-14', 10, 393), ('2024-06-21', 11, 435), ('2024-06-28', 12, 486)]
    >>> history == synthetic_history(3, nodes=10, patches_per_node=40)
    True
    """
    _check_whole("snapshots", snapshots, low=1)
    _check_fleet_arguments(nodes, seed, patches_per_node, account_id, region)
    if not isinstance(start, dt.datetime) or start.utcoffset() is None:
        raise ValidationError(
            f"start must be a timezone-aware datetime, e.g. {HISTORY_START!r}, not {start!r}"
        )
    if not isinstance(every, dt.timedelta) or every <= dt.timedelta(0):
        raise ValidationError(f"every must be a positive timedelta, not {every!r}")
    start = start.astimezone(dt.UTC)
    rng = random.Random(f"patchframe history {seed} {account_id} {region}")
    fleet = _shifted(
        synthetic_fleet(
            nodes,
            seed=seed,
            patches_per_node=patches_per_node,
            account_id=account_id,
            region=region,
        ),
        round(start.timestamp()) - _NOW,
    )
    releases = _Releases(patches_per_node, snapshots)
    history = [(start, _copied(fleet))]
    for step in range(1, snapshots):
        since, until = start + (step - 1) * every, start + step * every
        _leave(rng, fleet)
        _join(rng, fleet, until, patches_per_node)
        _patch_window(rng, fleet, releases, step, since, until)
        history.append((until, _copied(fleet)))
    return history


def main(argv: Sequence[str] | None = None) -> int:
    """Write the sample fleet: ``python -m patchframe.sandbox.sample --write sample_data``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     main(["--write", tmp])
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m patchframe.sandbox.sample",
        description="Write the sample fleet as wire JSON.",
    )
    parser.add_argument(
        "--write", metavar="DIR", required=True, help="directory to write the sample fleet to"
    )
    args = parser.parse_args(argv)
    write_fleet(build_sample_fleet(), args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
