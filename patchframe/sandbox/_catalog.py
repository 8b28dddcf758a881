"""The sandbox's tables, read from package data, and the patch catalogues built from them.

The tables live beside this module in ``catalog/``, as files a person can read and diff:

``platforms.json``
    Per platform key (``win2022``, ``rhel9``...): the ``PlatformType``, ``PlatformName``
    and ``PlatformVersion`` a node reports, and its family (``windows``, ``al2023``,
    ``rhel``, ``suse``, ``ubuntu``).
``windows.json``
    The Windows Server products and their monthly updates: title templates, vendor
    classification, severities (taken in turn, month by month), how often each kind is
    released and each product's KB number offset within a month's range.
``<platform>.csv`` (``al2023.csv``, ``rhel8.csv``...)
    One row per Linux package: its newest update is number ``newest``, and ``{n}`` in
    a cell stands for the update's number. rpm families name a pool of ``cves.json``;
    Ubuntu gives each package its section and priority, which the service reports as
    Classification and Severity.
``cves.json``
    The CVE pools security updates draw their CVEIds from.
``grades.json``
    Per rpm or SUSE family, the vendor's classifications and per classification the
    severities, each with its weight.
``hygiene.csv``
    Per hygiene profile, the weight of each patch state for older and for the newest
    patches of a node.
``nodes.json``
    What nodes are drawn from: SSM agent versions (the latest last), and for synthetic
    fleets the mix of platforms, hygiene profiles (with the share of open patches a
    node installs per maintenance window), environments, roles and teams.
``sample_nodes.csv``
    The bundled sample's thirteen nodes.
"""

from __future__ import annotations

import csv
import json
import math
import random
from importlib.resources import files
from typing import Any, NamedTuple

from .._schema import STATES

_FOLDER = files("patchframe.sandbox") / "catalog"


def _json(name: str) -> Any:
    return json.loads((_FOLDER / name).read_text(encoding="utf-8"))


def _csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader((_FOLDER / name).read_text(encoding="utf-8").splitlines()))


def _month(text: str) -> int:
    """A month as a number that counts months, ``year * 12 + month - 1``, from ``"2024-06"``."""
    year, month = text.split("-")
    return int(year) * 12 + int(month) - 1


# --------------------------------------------------------------------------- platforms, nodes


class Platform(NamedTuple):
    type: str
    name: str
    version: str
    family: str


PLATFORMS = {key: Platform(**platform) for key, platform in _json("platforms.json").items()}

# Vendors' classifications that mean a security update.
SECURITY_CLASSES = frozenset({"SecurityUpdates", "Security", "security"})


def _hygiene() -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    weights: dict[str, dict[str, tuple[int, ...]]] = {}
    for row in _csv("hygiene.csv"):
        states = tuple(int(row[state]) for state in STATES)
        weights.setdefault(row["hygiene"], {})[row["patches"]] = states
    return {name: (w["older"], w["newest"]) for name, w in weights.items()}


# Per hygiene profile, (weights for older patches, weights for the newest), over STATES
# in order.
HYGIENE = _hygiene()

_NODES = _json("nodes.json")
AGENT_VERSIONS: list[str] = _NODES["agent_versions"]
PLATFORM_MIX: dict[str, int] = _NODES["platforms"]
HYGIENE_MIX = {name: int(h["share"]) for name, h in _NODES["hygiene"].items()}
INSTALLS_PER_WINDOW = {
    name: float(h["installs_per_window"]) for name, h in _NODES["hygiene"].items()
}
ENVIRONMENTS: dict[str, int] = _NODES["environments"]
ROLES: dict[str, list[str]] = _NODES["roles"]
TEAMS: list[str] = _NODES["teams"]
SAMPLE_NODES = _csv("sample_nodes.csv")


# --------------------------------------------------------------------------- catalogues


class Entry(NamedTuple):
    """One patch a catalogue offers, with the fields the service reports for it."""

    title: str
    kb_id: str
    classification: str
    severity: str
    cve_ids: str


class Catalogue(NamedTuple):
    entries: list[Entry]
    # Entries before `recent` are the newest: more often missing on a node.
    recent: int
    # Entries from `applicable` on are other products' patches: only NOT_APPLICABLE.
    applicable: int


# --------------------------------------------------------------------------- Windows


class WindowsProduct(NamedTuple):
    product: str
    dotnet: str
    sql: str
    released: int  # its first month, as _month counts them
    kb: dict[str, int]  # KB offset within the month's range, per kind of update


class _Update(NamedTuple):
    kind: str
    title: str
    classification: str
    severities: list[str]
    every: int
    phase: int


_WINDOWS = _json("windows.json")
WINDOWS = {
    key: WindowsProduct(**{**product, "released": _month(product["released"])})
    for key, product in _WINDOWS["products"].items()
}
NEWEST_MONTH = _month(_WINDOWS["newest_month"])
_KB_MONTH = _month(_WINDOWS["kb_numbers"]["month"])
_KB_FIRST: int = _WINDOWS["kb_numbers"]["first"]
_KB_PER_MONTH: int = _WINDOWS["kb_numbers"]["per_month"]
_UPDATES = [_Update(**update) for update in _WINDOWS["updates"]]
_UNDATED = [Entry(**entry, cve_ids="") for entry in _WINDOWS["undated"]]
# The newest entries of a Windows catalogue, about four months of updates.
_WINDOWS_RECENT = 24


