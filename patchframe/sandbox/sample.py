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
per-OS catalogues.

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
import json
import math
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, NamedTuple

from .._schema import STATE_COUNT_FIELDS, STATES, WIRE_STATES, normalise_state

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

#: Patch states in the API model's spelling and order.

# Real responses spell states in CamelCase even though the model says upper snake case.
_SNAKE = {state: state for state in STATES}

_NON_COMPLIANT = frozenset(
    {
        "MISSING",
        "FAILED",
        "INSTALLED_PENDING_REBOOT",
        "INSTALLED_REJECTED",
        "AVAILABLE_SECURITY_UPDATE",
    }
)
_INSTALLED = frozenset(
    {"INSTALLED", "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED"}
)
# The service leaves these rows' descriptive fields empty rather than absent.
_BLANK = frozenset({"INSTALLED_OTHER", "NOT_APPLICABLE"})
_SECURITY_CLASSES = frozenset({"SecurityUpdates", "Security", "security"})

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


# --------------------------------------------------------------------------- catalogues


class _Entry(NamedTuple):
    title: str
    kb_id: str
    classification: str
    severity: str
    cve_ids: str


class _Catalogue(NamedTuple):
    entries: list[_Entry]
    # Entries before `recent` are the newest: more often missing on a node.
    recent: int
    # Entries from `applicable` on are other products' patches: only NOT_APPLICABLE.
    applicable: int


class _Windows(NamedTuple):
    product: str
    dotnet: str
    sql: str
    released: int  # first month, as year * 12 + month - 1
    kb: dict[str, int]  # KB offset within the month's range, per kind of update


_WINDOWS = {
    "win2022": _Windows(
        "Windows Server 2022",
        ".NET Framework 3.5, 4.8 and 4.8.1 for Microsoft server operating system version 21H2",
        "SQL Server 2022 RTM GDR",
        2021 * 12 + 8,
        {
            "cu": 129,
            "security": 439,
            "preview": 770,
            "dotnet": 20,
            "dotnet_preview": 880,
            "sql": 530,
        },
    ),
    "win2019": _Windows(
        "Windows Server 2019 (1809)",
        ".NET Framework 3.5, 4.7.2 and 4.8 for Windows Server 2019",
        "SQL Server 2019 RTM CU",
        2018 * 12 + 10,
        {
            "cu": 127,
            "security": 441,
            "preview": 768,
            "dotnet": 18,
            "dotnet_preview": 882,
            "sql": 532,
            "ssu": 300,
        },
    ),
    "win2016": _Windows(
        "Windows Server 2016",
        ".NET Framework 3.5 and 4.8 for Windows Server 2016",
        "SQL Server 2017 RTM CU",
        2016 * 12 + 9,
        {"cu": 119, "security": 443, "preview": 766, "dotnet": 16, "ssu": 302, "sql": 534},
    ),
}
_NEWEST_MONTH = 2024 * 12 + 5  # June 2024
_DEFENDER = [
    _Entry(
        "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 "
        "(Version 1.411.395.0)",
        "KB2267602",
        "DefinitionUpdates",
        "Unspecified",
        "",
    ),
    _Entry(
        "Update for Microsoft Defender Antivirus antimalware platform - KB4052623 "
        "(Version 4.18.24050.7)",
        "KB4052623",
        "DefinitionUpdates",
        "Unspecified",
        "",
    ),
]


def _windows_month(product: _Windows, month: int) -> list[_Entry]:
    ym = f"{month // 12}-{month % 12 + 1:02d}"
    # KB numbers grow by about a thousand a month; January 2024's CU for 2022 is KB5034129.
    base = 5034000 + 1000 * (month - 2024 * 12)
    kb = {kind: f"KB{base + offset}" for kind, offset in product.kb.items()}
    os_title = f"{product.product} for x64-based Systems"
    entries = [
        _Entry(
            f"{ym} Cumulative Update for {os_title} ({kb['cu']})",
            kb["cu"],
            "SecurityUpdates",
            "Critical",
            "",
        ),
        _Entry(
            f"{ym} Cumulative Update for {product.dotnet} for x64 ({kb['dotnet']})",
            kb["dotnet"],
            "SecurityUpdates",
            ("Important", "Important", "Moderate", "Low")[month % 4],
            "",
        ),
        _Entry(
            f"{ym} Cumulative Update Preview for {os_title} ({kb['preview']})",
            kb["preview"],
            "Updates",
            "Unspecified",
            "",
        ),
    ]
    if "dotnet_preview" in kb and month % 2 == 0:
        title = (
            f"{ym} Cumulative Update Preview for {product.dotnet} for x64 ({kb['dotnet_preview']})"
        )
        entries.append(_Entry(title, kb["dotnet_preview"], "Updates", "Unspecified", ""))
    if "ssu" in kb and month % 3 == 0:
        title = f"{ym} Servicing Stack Update for {os_title} ({kb['ssu']})"
        entries.append(_Entry(title, kb["ssu"], "CriticalUpdates", "Unspecified", ""))
    if month % 4 == 0:
        title = f"{ym} Security Update for {os_title} ({kb['security']})"
        entries.append(_Entry(title, kb["security"], "SecurityUpdates", "Important", ""))
    if month % 2 == 1:
        title = f"Security Update for {product.sql} ({kb['sql']})"
        entries.append(_Entry(title, kb["sql"], "SecurityUpdates", "Important", ""))
    return entries


def _windows_catalogue(os_key: str, size: int) -> _Catalogue:
    product = _WINDOWS[os_key]
    entries = list(_DEFENDER)
    for month in range(_NEWEST_MONTH, product.released - 1, -1):
        entries.extend(_windows_month(product, month))
    applicable = len(entries)
    # Other Windows versions' updates fill the rest: a node reports them NotApplicable.
    others = [p for key, p in _WINDOWS.items() if key != os_key]
    month = _NEWEST_MONTH
    while len(entries) < size:
        for other in others:
            entries.extend(_windows_month(other, month))
        month -= 1
    return _Catalogue(entries, 24, applicable)


class _Package(NamedTuple):
    name: str
    epoch: str
    version: str
    release: str
    n0: int
    arch: str
    tag: str  # a CVE pool for rpm families, "section priority" for Ubuntu


