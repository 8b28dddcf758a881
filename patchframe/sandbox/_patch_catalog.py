"""The sandbox's patch catalog: what the two catalog calls answer for a served fleet.

Derived from the fleet itself, so every fleet (the sample and any synthetic one)
has a catalog consistent with its nodes' patches:

``DescribeEffectivePatchesForPatchBaseline``
    A Windows baseline's effective patches are the KBs its nodes report. A KB's
    release date is the Patch Tuesday of the month its number belongs to (the
    catalogue numbers KBs by month, see ``windows.json``); KBs outside that range
    (Defender's) were released in the newest month. Patches are approved seven
    days after release, as the AWS-managed baselines' auto-approval rule does.
``DescribeAvailablePatches``
    Per Amazon Linux 1 or 2 product, the packages its nodes report, each released
    on a day drawn from its id; and per Windows product its KBs.

Timestamps are epoch seconds, as on the wire.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Iterable
from typing import Any

from .._release_dates import available_patches_product, linux_patch_id
from ._catalog import _KB_FIRST, _KB_MONTH, _KB_PER_MONTH, NEWEST_MONTH
from .sample import WireFleet

__all__ = ["available_patches", "baseline_platform", "effective_patches", "windows_product"]

_APPROVE_AFTER = dt.timedelta(days=7)
_WINDOWS_SERVER = re.compile(r"Windows Server (\d{4})")
_PACKAGE = re.compile(r"(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?P<arch>[^.]+)")
_LINUX_TITLE = re.compile(
    r"(?P<name>.+)\.(?P<arch>[^.:]+):(?P<epoch>\d+):(?P<version>.+)-(?P<release>[^-]+)"
)


def _patch_tuesday(month: int) -> dt.datetime:
    """The second Tuesday of ``month`` (``year * 12 + month - 1``), 18:00 UTC."""
    first = dt.datetime(month // 12, month % 12 + 1, 1, 18, tzinfo=dt.UTC)
    return first + dt.timedelta(days=(1 - first.weekday()) % 7 + 7)


def windows_release(kb_id: str) -> dt.datetime:
    """When the sandbox's Microsoft released ``kb_id``."""
    number = int(kb_id.removeprefix("KB"))
    if number < _KB_FIRST - 12 * 10 * _KB_PER_MONTH:
        return _patch_tuesday(NEWEST_MONTH)
    return _patch_tuesday(_KB_MONTH + (number - _KB_FIRST) // _KB_PER_MONTH)


def _draw(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


def linux_release(patch_id: str) -> dt.datetime:
    """When the sandbox's distribution released ``patch_id``: a day of the last two years."""
    draw = _draw(patch_id)
    first = _patch_tuesday(NEWEST_MONTH - draw % 24).replace(day=1, hour=0)
    return first + dt.timedelta(days=draw // 24 % 28, hours=draw // 672 % 24)


def windows_product(platform_name: object) -> str | None:
    """``"WindowsServer2022"`` for a node's PlatformName, as DescribeAvailablePatches names it."""
    found = _WINDOWS_SERVER.search(str(platform_name))
    return f"WindowsServer{found.group(1)}" if found else None


def _platforms(fleet: WireFleet) -> dict[str, dict[str, Any]]:
    return {info["InstanceId"]: info for info in fleet.instances}


def baseline_platform(fleets: Iterable[WireFleet], baseline_id: str) -> str | None:
    """The PlatformType of the nodes that use ``baseline_id``; None if no node does."""
    for fleet in fleets:
        infos = _platforms(fleet)
        for state in fleet.patch_states:
            if state.get("BaselineId") == baseline_id:
                return str(infos.get(state["InstanceId"], {}).get("PlatformType", "Windows"))
    return None


def _epoch(when: dt.datetime) -> float:
    return when.timestamp()


def _windows_patch(row: dict[str, Any], product: str | None) -> dict[str, Any]:
    kb = str(row["KBId"])
    patch: dict[str, Any] = {
        "Id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"patchframe-sandbox/{kb}")),
        "ReleaseDate": _epoch(windows_release(kb)),
        "Title": row.get("Title") or kb,
        "Vendor": "Microsoft",
        "ProductFamily": "Windows",
        "Product": product or "WindowsServer",
        "Classification": row.get("Classification") or "Updates",
        "MsrcSeverity": row.get("Severity") or "Unspecified",
        "KbNumber": kb,
        "Language": "All",
    }
    if row.get("CVEIds"):
        patch["CVEIds"] = str(row["CVEIds"]).split(",")
    return patch


def effective_patches(fleets: Iterable[WireFleet], baseline_id: str) -> list[dict[str, Any]]:
    """The ``EffectivePatches`` of a Windows baseline, ordered by KB."""
    patches: dict[str, dict[str, Any]] = {}
    for fleet in fleets:
        infos = _platforms(fleet)
        for state in fleet.patch_states:
            if state.get("BaselineId") != baseline_id:
                continue
            node = state["InstanceId"]
            product = windows_product(infos.get(node, {}).get("PlatformName"))
            for row in fleet.patches.get(node, []):
                kb = str(row.get("KBId", ""))
                if kb.startswith("KB") and (kb not in patches or not patches[kb]["Title"]):
                    patches[kb] = _windows_patch(row, product)
    effective = []
    for kb in sorted(patches):
        patch = patches[kb]
        approved = dt.datetime.fromtimestamp(patch["ReleaseDate"], dt.UTC)
        effective.append(
            {
                "Patch": patch,
                "PatchStatus": {
                    "DeploymentStatus": "APPROVED",
                    "ComplianceLevel": "UNSPECIFIED",
                    "ApprovalDate": _epoch(approved + _APPROVE_AFTER),
                },
            }
        )
    return effective


def _linux_patch(row: dict[str, Any], product: str) -> dict[str, Any] | None:
    parts = _LINUX_TITLE.fullmatch(str(row.get("Title") or ""))
    if parts is None:
        # Rows sent without a Title still name the package in KBId; rpm versions and
        # releases hold no dash, and the sandbox's packages all have epoch 0.
        parts = _PACKAGE.fullmatch(str(row.get("KBId") or ""))
    if parts is None:
        return None
    fields = {"epoch": "0", **parts.groupdict()}
    patch_id = linux_patch_id(**fields)
    patch: dict[str, Any] = {
        "Id": patch_id,
        "ReleaseDate": _epoch(linux_release(patch_id)),
        "Title": patch_id,
        "Product": product,
        "Classification": row.get("Classification") or "",
        "Severity": row.get("Severity") or "",
        "Name": parts["name"],
        "Epoch": int(fields["epoch"]),
        "Version": parts["version"],
        "Release": parts["release"],
        "Arch": parts["arch"],
        "Repository": "amzn2-core" if product == "AmazonLinux2" else "amzn-main",
    }
    if row.get("CVEIds"):
        patch["CVEIds"] = str(row["CVEIds"]).split(",")
    return patch


def available_patches(fleets: Iterable[WireFleet], product: str) -> list[dict[str, Any]]:
    """The ``Patches`` DescribeAvailablePatches lists for one product, ordered by id."""
    patches: dict[str, dict[str, Any]] = {}
    for fleet in fleets:
        for node, info in _platforms(fleet).items():
            name, version = info.get("PlatformName"), info.get("PlatformVersion")
            windows = windows_product(name) if info.get("PlatformType") == "Windows" else None
            if product not in (windows, available_patches_product(name, version)):
                continue
            for row in fleet.patches.get(node, []):
                patch = _windows_patch(row, product) if windows else _linux_patch(row, product)
                if patch is not None and patch.get("KbNumber", patch["Id"]) not in patches:
                    patches[patch.get("KbNumber", patch["Id"])] = patch
    return [patches[key] for key in sorted(patches)]