def windows_month(product: WindowsProduct, month: int) -> list[Entry]:
    """The updates Microsoft released for ``product`` in ``month`` (as :func:`_month` counts)."""
    # KB numbers grow by about a thousand a month; January 2024's CU for 2022 is KB5034129.
    base = _KB_FIRST + _KB_PER_MONTH * (month - _KB_MONTH)
    names = {
        "month": f"{month // 12}-{month % 12 + 1:02d}",
        "product": product.product,
        "dotnet": product.dotnet,
        "sql": product.sql,
    }
    entries = []
    for update in _UPDATES:
        if update.kind in product.kb and month % update.every == update.phase:
            kb = f"KB{base + product.kb[update.kind]}"
            severity = update.severities[month % len(update.severities)]
            title = update.title.format(kb=kb, **names)
            entries.append(Entry(title, kb, update.classification, severity, ""))
    return entries


def _windows_catalogue(os_key: str, size: int) -> Catalogue:
    product = WINDOWS[os_key]
    entries = list(_UNDATED)
    for month in range(NEWEST_MONTH, product.released - 1, -1):
        entries.extend(windows_month(product, month))
    applicable = len(entries)
    # Other Windows versions' updates fill the rest: a node reports them NotApplicable.
    others = [p for key, p in WINDOWS.items() if key != os_key]
    month = NEWEST_MONTH
    while len(entries) < size:
        for other in others:
            entries.extend(windows_month(other, month))
        month -= 1
    return Catalogue(entries, _WINDOWS_RECENT, applicable)


# --------------------------------------------------------------------------- Linux


class _Package(NamedTuple):
    name: str
    version: str
    newest: int
    arch: str
    epoch: str
    release: str
    cves: str  # a pool of cves.json, for rpm families
    section: str  # for Ubuntu
    priority: str  # for Ubuntu


class _Grade(NamedTuple):
    weight: int
    severities: dict[str, int]


_CVES: dict[str, list[str]] = _json("cves.json")
_GRADES = {
    family: {name: _Grade(**grade) for name, grade in grades.items()}
    for family, grades in _json("grades.json").items()
}


def _packages(os_key: str) -> list[_Package]:
    return [
        _Package(
            row["name"],
            row["version"],
            int(row["newest"]),
            row["arch"],
            row.get("epoch", ""),
            row.get("release", ""),
            row.get("cves", ""),
            row.get("section", ""),
            row.get("priority", ""),
        )
        for row in _csv(f"{os_key}.csv")
    ]


def _linux_catalogue(os_key: str, size: int) -> Catalogue:
    family = PLATFORMS[os_key].family
    packages = _packages(os_key)
    # The catalogue is the same whatever fleet asks for it.
    rng = random.Random(f"patchframe catalogue {os_key} {size}")
    grades = _GRADES["suse" if family == "suse" else "rpm"]
    classes, class_weights = tuple(grades), tuple(g.weight for g in grades.values())
    steps = math.ceil(size / len(packages))
    entries = []
    for step in range(steps):  # step 0 holds each package's newest update
        for pkg in packages:
            n = pkg.newest + steps - 1 - step
            name, version = pkg.name.format(n=n), pkg.version.format(n=n)
            if family == "ubuntu":
                title, kb_id = f"{name}.{pkg.arch}:{version}", f"{name}-{version}.{pkg.arch}"
                entries.append(Entry(title, kb_id, pkg.section, pkg.priority, ""))
                continue
            release = pkg.release.format(n=n)
            title = f"{name}.{pkg.arch}:{pkg.epoch}:{version}-{release}"
            kb_id = f"{name}-{version}-{release}.{pkg.arch}"
            classification = rng.choices(classes, weights=class_weights)[0]
            severities = grades[classification].severities
            severity = rng.choices(tuple(severities), weights=tuple(severities.values()))[0]
            cves = ""
            if classification in SECURITY_CLASSES and pkg.cves:
                pool = _CVES[pkg.cves]
                picked = rng.sample(
                    pool, min(len(pool), 1 + (rng.random() < 0.4) + (rng.random() < 0.15))
                )
                cves = ",".join(sorted(picked, reverse=True))
            entries.append(Entry(title, kb_id, classification, severity, cves))
    return Catalogue(entries, len(packages), len(entries))


# --------------------------------------------------------------------------- either


def catalogue(os_key: str, size: int) -> Catalogue:
    """The patches nodes of platform ``os_key`` draw from, at least ``size`` of them.

    The same arguments give the same catalogue. Newest first; entries past
    ``applicable`` are other products' patches, which a node lists as NotApplicable.

    Examples
    --------
    >>> entries, recent, applicable = catalogue("win2022", 408)
    >>> entries[2].title
    '2024-06 Cumulative Update for Windows Server 2022 for x64-based Systems (KB5039129)'
    >>> entries, recent, applicable = catalogue("rhel9", 100)
    >>> entries[0].kb_id, recent  # the newest update of each of its 56 packages comes first
    ('kernel-5.14.0-427.14.1.el9_4.x86_64', 56)
    """
    if PLATFORMS[os_key].family == "windows":
        return _windows_catalogue(os_key, size)
    return _linux_catalogue(os_key, size)


def catalogue_size(patches_per_node: int) -> int:
    """How many patches a catalogue needs for nodes of ``patches_per_node`` rows on average."""
    # Room for the largest node (1.3 x the mean) drawing 85% of what applies.
    return math.ceil(1.3 * patches_per_node / 0.85) + 20