# Columns: name, epoch, version, release ({n} counts updates), newest n, arch, CVE pool.
# A cell "a|b" holds the RHEL 8 and RHEL 9 values.
_AL2023 = """
kernel 0 6.1.90 99.{n}.amzn2023 160 x86_64 kernel
kernel-tools 0 6.1.90 99.{n}.amzn2023 160 x86_64 kernel
openssl-libs 1 3.0.8 1.amzn2023.0.{n} 10 x86_64 openssl
openssl 1 3.0.8 1.amzn2023.0.{n} 10 x86_64 openssl
glibc 0 2.34 52.amzn2023.0.{n} 8 x86_64 glibc
glibc-common 0 2.34 52.amzn2023.0.{n} 8 x86_64 glibc
glibc-minimal-langpack 0 2.34 52.amzn2023.0.{n} 8 x86_64 glibc
curl-minimal 0 8.5.0 1.amzn2023.0.{n} 2 x86_64 curl
libcurl-minimal 0 8.5.0 1.amzn2023.0.{n} 2 x86_64 curl
openssh 0 8.7p1 8.amzn2023.0.{n} 9 x86_64 openssh
openssh-server 0 8.7p1 8.amzn2023.0.{n} 9 x86_64 openssh
openssh-clients 0 8.7p1 8.amzn2023.0.{n} 9 x86_64 openssh
sudo 0 1.9.15 1.p5.amzn2023.0.{n} 1 x86_64 sudo
systemd 0 252.23 2.amzn2023.0.{n} 1 x86_64 systemd
systemd-libs 0 252.23 2.amzn2023.0.{n} 1 x86_64 systemd
systemd-udev 0 252.23 2.amzn2023.0.{n} 1 x86_64 systemd
python3 0 3.9.16 1.amzn2023.0.{n} 7 x86_64 python
python3-libs 0 3.9.16 1.amzn2023.0.{n} 7 x86_64 python
python3-setuptools 0 59.6.0 2.amzn2023.0.{n} 4 noarch -
python3-requests 0 2.25.1 1.amzn2023.0.{n} 3 noarch -
expat 0 2.5.0 1.amzn2023.0.{n} 4 x86_64 expat
libxml2 0 2.10.4 1.amzn2023.0.{n} 5 x86_64 libxml2
sqlite-libs 0 3.40.0 1.amzn2023.0.{n} 4 x86_64 sqlite
zlib 0 1.2.11 33.amzn2023.0.{n} 4 x86_64 zlib
bind-libs 32 9.16.48 1.amzn2023.0.{n} 2 x86_64 bind
bind-utils 32 9.16.48 1.amzn2023.0.{n} 2 x86_64 bind
bind-license 32 9.16.48 1.amzn2023.0.{n} 2 noarch bind
krb5-libs 0 1.21 3.amzn2023.0.{n} 4 x86_64 krb5
gnutls 0 3.8.0 377.amzn2023.0.{n} 1 x86_64 gnutls
nss 0 3.90.0 3.amzn2023.0.{n} 3 x86_64 nss
nss-util 0 3.90.0 3.amzn2023.0.{n} 3 x86_64 nss
pam 0 1.5.1 8.amzn2023.0.{n} 3 x86_64 pam
tar 2 1.34 1.amzn2023.0.{n} 4 x86_64 tar
less 0 608 2.amzn2023.0.{n} 3 x86_64 less
vim-minimal 2 9.0.2153 1.amzn2023.0.{n} 1 x86_64 vim
vim-data 2 9.0.2153 1.amzn2023.0.{n} 1 noarch vim
git 0 2.40.1 1.amzn2023.0.{n} 3 x86_64 git
git-core 0 2.40.1 1.amzn2023.0.{n} 3 x86_64 git
libssh 0 0.10.6 1.amzn2023.0.{n} 1 x86_64 libssh
libnghttp2 0 1.59.0 3.amzn2023.0.{n} 1 x86_64 nghttp2
ca-certificates 0 2023.2.64 1.0.amzn2023.0.{n} 1 noarch -
tzdata 0 2024a 1.amzn2023.0.{n} 1 noarch -
amazon-ssm-agent 0 3.3.380.0 1.amzn2023.0.{n} 1 x86_64 -
awscli-2 0 2.15.30 1.amzn2023.0.{n} 1 noarch -
cloud-init 0 22.2.2 1.amzn2023.1.{n} 14 noarch -
chrony 0 4.3 1.amzn2023.0.{n} 4 x86_64 -
rpm 0 4.16.1.3 29.amzn2023.0.{n} 6 x86_64 -
rpm-libs 0 4.16.1.3 29.amzn2023.0.{n} 6 x86_64 -
dnf 0 4.14.0 1.amzn2023.0.{n} 5 noarch -
libdnf 0 0.69.0 8.amzn2023.0.{n} 1 x86_64 -
shadow-utils 2 4.9 12.amzn2023.0.{n} 4 x86_64 -
util-linux 0 2.37.4 1.amzn2023.0.{n} 4 x86_64 -
coreutils-single 0 8.32 30.amzn2023.0.{n} 3 x86_64 -
binutils 0 2.39 6.amzn2023.0.{n} 10 x86_64 -
perl-interpreter 4 5.32.1 477.amzn2023.0.{n} 6 x86_64 -
docker 0 25.0.3 1.amzn2023.0.{n} 1 x86_64 runc
containerd 0 1.7.11 1.amzn2023.0.{n} 1 x86_64 containerd
runc 0 1.1.11 1.amzn2023.0.{n} 1 x86_64 runc
libgcrypt 0 1.10.2 1.amzn2023.0.{n} 2 x86_64 -
audit-libs 0 3.0.6 1.amzn2023.0.{n} 2 x86_64 -
ec2-utils 0 2.2.0 1.amzn2023.{n} 1 noarch -
"""

_RHEL = """
kernel 0 4.18.0|5.14.0 513.{n}.1.el8_9|427.{n}.1.el9_4 5|13 x86_64 kernel
kernel-core 0 4.18.0|5.14.0 513.{n}.1.el8_9|427.{n}.1.el9_4 5|13 x86_64 kernel
kernel-modules 0 4.18.0|5.14.0 513.{n}.1.el8_9|427.{n}.1.el9_4 5|13 x86_64 kernel
kernel-tools 0 4.18.0|5.14.0 513.{n}.1.el8_9|427.{n}.1.el9_4 5|13 x86_64 kernel
openssl-libs 1 1.1.1k|3.0.7 {n}.el8_9|{n}.el9 12|27 x86_64 openssl
openssl 1 1.1.1k|3.0.7 {n}.el8_9|{n}.el9 12|27 x86_64 openssl
glibc 0 2.28|2.34 236.el8_9.{n}|100.el9_4.{n} 12|2 x86_64 glibc
glibc-common 0 2.28|2.34 236.el8_9.{n}|100.el9_4.{n} 12|2 x86_64 glibc
glibc-langpack-en 0 2.28|2.34 236.el8_9.{n}|100.el9_4.{n} 12|2 x86_64 glibc
curl 0 7.61.1|7.76.1 33.el8_9.{n}|29.el9_4.{n} 5|1 x86_64 curl
libcurl 0 7.61.1|7.76.1 33.el8_9.{n}|29.el9_4.{n} 5|1 x86_64 curl
openssh 0 8.0p1|8.7p1 19.el8_9.{n}|38.el9_4.{n} 2|1 x86_64 openssh
openssh-server 0 8.0p1|8.7p1 19.el8_9.{n}|38.el9_4.{n} 2|1 x86_64 openssh
openssh-clients 0 8.0p1|8.7p1 19.el8_9.{n}|38.el9_4.{n} 2|1 x86_64 openssh
sudo 0 1.9.5p2 1.el8_9.{n}|10.el9_3.{n} 1 x86_64 sudo
systemd 0 239|252 78.el8.{n}|32.el9_4.{n} 3|1 x86_64 systemd
systemd-libs 0 239|252 78.el8.{n}|32.el9_4.{n} 3|1 x86_64 systemd
systemd-pam 0 239|252 78.el8.{n}|32.el9_4.{n} 3|1 x86_64 systemd
python3-libs 0 3.6.8|3.9.18 56.el8_9.{n}|3.el9_4.{n} 3|1 x86_64 python
platform-python 0 3.6.8|3.9.18 56.el8_9.{n}|3.el9_4.{n} 3|1 x86_64 python
expat 0 2.2.5|2.5.0 11.el8_9.{n}|2.el9_4.{n} 1 x86_64 expat
libxml2 0 2.9.7|2.9.13 18.el8_9.{n}|6.el9_4.{n} 1 x86_64 libxml2
sqlite-libs 0 3.26.0|3.34.1 19.el8_9.{n}|7.el9_3.{n} 1 x86_64 sqlite
zlib 0 1.2.11 25.el8.{n}|40.el9.{n} 1 x86_64 zlib
bind-libs 32 9.11.36|9.16.23 11.el8_9.{n}|15.el9.{n} 1 x86_64 bind
bind-utils 32 9.11.36|9.16.23 11.el8_9.{n}|15.el9.{n} 1 x86_64 bind
krb5-libs 0 1.18.2|1.21.1 26.el8_9.{n}|1.el9.{n} 1 x86_64 krb5
gnutls 0 3.6.16|3.8.3 8.el8_9.{n}|4.el9_4.{n} 3|1 x86_64 gnutls
nss 0 3.90.0 7.el8_9.{n}|6.el9_4.{n} 1 x86_64 nss
pam 0 1.3.1|1.5.1 27.el8.{n}|19.el9.{n} 1 x86_64 pam
tar 2 1.30|1.34 9.el8.{n}|6.el9_1.{n} 1 x86_64 tar
less 0 530|590 1.el8.{n}|4.el9_4.{n} 1 x86_64 less
vim-minimal 2 8.0.1763|8.2.2637 19.el8_4.{n}|20.el9_1.{n} 1 x86_64 vim
git 0 2.43.0 1.el8.{n}|1.el9.{n} 1 x86_64 git
libssh 0 0.9.6|0.10.4 13.el8_9.{n}|13.el9.{n} 1 x86_64 libssh
libnghttp2 0 1.33.0|1.43.0 5.el8_9.{n}|5.el9_3.{n} 1 x86_64 nghttp2
ca-certificates 0 2023.2.60_v7.0.306 80.0.el8_9.{n}|90.3.el9_2.{n} 1 noarch -
tzdata 0 2024a 1.el8.{n}|1.el9.{n} 1 noarch -
rpm 0 4.14.3|4.16.1.3 28.el8_9.{n}|29.el9.{n} 1 x86_64 -
rpm-libs 0 4.14.3|4.16.1.3 28.el8_9.{n}|29.el9.{n} 1 x86_64 -
dnf 0 4.7.0|4.14.0 19.el8.{n}|9.el9.{n} 1 noarch -
yum 0 4.7.0|4.14.0 19.el8.{n}|9.el9.{n} 1 noarch -
NetworkManager 1 1.44.0|1.46.0 3.el8.{n}|8.el9_4.{n} 1 x86_64 -
firewalld 0 0.9.11|1.2.5 4.el8.{n}|2.el9.{n} 1 noarch -
selinux-policy 0 3.14.3|38.1.35 128.el8_9.{n}|2.el9_4.{n} 1 noarch -
podman 4 4.6.1|4.9.4 8.el8_9.{n}|3.el9_4.{n} 1 x86_64 runc
runc 1 1.1.12 1.el8.{n}|2.el9_4.{n} 1 x86_64 runc
httpd 0 2.4.37|2.4.57 62.el8.{n}|8.el9.{n} 1 x86_64 -
cloud-init 0 23.4 7.el8_10.{n}|7.el9_4.{n} 1 noarch -
chrony 0 4.2|4.5 1.el8.{n}|1.el9.{n} 1 x86_64 -
binutils 0 2.30|2.35.2 123.el8.{n}|43.el9.{n} 1 x86_64 -
perl-interpreter 4 5.26.3|5.32.1 422.el8.{n}|481.el9.{n} 1 x86_64 -
shadow-utils 2 4.6|4.9 19.el8.{n}|8.el9.{n} 1 x86_64 -
util-linux 0 2.32.1|2.37.4 44.el8_9.{n}|18.el9.{n} 1 x86_64 -
audit-libs 0 3.0.7|3.1.2 5.el8.{n}|1.el9.{n} 1 x86_64 -
libgcrypt 0 1.8.5|1.10.0 7.el8_6.{n}|10.el9_2.{n} 1 x86_64 -
"""

_SLES = """
kernel-default 0 5.14.21 150500.55.{n}.1 44 x86_64 kernel
libopenssl3 0 3.0.8 150500.5.{n}.1 20 x86_64 openssl
openssl-3 0 3.0.8 150500.5.{n}.1 20 x86_64 openssl
glibc 0 2.31 150300.{n}.1 63 x86_64 glibc
glibc-locale-base 0 2.31 150300.{n}.1 63 x86_64 glibc
curl 0 8.0.1 150400.5.{n}.1 41 x86_64 curl
libcurl4 0 8.0.1 150400.5.{n}.1 41 x86_64 curl
openssh 0 8.4p1 150300.3.{n}.1 30 x86_64 openssh
openssh-server 0 8.4p1 150300.3.{n}.1 30 x86_64 openssh
openssh-clients 0 8.4p1 150300.3.{n}.1 30 x86_64 openssh
sudo 0 1.9.12p1 150500.7.{n}.1 5 x86_64 sudo
systemd 0 249.17 150400.8.{n}.1 40 x86_64 systemd
libsystemd0 0 249.17 150400.8.{n}.1 40 x86_64 systemd
udev 0 249.17 150400.8.{n}.1 40 x86_64 systemd
python3 0 3.6.15 150300.10.{n}.1 57 x86_64 python
libpython3_6m1_0 0 3.6.15 150300.10.{n}.1 57 x86_64 python
python311 0 3.11.9 150400.9.{n}.1 29 x86_64 python
libexpat1 0 2.4.4 150400.3.{n}.1 17 x86_64 expat
libxml2-2 0 2.10.3 150500.5.{n}.1 14 x86_64 libxml2
libsqlite3-0 0 3.44.0 150000.3.{n}.1 23 x86_64 sqlite
libz1 0 1.2.13 150500.4.{n}.1 3 x86_64 zlib
bind-utils 0 9.16.48 150500.8.{n}.1 16 x86_64 bind
krb5 0 1.20.1 150500.3.{n}.1 6 x86_64 krb5
libgnutls30 0 3.7.3 150500.4.{n}.1 21 x86_64 gnutls
pam 0 1.3.0 150000.6.{n}.1 66 x86_64 pam
tar 0 1.34 150000.3.{n}.1 34 x86_64 tar
less 0 590 150400.3.{n}.1 6 x86_64 less
vim 0 9.1.0330 150500.20.{n}.1 9 x86_64 vim
vim-data-common 0 9.1.0330 150500.20.{n}.1 9 noarch vim
git-core 0 2.43.0 150500.4.{n}.1 3 x86_64 git
libssh4 0 0.9.8 150400.3.{n}.1 3 x86_64 libssh
libnghttp2-14 0 1.40.0 150200.12.{n}.1 1 x86_64 nghttp2
ca-certificates-mozilla 0 2.62 150200.30.{n}.1 1 noarch -
timezone 0 2024a 150000.75.{n}.1 4 x86_64 -
zypper 0 1.14.68 150400.3.{n}.1 49 x86_64 -
libzypp 0 17.32.4 150500.6.{n}.1 13 x86_64 -
rpm 0 4.14.3 150400.59.{n}.1 16 x86_64 -
libgcrypt20 0 1.9.4 150500.12.{n}.1 3 x86_64 -
saptune 0 3.1.2 150500.3.{n}.1 6 x86_64 -
sapconf 0 5.0.5 150000.4.{n}.1 9 noarch -
cloud-regionsrv-client 0 10.1.7 150000.6.{n}.1 11 noarch -
amazon-ssm-agent 0 3.3.40.0 150000.5.{n}.1 15 x86_64 -
aws-cli 0 1.29.25 150200.30.{n}.1 1 noarch -
docker 0 24.0.7_ce 150000.198.{n}.1 2 x86_64 runc
runc 0 1.1.12 150000.61.{n}.1 1 x86_64 runc
containerd 0 1.7.10 150000.106.{n}.1 1 x86_64 containerd
util-linux 0 2.37.4 150500.9.{n}.1 6 x86_64 -
coreutils 0 8.32 150400.9.{n}.1 3 x86_64 -
grub2-x86_64-efi 0 2.06 150500.29.{n}.1 11 noarch -
"""

# Columns: name, version ({n} counts updates), newest n, arch, section, priority.
_UBUNTU = """
linux-image-5.15.0-{n}-generic - 5.15.0-{n}.{n} - 105 amd64 kernel Optional
linux-modules-5.15.0-{n}-generic - 5.15.0-{n}.{n} - 105 amd64 kernel Optional
linux-modules-extra-5.15.0-{n}-generic - 5.15.0-{n}.{n} - 105 amd64 kernel Extra
linux-generic - 5.15.0.{n}.{n} - 105 amd64 kernel Optional
libssl3 - 3.0.2-0ubuntu1.{n} - 15 amd64 libs Important
openssl - 3.0.2-0ubuntu1.{n} - 15 amd64 utils Standard
libc6 - 2.35-0ubuntu3.{n} - 7 amd64 libs Required
libc-bin - 2.35-0ubuntu3.{n} - 7 amd64 libs Required
locales - 2.35-0ubuntu3.{n} - 7 all localization Standard
curl - 7.81.0-1ubuntu1.{n} - 16 amd64 web Optional
libcurl4 - 7.81.0-1ubuntu1.{n} - 16 amd64 libs Optional
openssh-client - 1:8.9p1-3ubuntu0.{n} - 7 amd64 net Standard
openssh-server - 1:8.9p1-3ubuntu0.{n} - 7 amd64 net Optional
openssh-sftp-server - 1:8.9p1-3ubuntu0.{n} - 7 amd64 net Optional
sudo - 1.9.9-1ubuntu2.{n} - 4 amd64 admin Important
systemd - 249.11-0ubuntu3.{n} - 12 amd64 admin Important
libsystemd0 - 249.11-0ubuntu3.{n} - 12 amd64 libs Required
libudev1 - 249.11-0ubuntu3.{n} - 12 amd64 libs Required
udev - 249.11-0ubuntu3.{n} - 12 amd64 admin Important
python3.10 - 3.10.12-1~22.04.{n} - 3 amd64 python Standard
libpython3.10-minimal - 3.10.12-1~22.04.{n} - 3 amd64 python Standard
python3-urllib3 - 1.26.5-1~exp1ubuntu0.{n} - 1 all python Standard
libexpat1 - 2.4.7-1ubuntu0.{n} - 3 amd64 libs Standard
libxml2 - 2.9.13+dfsg-1ubuntu0.{n} - 4 amd64 libs Standard
libsqlite3-0 - 3.37.2-2ubuntu0.{n} - 3 amd64 libs Standard
zlib1g - 1:1.2.11.dfsg-2ubuntu9.{n} - 2 amd64 libs Required
bind9-libs - 1:9.18.18-0ubuntu0.22.04.{n} - 2 amd64 libs Standard
bind9-host - 1:9.18.18-0ubuntu0.22.04.{n} - 2 amd64 net Standard
libkrb5-3 - 1.19.2-2ubuntu0.{n} - 3 amd64 libs Standard
libgnutls30 - 3.7.3-4ubuntu1.{n} - 5 amd64 libs Standard
libpam-modules - 1.4.0-11ubuntu2.{n} - 4 amd64 admin Required
tar - 1.34+dfsg-1ubuntu0.1.22.04.{n} - 2 amd64 utils Required
less - 590-1ubuntu0.22.04.{n} - 3 amd64 text Important
vim-tiny - 2:8.2.3995-1ubuntu2.{n} - 16 amd64 editors Important
vim-common - 2:8.2.3995-1ubuntu2.{n} - 16 all editors Important
git - 1:2.34.1-1ubuntu1.{n} - 11 amd64 vcs Optional
libssh-4 - 0.9.6-2ubuntu0.22.04.{n} - 3 amd64 libs Optional
libnghttp2-14 - 1.43.0-1ubuntu0.{n} - 2 amd64 libs Optional
ca-certificates - 20230311ubuntu0.22.04.{n} - 1 all misc Important
tzdata - 2024a-0ubuntu0.22.04.{n} - 1 all localization Required
snapd - 2.63+22.04ubuntu0.{n} - 1 amd64 devel Optional
apt - 2.4.{n} - 12 amd64 admin Important
libapt-pkg6.0 - 2.4.{n} - 12 amd64 libs Important
dpkg - 1.21.1ubuntu2.{n} - 3 amd64 admin Required
bash - 5.1-6ubuntu1.{n} - 1 amd64 shells Required
coreutils - 8.32-4.1ubuntu1.{n} - 2 amd64 utils Required
login - 1:4.8.1-2ubuntu2.{n} - 2 amd64 admin Required
passwd - 1:4.8.1-2ubuntu2.{n} - 2 amd64 admin Required
util-linux - 2.37.2-4ubuntu3.{n} - 4 amd64 utils Required
cloud-init - 24.1.3-0ubuntu1~22.04.{n} - 5 all admin Optional
docker.io - 24.0.7-0ubuntu2~22.04.{n} - 1 amd64 admin Optional
containerd - 1.7.12-0ubuntu2~22.04.{n} - 1 amd64 admin Optional
runc - 1.1.12-0ubuntu2~22.04.{n} - 1 amd64 admin Optional
libgcrypt20 - 1.9.4-3ubuntu3.{n} - 1 amd64 libs Standard
libtiff5 - 4.3.0-6ubuntu0.{n} - 8 amd64 libs Extra
"""

_CVES = {
    "kernel": "CVE-2024-1086 CVE-2023-6817 CVE-2024-26581 CVE-2023-46838 "
    "CVE-2024-1085 CVE-2023-6932 CVE-2023-6931 CVE-2024-0646 CVE-2023-4622 "
    "CVE-2024-26925 CVE-2024-26642",
    "openssl": "CVE-2023-5678 CVE-2024-0727 CVE-2023-5363 CVE-2023-3817 CVE-2023-6129 "
    "CVE-2024-2511",
    "glibc": "CVE-2023-4911 CVE-2023-6246 CVE-2023-6779 CVE-2023-6780 CVE-2024-2961 "
    "CVE-2024-33599",
    "curl": "CVE-2023-38545 CVE-2023-38546 CVE-2024-2398 CVE-2023-46218 CVE-2024-2004",
    "openssh": "CVE-2023-48795 CVE-2023-51385 CVE-2024-6387 CVE-2023-51384",
    "sudo": "CVE-2023-22809 CVE-2023-28486 CVE-2023-28487 CVE-2023-42465",
    "systemd": "CVE-2023-26604 CVE-2023-7008",
    "python": "CVE-2023-40217 CVE-2023-6597 CVE-2024-0450 CVE-2023-27043 CVE-2023-24329",
    "expat": "CVE-2023-52425 CVE-2024-28757 CVE-2023-52426",
    "libxml2": "CVE-2024-25062 CVE-2023-39615 CVE-2023-45322",
    "sqlite": "CVE-2023-7104 CVE-2024-0232",
    "zlib": "CVE-2023-45853",
    "bind": "CVE-2023-50387 CVE-2023-50868 CVE-2023-4408 CVE-2023-5517",
    "krb5": "CVE-2024-26458 CVE-2024-26461 CVE-2023-36054",
    "gnutls": "CVE-2024-0553 CVE-2024-0567 CVE-2024-28834 CVE-2024-28835",
    "nss": "CVE-2023-6135 CVE-2023-5388",
    "pam": "CVE-2024-22365",
    "tar": "CVE-2022-48303 CVE-2023-39804",
    "less": "CVE-2024-32487",
    "vim": "CVE-2023-48231 CVE-2023-48706 CVE-2024-22667",
    "git": "CVE-2024-32002 CVE-2024-32004",
    "libssh": "CVE-2023-48795 CVE-2023-6004",
    "nghttp2": "CVE-2023-44487 CVE-2024-28182",
    "runc": "CVE-2024-21626",
    "containerd": "CVE-2023-25153",
}

# Per family: package table, vendor classifications with weights, and per
# classification the severities with weights.
_Grades = dict[str, tuple[tuple[str, ...], tuple[int, ...]]]
_RPM_GRADES: _Grades = {
    "Security": (("Critical", "Important", "Medium", "Low"), (8, 42, 35, 15)),
    "Bugfix": (("Medium", "Low"), (25, 75)),
    "Enhancement": (("Medium", "Low"), (25, 75)),
}
_SUSE_GRADES: _Grades = {
    "security": (("Critical", "Important", "Moderate", "Low"), (5, 45, 40, 10)),
    "recommended": (("Moderate", "Low"), (30, 70)),
}
_CLASS_WEIGHTS = {"rpm": (55, 35, 10), "suse": (55, 45)}


def _parse_table(table: str, variant: int) -> list[_Package]:
    def cell(text: str) -> str:
        choices = text.split("|")
        return choices[min(variant, len(choices) - 1)]

    packages = []
    for line in table.strip().splitlines():
        name, epoch, version, release, n0, arch, *tag = (cell(c) for c in line.split())
        packages.append(_Package(name, epoch, version, release, int(n0), arch, " ".join(tag)))
    return packages


def _linux_catalogue(os_key: str, size: int) -> _Catalogue:
    family = _PLATFORMS[os_key].family
    table = {"al2023": _AL2023, "rhel": _RHEL, "suse": _SLES, "ubuntu": _UBUNTU}[family]
    packages = _parse_table(table, variant=1 if os_key == "rhel9" else 0)
    # The catalogue is the same whatever fleet asks for it.
    rng = random.Random(f"patchframe catalogue {os_key} {size}")
    grades = _SUSE_GRADES if family == "suse" else _RPM_GRADES
    class_weights = _CLASS_WEIGHTS["suse" if family == "suse" else "rpm"]
    steps = math.ceil(size / len(packages))
    entries = []
    for step in range(steps):  # step 0 holds each package's newest update
        for pkg in packages:
            n = pkg.n0 + steps - 1 - step
            name, version = pkg.name.format(n=n), pkg.version.format(n=n)
            release = pkg.release.format(n=n)
            if family == "ubuntu":
                section, priority = pkg.tag.split()
                title, kb_id = f"{name}.{pkg.arch}:{version}", f"{name}-{version}.{pkg.arch}"
                entries.append(_Entry(title, kb_id, section, priority, ""))
                continue
            title = f"{name}.{pkg.arch}:{pkg.epoch}:{version}-{release}"
            kb_id = f"{name}-{version}-{release}.{pkg.arch}"
            classification = rng.choices(tuple(grades), weights=class_weights)[0]
            words, weights = grades[classification]
            severity = rng.choices(words, weights=weights)[0]
            cves = ""
            if classification in _SECURITY_CLASSES and pkg.tag in _CVES:
                pool = _CVES[pkg.tag].split()
                picked = rng.sample(
                    pool, min(len(pool), 1 + (rng.random() < 0.4) + (rng.random() < 0.15))
                )
                cves = ",".join(sorted(picked, reverse=True))
            entries.append(_Entry(title, kb_id, classification, severity, cves))
    return _Catalogue(entries, len(packages), len(entries))


class _Platform(NamedTuple):
    type: str
    name: str
    version: str
    family: str


_PLATFORMS = {
    "win2019": _Platform(
        "Windows", "Microsoft Windows Server 2019 Datacenter", "10.0.17763", "windows"
    ),
    "win2022": _Platform(
        "Windows", "Microsoft Windows Server 2022 Datacenter", "10.0.20348", "windows"
    ),
    "al2023": _Platform("Linux", "Amazon Linux", "2023", "al2023"),
    "rhel8": _Platform("Linux", "Red Hat Enterprise Linux", "8.9", "rhel"),
    "rhel9": _Platform("Linux", "Red Hat Enterprise Linux", "9.4", "rhel"),
    "ubuntu22": _Platform("Linux", "Ubuntu", "22.04", "ubuntu"),
    "sles15": _Platform("Linux", "SLES", "15.5", "suse"),
}


def _catalogue(os_key: str, size: int) -> _Catalogue:
    if _PLATFORMS[os_key].family == "windows":
        return _windows_catalogue(os_key, size)
    return _linux_catalogue(os_key, size)


def _catalogue_size(patches_per_node: int) -> int:
    # Room for the largest node (1.3 x the mean) drawing 85% of what applies.
    return math.ceil(1.3 * patches_per_node / 0.85) + 20


# --------------------------------------------------------------------------- states

# Per hygiene profile, (weights for older patches, weights for the newest), over
# STATES in order. AVAILABLE_SECURITY_UPDATE only exists on Windows.
_PROFILES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "compliant": ((62, 14, 0, 0, 0, 24, 0, 0), (80, 0, 0, 0, 0, 20, 0, 0)),
    "good": ((60, 14, 0, 2, 1, 23, 0, 1), (55, 0, 10, 0, 20, 8, 3, 4)),
    "lagging": ((52, 12, 1, 2, 10, 19, 2, 2), (20, 0, 7, 0, 55, 5, 8, 5)),
    "stale": ((40, 10, 0, 1, 30, 15, 3, 1), (0, 0, 0, 0, 85, 5, 5, 5)),
}


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


def _patches(
    rng: random.Random, node: _Node, catalogue: _Catalogue, runs: list[float | int]
) -> tuple[list[dict[str, Any]], Counter[str]]:
    entries, recent, applicable = catalogue
    take = min(node.rows, int(0.85 * applicable))
    picks = rng.sample(range(applicable), take)
    picks += rng.sample(range(applicable, len(entries)), node.rows - take)
    older_weights, recent_weights = _PROFILES[node.profile]
    states = rng.choices(STATES, weights=older_weights, k=node.rows)
    fresh = [i for i, index in enumerate(picks) if index < recent]
    newest = rng.choices(STATES, weights=recent_weights, k=len(fresh))
    for i, state in zip(fresh, newest, strict=True):
        states[i] = state
    states[take:] = ["NOT_APPLICABLE"] * (node.rows - take)
    windows = _PLATFORMS[node.os].family == "windows"
    for i, state in enumerate(states):
        if state == "AVAILABLE_SECURITY_UPDATE" and (
            not windows or entries[picks[i]].classification != "SecurityUpdates"
        ):
            states[i] = "MISSING"
    counts = Counter(states)
    installed_at = rng.choices(runs, k=node.rows)
    year_one = set(rng.sample(range(node.rows), node.rows // 20))
    spell = _SNAKE if node.upper_snake else WIRE_STATES
    blank_cves = _PLATFORMS[node.os].family == "al2023"
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
        if state in _NON_COMPLIANT:
            if severity == "Critical":
                counts["critical"] += 1
            elif classification in _SECURITY_CLASSES:
                counts["security"] += 1
            else:
                counts["other"] += 1
        rows.append(row)
    return rows, counts


def _instance(rng: random.Random, node: _Node, region: str) -> dict[str, Any]:
    platform = _PLATFORMS[node.os]
    hybrid = node.instance_id.startswith("mi-")
    ping = _NOW - (
        12 * 86400 + rng.randrange(3600) if node.ping == "ConnectionLost" else rng.randrange(300)
    )
    agent = rng.choice(("3.3.131.0", "3.3.380.0", "3.3.418.0", "3.3.484.0"))
    info: dict[str, Any] = {
        "InstanceId": node.instance_id,
        "PingStatus": node.ping,
        "LastPingDateTime": round(ping + rng.random(), 3),
        "AgentVersion": agent,
        "IsLatestVersion": agent == "3.3.484.0",
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
    size = _catalogue_size(patches_per_node)
    catalogues = {os_key: _catalogue(os_key, size) for os_key in {node.os for node in nodes}}
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
        rows, counts = _patches(rng, node, catalogues[node.os], runs)
        fleet.patches[node.instance_id] = rows
        family = _PLATFORMS[node.os].family
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
        state.update({name: counts[s] for s, name in STATE_COUNT_FIELDS.items()})
        state["OperationStartTime"] = _stamp(rng, start)
        state["OperationEndTime"] = _stamp(rng, end)
        state["Operation"] = node.operation
        if node.reboot == "NoReboot" and node.operation == "Install":
            state["LastNoRebootInstallOperationTime"] = state["OperationEndTime"]
        state["RebootOption"] = node.reboot
        state["CriticalNonCompliantCount"] = counts["critical"]
        state["SecurityNonCompliantCount"] = counts["security"]
        state["OtherNonCompliantCount"] = counts["other"]
        fleet.patch_states.append(state)
    return fleet


# --------------------------------------------------------------------------- the sample

_SAMPLE_ACCOUNT, _SAMPLE_REGION = "123456789012", "eu-west-1"
# Columns: id, OS, patch rows, hygiene, name, environment, team, patch group ("-" for
# none), and flags: install (the last operation installed), noreboot (installed without
# rebooting), lost (ConnectionLost), snake (states in upper snake case), unscanned.
_SAMPLE_NODES = """
i-0e1f2a3b4c5d6e7f8  win2022  320 lagging   web-iis-01    prod    web      prod-windows   install
i-0b7e2d4f6a8c91023  win2019  250 good      sql-01        prod    data     prod-windows   noreboot
i-04c9e1a7b3d5f2068  win2022  120 stale     build-01      dev     platform -
mi-0c2a5e7f9b1d3486a win2019  140 stale     onprem-fs-01  prod    it       onprem-windows lost
i-0d1f3a5c7e9b24680  al2023   240 good      api-01        prod    payments prod-linux     install
i-0e8c6a4f2d0b13579  al2023    95 compliant worker-01     prod    payments prod-linux
i-05a7c9e1b3d5f7092  al2023     0 good      batch-02      staging data     -              unscanned
i-0f2b4d6f8a0c1e3a5  rhel9    210 lagging   db-pg-01      prod    data     prod-linux
mi-0a1b2c3d4e5f67890 rhel8    150 lagging   onprem-app-01 prod    it       onprem-linux
i-06d8f0a2c4e6b8d1c  ubuntu22 180 good      k8s-node-01   prod    platform prod-linux
i-07e9a1c3e5f7b9d2e  ubuntu22  70 lagging   bastion-01    prod    security prod-linux     snake
i-08f0b2d4f6a8c0e3f  sles15   130 good      sap-app-01    prod    sap      prod-sap       install
i-09a1c3e5a7c9e1f40  rhel8    115 stale     legacy-erp-01 prod    finance  prod-linux
"""


def _sample_nodes() -> list[_Node]:
    nodes = []
    for line in _SAMPLE_NODES.strip().splitlines():
        instance_id, os_key, rows, profile, name, environment, team, group, *flags = line.split()
        nodes.append(
            _Node(
                instance_id,
                os_key,
                int(rows),
                profile,
                name,
                environment,
                team,
                "" if group == "-" else group,
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

    Examples
    --------
    >>> from importlib.resources import files
    >>> read_fleet(files("patchframe.sample_data")).account_id
    '123456789012'
    """
    root = Path(directory) if isinstance(directory, str) else directory

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

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = write_fleet(sample_fleet(), tmp)
    ...     read_fleet(tmp) == sample_fleet()
    True
    """
    root = Path(directory)
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

_MIX = {
    "win2019": 12,
    "win2022": 18,
    "al2023": 25,
    "rhel8": 8,
    "rhel9": 10,
    "ubuntu22": 20,
    "sles15": 7,
}
_ROLES = {
    "windows": ("web-iis", "sql", "ad", "rds", "file"),
    "suse": ("sap-app", "sap-hana"),
}
_LINUX_ROLES = ("api", "worker", "web", "db", "k8s-node", "batch", "cache")
_TEAMS = ("platform", "payments", "data", "web", "identity", "it")


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
    hundred spell their states in upper snake case, as on real fleets.

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
        Where the fleet lives.

    Examples
    --------
    >>> fleet = synthetic_fleet(20, seed=7, patches_per_node=50)
    >>> len(fleet.instances), fleet == synthetic_fleet(20, seed=7, patches_per_node=50)
    (20, True)
    """
    if nodes < 0:
        raise ValueError(f"nodes must be 0 or more, not {nodes}")
    if not 0 <= patches_per_node <= 1000:
        raise ValueError(f"patches_per_node must be between 0 and 1000, not {patches_per_node}")
    if not (len(account_id) == 12 and account_id.isdigit()):
        raise ValueError(f"account_id must be 12 digits, not {account_id!r}")
    rng = random.Random(f"patchframe synthetic {seed} {account_id} {region}")
    seen: set[str] = set()
    specs: list[_Node] = []
    for os_key in rng.choices(tuple(_MIX), weights=tuple(_MIX.values()), k=nodes):
        hybrid = rng.random() < 0.1
        instance_id = ""
        while not instance_id or instance_id in seen:
            instance_id = f"mi-{_hex(rng, 17)}" if hybrid else f"i-0{_hex(rng, 16)}"
        seen.add(instance_id)
        family = _PLATFORMS[os_key].family
        environment = rng.choices(("prod", "staging", "dev"), weights=(6, 2, 2))[0]
        group = "" if rng.random() < 0.1 else f"{environment}-{_PLATFORMS[os_key].type.lower()}"
        ping_draw = rng.random()
        specs.append(
            _Node(
                instance_id,
                os_key,
                round(patches_per_node * (0.7 + 0.6 * rng.random())),
                rng.choices(tuple(_PROFILES), weights=(15, 45, 28, 12))[0],
                f"{rng.choice(_ROLES.get(family, _LINUX_ROLES))}-{len(specs) + 1:04d}",
                environment,
                rng.choice(_TEAMS),
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
    return _build(
        specs, account_id=account_id, region=region, rng=rng, patches_per_node=patches_per_node
    )


# --------------------------------------------------------------------------- history

#: When a synthetic history starts by default: the sample's clock, 2024-06-14T08:00:00Z.
HISTORY_START = dt.datetime.fromtimestamp(_NOW, tz=dt.UTC)

# Per node, the share of its open patches installed between two snapshots, drawn once
# per node with the weights of _PROFILES' hygiene (compliant, good, lagging, stale).
_DILIGENCE = ((0.85, 0.6, 0.3, 0.08), (15, 45, 28, 12))
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
_OS_OF = {(p.name, p.version): key for key, p in _PLATFORMS.items()}


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


def _state_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """A node's DescribeInstancePatchStates counts, as :func:`_patches` makes them."""
    states = [normalise_state(row["State"]) for row in rows]
    counts = Counter(states)
    graded: Counter[str] = Counter()
    for row, state in zip(rows, states, strict=True):
        if state in _NON_COMPLIANT:
            if row["Severity"] == "Critical":
                graded["CriticalNonCompliantCount"] += 1
            elif row["Classification"] in _SECURITY_CLASSES:
                graded["SecurityNonCompliantCount"] += 1
            else:
                graded["OtherNonCompliantCount"] += 1
    out = {name: counts[state] for state, name in STATE_COUNT_FIELDS.items()}
    for name in (
        "CriticalNonCompliantCount",
        "SecurityNonCompliantCount",
        "OtherNonCompliantCount",
    ):
        out[name] = graded[name]
    return out


class _Releases:
    """The patches vendors publish after the sample's catalogues end (June 2024)."""

    def __init__(self, patches_per_node: int, snapshots: int) -> None:
        self.size = _catalogue_size(patches_per_node)
        self.snapshots = snapshots
        self._newer: dict[str, tuple[_Catalogue, int]] = {}

    def windows(self, os_key: str, since: dt.datetime, until: dt.datetime) -> list[_Entry]:
        """Windows updates of each month whose Patch Tuesday (second Tuesday) is in the period."""
        entries = []
        for month in range(_NEWEST_MONTH + 1, until.year * 12 + until.month):
            first = dt.datetime(month // 12, month % 12 + 1, 1, 18, tzinfo=dt.UTC)
            tuesday = first + dt.timedelta(days=(1 - first.weekday()) % 7 + 7)
            if since < tuesday <= until:
                entries.extend(_windows_month(_WINDOWS[os_key], month))
        return entries

    def linux(self, rng: random.Random, os_key: str, step: int) -> list[_Entry]:
        """New versions of a few packages: ``step`` versions past the catalogue's newest."""
        if os_key not in self._newer:
            packages = _linux_catalogue(os_key, self.size).recent
            steps = math.ceil(self.size / packages)
            # A longer catalogue starts that many versions further on: its first rows
            # are the versions after the ones nodes already list.
            longer = _linux_catalogue(os_key, (steps + self.snapshots) * packages)
            self._newer[os_key] = (longer, packages)
        longer, packages = self._newer[os_key]
        row = (self.snapshots - step) * packages
        picked = rng.sample(range(packages), min(_LINUX_RELEASES, packages))
        return [longer.entries[row + i] for i in sorted(picked)]


def _new_row(entry: _Entry, spell: dict[str, str], blank_cves: bool) -> dict[str, Any]:
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
        if _PLATFORMS[os_key].family != "windows"
    }
    infos = {n["InstanceId"]: n for n in fleet.instances}
    for state in fleet.patch_states:
        info = infos[state["InstanceId"]]
        if info["PingStatus"] != "Online":
            continue  # it does not scan: its last answer stands
        os_key = _OS_OF[(info["PlatformName"], info["PlatformVersion"])]
        rows = fleet.patches.setdefault(state["InstanceId"], [])
        spell = _SNAKE if rows and rows[0]["State"].isupper() else WIRE_STATES
        blank_cves = _PLATFORMS[os_key].family == "al2023"
        if os_key in _WINDOWS:
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
    diligence = node.choices(*_DILIGENCE)[0]
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
    state.update(_state_counts(rows))
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
    if snapshots < 1:
        raise ValueError(f"snapshots must be 1 or more, not {snapshots}")
    if every <= dt.timedelta(0):
        raise ValueError(f"every must be a positive time, not {every}")
    if start.tzinfo is None:
        raise ValueError(f"start must be timezone-aware, e.g. {HISTORY_START!r}, not {start!r}")
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
